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
  /** The cluster could not be read at all this pass (kubeconfig, API server); nothing else is known. */
  readonly unreachable?: string | undefined
  /** Why the remote cert is unusable (could not be minted, not signed by this region's CA); never key material. */
  readonly remoteCertError?: string | undefined
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

// ---------------------------------------------------------------------------------------------
// Wire names Cilium expects

/** Cilium agents resolve `<peer>.mesh.cilium.io`; the clustermesh-apiserver's server cert carries `*.mesh.cilium.io`. */
export const meshDomain = "mesh.cilium.io"
/** The chart mounts every key of the `cilium-clustermesh` Secret here. */
export const configDirectory = "/var/lib/cilium/clustermesh"
export const namespace = "kube-system"
export const secretName = "cilium-clustermesh"
export const defaultApiserverPort = 2379

export const peerHostname = (peerName: string): string => `${peerName}.${meshDomain}`

/** The four Secret keys one peer occupies; Cilium treats the file named after the peer as its etcd config. */
export const peerKeys = (peerName: string) => ({
  config: peerName,
  caCert: `${peerName}-ca.crt`,
  cert: `${peerName}.crt`,
  key: `${peerName}.key`
})

/** The etcd client config (YAML) Cilium reads from `/var/lib/cilium/clustermesh/<peer>`. */
export const peerConfig = (peerName: string, port: number): string => {
  const keys = peerKeys(peerName)
  return (
    `endpoints:\n- https://${peerHostname(peerName)}:${port}\n` +
    `trusted-ca-file: ${configDirectory}/${keys.caCert}\n` +
    `cert-file: ${configDirectory}/${keys.cert}\n` +
    `key-file: ${configDirectory}/${keys.key}\n`
  )
}

export const HostAlias = Schema.Struct({ ip: Schema.String, hostnames: Schema.Array(Schema.String) })
export type HostAlias = typeof HostAlias.Type

// ---------------------------------------------------------------------------------------------
// Plan

/** What one region should hold. Secret values are plain text (PEM, YAML); the adapter encodes them. */
export interface RegionPlan {
  readonly regionKey: string
  readonly clusterName: string
  readonly clusterId: number
  readonly loadBalancerIP: string | undefined
  /** A hard error for this region: nothing is written into it. */
  readonly error: string | undefined
  /** Why peers cannot use this region (no LB IP, no CA, …); the region's own peers are still written. */
  readonly problem: string | undefined
  /** The managed keys of `cilium-clustermesh`: four per configured peer. */
  readonly secretData: Readonly<Record<string, string>>
  /** The `cilium` DaemonSet's hostAliases for the peers whose address is known, grouped by IP, sorted. */
  readonly hostAliases: ReadonlyArray<HostAlias>
  /** Peers that could not be read this pass: their existing alias (if any) is kept rather than dropped. */
  readonly retainHostnames: ReadonlyArray<string>
  readonly peers: ReadonlyArray<MeshPeerStatus>
}

const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

/** A problem that keeps a region out of the mesh entirely: it is neither configured nor used as a peer. */
const hardError = (region: MeshRegionInput): string | undefined => {
  if (region.unreachable !== undefined) return `cluster unreachable: ${region.unreachable}`
  if (region.clusterName === "") return "cluster name empty: the derivation gave no name, so no Secret key can be written"
  if (!dnsLabel.test(region.clusterName)) return `cluster name '${region.clusterName}' is not a valid DNS label`
  if (region.serviceType !== undefined && region.serviceType !== "LoadBalancer") {
    return `clustermesh-apiserver Service is type ${region.serviceType}; only LoadBalancer is supported (never a NodePort)`
  }
  if (region.configuredClusterName !== region.clusterName) {
    return region.configuredClusterName === undefined
      ? `cluster name drift: cilium-config has no cluster-name, the derivation says '${region.clusterName}'`
      : `cluster name drift: cilium-config has '${region.configuredClusterName}', the derivation says '${region.clusterName}'`
  }
  if (region.configuredClusterId !== region.clusterId) {
    return region.configuredClusterId === undefined
      ? `cluster id drift: cilium-config has no cluster-id, the derivation says ${region.clusterId}`
      : `cluster id drift: cilium-config has ${region.configuredClusterId}, the derivation says ${region.clusterId}`
  }
  return undefined
}

/** Why `peer` cannot be written into another region's Secret, if it cannot. */
const peerError = (peer: MeshRegionInput, peerHardError: string | undefined): string | undefined => {
  if (peerHardError !== undefined) return `peer region ${peer.regionKey} failed: ${peerHardError}`
  if (peer.serviceType === undefined) return "peer clustermesh-apiserver Service not found"
  if (peer.loadBalancerIP === undefined || peer.loadBalancerIP === "") return "peer LB IP absent"
  if (peer.caCert === undefined || peer.caCert === "") return "peer cilium-ca CA cert missing"
  if (peer.remoteCertError !== undefined) return `peer remote cert unusable: ${peer.remoteCertError}`
  if (peer.remoteCert === undefined || peer.remoteKey === undefined) {
    return "peer remote cert missing (clustermesh-apiserver-remote-cert absent and none could be minted)"
  }
  return undefined
}

/** Why the region's peers cannot use it, when the region itself is otherwise fine. */
const selfProblem = (region: MeshRegionInput): string | undefined => {
  const error = peerError(region, undefined)
  return error === undefined ? undefined : `${error.replace(/^peer /, "")} (peers cannot use this region yet)`
}

/** Groups hostnames by IP so each IP appears once (it is the list's merge key), ordered by hostname. */
export const normalizeHostAliases = (aliases: ReadonlyArray<HostAlias>): ReadonlyArray<HostAlias> => {
  const byIp = new Map<string, Set<string>>()
  for (const alias of aliases) {
    const hostnames = byIp.get(alias.ip) ?? new Set<string>()
    alias.hostnames.forEach((hostname) => hostnames.add(hostname))
    byIp.set(alias.ip, hostnames)
  }
  return [...byIp.entries()]
    .map(([ip, hostnames]) => ({ ip, hostnames: [...hostnames].sort() }))
    .sort((left, right) => compare(left.hostnames[0] ?? "", right.hostnames[0] ?? "") || compare(left.ip, right.ip))
}

const compare = (left: string, right: string): number => (left < right ? -1 : left > right ? 1 : 0)

/** Every region's desired state from what was read in all of them. Pure: certificates are inputs. */
export const plan = (regions: ReadonlyArray<MeshRegionInput>): ReadonlyArray<RegionPlan> => {
  const hardErrors = regions.map(hardError)
  return regions.map((region, index) => {
    const localError = hardErrors[index]
    const others = regions.flatMap((peer, peerIndex) => (peerIndex === index ? [] : [{ peer, peerIndex }]))
    const secretData: Record<string, string> = {}
    const aliases: Array<HostAlias> = []
    const retainHostnames: Array<string> = []
    const peers = others.map(({ peer, peerIndex }): MeshPeerStatus => {
      const address = peer.loadBalancerIP === undefined || peer.loadBalancerIP === "" ? {} : { loadBalancerIP: peer.loadBalancerIP }
      const name = peer.clusterName
      if (localError !== undefined) {
        return { name, ...address, configured: false, error: `local region failed: ${localError}` }
      }
      const error = peerError(peer, hardErrors[peerIndex])
      if (peer.unreachable !== undefined && dnsLabel.test(name)) retainHostnames.push(peerHostname(name))
      if (error !== undefined) return { name, ...address, configured: false, error }
      const keys = peerKeys(name)
      secretData[keys.config] = peerConfig(name, peer.apiserverPort)
      secretData[keys.caCert] = peer.caCert!
      secretData[keys.cert] = peer.remoteCert!
      secretData[keys.key] = peer.remoteKey!
      aliases.push({ ip: peer.loadBalancerIP!, hostnames: [peerHostname(name)] })
      return { name, ...address, configured: true }
    })
    return {
      regionKey: region.regionKey,
      clusterName: region.clusterName,
      clusterId: region.clusterId,
      loadBalancerIP: region.loadBalancerIP === "" ? undefined : region.loadBalancerIP,
      error: localError,
      problem: localError === undefined ? selfProblem(region) : undefined,
      secretData,
      hostAliases: normalizeHostAliases(aliases),
      retainHostnames: retainHostnames.sort(),
      peers
    }
  })
}

/** Every peer of the region is configured and the peers can use the region: it is meshed both ways. */
export const isComplete = (regionPlan: RegionPlan): boolean =>
  regionPlan.error === undefined && regionPlan.problem === undefined && regionPlan.peers.every((peer) => peer.configured)

// ---------------------------------------------------------------------------------------------
// Diff against what the cluster holds

/** What one region's cluster holds now. `secretData` undefined means the Secret does not exist. */
export interface RegionCurrent {
  readonly secretData: Readonly<Record<string, string>> | undefined
  readonly hostAliases: ReadonlyArray<HostAlias>
}

/** The writes that bring a region to its plan; both undefined means nothing to do. */
export interface RegionChanges {
  /** The whole Secret data to store: existing keys kept, managed keys overwritten. */
  readonly secret: { readonly create: boolean; readonly data: Readonly<Record<string, string>> } | undefined
  /** The whole hostAliases list, replacing what is there (never merged by `ip`). */
  readonly hostAliases: ReadonlyArray<HostAlias> | undefined
}

const sameAliases = (left: ReadonlyArray<HostAlias>, right: ReadonlyArray<HostAlias>): boolean =>
  JSON.stringify(normalizeHostAliases(left)) === JSON.stringify(normalizeHostAliases(right))

/** The hostAliases a region should end with, given what it holds (retained peers keep their entry). */
export const desiredHostAliases = (current: RegionCurrent, desired: RegionPlan): ReadonlyArray<HostAlias> => {
  const retained = current.hostAliases.flatMap((alias) =>
    alias.hostnames
      .filter((hostname) => desired.retainHostnames.includes(hostname))
      .map((hostname) => ({ ip: alias.ip, hostnames: [hostname] }))
  )
  return normalizeHostAliases([...desired.hostAliases, ...retained])
}

/**
 * The writes for one region. Managed keys always win (a stale endpoint or port is rewritten); keys
 * of peers that could not be read this pass are kept, so a transient failure never disconnects a
 * working peer. A region with a hard error is not touched.
 */
export const diff = (current: RegionCurrent, desired: RegionPlan): RegionChanges => {
  if (desired.error !== undefined) return { secret: undefined, hostAliases: undefined }
  const managed = Object.entries(desired.secretData)
  const existing = current.secretData
  const secretChanged =
    existing === undefined ? managed.length > 0 : managed.some(([key, value]) => existing[key] !== value)
  const secret = secretChanged
    ? { create: existing === undefined, data: sortedRecord({ ...existing, ...desired.secretData }) }
    : undefined
  const aliases = desiredHostAliases(current, desired)
  const hostAliases = sameAliases(current.hostAliases, aliases) ? undefined : aliases
  return { secret, hostAliases }
}

/** The `cilium`, `cilium-operator` and `clustermesh-apiserver` workloads restart only after a write. */
export const needsRestart = (changes: RegionChanges): boolean =>
  changes.secret !== undefined || changes.hostAliases !== undefined

const sortedRecord = (record: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(Object.entries(record).sort(([left], [right]) => compare(left, right)))

/** The report of one region after a pass; `readyAt` is given only when every peer was configured and applied. */
export const regionStatus = (regionPlan: RegionPlan, readyAt: number | undefined): MeshRegionStatus => ({
  regionKey: regionPlan.regionKey,
  clusterName: regionPlan.clusterName,
  clusterId: regionPlan.clusterId,
  ...(regionPlan.loadBalancerIP === undefined ? {} : { loadBalancerIP: regionPlan.loadBalancerIP }),
  peers: regionPlan.peers,
  ...(readyAt === undefined ? {} : { readyAt }),
  ...(regionPlan.error === undefined && regionPlan.problem === undefined ? {} : { error: regionPlan.error ?? regionPlan.problem })
})
