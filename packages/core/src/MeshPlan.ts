/** ClusterMesh planning: what Cilium's chart would render in each region, for its version and mode, from its peers (SPEC 2.8). */
import { Either, Schema } from "effect"
import { UnixMillis } from "./Time.js"

/** `kvstoremesh`: KVStoreMesh in clustermesh-apiserver dials the peers; `direct`: every agent does. */
export const MeshMode = Schema.Literal("kvstoremesh", "direct")
export type MeshMode = typeof MeshMode.Type

/**
 * Where a peer is configured: the Secret the dialling component reads (`cilium-kvstoremesh` with
 * KVStoreMesh, `cilium-clustermesh` without), or `helm-values` when the Cilium release renders the
 * clustermesh config and Sovereign gives it the peers through the HelmRelease's values.
 */
export const ConfiguredIn = Schema.Literal("cilium-kvstoremesh", "cilium-clustermesh", "helm-values")
export type ConfiguredIn = typeof ConfiguredIn.Type

export const MeshPeerStatus = Schema.Struct({
  name: Schema.String,
  loadBalancerIP: Schema.optional(Schema.String),
  configured: Schema.Boolean,
  configuredIn: Schema.optional(ConfiguredIn),
  error: Schema.optional(Schema.String)
})
export type MeshPeerStatus = typeof MeshPeerStatus.Type

export const MeshRegionStatus = Schema.Struct({
  regionKey: Schema.String,
  clusterName: Schema.String,
  clusterId: Schema.Number,
  /** The Cilium version running in the region (the agent image tag), when it could be read. */
  ciliumVersion: Schema.optional(Schema.String),
  mode: Schema.optional(MeshMode),
  loadBalancerIP: Schema.optional(Schema.String),
  peers: Schema.Array(MeshPeerStatus),
  /** Unix milliseconds at which every peer was configured. */
  readyAt: Schema.optional(UnixMillis),
  error: Schema.optional(Schema.String)
})
export type MeshRegionStatus = typeof MeshRegionStatus.Type

// ---------------------------------------------------------------------------------------------
// Wire names Cilium's chart uses

/** Peers are dialled as `<peer>.mesh.cilium.io` (`clustermesh.config.domain`); the apiserver's server cert carries `*.mesh.cilium.io`. */
export const meshDomain = "mesh.cilium.io"
/** Both the agents and the kvstoremesh container mount their clustermesh Secret here. */
export const configDirectory = "/var/lib/cilium/clustermesh"
export const namespace = "kube-system"
/** Read by the agents (and the operator): the peers without KVStoreMesh, the local KVStoreMesh with it. */
export const secretName = "cilium-clustermesh"
/** Read by the kvstoremesh container of clustermesh-apiserver: the peers it dials. */
export const kvstoreMeshSecretName = "cilium-kvstoremesh"
export const defaultApiserverPort = 2379
/** What the agents dial with KVStoreMesh: the local clustermesh-apiserver Service (the chart's fixed port). */
export const localEndpoint = `https://clustermesh-apiserver.${namespace}.svc:2379`

export const peerHostname = (peerName: string): string => `${peerName}.${meshDomain}`

/** The Secret keys one peer occupies, named as the chart names them for `clustermesh.config.clusters[].tls`. */
export const peerKeys = (peerName: string) => ({
  config: peerName,
  caCert: `${peerName}.etcd-client-ca.crt`,
  cert: `${peerName}.etcd-client.crt`,
  key: `${peerName}.etcd-client.key`
})

/** The files of `clustermesh-apiserver-local-cert` the agents mount to reach the local KVStoreMesh. */
export const localFiles = { caCert: "local-etcd-client-ca.crt", cert: "local-etcd-client.crt", key: "local-etcd-client.key" } as const

/** Keys Sovereign's earlier recipe wrote (`<peer>-ca.crt`, `<peer>.crt`, `<peer>.key`); removed once the peer is rewritten. */
export const legacyPeerKeys = (peerName: string): ReadonlyArray<string> => [`${peerName}-ca.crt`, `${peerName}.crt`, `${peerName}.key`]

export const HostAlias = Schema.Struct({ ip: Schema.String, hostnames: Schema.Array(Schema.String) })
export type HostAlias = typeof HostAlias.Type

const yamlScalar = (value: string): string => (/^[0-9.]+$/.test(value) ? value : JSON.stringify(value))

/**
 * The etcd client config the dialling component reads from `<configDirectory>/<peer>`. From 1.20
 * (`ip` given) the peer's address rides in the config (`cilium-host-aliases`, read by Cilium's own
 * dialer), so an address change restarts nothing; before, the hostname resolves through the pod's hostAliases.
 */
export const peerConfig = (peerName: string, port: number, ip?: string): string => {
  const keys = peerKeys(peerName)
  const hostname = peerHostname(peerName)
  return (
    `endpoints:\n- https://${hostname}:${port}\n` +
    `trusted-ca-file: ${configDirectory}/${keys.caCert}\n` +
    `key-file: ${configDirectory}/${keys.key}\n` +
    `cert-file: ${configDirectory}/${keys.cert}\n` +
    (ip === undefined ? "" : `cilium-host-aliases:\n- hostname: ${hostname}\n  ips:\n  - ${yamlScalar(ip)}\n`)
  )
}

/** The agents' config for a peer with KVStoreMesh: the local clustermesh-apiserver, with the local client certificate. */
export const localConfig = (): string =>
  `endpoints:\n- ${localEndpoint}\n` +
  `trusted-ca-file: ${configDirectory}/${localFiles.caCert}\n` +
  `key-file: ${configDirectory}/${localFiles.key}\n` +
  `cert-file: ${configDirectory}/${localFiles.cert}\n`

// ---------------------------------------------------------------------------------------------
// Cilium versions and modes

export interface CiliumVersion {
  readonly major: number
  readonly minor: number
  readonly patch: number
}

/** The version in an image reference (`quay.io/cilium/cilium:v1.16.5@sha256:…`) or a tag (`v1.16.5`, `1.19.0-rc.1`). */
export const parseCiliumVersion = (imageOrTag: string): CiliumVersion | undefined => {
  const withoutDigest = imageOrTag.split("@")[0] ?? ""
  const tag = withoutDigest.includes(":") ? withoutDigest.slice(withoutDigest.lastIndexOf(":") + 1) : withoutDigest
  const match = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(tag)
  return match === null ? undefined : { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]) }
}

export const formatVersion = (version: CiliumVersion): string => `${version.major}.${version.minor}.${version.patch}`

const atLeast = (version: CiliumVersion, major: number, minor: number): boolean =>
  version.major > major || (version.major === major && version.minor >= minor)

/** The oldest Cilium wired here: 1.16, the first with KVStoreMesh on by default and the agents' `local-` certificate. */
export const oldestSupported = { major: 1, minor: 16 } as const

/** From 1.20 the peer's address goes into its config (`cilium-host-aliases`) instead of the pod's hostAliases. */
export const aliasesInConfig = (version: CiliumVersion): boolean => atLeast(version, 1, 20)

/** What was detected in one region. */
export interface CiliumSetup {
  /** `1.16.5`, from the agent image tag. */
  readonly version: string
  /** The `kvstoremesh` container runs in `clustermesh-apiserver`. */
  readonly kvstoreMesh: boolean
  /** The Helm release renders `cilium-clustermesh` itself (`clustermesh.config.enabled`). */
  readonly chartRendersConfig: boolean
}

/** Why a setup cannot be wired, if it cannot. */
export const setupProblem = (setup: CiliumSetup): string | undefined => {
  const version = parseCiliumVersion(setup.version)
  if (version === undefined) return `Cilium version '${setup.version}' cannot be read`
  if (!atLeast(version, oldestSupported.major, oldestSupported.minor)) {
    return `Cilium ${setup.version} is older than ${oldestSupported.major}.${oldestSupported.minor}, the oldest whose ClusterMesh wiring is supported`
  }
  return undefined
}

export const modeOf = (setup: CiliumSetup): MeshMode => (setup.kvstoreMesh ? "kvstoremesh" : "direct")

export const configuredInOf = (setup: CiliumSetup): ConfiguredIn =>
  setup.chartRendersConfig ? "helm-values" : setup.kvstoreMesh ? kvstoreMeshSecretName : secretName

export type WorkloadKind = "DaemonSet" | "Deployment"

export interface Workload {
  readonly kind: WorkloadKind
  readonly name: string
}

export const agentWorkload: Workload = { kind: "DaemonSet", name: "cilium" }
export const apiserverWorkload: Workload = { kind: "Deployment", name: "clustermesh-apiserver" }

/** The workload whose pods dial the peers: clustermesh-apiserver (its kvstoremesh container) with KVStoreMesh, the agents without. */
export const diallingWorkload = (setup: Pick<CiliumSetup, "kvstoreMesh">): Workload =>
  setup.kvstoreMesh ? apiserverWorkload : agentWorkload

/** The Secret the dialling component reads. */
export const diallingSecret = (setup: Pick<CiliumSetup, "kvstoreMesh">): string => (setup.kvstoreMesh ? kvstoreMeshSecretName : secretName)

// ---------------------------------------------------------------------------------------------
// What the chart renders for a set of peers

/** One peer as `clustermesh.config.clusters[]` describes it: where it listens and the client identity to use. PEM text. */
export interface PeerEntry {
  readonly name: string
  readonly port: number
  readonly ip: string
  /** The peer's `cilium-ca` certificate. */
  readonly caCert: string
  /** The peer's `clustermesh-apiserver-remote-cert` (CN=remote, signed by the peer's CA). */
  readonly cert: string
  readonly key: string
}

export interface Rendered {
  /** Managed keys per Secret (in `kube-system`). */
  readonly secrets: Readonly<Record<string, Readonly<Record<string, string>>>>
  /** Before 1.20: the dialling workload's hostAliases (grouped by IP, sorted); from 1.20 none. */
  readonly hostAliases: { readonly workload: Workload; readonly aliases: ReadonlyArray<HostAlias> } | undefined
}

/**
 * What Cilium's chart renders for these peers (`templates/clustermesh-config/*`), which is also what
 * Sovereign writes when the chart does not: with KVStoreMesh the peers go into `cilium-kvstoremesh`
 * and the agents' `cilium-clustermesh` holds, per peer, the local KVStoreMesh; without it the peers
 * go into `cilium-clustermesh`.
 */
export const render = (entries: ReadonlyArray<PeerEntry>, setup: Pick<CiliumSetup, "version" | "kvstoreMesh">): Rendered => {
  const version = parseCiliumVersion(setup.version)
  const inConfig = version !== undefined && aliasesInConfig(version)
  const sorted = [...entries].sort((left, right) => compare(left.name, right.name))
  const dialling: Record<string, string> = {}
  const agents: Record<string, string> = {}
  for (const entry of sorted) {
    const keys = peerKeys(entry.name)
    dialling[keys.config] = peerConfig(entry.name, entry.port, inConfig ? entry.ip : undefined)
    dialling[keys.caCert] = entry.caCert
    dialling[keys.cert] = entry.cert
    dialling[keys.key] = entry.key
    agents[entry.name] = localConfig()
  }
  const secrets = setup.kvstoreMesh ? { [secretName]: agents, [kvstoreMeshSecretName]: dialling } : { [secretName]: dialling }
  return {
    secrets,
    hostAliases: inConfig
      ? undefined
      : {
          workload: diallingWorkload(setup),
          aliases: normalizeHostAliases(sorted.map((entry) => ({ ip: entry.ip, hostnames: [peerHostname(entry.name)] })))
        }
  }
}

// ---------------------------------------------------------------------------------------------
// The values Sovereign gives the Cilium release when it renders the clustermesh config

/** One `clustermesh.config.clusters[]` entry as the chart reads it (TLS material base64, as in the chart's values). */
export const ClusterValues = Schema.Struct({
  name: Schema.String,
  port: Schema.Number,
  ips: Schema.Array(Schema.String),
  tls: Schema.Struct({ cert: Schema.StringFromBase64, key: Schema.StringFromBase64, caCert: Schema.StringFromBase64 })
})

/** The part of the Cilium chart's values Sovereign owns (the `valuesFrom` Secret of the release). */
export const HelmValues = Schema.Struct({
  clustermesh: Schema.Struct({
    /** 1.20 only: its chart still renders pod hostAliases, which would restart the dialling workload on every address change. */
    disableKubernetesHostAliases: Schema.optional(Schema.Boolean),
    config: Schema.Struct({ domain: Schema.String, clusters: Schema.Array(ClusterValues) })
  })
})
export type HelmValues = typeof HelmValues.Encoded

/** The values that make the chart render `entries` for this version. */
export const helmValues = (entries: ReadonlyArray<PeerEntry>, setup: Pick<CiliumSetup, "version">): HelmValues => {
  const version = parseCiliumVersion(setup.version)
  const sorted = [...entries].sort((left, right) => compare(left.name, right.name))
  return Schema.encodeSync(HelmValues)({
    clustermesh: {
      ...(version !== undefined && version.major === 1 && version.minor === 20 ? { disableKubernetesHostAliases: true } : {}),
      config: {
        domain: meshDomain,
        clusters: sorted.map((entry) => ({
          name: entry.name,
          port: entry.port,
          ips: [entry.ip],
          tls: { cert: entry.cert, key: entry.key, caCert: entry.caCert }
        }))
      }
    }
  })
}

/** The peers a values document (as parsed from YAML or JSON) gives; `[]` when it is not Sovereign's shape. */
export const peerEntriesOf = (values: unknown): ReadonlyArray<PeerEntry> =>
  Either.match(Schema.decodeUnknownEither(HelmValues)(values), {
    onLeft: () => [],
    onRight: (decoded) =>
      decoded.clustermesh.config.clusters.flatMap((cluster) =>
        cluster.ips[0] === undefined
          ? []
          : [
              {
                name: cluster.name,
                port: cluster.port,
                ip: cluster.ips[0],
                caCert: cluster.tls.caCert,
                cert: cluster.tls.cert,
                key: cluster.tls.key
              }
            ]
      )
  })

// ---------------------------------------------------------------------------------------------
// Plan

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
  /** Version and mode of the Cilium in the region; undefined when they could not be read (`ciliumError` says why). */
  readonly cilium: CiliumSetup | undefined
  readonly ciliumError?: string | undefined
  /** The cluster could not be read at all this pass (kubeconfig, API server); nothing else is known. */
  readonly unreachable?: string | undefined
  /** Why the remote cert is unusable (could not be minted, not signed by this region's CA); never key material. */
  readonly remoteCertError?: string | undefined
}

/** What one region should hold. Secret values are plain text (PEM, YAML); the adapter encodes them. */
export interface RegionPlan {
  readonly regionKey: string
  readonly clusterName: string
  readonly clusterId: number
  readonly loadBalancerIP: string | undefined
  /** Nothing is written into the region (a hard error, or a Cilium that cannot be wired). */
  readonly error: string | undefined
  /** Why peers cannot use this region (no LB IP, no CA, …); the region's own peers are still written. */
  readonly problem: string | undefined
  readonly cilium: CiliumSetup | undefined
  /** The configured peers. */
  readonly entries: ReadonlyArray<PeerEntry>
  /** What the region should hold for them: written by Sovereign, or rendered by the chart from `helmValues`. */
  readonly rendered: Rendered
  /** Keys another layout left for the configured peers (Sovereign's earlier recipe, the other mode), per Secret. */
  readonly obsoleteKeys: Readonly<Record<string, ReadonlyArray<string>>>
  /** Peers that could not be read this pass: whatever the region holds for them is kept rather than dropped. */
  readonly retainPeers: ReadonlyArray<string>
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

/** Why nothing can be written into a region whose peers can still use it (its own Cilium cannot be wired). */
const setupError = (region: MeshRegionInput): string | undefined => {
  if (region.cilium === undefined) return region.ciliumError ?? "the Cilium version and mode could not be read"
  return setupProblem(region.cilium)
}

/** Why `peer` cannot be configured in another region, if it cannot. */
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

const obsoleteKeysOf = (entries: ReadonlyArray<PeerEntry>, setup: CiliumSetup): Readonly<Record<string, ReadonlyArray<string>>> => {
  if (setup.chartRendersConfig) return {}
  const legacy = entries.flatMap((entry) => legacyPeerKeys(entry.name))
  if (!setup.kvstoreMesh) return { [secretName]: legacy }
  // With KVStoreMesh the agents only need the pointer at the local KVStoreMesh: a peer's certificates
  // left in their Secret (by the direct mode or the earlier recipe) go.
  const direct = entries.flatMap((entry) => {
    const keys = peerKeys(entry.name)
    return [keys.caCert, keys.cert, keys.key]
  })
  return { [secretName]: [...legacy, ...direct], [kvstoreMeshSecretName]: legacy }
}

const noRendering: Rendered = { secrets: {}, hostAliases: undefined }

/** Every region's desired state from what was read in all of them. Pure: certificates are inputs. */
export const plan = (regions: ReadonlyArray<MeshRegionInput>): ReadonlyArray<RegionPlan> => {
  const hardErrors = regions.map(hardError)
  return regions.map((region, index) => {
    const hard = hardErrors[index]
    const localError = hard ?? setupError(region)
    const setup = localError === undefined ? region.cilium : undefined
    const configuredIn = setup === undefined ? {} : { configuredIn: configuredInOf(setup) }
    const others = regions.flatMap((peer, peerIndex) => (peerIndex === index ? [] : [{ peer, peerIndex }]))
    const entries: Array<PeerEntry> = []
    const retainPeers: Array<string> = []
    const peers = others.map(({ peer, peerIndex }): MeshPeerStatus => {
      const address = peer.loadBalancerIP === undefined || peer.loadBalancerIP === "" ? {} : { loadBalancerIP: peer.loadBalancerIP }
      const name = peer.clusterName
      if (localError !== undefined) {
        return { name, ...address, configured: false, ...configuredIn, error: `local region failed: ${localError}` }
      }
      const error = peerError(peer, hardErrors[peerIndex])
      if (peer.unreachable !== undefined && dnsLabel.test(name)) retainPeers.push(name)
      if (error !== undefined) return { name, ...address, configured: false, ...configuredIn, error }
      entries.push({
        name,
        port: peer.apiserverPort,
        ip: peer.loadBalancerIP!,
        caCert: peer.caCert!,
        cert: peer.remoteCert!,
        key: peer.remoteKey!
      })
      return { name, ...address, configured: true, ...configuredIn }
    })
    return {
      regionKey: region.regionKey,
      clusterName: region.clusterName,
      clusterId: region.clusterId,
      loadBalancerIP: region.loadBalancerIP === "" ? undefined : region.loadBalancerIP,
      error: localError,
      problem: hard === undefined ? selfProblem(region) : undefined,
      cilium: region.cilium,
      entries,
      rendered: setup === undefined ? noRendering : render(entries, setup),
      obsoleteKeys: setup === undefined ? {} : obsoleteKeysOf(entries, setup),
      retainPeers: retainPeers.sort(),
      retainHostnames: retainPeers.map(peerHostname),
      peers
    }
  })
}

/** Every peer of the region is configured and the peers can use the region: it is meshed both ways. */
export const isComplete = (regionPlan: RegionPlan): boolean =>
  regionPlan.error === undefined && regionPlan.problem === undefined && regionPlan.peers.every((peer) => peer.configured)

// ---------------------------------------------------------------------------------------------
// Diff against what the cluster holds (when Sovereign writes the config itself)

/** What one region's cluster holds now. */
export interface RegionCurrent {
  /** Data of the clustermesh Secrets; undefined means the Secret does not exist. */
  readonly secrets: Readonly<Record<string, Readonly<Record<string, string>> | undefined>>
  /** The hostAliases of the workload the plan aliases (the dialling one, before 1.20). */
  readonly hostAliases: ReadonlyArray<HostAlias>
}

export interface SecretChange {
  readonly name: string
  readonly create: boolean
  /** The keys to set, and the keys to remove (`null`), as a JSON merge patch of the data. */
  readonly patch: Readonly<Record<string, string | null>>
  /** The whole data after the change. */
  readonly data: Readonly<Record<string, string>>
}

/** The writes that bring a region to its plan; none means nothing to do. */
export interface RegionChanges {
  readonly secrets: ReadonlyArray<SecretChange>
  /** The whole hostAliases list of the workload, replacing what is there (never merged by `ip`). */
  readonly hostAliases: { readonly workload: Workload; readonly aliases: ReadonlyArray<HostAlias> } | undefined
}

const sameAliases = (left: ReadonlyArray<HostAlias>, right: ReadonlyArray<HostAlias>): boolean =>
  JSON.stringify(normalizeHostAliases(left)) === JSON.stringify(normalizeHostAliases(right))

/** The hostAliases a region should end with, given what it holds (retained peers keep their entry). */
export const desiredHostAliases = (current: ReadonlyArray<HostAlias>, desired: RegionPlan): ReadonlyArray<HostAlias> => {
  const retained = current.flatMap((alias) =>
    alias.hostnames
      .filter((hostname) => desired.retainHostnames.includes(hostname))
      .map((hostname) => ({ ip: alias.ip, hostnames: [hostname] }))
  )
  return normalizeHostAliases([...(desired.rendered.hostAliases?.aliases ?? []), ...retained])
}

/**
 * The writes for one region. Managed keys always win (a stale endpoint or port is rewritten); keys
 * of peers that could not be read this pass are kept, so a transient failure never disconnects a
 * working peer. A region with an error, or whose chart renders the config, gets no direct writes.
 */
export const diff = (current: RegionCurrent, desired: RegionPlan): RegionChanges => {
  if (desired.error !== undefined || desired.cilium === undefined || desired.cilium.chartRendersConfig) {
    return { secrets: [], hostAliases: undefined }
  }
  const secrets = Object.entries(desired.rendered.secrets).flatMap(([name, managed]): ReadonlyArray<SecretChange> => {
    const existing = current.secrets[name]
    const patch: Record<string, string | null> = {}
    for (const [key, value] of Object.entries(managed)) if (existing?.[key] !== value) patch[key] = value
    for (const key of desired.obsoleteKeys[name] ?? []) if (existing?.[key] !== undefined && managed[key] === undefined) patch[key] = null
    if (Object.keys(patch).length === 0 || (existing === undefined && Object.keys(managed).length === 0)) return []
    const data = Object.fromEntries(
      Object.entries({ ...existing, ...patch }).filter((entry): entry is [string, string] => entry[1] !== null)
    )
    return [{ name, create: existing === undefined, patch: sortedRecord(patch), data: sortedRecord(data) }]
  })
  const target = desired.rendered.hostAliases
  const aliases = target === undefined ? undefined : desiredHostAliases(current.hostAliases, desired)
  return {
    secrets,
    hostAliases:
      target === undefined || aliases === undefined || sameAliases(current.hostAliases, aliases)
        ? undefined
        : { workload: target.workload, aliases }
  }
}

/** The workloads a change restarts: only the dialling one, only when its hostAliases change (Secrets are re-read live). */
export const restarts = (changes: RegionChanges): ReadonlyArray<Workload> =>
  changes.hostAliases === undefined ? [] : [changes.hostAliases.workload]

export const hasChanges = (changes: RegionChanges): boolean => changes.secrets.length > 0 || changes.hostAliases !== undefined

const sortedRecord = <A>(record: Readonly<Record<string, A>>): Record<string, A> =>
  Object.fromEntries(Object.entries(record).sort(([left], [right]) => compare(left, right)))

/**
 * The peers the release's values should hold: the configured ones, plus the entries already given
 * for peers that could not be read this pass (kept, so a transient failure never disconnects them).
 */
export const desiredEntries = (current: ReadonlyArray<PeerEntry>, desired: RegionPlan): ReadonlyArray<PeerEntry> => [
  ...desired.entries,
  ...current.filter((entry) => desired.retainPeers.includes(entry.name) && !desired.entries.some((each) => each.name === entry.name))
]

/** The report of one region after a pass; `readyAt` is given only when every peer was configured and applied. */
export const regionStatus = (regionPlan: RegionPlan, readyAt: number | undefined): MeshRegionStatus => ({
  regionKey: regionPlan.regionKey,
  clusterName: regionPlan.clusterName,
  clusterId: regionPlan.clusterId,
  ...(regionPlan.cilium === undefined ? {} : { ciliumVersion: regionPlan.cilium.version, mode: modeOf(regionPlan.cilium) }),
  ...(regionPlan.loadBalancerIP === undefined ? {} : { loadBalancerIP: regionPlan.loadBalancerIP }),
  peers: regionPlan.peers,
  ...(readyAt === undefined ? {} : { readyAt }),
  ...(regionPlan.error === undefined && regionPlan.problem === undefined ? {} : { error: regionPlan.error ?? regionPlan.problem })
})
