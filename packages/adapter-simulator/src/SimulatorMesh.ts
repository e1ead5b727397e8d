/**
 * The simulated ClusterMesh: each cluster holds the objects Cilium's chart creates (the
 * clustermesh-apiserver Service, whose LoadBalancer IP appears some minutes after boot, `cilium-ca`,
 * the remote cert, `cilium-config`) and the ones the mesh writes (`cilium-clustermesh`, the
 * DaemonSet's hostAliases, workload restarts). A pass reads them, plans with core's MeshPlan, writes
 * only what differs and restarts only on change, exactly like the real adapter.
 */
import type { Region } from "@sovereign/core/Deployment"
import * as MeshPlan from "@sovereign/core/MeshPlan"
import { MeshError, MeshProvider, type MeshProviderService } from "@sovereign/core/MeshProvider"
import { Clock, Duration, Effect, Layer, Option, Redacted } from "effect"
import { drawHex, drawIp } from "./internal/random.js"
import { clusterOfKubeconfig, SimulatorWorld, type SimCluster, type SimMeshObjects, type SimulatorWorldService } from "./SimulatorWorld.js"

export const workloads = ["cilium", "cilium-operator", "clustermesh-apiserver"] as const

const pem = (kind: string, ...parts: ReadonlyArray<string | number>) =>
  `-----BEGIN ${kind}-----\n${drawHex(64, ...parts)}\n-----END ${kind}-----\n`

const emptyWritten: SimMeshObjects = { hostAliases: [], secretRevision: 0, workloadRevisions: { cilium: 1, "cilium-operator": 1, "clustermesh-apiserver": 1 }, restarted: [] }

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
    ca: { cert: pem("CERTIFICATE", seed, deploymentId, cluster.regionKey, "ca"), key: pem("PRIVATE KEY", seed, deploymentId, cluster.regionKey, "ca-key") },
    remote: { cert: pem("CERTIFICATE", seed, deploymentId, cluster.regionKey, "remote"), key: pem("PRIVATE KEY", seed, deploymentId, cluster.regionKey, "remote-key") },
    ciliumConfig: { clusterName: cluster.clusterName, clusterId: cluster.clusterId },
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
  ...(unreachable === undefined ? {} : { unreachable })
})

export const make = Effect.gen(function*() {
  const world = yield* SimulatorWorld

  const establish: MeshProviderService["establish"] = (deploymentId, regions) =>
    Effect.gen(function*() {
      if (regions.length < 2) return []
      const now = yield* Clock.currentTimeMillis
      return yield* world.modify(deploymentId, "", (current) => {
        const found = regions.map(({ kubeconfig, region }) => {
          const target = clusterOfKubeconfig(kubeconfig)
          const cluster = Option.isSome(target) && target.value.deploymentId === deploymentId ? current.clusters[target.value.regionKey] : undefined
          return { region, cluster, objects: cluster === undefined ? undefined : objectsOf(world, deploymentId, cluster, now) }
        })
        const plans = MeshPlan.plan(found.map(({ region, cluster, objects }) =>
          inputOf(region, objects, cluster === undefined ? "the kubeconfig does not reach a cluster of this deployment" : undefined)))
        const clusters = { ...current.clusters }
        const statuses = plans.map((regionPlan, index) => {
          const { cluster, objects } = found[index]!
          if (cluster === undefined || objects === undefined) return MeshPlan.regionStatus(regionPlan, undefined)
          const changes = MeshPlan.diff({ secretData: objects.secretData, hostAliases: objects.hostAliases }, regionPlan)
          const restart = MeshPlan.needsRestart(changes)
          const complete = MeshPlan.isComplete(regionPlan)
          const readyAt = complete ? (restart ? now : cluster.meshReadyAt ?? now) : undefined
          const next: SimMeshObjects = {
            ...objects,
            ...(changes.secret === undefined ? {} : { secretData: changes.secret.data, secretRevision: objects.secretRevision + 1 }),
            ...(changes.hostAliases === undefined ? {} : { hostAliases: changes.hostAliases }),
            ...(restart
              ? {
                workloadRevisions: Object.fromEntries(workloads.map((w) => [w, (objects.workloadRevisions[w] ?? 0) + 1])),
                restarted: [...workloads]
              }
              : {})
          }
          const { meshReadyAt: _previous, ...rest } = cluster
          clusters[cluster.regionKey] = {
            ...rest,
            mesh: next,
            meshPeers: regionPlan.peers.filter((peer) => peer.configured).map((peer) => peer.name).sort(),
            ...(readyAt === undefined ? {} : { meshReadyAt: readyAt })
          }
          return MeshPlan.regionStatus(regionPlan, readyAt)
        })
        const changed = Object.keys(clusters).some((key) => JSON.stringify(clusters[key]) !== JSON.stringify(current.clusters[key]))
        return [statuses, changed ? { ...current, clusters } : current] as const
      }).pipe(Effect.mapError((error) => new MeshError({ reason: "Unreachable", message: error.message })))
    })
  return { establish } satisfies MeshProviderService
})

export const layer: Layer.Layer<MeshProvider, never, SimulatorWorld> = Layer.effect(MeshProvider, make)

/** What a test seeds into a region's cluster (testkit's MeshProviderSuite.MeshRegionSeed). */
export interface MeshSeed {
  readonly service: { readonly type: string; readonly loadBalancerIP: string | undefined; readonly port: number } | undefined
  readonly ca: { readonly cert: string; readonly key: string } | undefined
  readonly remote: { readonly cert: string; readonly key: string } | undefined
  readonly ciliumConfig: { readonly clusterName: string; readonly clusterId: number } | undefined
}

/** Creates or replaces the chart's objects of a driven cluster for `region`; what the mesh wrote stays. Returns its MeshRegion. */
export const seedCluster = (deploymentId: string, region: Region, seed: MeshSeed) =>
  Effect.gen(function*() {
    const world = yield* SimulatorWorld
    const cluster = yield* Effect.orDie(world.modify(deploymentId, "mesh", (current) => {
      const existing = current.clusters[region.key]
      const written: SimMeshObjects = existing?.mesh ?? emptyWritten
      const mesh: SimMeshObjects = {
        hostAliases: written.hostAliases,
        secretRevision: written.secretRevision,
        workloadRevisions: written.workloadRevisions,
        restarted: written.restarted,
        ...(written.secretData === undefined ? {} : { secretData: written.secretData }),
        ...(seed.service === undefined
          ? {}
          : { service: { type: seed.service.type, port: seed.service.port, ...(seed.service.loadBalancerIP === undefined ? {} : { loadBalancerIP: seed.service.loadBalancerIP }) } }),
        ...(seed.ca === undefined ? {} : { ca: seed.ca }),
        ...(seed.remote === undefined ? {} : { remote: seed.remote }),
        ...(seed.ciliumConfig === undefined ? {} : { ciliumConfig: seed.ciliumConfig })
      }
      const cluster: SimCluster = {
        regionKey: region.key, cloudRegion: region.cloudRegion, primary: region.primary, clusterName: region.clusterName, clusterId: region.clusterId,
        loadBalancerIP: "192.0.2.10", bootAt: 0, kubeconfigDelivered: true, grants: [], meshPeers: [], driven: true, mesh
      }
      return [cluster, { ...current, clusters: { ...current.clusters, [region.key]: cluster } }] as const
    }))
    return { region, kubeconfig: Redacted.make(world.kubeconfigOf(deploymentId, cluster)) }
  })

/** What a region's cluster holds now (Secret, hostAliases, revisions, restarts), for tests and inspection. */
export const observeCluster = (deploymentId: string, regionKey: string) =>
  Effect.gen(function*() {
    const world = yield* SimulatorWorld
    const current = yield* Effect.orDie(world.read(deploymentId))
    const mesh = Option.getOrUndefined(Option.flatMapNullable(current, (w) => w.clusters[regionKey]?.mesh))
    return {
      secretData: mesh?.secretData,
      hostAliases: mesh?.hostAliases ?? [],
      remote: mesh?.remote,
      secretRevision: mesh === undefined ? undefined : String(mesh.secretRevision),
      workloadRevisions: Object.fromEntries(workloads.map((w) => [w, mesh?.workloadRevisions[w] === undefined ? undefined : String(mesh.workloadRevisions[w])])) as Record<
        (typeof workloads)[number],
        string | undefined
      >,
      restarted: Object.fromEntries(workloads.map((w) => [w, mesh?.restarted.includes(w) ?? false])) as Record<(typeof workloads)[number], boolean>
    }
  })
