/**
 * The simulated ClusterMesh: each cluster holds the objects Cilium's chart creates (the
 * clustermesh-apiserver Service, whose LoadBalancer IP appears some minutes after boot, `cilium-ca`,
 * the remote cert, `cilium-config`) and runs a Cilium of some version and mode. A pass reads them,
 * plans with core's MeshPlan, and like the real adapter writes the clustermesh Secrets and (before
 * 1.20) the dialling workload's aliases only where they differ — or, when the release renders the
 * config, gives it the peers as values and lets a simulated helm-controller render them.
 */
import type { Region } from "@sovereign/core/Deployment"
import * as MeshPlan from "@sovereign/core/MeshPlan"
import { MeshError, MeshProvider, type MeshProviderService } from "@sovereign/core/MeshProvider"
import { Clock, Duration, Effect, Layer, Option, Redacted } from "effect"
import { drawHex, drawIp } from "./internal/random.js"
import { meshFaultActive } from "./SimulatorConfig.js"
import {
  clusterOfKubeconfig,
  SimulatorWorld,
  type SimCilium,
  type SimCluster,
  type SimMeshObjects,
  type SimulatorWorldService
} from "./SimulatorWorld.js"

export const workloads = ["cilium", "cilium-operator", "clustermesh-apiserver"] as const
export type Workload = (typeof workloads)[number]

/** The Cilium of a simulated cluster: the bootstrap kit's, with KVStoreMesh (on by default since 1.16). */
export const simulatedCilium: SimCilium = { version: "1.19.4", kvstoreMesh: true, chartRendersConfig: false }

const pem = (kind: string, ...parts: ReadonlyArray<string | number>) =>
  `-----BEGIN ${kind}-----\n${drawHex(64, ...parts)}\n-----END ${kind}-----\n`

const emptyWritten = { secrets: {}, podAliases: {}, writes: 0, restarts: {} } satisfies Partial<SimMeshObjects>

/** What Cilium's chart leaves in a simulated cluster at `now` (the LoadBalancer IP comes some minutes after boot). */
const chartObjects = (world: SimulatorWorldService, deploymentId: string, cluster: SimCluster, now: number): SimMeshObjects => {
  const ipAt = cluster.bootAt + Duration.toMillis(world.scaled(Duration.minutes(6)))
  const seed = world.options.seed
  return {
    service: {
      type: "LoadBalancer",
      ...(ipAt <= now ? { loadBalancerIP: drawIp("198.51.100", seed, deploymentId, cluster.regionKey, "clustermesh") } : {}),
      port: MeshPlan.defaultApiserverPort
    },
    ca: {
      cert: pem("CERTIFICATE", seed, deploymentId, cluster.regionKey, "ca"),
      key: pem("PRIVATE KEY", seed, deploymentId, cluster.regionKey, "ca-key")
    },
    remote: {
      cert: pem("CERTIFICATE", seed, deploymentId, cluster.regionKey, "remote"),
      key: pem("PRIVATE KEY", seed, deploymentId, cluster.regionKey, "remote-key")
    },
    ciliumConfig: { clusterName: cluster.clusterName, clusterId: cluster.clusterId },
    cilium: simulatedCilium,
    ...emptyWritten
  }
}

/** The objects of a cluster now: seeded ones as they are; simulated ones with the chart's objects refreshed. */
const objectsOf = (world: SimulatorWorldService, deploymentId: string, cluster: SimCluster, now: number): SimMeshObjects => {
  if (cluster.driven === true) return cluster.mesh ?? { ...emptyWritten }
  const chart = chartObjects(world, deploymentId, cluster, now)
  return cluster.mesh === undefined ? chart : { ...cluster.mesh, service: chart.service }
}

const inputOf = (region: Region, objects: SimMeshObjects | undefined, unreachable: string | undefined): MeshPlan.MeshRegionInput => ({
  regionKey: region.key,
  clusterName: region.clusterName,
  clusterId: region.clusterId,
  serviceType: objects?.service?.type,
  loadBalancerIP: objects?.service?.loadBalancerIP,
  apiserverPort: objects?.service?.port ?? MeshPlan.defaultApiserverPort,
  caCert: objects?.ca?.cert,
  caKey: objects?.ca?.key,
  remoteCert: objects?.remote?.cert,
  remoteKey: objects?.remote?.key,
  configuredClusterName: objects?.ciliumConfig?.clusterName,
  configuredClusterId: objects?.ciliumConfig?.clusterId,
  cilium: objects === undefined ? undefined : (objects.cilium ?? simulatedCilium),
  ...(unreachable === undefined ? {} : { unreachable })
})

const workloadOf = (workload: MeshPlan.Workload): Workload => (workload.kind === "DaemonSet" ? "cilium" : "clustermesh-apiserver")
const sameAliases = (left: ReadonlyArray<MeshPlan.HostAlias> | undefined, right: ReadonlyArray<MeshPlan.HostAlias> | undefined) =>
  JSON.stringify(MeshPlan.normalizeHostAliases(left ?? [])) === JSON.stringify(MeshPlan.normalizeHostAliases(right ?? []))

/**
 * The simulated helm-controller: renders the chart-owned clustermesh objects from the values the
 * release holds (the Secrets whole, the dialling workload's aliases before 1.20; a changed alias list rolls it).
 */
const renderRelease = (objects: SimMeshObjects, setup: SimCilium): SimMeshObjects => {
  const rendered = MeshPlan.render(MeshPlan.peerEntriesOf(objects.helmValues), setup)
  const target = MeshPlan.diallingWorkload(setup)
  const aliases = rendered.hostAliases?.aliases ?? []
  const workload = workloadOf(target)
  const rolled = !sameAliases(objects.podAliases[workload], aliases)
  return {
    ...objects,
    secrets: { ...objects.secrets, ...rendered.secrets },
    podAliases: rolled ? { ...objects.podAliases, [workload]: aliases } : objects.podAliases,
    restarts: rolled ? { ...objects.restarts, [workload]: (objects.restarts[workload] ?? 0) + 1 } : objects.restarts
  }
}

/** One region's pass over its objects: what Sovereign writes, as the real adapter would. */
const applyPlan = (objects: SimMeshObjects, regionPlan: MeshPlan.RegionPlan): SimMeshObjects => {
  const setup = regionPlan.cilium
  if (regionPlan.error !== undefined || setup === undefined) return objects
  if (setup.chartRendersConfig) {
    const entries = MeshPlan.desiredEntries(MeshPlan.peerEntriesOf(objects.helmValues), regionPlan)
    const values = MeshPlan.helmValues(entries, setup)
    if (JSON.stringify(values) === JSON.stringify(objects.helmValues)) return objects
    return renderRelease({ ...objects, helmValues: values, writes: objects.writes + 1 }, setup)
  }
  const target = regionPlan.rendered.hostAliases?.workload
  const changes = MeshPlan.diff(
    { secrets: objects.secrets, hostAliases: target === undefined ? [] : (objects.podAliases[workloadOf(target)] ?? []) },
    regionPlan
  )
  if (!MeshPlan.hasChanges(changes)) return objects
  const secrets = { ...objects.secrets, ...Object.fromEntries(changes.secrets.map((change) => [change.name, change.data])) }
  const rolled = changes.hostAliases === undefined ? undefined : workloadOf(changes.hostAliases.workload)
  return {
    ...objects,
    secrets,
    podAliases: rolled === undefined ? objects.podAliases : { ...objects.podAliases, [rolled]: changes.hostAliases!.aliases },
    writes: objects.writes + changes.secrets.length + (rolled === undefined ? 0 : 1),
    restarts: rolled === undefined ? objects.restarts : { ...objects.restarts, [rolled]: (objects.restarts[rolled] ?? 0) + 1 }
  }
}

export const make = Effect.gen(function* () {
  const world = yield* SimulatorWorld

  const establish: MeshProviderService["establish"] = (deploymentId, regions) =>
    Effect.gen(function* () {
      if (regions.length < 2) return []
      const now = yield* Clock.currentTimeMillis
      return yield* world
        .modify(deploymentId, "", (current) => {
          const found = regions.map(({ kubeconfig, region }) => {
            const target = clusterOfKubeconfig(kubeconfig)
            const cluster =
              Option.isSome(target) && target.value.deploymentId === deploymentId ? current.clusters[target.value.regionKey] : undefined
            const unreachable =
              cluster === undefined
                ? "the kubeconfig does not reach a cluster of this deployment"
                : meshFaultActive(
                      world.options.faults,
                      cluster.cloudRegion,
                      Duration.millis(Math.max(0, now - cluster.bootAt)),
                      world.scaled
                    )
                  ? `the API server of ${cluster.regionKey} (${cluster.cloudRegion}) does not answer (simulated mesh-fault)`
                  : undefined
            return {
              region,
              cluster,
              unreachable,
              objects: cluster === undefined ? undefined : objectsOf(world, deploymentId, cluster, now)
            }
          })
          const plans = MeshPlan.plan(found.map(({ region, objects, unreachable }) => inputOf(region, objects, unreachable)))
          const clusters = { ...current.clusters }
          const statuses = plans.map((regionPlan, index) => {
            const { cluster, objects, unreachable } = found[index]!
            // Nothing is written into a cluster that cannot be reached.
            if (cluster === undefined || objects === undefined || unreachable !== undefined)
              return MeshPlan.regionStatus(regionPlan, undefined)
            const next = applyPlan(objects, regionPlan)
            const changed = next !== objects
            const complete = MeshPlan.isComplete(regionPlan)
            const readyAt = complete ? (changed ? now : (cluster.meshReadyAt ?? now)) : undefined
            const { meshReadyAt: _previous, ...rest } = cluster
            clusters[cluster.regionKey] = {
              ...rest,
              mesh: next,
              meshPeers: regionPlan.peers
                .filter((peer) => peer.configured)
                .map((peer) => peer.name)
                .sort(),
              ...(readyAt === undefined ? {} : { meshReadyAt: readyAt })
            }
            return MeshPlan.regionStatus(regionPlan, readyAt)
          })
          const changed = Object.keys(clusters).some((key) => JSON.stringify(clusters[key]) !== JSON.stringify(current.clusters[key]))
          return [statuses, changed ? { ...current, clusters } : current] as const
        })
        .pipe(Effect.mapError((error) => new MeshError({ reason: "Unreachable", message: error.message })))
    })
  return { establish } satisfies MeshProviderService
})

export const layer: Layer.Layer<MeshProvider, never, SimulatorWorld> = Layer.effect(MeshProvider, make)

/** What a test seeds into a region's cluster (testkit's MeshWorld.MeshRegionSeed). */
export interface MeshSeed {
  readonly cilium: SimCilium
  readonly service: { readonly type: string; readonly loadBalancerIP: string | undefined; readonly port: number } | undefined
  readonly ca: { readonly cert: string; readonly key: string } | undefined
  readonly remote: { readonly cert: string; readonly key: string } | undefined
  readonly local: { readonly cert: string; readonly key: string } | undefined
  readonly ciliumConfig: { readonly clusterName: string; readonly clusterId: number } | undefined
}

/** Creates or replaces the chart's objects of a driven cluster for `region`; what the mesh wrote stays. Returns its MeshRegion. */
export const seedCluster = (deploymentId: string, region: Region, seed: MeshSeed) =>
  Effect.gen(function* () {
    const world = yield* SimulatorWorld
    const cluster = yield* Effect.orDie(
      world.modify(deploymentId, "mesh", (current) => {
        const existing = current.clusters[region.key]
        const written: SimMeshObjects = existing?.mesh ?? { ...emptyWritten }
        const mesh: SimMeshObjects = {
          secrets: written.secrets,
          podAliases: written.podAliases,
          writes: written.writes,
          restarts: written.restarts,
          ...(written.helmValues === undefined ? {} : { helmValues: written.helmValues }),
          cilium: seed.cilium,
          ...(seed.service === undefined
            ? {}
            : {
                service: {
                  type: seed.service.type,
                  port: seed.service.port,
                  ...(seed.service.loadBalancerIP === undefined ? {} : { loadBalancerIP: seed.service.loadBalancerIP })
                }
              }),
          ...(seed.ca === undefined ? {} : { ca: seed.ca }),
          ...(seed.remote === undefined ? {} : { remote: seed.remote }),
          ...(seed.local === undefined ? {} : { local: seed.local }),
          ...(seed.ciliumConfig === undefined ? {} : { ciliumConfig: seed.ciliumConfig })
        }
        const cluster: SimCluster = {
          regionKey: region.key,
          cloudRegion: region.cloudRegion,
          primary: region.primary,
          clusterName: region.clusterName,
          clusterId: region.clusterId,
          loadBalancerIP: "192.0.2.10",
          bootAt: 0,
          kubeconfigDelivered: true,
          grants: [],
          meshPeers: [],
          driven: true,
          mesh
        }
        return [cluster, { ...current, clusters: { ...current.clusters, [region.key]: cluster } }] as const
      })
    )
    return { region, kubeconfig: Redacted.make(world.kubeconfigOf(deploymentId, cluster)) }
  })

/** A Flux reconcile of a cluster's Cilium release: what its chart owns is rendered again from its values. */
export const reconcileRelease = (deploymentId: string, regionKey: string) =>
  Effect.gen(function* () {
    const world = yield* SimulatorWorld
    yield* Effect.orDie(
      world.modify(deploymentId, "mesh", (current) => {
        const cluster = current.clusters[regionKey]
        const mesh = cluster?.mesh
        const setup = mesh?.cilium ?? simulatedCilium
        if (cluster === undefined || mesh === undefined || !setup.chartRendersConfig) return [undefined, current] as const
        return [
          undefined,
          { ...current, clusters: { ...current.clusters, [regionKey]: { ...cluster, mesh: renderRelease(mesh, setup) } } }
        ] as const
      })
    )
  })

const certificateFiles = (
  prefix: string,
  pair: { readonly cert: string; readonly key: string } | undefined,
  ca: string | undefined
): Record<string, string> =>
  pair === undefined
    ? {}
    : {
        [`${prefix}etcd-client.crt`]: pair.cert,
        [`${prefix}etcd-client.key`]: pair.key,
        ...(ca === undefined ? {} : { [`${prefix}etcd-client-ca.crt`]: ca })
      }

/**
 * What a region's components see, mounted as Cilium's chart mounts it: the agents `cilium-clustermesh`
 * with the remote (and, with KVStoreMesh, the local) certificate; KVStoreMesh `cilium-kvstoremesh`.
 */
export const observeCluster = (deploymentId: string, regionKey: string) =>
  Effect.gen(function* () {
    const world = yield* SimulatorWorld
    const current = yield* Effect.orDie(world.read(deploymentId))
    const mesh = Option.getOrUndefined(Option.flatMapNullable(current, (w) => w.clusters[regionKey]?.mesh))
    const setup = mesh?.cilium ?? simulatedCilium
    const common = certificateFiles("common-", mesh?.remote, mesh?.ca?.cert)
    return {
      agent: {
        files: {
          ...mesh?.secrets[MeshPlan.secretName],
          ...common,
          ...(setup.kvstoreMesh ? certificateFiles("local-", mesh?.local, mesh?.ca?.cert) : {})
        },
        hostAliases: mesh?.podAliases["cilium"] ?? []
      },
      kvstoremesh: setup.kvstoreMesh
        ? {
            files: { ...mesh?.secrets[MeshPlan.kvstoreMeshSecretName], ...common },
            hostAliases: mesh?.podAliases["clustermesh-apiserver"] ?? []
          }
        : undefined,
      remote: mesh?.remote,
      writes: mesh?.writes ?? 0,
      restarts: Object.fromEntries(workloads.map((w) => [w, mesh?.restarts[w] ?? 0])) as Record<Workload, number>
    }
  })
