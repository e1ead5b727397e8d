/**
 * The simulated world: per deployment, the cloud resources that exist, the clusters booted from
 * them and what DNS and mesh hold. Kept in a `SimulatorStore` (one document per deployment) and
 * cached in process unless other processes share the store (replicas on one database: then every
 * call reads the store and a change holds the document against them); every change is saved before
 * it is reported, like a real provider's API.
 */
import { Context, Duration, Effect, Layer, Option, Redacted, Schema, Schedule } from "effect"
import type { DeploymentId } from "@sovereign/core/Deployment"
import * as Kubeconfig from "@sovereign/core/Kubeconfig"
import { certificateAuthorityData } from "./SimulatorAuthority.js"
import { draw, drawHex, drawInt } from "./internal/random.js"
import { defaultOptions, type SimulatorOptions } from "./SimulatorConfig.js"
import { SimulatorStore, type SimulatorStoreError } from "./SimulatorStore.js"

export const SimResource = Schema.Struct({
  kind: Schema.String,
  id: Schema.String,
  name: Schema.String,
  /** Region key. */
  region: Schema.String,
  cloudRegion: Schema.String,
  labels: Schema.Record({ key: Schema.String, value: Schema.String }),
  /** Public IPv4 of servers and load balancers. */
  ip: Schema.optional(Schema.String),
  /** Unix ms: created, and running (the provider's action finished). */
  createdAt: Schema.Number,
  readyAt: Schema.Number
})
export type SimResource = typeof SimResource.Type

const KeyPair = Schema.Struct({ cert: Schema.String, key: Schema.String })

const HostAliases = Schema.Array(Schema.Struct({ ip: Schema.String, hostnames: Schema.Array(Schema.String) }))
const StringMap = Schema.Record({ key: Schema.String, value: Schema.String })

/** The Cilium a simulated cluster runs (version, KVStoreMesh, whether its release renders the clustermesh config). */
export const SimCilium = Schema.Struct({ version: Schema.String, kvstoreMesh: Schema.Boolean, chartRendersConfig: Schema.Boolean })
export type SimCilium = typeof SimCilium.Type

/** The mesh-related objects of a cluster: what Cilium's chart created and what the mesh adapter wrote. */
export const SimMeshObjects = Schema.Struct({
  /** `clustermesh-apiserver` Service; absent = not found. */
  service: Schema.optional(Schema.Struct({ type: Schema.String, loadBalancerIP: Schema.optional(Schema.String), port: Schema.Number })),
  ca: Schema.optional(KeyPair),
  remote: Schema.optional(KeyPair),
  /** `clustermesh-apiserver-local-cert`, the agents' identity towards their local KVStoreMesh. */
  local: Schema.optional(KeyPair),
  ciliumConfig: Schema.optional(Schema.Struct({ clusterName: Schema.String, clusterId: Schema.Number })),
  /** Absent: the simulator's default Cilium. */
  cilium: Schema.optional(SimCilium),
  /** `kube-system/cilium-clustermesh` and `cilium-kvstoremesh` data, by name; a Secret never written is absent. */
  secrets: Schema.optionalWith(Schema.Record({ key: Schema.String, value: StringMap }), { default: () => ({}) }),
  /** Pod-template hostAliases by workload (`cilium`, `clustermesh-apiserver`). */
  podAliases: Schema.optionalWith(Schema.Record({ key: Schema.String, value: HostAliases }), { default: () => ({}) }),
  /** The values Sovereign gave the Cilium release (when its chart renders the config). */
  helmValues: Schema.optional(Schema.Unknown),
  /** Writes the mesh made in this cluster, and pod-template changes (rollouts) per workload. */
  writes: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  restarts: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Number }), { default: () => ({}) })
})
export type SimMeshObjects = typeof SimMeshObjects.Type

export const SimCluster = Schema.Struct({
  regionKey: Schema.String,
  cloudRegion: Schema.String,
  primary: Schema.Boolean,
  clusterName: Schema.String,
  clusterId: Schema.Number,
  /** Public IP of the region's load balancer (API server and ingress). */
  loadBalancerIP: Schema.String,
  /** Unix ms at which k3s and Flux are up and start reconciling the bootstrap kit. */
  bootAt: Schema.Number,
  /** Unix ms at which cloud-init calls back with the kubeconfig; absent = never (fault). */
  kubeconfigDueAt: Schema.optional(Schema.Number),
  kubeconfigDelivered: Schema.Boolean,
  /** Owner access objects created in the cluster (handover). */
  grants: Schema.Array(Schema.String),
  /** Peers configured in this cluster's `cilium-clustermesh` Secret, and when all were. */
  meshPeers: Schema.Array(Schema.String),
  meshReadyAt: Schema.optional(Schema.Number),
  /** A cluster whose releases a test driver writes (no bootstrap kit is simulated in it). */
  driven: Schema.optional(Schema.Boolean),
  /** Mesh objects; absent until the mesh adapter first looks (then derived from the cluster). */
  mesh: Schema.optional(SimMeshObjects)
})
export type SimCluster = typeof SimCluster.Type

export const DeploymentWorld = Schema.Struct({
  deploymentId: Schema.String,
  /** First FQDN label: the name prefix of every resource (`t1-fsn1-network`). */
  namePrefix: Schema.String,
  resources: Schema.Array(SimResource),
  /** How many times each resource name was created (a correct orchestration creates each once). */
  creations: Schema.Record({ key: Schema.String, value: Schema.Number }),
  clusters: Schema.Record({ key: Schema.String, value: SimCluster })
})
export type DeploymentWorld = typeof DeploymentWorld.Type

const WorldJson = Schema.parseJson(DeploymentWorld)
const decodeWorld = Schema.decodeUnknownSync(WorldJson)
const encodeWorld = Schema.encodeSync(WorldJson)

/** What the cloud-init of a control plane does when its cluster is up: PUT the kubeconfig to the server. */
export interface KubeconfigDeliveryService {
  readonly deliver: (delivery: {
    readonly deploymentId: DeploymentId
    readonly regionKey: string
    readonly kubeconfig: Redacted.Redacted<string>
  }) => Effect.Effect<void, unknown>
}

/**
 * The call-back channel: the server PUTs to `SOVEREIGN_PUBLIC_URL` with the deployment's postback
 * token (which it derives, so the world never stores a token); tests put straight into `Kubeconfigs`.
 */
export class KubeconfigDelivery extends Context.Tag("@sovereign/adapter-simulator/KubeconfigDelivery")<
  KubeconfigDelivery,
  KubeconfigDeliveryService
>() {}

export interface SimulatorWorldService {
  readonly options: SimulatorOptions
  /** Simulated duration → real duration at the configured speed. */
  readonly scaled: (simulated: Duration.DurationInput) => Duration.Duration
  readonly read: (deploymentId: string) => Effect.Effect<Option.Option<DeploymentWorld>, SimulatorStoreError>
  /** Serialised per deployment; the new document is saved before the effect completes. */
  readonly modify: <A>(
    deploymentId: string,
    namePrefix: string,
    f: (world: DeploymentWorld) => readonly [A, DeploymentWorld]
  ) => Effect.Effect<A, SimulatorStoreError>
  /** Every resource of every deployment the world holds (the inventory endpoint). */
  readonly allResources: Effect.Effect<ReadonlyArray<SimResource>, SimulatorStoreError>
  /** Schedules the kubeconfig call-back of a region (idempotent; also re-armed at start-up). */
  readonly scheduleCallback: (deploymentId: string, regionKey: string) => Effect.Effect<void>
  /** The kubeconfig a region's control plane writes: it names the simulated cluster it belongs to. */
  readonly kubeconfigOf: (deploymentId: string, cluster: SimCluster) => string
  /** The same kubeconfig as core's value (its `Kubeconfig.toDocument` is what the YAML says). */
  readonly kubeconfigFor: (deploymentId: string, cluster: SimCluster) => Kubeconfig.Kubeconfig
  /** A draw in [0, 1) named by `parts`, from the world's seed. */
  readonly draw: (...parts: ReadonlyArray<string | number>) => number
  readonly drawInt: (min: number, max: number, ...parts: ReadonlyArray<string | number>) => number
  /** Reads and replaces a world-wide document (e.g. `dns`) under one lock. */
  readonly modifyShared: <A>(
    key: string,
    f: (document: Option.Option<string>) => readonly [A, Option.Option<string>]
  ) => Effect.Effect<A, SimulatorStoreError>
}

export class SimulatorWorld extends Context.Tag("@sovereign/adapter-simulator/SimulatorWorld")<SimulatorWorld, SimulatorWorldService>() {}

const documentKey = (deploymentId: string) => `deployment/${deploymentId}`

const emptyWorld = (deploymentId: string, namePrefix: string): DeploymentWorld => ({
  deploymentId,
  namePrefix,
  resources: [],
  creations: {},
  clusters: {}
})

const clusterPattern = /cluster: "?sim-([0-9a-f]{16})-([a-z0-9-]+)"?\n/

/** Which simulated cluster a kubeconfig points at. */
export const clusterOfKubeconfig = (
  kubeconfig: Redacted.Redacted<string>
): Option.Option<{ readonly deploymentId: string; readonly regionKey: string }> => {
  const match = clusterPattern.exec(Redacted.value(kubeconfig))
  return match === null ? Option.none() : Option.some({ deploymentId: match[1]!, regionKey: match[2]! })
}

export const make = (options: SimulatorOptions) =>
  Effect.gen(function* () {
    const store = yield* SimulatorStore
    const delivery = yield* KubeconfigDelivery
    const cache = new Map<string, DeploymentWorld>()
    const locks = new Map<string, Effect.Semaphore>()
    const scheduled = new Set<string>()
    const scope = yield* Effect.scope
    const lockOf = (deploymentId: string) => {
      let lock = locks.get(deploymentId)
      if (lock === undefined) {
        lock = Effect.unsafeMakeSemaphore(1)
        locks.set(deploymentId, lock)
      }
      return lock
    }
    const scaled = (simulated: Duration.DurationInput) => {
      const duration = Duration.decode(simulated)
      // Whole milliseconds: simulated times become timestamps, and time is integer unix ms everywhere.
      return Duration.isFinite(duration) ? Duration.millis(Math.round(Duration.toMillis(duration) / options.speed)) : duration
    }
    const read = (deploymentId: string) =>
      Effect.suspend(() => {
        const cached = store.shared ? undefined : cache.get(deploymentId)
        if (cached !== undefined) return Effect.succeed(Option.some(cached))
        return Effect.map(store.load(documentKey(deploymentId)), (document) =>
          Option.map(document, (text) => {
            const world = decodeWorld(text)
            if (!store.shared) cache.set(deploymentId, world)
            return world
          })
        )
      })
    const modify = <A>(deploymentId: string, namePrefix: string, f: (world: DeploymentWorld) => readonly [A, DeploymentWorld]) =>
      lockOf(deploymentId).withPermits(1)(
        store.exclusively(
          documentKey(deploymentId),
          Effect.gen(function* () {
            const current = Option.getOrElse(yield* read(deploymentId), () => emptyWorld(deploymentId, namePrefix))
            const [result, next] = f(current)
            if (next !== current) {
              yield* store.save(documentKey(deploymentId), encodeWorld(next))
              if (!store.shared) cache.set(deploymentId, next)
            }
            return result
          })
        )
      )
    const kubeconfigFor = (deploymentId: string, cluster: SimCluster): Kubeconfig.Kubeconfig => ({
      cluster: {
        name: `sim-${deploymentId}-${cluster.regionKey}`,
        server: `https://${cluster.loadBalancerIP}:6443`,
        certificateAuthorityData: certificateAuthorityData
      },
      user: {
        name: "admin",
        credential: { _tag: "Token", token: Redacted.make(drawHex(40, options.seed, deploymentId, cluster.regionKey, "token")) }
      },
      context: { name: `sim-${deploymentId}-${cluster.regionKey}` }
    })
    const kubeconfigOf = (deploymentId: string, cluster: SimCluster) =>
      Redacted.value(Kubeconfig.render(kubeconfigFor(deploymentId, cluster)))

    const deliverOnce = (deploymentId: string, regionKey: string) =>
      Effect.gen(function* () {
        const world = yield* read(deploymentId)
        const cluster = Option.flatMapNullable(world, (w) => w.clusters[regionKey])
        if (Option.isNone(cluster) || cluster.value.kubeconfigDelivered || cluster.value.kubeconfigDueAt === undefined) return
        const dueAt = cluster.value.kubeconfigDueAt
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        if (dueAt > now) yield* Effect.sleep(Duration.millis(dueAt - now))
        // The cluster may have been purged while we slept.
        const again = Option.flatMapNullable(yield* read(deploymentId), (w) => w.clusters[regionKey])
        if (Option.isNone(again) || again.value.kubeconfigDelivered) return
        yield* delivery
          .deliver({ deploymentId, regionKey, kubeconfig: Redacted.make(kubeconfigOf(deploymentId, again.value)) })
          .pipe(
            Effect.retry(Schedule.exponential(Duration.seconds(5)).pipe(Schedule.union(Schedule.spaced(Duration.minutes(1))))),
            Effect.orDie
          )
        yield* modify(deploymentId, "", (w) => {
          const c = w.clusters[regionKey]
          return c === undefined
            ? [undefined, w]
            : [undefined, { ...w, clusters: { ...w.clusters, [regionKey]: { ...c, kubeconfigDelivered: true } } }]
        })
      })

    const scheduleCallback = (deploymentId: string, regionKey: string) =>
      Effect.suspend(() => {
        const key = `${deploymentId}/${regionKey}`
        if (scheduled.has(key)) return Effect.void
        scheduled.add(key)
        return deliverOnce(deploymentId, regionKey).pipe(
          Effect.catchAllCause((cause) => Effect.logWarning("simulated kubeconfig call-back failed", cause)),
          Effect.ensuring(Effect.sync(() => scheduled.delete(key))),
          Effect.forkIn(scope),
          Effect.asVoid
        )
      })

    const allResources = Effect.gen(function* () {
      const keys = yield* store.keys("deployment/")
      const out: Array<SimResource> = []
      for (const key of keys) {
        const world = yield* read(key.slice("deployment/".length))
        if (Option.isSome(world)) out.push(...world.value.resources)
      }
      return out
    })

    // A restarted host re-arms every call-back that was still due (cloud-init keeps trying).
    for (const key of yield* Effect.orDie(store.keys("deployment/"))) {
      const world = yield* Effect.orDie(read(key.slice("deployment/".length)))
      if (Option.isNone(world)) continue
      for (const cluster of Object.values(world.value.clusters)) {
        if (!cluster.kubeconfigDelivered && cluster.kubeconfigDueAt !== undefined) {
          yield* scheduleCallback(world.value.deploymentId, cluster.regionKey)
        }
      }
    }

    const sharedLock = Effect.unsafeMakeSemaphore(1)
    const modifyShared = <A>(key: string, f: (document: Option.Option<string>) => readonly [A, Option.Option<string>]) =>
      sharedLock.withPermits(1)(
        store.exclusively(
          key,
          Effect.gen(function* () {
            const current = yield* store.load(key)
            const [result, next] = f(current)
            if (Option.isSome(next) && !(Option.isSome(current) && current.value === next.value)) yield* store.save(key, next.value)
            return result
          })
        )
      )

    const service: SimulatorWorldService = {
      modifyShared,
      options,
      scaled,
      read,
      modify,
      allResources,
      scheduleCallback,
      kubeconfigOf,
      kubeconfigFor,
      draw: (...parts) => draw(options.seed, ...parts),
      drawInt: (min, max, ...parts) => drawInt(options.seed, min, max, ...parts)
    }
    return service
  })

/** The world over a store and a call-back channel; its background call-backs live as long as the layer. */
export const layer = (
  options: SimulatorOptions = defaultOptions
): Layer.Layer<SimulatorWorld, never, SimulatorStore | KubeconfigDelivery> => Layer.scoped(SimulatorWorld, make(options))
