/** The world a MeshProvider acts on, as the conformance suite seeds and observes it (free of vitest, so benchmarks can drive it). */
import type { Deployment, MeshPlan, MeshProvider } from "@sovereign/core"
import { Context } from "effect"
import type { Effect } from "effect"

/** A certificate and its private key, PEM. */
export interface KeyPair {
  readonly cert: string
  readonly key: string
}

/** The Cilium a region runs, as its Helm release installed it. */
export interface CiliumSeed {
  /** Chart and image version, `1.16.5`. */
  readonly version: string
  /** `clustermesh.apiserver.kvstoremesh.enabled`: the kvstoremesh container runs in clustermesh-apiserver. */
  readonly kvstoreMesh: boolean
  /** `clustermesh.config.enabled`: the release renders `cilium-clustermesh` (and `cilium-kvstoremesh`) itself. */
  readonly chartRendersConfig: boolean
}

/** What one region's cluster holds before a pass; `undefined` means the object is absent. */
export interface MeshRegionSeed {
  readonly cilium: CiliumSeed
  /** The `clustermesh-apiserver` Service (the chart's port is 2379) and the address its load balancer got. */
  readonly service: { readonly type: string; readonly loadBalancerIP: string | undefined; readonly port: number }
  /** `cilium-ca`. */
  readonly ca: KeyPair | undefined
  /** `clustermesh-apiserver-remote-cert` (CN=remote, signed by `ca`): what peers use to dial this region. */
  readonly remote: KeyPair | undefined
  /** `clustermesh-apiserver-local-cert` (signed by `ca`): what the agents use to dial their local KVStoreMesh. */
  readonly local: KeyPair | undefined
  /** cluster-name / cluster-id of `cilium-config`. */
  readonly ciliumConfig: { readonly clusterName: string; readonly clusterId: number }
}

export const workloads = ["cilium", "cilium-operator", "clustermesh-apiserver"] as const
export type Workload = (typeof workloads)[number]

/** What one container sees: the files mounted at `/var/lib/cilium/clustermesh` and its pod's `/etc/hosts` additions. */
export interface ComponentView {
  readonly files: Readonly<Record<string, string>>
  readonly hostAliases: ReadonlyArray<MeshPlan.HostAlias>
}

/** What one region's cluster holds after a pass. */
export interface MeshRegionObservation {
  /** The cilium-agent container of the `cilium` DaemonSet. */
  readonly agent: ComponentView
  /** The kvstoremesh container of `clustermesh-apiserver`, when it runs. */
  readonly kvstoremesh: ComponentView | undefined
  /** `clustermesh-apiserver-remote-cert` as stored now (a minted one must have been persisted). */
  readonly remote: KeyPair | undefined
  /** Writes the provider made in this region so far (any create, update, patch or delete). */
  readonly writes: number
  /** Pod-template changes (each one a rollout) of each workload since the region was first seeded. */
  readonly restarts: Readonly<Record<Workload, number>>
}

export interface MeshWorldService {
  /** Creates or updates the objects of one region's cluster; the returned region addresses it. */
  readonly seed: (region: Deployment.Region, seed: MeshRegionSeed) => Effect.Effect<MeshProvider.MeshRegion>
  readonly observe: (regionKey: string) => Effect.Effect<MeshRegionObservation>
  /** A Flux reconcile of the region's Cilium release now: whatever the chart owns is rendered again. */
  readonly reconcile: (regionKey: string) => Effect.Effect<void>
}

/** The world the provider under test acts on, seeded and observed by the suite. */
export class MeshWorld extends Context.Tag("@sovereign/testkit/MeshWorld")<MeshWorld, MeshWorldService>() {}
