/** The simulated ClusterMesh: each region's clustermesh-apiserver gets its LoadBalancer IP some minutes after boot; peers are configured once both ends have one. */
import { MeshError, MeshProvider, type MeshProviderService } from "@sovereign/core/MeshProvider"
import type { MeshRegionStatus } from "@sovereign/core/MeshPlan"
import { Clock, Duration, Effect, Layer, Option } from "effect"
import { drawIp } from "./internal/random.js"
import { clusterOfKubeconfig, SimulatorWorld, type SimCluster } from "./SimulatorWorld.js"

export const make = Effect.gen(function*() {
  const world = yield* SimulatorWorld
  const apiserverIpAt = (cluster: SimCluster) => cluster.bootAt + Duration.toMillis(world.scaled(Duration.minutes(6)))

  const establish: MeshProviderService["establish"] = (deploymentId, regions) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const current = yield* world.read(deploymentId).pipe(
        Effect.mapError((error) => new MeshError({ reason: "Unreachable", message: error.message }))
      )
      const clusters = regions.map(({ kubeconfig, region }) => {
        const target = clusterOfKubeconfig(kubeconfig)
        const cluster = Option.flatMapNullable(current, (w) =>
          Option.isSome(target) && target.value.deploymentId === deploymentId ? w.clusters[target.value.regionKey] : undefined
        )
        return { region, cluster }
      })
      const meshIp = (regionKey: string) => drawIp("198.51.100", world.options.seed, deploymentId, regionKey, "clustermesh")
      const hasIp = (cluster: Option.Option<SimCluster>) => Option.isSome(cluster) && apiserverIpAt(cluster.value) <= now
      const statuses: Array<MeshRegionStatus> = clusters.map(({ region, cluster }) => {
        const base = { regionKey: region.key, clusterName: region.clusterName, clusterId: region.clusterId }
        if (Option.isNone(cluster)) return { ...base, peers: [], error: `cluster ${region.key} is unreachable` }
        const ownIp = hasIp(cluster) ? meshIp(region.key) : undefined
        const peers = clusters
          .filter((peer) => peer.region.key !== region.key)
          .map((peer) => {
            const peerIp = hasIp(peer.cluster) ? meshIp(peer.region.key) : undefined
            if (peerIp === undefined) {
              return { name: peer.region.clusterName, configured: false, error: `clustermesh-apiserver of ${peer.region.key} has no LoadBalancer ingress IP yet` }
            }
            if (ownIp === undefined) return { name: peer.region.clusterName, loadBalancerIP: peerIp, configured: false, error: "waiting for this region's clustermesh-apiserver LoadBalancer IP" }
            return { name: peer.region.clusterName, loadBalancerIP: peerIp, configured: true }
          })
        const allConfigured = peers.every((peer) => peer.configured)
        const readyAt = allConfigured ? cluster.value.meshReadyAt ?? now : undefined
        return {
          ...base,
          ...(ownIp === undefined ? { error: "clustermesh-apiserver Service has no LoadBalancer ingress IP yet" } : { loadBalancerIP: ownIp }),
          peers,
          ...(readyAt === undefined ? {} : { readyAt })
        }
      })
      // Keep what was configured, as the clusters' Secrets would.
      yield* world
        .modify(deploymentId, "", (w) => {
          let changed = false
          const next = { ...w.clusters }
          for (const status of statuses) {
            const cluster = next[status.regionKey]
            if (cluster === undefined) continue
            const meshPeers = status.peers.filter((peer) => peer.configured).map((peer) => peer.name).sort()
            const readyAt = status.readyAt ?? cluster.meshReadyAt
            if (meshPeers.join(",") !== cluster.meshPeers.join(",") || readyAt !== cluster.meshReadyAt) {
              changed = true
              next[status.regionKey] = { ...cluster, meshPeers, ...(readyAt === undefined ? {} : { meshReadyAt: readyAt }) }
            }
          }
          return [undefined, changed ? { ...w, clusters: next } : w]
        })
        .pipe(Effect.mapError((error) => new MeshError({ reason: "Unreachable", message: error.message })))
      return statuses
    })
  return { establish } satisfies MeshProviderService
})

export const layer: Layer.Layer<MeshProvider, never, SimulatorWorld> = Layer.effect(MeshProvider, make)
