/** ClusterMesh planning: each region's `cilium-clustermesh` data and hostAliases from its peers (SPEC 2.8). */
import { Schema } from "effect"

/** What the mesh adapter read from one region's cluster. Absent fields are reported as per-peer errors. */
export interface MeshRegionInput {
  readonly regionKey: string
  /** Cluster name and id from the derivation (SPEC 2.2). */
  readonly clusterName: string
  readonly clusterId: number
  /** `clustermesh-apiserver` Service type as found ("LoadBalancer" is the only accepted one). */
  readonly serviceType: string | undefined
  readonly loadBalancerIP: string | undefined
  readonly apiserverPort: number
  /** PEM of the region's `cilium-ca`. */
  readonly caCert: string | undefined
  readonly caKey: string | undefined
  /** `clustermesh-apiserver-remote-cert` (CN=remote); when absent the adapter mints one signed by the CA. */
  readonly remoteCert: string | undefined
  readonly remoteKey: string | undefined
  /** cluster-name / cluster-id as found in `cilium-config`. */
  readonly configuredClusterName: string | undefined
  readonly configuredClusterId: number | undefined
}

export const MeshPeerStatus = Schema.Struct({
  name: Schema.String,
  loadBalancerIP: Schema.optional(Schema.String),
  configured: Schema.Boolean,
  error: Schema.optional(Schema.String)
})
export type MeshPeerStatus = typeof MeshPeerStatus.Type

export const MeshRegionStatus = Schema.Struct({
  regionKey: Schema.String,
  clusterName: Schema.String,
  clusterId: Schema.Number,
  loadBalancerIP: Schema.optional(Schema.String),
  peers: Schema.Array(MeshPeerStatus),
  /** Unix milliseconds at which every peer was configured. */
  readyAt: Schema.optional(Schema.Number),
  error: Schema.optional(Schema.String)
})
export type MeshRegionStatus = typeof MeshRegionStatus.Type
