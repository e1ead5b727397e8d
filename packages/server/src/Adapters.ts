/**
 * The outside world, chosen by configuration (SPEC §8): the simulator by default, real adapters per
 * port when `SOVEREIGN_CLOUD`/`SOVEREIGN_DNS`/`SOVEREIGN_WATCH`/`SOVEREIGN_MESH` say so.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { Simulator, SimulatorConfig, SimulatorWorld } from "@sovereign/adapter-simulator"
import { CloudProvider, ClusterWatch, DnsProvider, MeshProvider, Secrets } from "@sovereign/core"
import { Config, ConfigError, Context, Effect, Either, Layer, Option, Redacted } from "effect"
import type { SqlClient } from "@effect/sql"
import * as SqlSimulatorStore from "./SqlSimulatorStore.js"
import { ServerConfig, publicUrlOf, type ServerConfigShape } from "./ServerConfig.js"

/** The ports the orchestration uses, resolved; optional ones are `None` when switched off. */
export interface WorldShape {
  readonly cloud: CloudProvider.CloudProviderService
  readonly watch: ClusterWatch.ClusterWatchService
  readonly access: Option.Option<ClusterWatch.ClusterAccessService>
  readonly dns: Option.Option<DnsProvider.DnsProviderService>
  readonly mesh: Option.Option<MeshProvider.MeshProviderService>
  /** The simulated world, when any port is simulated (inventory endpoint). */
  readonly simulator: Option.Option<SimulatorWorld.SimulatorWorldService>
}

export class World extends Context.Tag("@sovereign/server/World")<World, WorldShape>() {}

/** What cloud-init of a simulated control plane does: PUT its kubeconfig to the server with the postback token. */
export const httpDelivery = (config: ServerConfigShape) =>
  Layer.effect(
    SimulatorWorld.KubeconfigDelivery,
    Effect.map(Secrets.Secrets, (secrets) => ({
      deliver: ({ deploymentId, regionKey, kubeconfig }) =>
        Effect.gen(function* () {
          const token = yield* secrets.postbackToken(deploymentId, regionKey)
          const url = `${publicUrlOf(config)}/api/v1/deployments/${deploymentId}/kubeconfig?region=${encodeURIComponent(regionKey)}`
          const response = yield* Effect.tryPromise(() =>
            fetch(url, {
              method: "PUT",
              headers: { authorization: `Bearer ${Redacted.value(token)}`, "content-type": "application/yaml" },
              body: Redacted.value(kubeconfig)
            })
          )
          // 403 already-set (or closed): a repeated call-back after a restart is not an error. 409 (not open yet) is retried.
          if (response.status !== 204 && response.status !== 403) {
            return yield* Effect.fail(new Error(`the kubeconfig call-back got ${response.status}`))
          }
        })
    }))
  )

const simulatorOptions = Effect.gen(function* () {
  const config = yield* ServerConfig
  const faults = SimulatorConfig.parseFaults(config.simFaults)
  if (Either.isLeft(faults)) return yield* Effect.dieMessage(`SOVEREIGN_SIM_FAULTS: ${faults.left.message}`)
  return { speed: config.simSpeed, seed: config.simSeed, faults: faults.right }
})

const needsSimulator = (config: ServerConfigShape) =>
  config.cloud === "simulator" || config.dns === "simulator" || config.watch === "simulator" || config.mesh === "simulator"

/** A variable the chosen adapter needs: refused at start, named, when it is not set. */
const required = <A>(value: Option.Option<A>, name: string): Effect.Effect<A, ConfigError.ConfigError> =>
  Option.match(value, {
    onNone: () => Effect.fail(ConfigError.MissingData([name], `${name} is required with SOVEREIGN_DNS=powerdns`)),
    onSome: Effect.succeed
  })

/** Builds the `World` from the configuration. */
export const layer: Layer.Layer<World, unknown, ServerConfig | Secrets.Secrets | SqlClient.SqlClient> = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* ServerConfig
    const simulated = needsSimulator(config)
      ? Simulator.layer(yield* simulatorOptions).pipe(
          Layer.provide(SqlSimulatorStore.layer({ shared: Option.isSome(config.databaseUrl) })),
          Layer.provide(httpDelivery(config))
        )
      : Layer.empty
    // Real adapters are loaded only when configured: the simulator-only server stays small and starts fast.
    const http = NodeHttpClient.layerUndici
    const cloud =
      config.cloud === "hetzner"
        ? Layer.provide(
            (yield* Effect.promise(() => import("@sovereign/adapter-hetzner"))).HetznerCloud.layer({
              ...(Option.isSome(config.hetzner.token) ? { token: config.hetzner.token.value } : {}),
              ...(Option.isSome(config.hetzner.endpoint) ? { client: { endpoint: config.hetzner.endpoint.value } } : {})
            }),
            http
          )
        : Layer.empty
    const dns =
      config.dns === "powerdns"
        ? Layer.provide(
            (yield* Effect.promise(() => import("@sovereign/adapter-powerdns"))).PowerDnsProvider.layer({
              apiUrl: yield* required(config.powerDns.apiUrl, "PDNS_API_URL"),
              apiKey: yield* required(config.powerDns.apiKey, "PDNS_API_KEY"),
              serverId: config.powerDns.serverId
            }),
            http
          )
        : Layer.empty
    const kubernetes = config.watch === "kubernetes" ? yield* Effect.promise(() => import("@sovereign/adapter-kubernetes")) : undefined
    const watch =
      kubernetes === undefined
        ? Layer.empty
        : Layer.merge(
            kubernetes.KubernetesClusterWatch.layer({
              requestTimeout: config.kubernetes.requestTimeout,
              reconnectMaxDelay: config.kubernetes.reconnectMaxDelay,
              reachability: { budget: config.kubernetes.reachabilityBudget },
              tailLogs: config.kubernetes.tailLogs
            }),
            kubernetes.KubernetesClusterAccess.layer(config.clusterAccess)
          )
    const mesh =
      config.mesh === "cilium"
        ? (yield* Effect.promise(() => import("@sovereign/adapter-cilium"))).CiliumMesh.layerConfig(Config.succeed({}))
        : Layer.empty
    const world = Layer.effect(
      World,
      Effect.gen(function* () {
        const context = yield* Effect.context<never>()
        const get = <I, S>(tag: Context.Tag<I, S>) => Context.getOption(context as Context.Context<I>, tag)
        const cloudService = get(CloudProvider.CloudProvider)
        const watchService = get(ClusterWatch.ClusterWatch)
        if (Option.isNone(cloudService) || Option.isNone(watchService))
          return yield* Effect.dieMessage("no cloud or watch adapter configured")
        return {
          cloud: cloudService.value,
          watch: watchService.value,
          access: get(ClusterWatch.ClusterAccess),
          dns: config.dns === "none" ? Option.none() : get(DnsProvider.DnsProvider),
          mesh: get(MeshProvider.MeshProvider),
          simulator: get(SimulatorWorld.SimulatorWorld)
        }
      })
    )
    // Later layers win: a real adapter replaces the simulated port of the same kind.
    return world.pipe(Layer.provide(Layer.mergeAll(simulated, cloud, dns, watch, mesh)))
  })
)
