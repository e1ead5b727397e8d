/**
 * The objects Cilium's Helm chart renders that ClusterMesh depends on, per chart version (1.16–1.21),
 * written from the chart's templates (`cilium-agent/daemonset.yaml`, `clustermesh-apiserver/*`,
 * `clustermesh-config/*`) independently of Sovereign's own planning, so the two can disagree.
 */
import type { KubeObject } from "../FakeKubernetesApi.js"

export type Values = { readonly [key: string]: unknown }

const at = (values: Values, path: ReadonlyArray<string>): unknown => {
  let current: unknown = values
  for (const segment of path)
    current = typeof current === "object" && current !== null && !Array.isArray(current) ? (current as Values)[segment] : undefined
  return current
}

const flag = (values: Values, path: ReadonlyArray<string>, fallback: boolean): boolean => {
  const value = at(values, path)
  return typeof value === "boolean" ? value : fallback
}

export interface ChartVersion {
  readonly major: number
  readonly minor: number
  readonly patch: number
}

export const parseChartVersion = (text: string): ChartVersion => {
  const match = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text)
  if (match === null) throw new Error(`not a chart version: ${text}`)
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]) }
}

const versionText = (version: ChartVersion) => `${version.major}.${version.minor}.${version.patch}`
const minorAtLeast = (version: ChartVersion, minor: number) => version.major > 1 || (version.major === 1 && version.minor >= minor)

interface Cluster {
  readonly name: string
  readonly address?: string
  readonly port: number
  readonly ips: ReadonlyArray<string>
  readonly tls?: { readonly cert?: string; readonly key?: string; readonly caCert?: string }
}

/** `clustermesh.config.clusters`, a list or (from 1.17) a map keyed by name; entries with `enabled: false` are skipped. */
const clustersOf = (values: Values): ReadonlyArray<Cluster> => {
  const raw = at(values, ["clustermesh", "config", "clusters"])
  const entries: ReadonlyArray<Values> = Array.isArray(raw)
    ? (raw as ReadonlyArray<Values>)
    : typeof raw === "object" && raw !== null
      ? Object.entries(raw as Record<string, Values>).map(([name, cluster]) => ({ ...cluster, name }))
      : []
  return entries
    .filter((cluster) => cluster["enabled"] !== false)
    .map((cluster) => ({
      name: String(cluster["name"]),
      ...(typeof cluster["address"] === "string" ? { address: cluster["address"] } : {}),
      port: typeof cluster["port"] === "number" ? cluster["port"] : 2379,
      ips: Array.isArray(cluster["ips"]) ? (cluster["ips"] as ReadonlyArray<unknown>).map(String) : [],
      ...(typeof cluster["tls"] === "object" && cluster["tls"] !== null ? { tls: cluster["tls"] as NonNullable<Cluster["tls"]> } : {})
    }))
}

const directory = "/var/lib/cilium/clustermesh"

/** The etcd client config the chart's `clustermesh-config-generate-etcd-cfg` helper writes. */
const etcdConfig = (cluster: Cluster, domain: string, version: ChartVersion, localOverride: string | undefined): string => {
  const hasOwnTls = cluster.tls?.cert !== undefined && cluster.tls.cert !== "" && cluster.tls.key !== undefined && cluster.tls.key !== ""
  const prefix = localOverride !== undefined ? "local-" : hasOwnTls ? `${cluster.name}.` : "common-"
  const endpoint =
    localOverride ??
    (cluster.ips.length > 0 ? `https://${cluster.name}.${domain}:${cluster.port}` : `https://${cluster.address ?? ""}:${cluster.port}`)
  const caPrefix = localOverride !== undefined || (cluster.tls?.caCert !== undefined && cluster.tls.caCert !== "") ? prefix : "common-"
  const lines = [
    "endpoints:",
    `- ${endpoint}`,
    `trusted-ca-file: ${directory}/${caPrefix}etcd-client-ca.crt`,
    `key-file: ${directory}/${prefix}etcd-client.key`,
    `cert-file: ${directory}/${prefix}etcd-client.crt`
  ]
  // 1.20 (cilium PR #44425): the addresses of a cluster given by IP ride in its config.
  if (minorAtLeast(version, 20) && localOverride === undefined && cluster.ips.length > 0) {
    lines.push(
      "cilium-host-aliases:",
      `- hostname: ${cluster.name}.${domain}`,
      "  ips:",
      ...cluster.ips.map((ip) => `  - ${JSON.stringify(ip)}`)
    )
  }
  return lines.join("\n") + "\n"
}

const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64")

/** Secret `data` for the clusters: the config per cluster, and its own TLS material (already base64 in the values). */
const clusterData = (
  clusters: ReadonlyArray<Cluster>,
  domain: string,
  version: ChartVersion,
  localOverride: string | undefined,
  withTls: boolean
) => {
  const data: Record<string, string> = {}
  for (const cluster of clusters) {
    data[cluster.name] = base64(etcdConfig(cluster, domain, version, localOverride))
    if (withTls && cluster.tls?.cert !== undefined && cluster.tls.key !== undefined) {
      if (cluster.tls.caCert !== undefined && cluster.tls.caCert !== "") data[`${cluster.name}.etcd-client-ca.crt`] = cluster.tls.caCert
      data[`${cluster.name}.etcd-client.key`] = cluster.tls.key
      data[`${cluster.name}.etcd-client.crt`] = cluster.tls.cert
    }
  }
  return data
}

/** The template's `hostAliases:` ranges over the clusters' IPs; with none it renders null, which Helm leaves out. */
const hostAliasesOf = (clusters: ReadonlyArray<Cluster>, domain: string) => {
  const aliases = clusters.flatMap((cluster) => cluster.ips.map((ip) => ({ ip, hostnames: [`${cluster.name}.${domain}`] })))
  return aliases.length === 0 ? {} : { hostAliases: aliases }
}

const projected = (name: string, sources: ReadonlyArray<unknown>) => ({ name, projected: { defaultMode: 0o400, sources } })
const certificateItems = (prefix: string) => [
  { key: "tls.key", path: `${prefix}etcd-client.key` },
  { key: "tls.crt", path: `${prefix}etcd-client.crt` },
  { key: "ca.crt", path: `${prefix}etcd-client-ca.crt` }
]

export interface Rendering {
  readonly chartVersion: string
  readonly namespace: string
  readonly releaseName: string
  /** The effective values (the HelmRelease's `valuesFrom` in order, then `spec.values`). */
  readonly values: Values
}

/** Every object the chart renders that the mesh reads or writes. */
export const render = (input: Rendering): ReadonlyArray<KubeObject> => {
  const version = parseChartVersion(input.chartVersion)
  const values = input.values
  const namespace = input.namespace
  const tag = `v${versionText(version)}`
  const useApiServer = flag(values, ["clustermesh", "useAPIServer"], false)
  const kvstoreMesh = useApiServer && flag(values, ["clustermesh", "apiserver", "kvstoremesh", "enabled"], true)
  const configEnabled = flag(values, ["clustermesh", "config", "enabled"], false)
  const domain = String(at(values, ["clustermesh", "config", "domain"]) ?? "mesh.cilium.io")
  const clusters = configEnabled ? clustersOf(values) : []
  // Before 1.21 the chart aliases the dialling workload when it renders the config; 1.20 can be told
  // not to (clustermesh.disableKubernetesHostAliases, PR #44425); 1.21 no longer does (PR #47190).
  const podAliases =
    configEnabled &&
    !minorAtLeast(version, 21) &&
    !(minorAtLeast(version, 20) && flag(values, ["clustermesh", "disableKubernetesHostAliases"], false))
  const metadata = (name: string) => ({
    name,
    namespace,
    labels: { "app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/part-of": "cilium" },
    annotations: { "meta.helm.sh/release-name": input.releaseName, "meta.helm.sh/release-namespace": namespace }
  })
  const podTemplate = (app: string, spec: Values) => ({
    selector: { matchLabels: { "k8s-app": app } },
    template: { metadata: { labels: { "k8s-app": app, "app.kubernetes.io/part-of": "cilium" } }, spec }
  })
  const objects: Array<KubeObject> = []

  objects.push({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: metadata("cilium-config"),
    data: {
      "cluster-name": String(at(values, ["cluster", "name"]) ?? "default"),
      "cluster-id": String(at(values, ["cluster", "id"]) ?? 0),
      "identity-allocation-mode": "crd"
    }
  })

  const agentSecrets = projected("clustermesh-secrets", [
    { secret: { name: "cilium-clustermesh", optional: true } },
    { secret: { name: "clustermesh-apiserver-remote-cert", optional: true, items: certificateItems("common-") } },
    ...(kvstoreMesh ? [{ secret: { name: "clustermesh-apiserver-local-cert", optional: true, items: certificateItems("local-") } }] : [])
  ])
  const clustermeshMount = { name: "clustermesh-secrets", mountPath: directory, readOnly: true }
  objects.push({
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: metadata("cilium"),
    spec: podTemplate("cilium", {
      hostNetwork: true,
      containers: [{ name: "cilium-agent", image: `quay.io/cilium/cilium:${tag}`, volumeMounts: [clustermeshMount] }],
      volumes: [agentSecrets],
      ...(podAliases && !kvstoreMesh ? hostAliasesOf(clusters, domain) : {})
    })
  })
  objects.push({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: metadata("cilium-operator"),
    spec: podTemplate("cilium-operator", {
      hostNetwork: true,
      containers: [{ name: "cilium-operator", image: `quay.io/cilium/operator-generic:${tag}`, volumeMounts: [clustermeshMount] }],
      volumes: [agentSecrets]
    })
  })

  if (useApiServer) {
    const image = `quay.io/cilium/clustermesh-apiserver:${tag}`
    objects.push({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: metadata("clustermesh-apiserver"),
      spec: podTemplate("clustermesh-apiserver", {
        containers: [
          { name: "etcd", image, command: ["/usr/bin/etcd"] },
          { name: "apiserver", image, command: ["/usr/bin/clustermesh-apiserver"], args: ["clustermesh"] },
          ...(kvstoreMesh
            ? [
                {
                  name: "kvstoremesh",
                  image,
                  command: ["/usr/bin/clustermesh-apiserver"],
                  args: ["kvstoremesh", `--clustermesh-config=${directory}`],
                  volumeMounts: [{ name: "kvstoremesh-secrets", mountPath: directory, readOnly: true }]
                }
              ]
            : [])
        ],
        volumes: kvstoreMesh
          ? [
              projected("kvstoremesh-secrets", [
                { secret: { name: "cilium-kvstoremesh", optional: true } },
                { secret: { name: "clustermesh-apiserver-remote-cert", optional: true, items: certificateItems("common-") } }
              ])
            ]
          : [],
        ...(podAliases && kvstoreMesh ? hostAliasesOf(clusters, domain) : {})
      })
    })
    objects.push({
      apiVersion: "v1",
      kind: "Service",
      metadata: metadata("clustermesh-apiserver"),
      spec: {
        type: String(at(values, ["clustermesh", "apiserver", "service", "type"]) ?? "NodePort"),
        selector: { "k8s-app": "clustermesh-apiserver" },
        ports: [{ name: "apiserv", port: 2379, targetPort: 2379, protocol: "TCP" }]
      }
    })
  }

  if (configEnabled) {
    // With KVStoreMesh the agents dial the local clustermesh-apiserver with the local- certificate.
    const localOverride = kvstoreMesh ? `https://clustermesh-apiserver.${namespace}.svc:2379` : undefined
    objects.push({
      apiVersion: "v1",
      kind: "Secret",
      metadata: metadata("cilium-clustermesh"),
      type: "Opaque",
      data: clusterData(clusters, domain, version, localOverride, localOverride === undefined)
    })
    if (kvstoreMesh) {
      objects.push({
        apiVersion: "v1",
        kind: "Secret",
        metadata: metadata("cilium-kvstoremesh"),
        type: "Opaque",
        data: clusterData(clusters, domain, version, undefined, true)
      })
    }
  }
  return objects
}
