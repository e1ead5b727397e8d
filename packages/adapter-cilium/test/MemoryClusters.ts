/** In-memory `CiliumClusters` and a `MeshWorld` over them: runs the conformance suite without an API server. */
import type { MeshPlan } from "@sovereign/core"
import { MeshProvider } from "@sovereign/core"
import { MeshWorld, workloads } from "@sovereign/testkit/MeshProviderSuite"
import type { MeshRegionObservation, Workload } from "@sovereign/testkit/MeshProviderSuite"
import { Effect, Layer, Option, Redacted } from "effect"
import { CiliumClusters } from "../src/CiliumCluster.js"
import type { ApiserverService, CiliumCluster } from "../src/CiliumCluster.js"

interface Versioned<A> {
  value: A
  revision: number
}

interface MemoryCluster {
  service: ApiserverService | undefined
  secrets: Map<string, Versioned<Record<string, string>>>
  configMaps: Map<string, Record<string, string>>
  hostAliases: Versioned<ReadonlyArray<MeshPlan.HostAlias>>
  workloads: Map<Workload, Versioned<string | undefined>>
  daemonSetMissing?: boolean
  restartsFail?: boolean
}

export const makeMemoryWorld = () => {
  const clusters = new Map<string, MemoryCluster>()
  let revision = 0
  const next = () => ++revision

  const clusterOf = (kubeconfig: Redacted.Redacted<string>) =>
    Effect.suspend(() => {
      const cluster = clusters.get(Redacted.value(kubeconfig))
      return cluster === undefined
        ? Effect.fail(new MeshProvider.MeshError({ reason: "Unreachable", message: "no such cluster" }))
        : Effect.succeed(cluster)
    })

  const api = (cluster: MemoryCluster): CiliumCluster => ({
    service: () => Effect.sync(() => Option.fromNullable(cluster.service)),
    secret: (name) => Effect.sync(() => Option.map(Option.fromNullable(cluster.secrets.get(name)), (secret) => ({ ...secret.value }))),
    configMap: (name) => Effect.sync(() => Option.fromNullable(cluster.configMaps.get(name))),
    createSecret: (name, secret) =>
      Effect.sync(() => {
        if (cluster.secrets.has(name)) return false
        cluster.secrets.set(name, { value: { ...secret.data }, revision: next() })
        return true
      }),
    patchSecretData: (name, data) =>
      Effect.sync(() => {
        const current = cluster.secrets.get(name)?.value ?? {}
        cluster.secrets.set(name, { value: { ...current, ...data }, revision: next() })
      }),
    hostAliases: () => Effect.sync(() => (cluster.daemonSetMissing === true ? Option.none() : Option.some(cluster.hostAliases.value))),
    replaceHostAliases: (_name, aliases) =>
      Effect.sync(() => {
        cluster.hostAliases = { value: aliases, revision: next() }
      }),
    restart: (_kind, name, _annotation, at) =>
      cluster.restartsFail === true
        ? Effect.fail(new MeshProvider.MeshError({ reason: "Unreachable", message: `PATCH ${name}: HTTP 503` }))
        : Effect.sync(() => {
            cluster.workloads.set(name as Workload, { value: at, revision: next() })
            return true
          })
  })

  const clustersLayer = Layer.succeed(CiliumClusters, {
    connect: (kubeconfig) => Effect.map(clusterOf(kubeconfig), api)
  })

  const worldLayer = Layer.succeed(MeshWorld, {
    seed: (region, seed) =>
      Effect.sync(() => {
        const existing = clusters.get(region.key)
        const secrets = existing?.secrets ?? new Map<string, Versioned<Record<string, string>>>()
        secrets.delete("cilium-ca")
        secrets.delete("clustermesh-apiserver-remote-cert")
        if (seed.ca !== undefined) secrets.set("cilium-ca", { value: { "ca.crt": seed.ca.cert, "ca.key": seed.ca.key }, revision: next() })
        if (seed.remote !== undefined) {
          secrets.set("clustermesh-apiserver-remote-cert", { value: { "tls.crt": seed.remote.cert, "tls.key": seed.remote.key }, revision: next() })
        }
        clusters.set(region.key, {
          service: seed.service === undefined ? undefined : { ...seed.service },
          secrets,
          configMaps: new Map(
            seed.ciliumConfig === undefined
              ? []
              : [["cilium-config", { "cluster-name": seed.ciliumConfig.clusterName, "cluster-id": String(seed.ciliumConfig.clusterId) }]]
          ),
          hostAliases: existing?.hostAliases ?? { value: [], revision: next() },
          workloads: existing?.workloads ?? new Map(workloads.map((name) => [name, { value: undefined, revision: next() }]))
        })
        return { region, kubeconfig: Redacted.make(region.key) }
      }),
    observe: (regionKey) =>
      Effect.sync((): MeshRegionObservation => {
        const cluster = clusters.get(regionKey)!
        const secret = cluster.secrets.get("cilium-clustermesh")
        const remote = cluster.secrets.get("clustermesh-apiserver-remote-cert")?.value
        const workload = (name: Workload) => cluster.workloads.get(name)
        return {
          secretData: secret?.value,
          hostAliases: cluster.hostAliases.value,
          remote: remote === undefined ? undefined : { cert: remote["tls.crt"]!, key: remote["tls.key"]! },
          secretRevision: secret === undefined ? undefined : String(secret.revision),
          workloadRevisions: {
            cilium: `${workload("cilium")!.revision}/${cluster.hostAliases.revision}`,
            "cilium-operator": String(workload("cilium-operator")!.revision),
            "clustermesh-apiserver": String(workload("clustermesh-apiserver")!.revision)
          },
          restarted: {
            cilium: workload("cilium")!.value !== undefined,
            "cilium-operator": workload("cilium-operator")!.value !== undefined,
            "clustermesh-apiserver": workload("clustermesh-apiserver")!.value !== undefined
          }
        }
      })
  })

  /** Direct access for adapter-specific cases the suite's seeds cannot express. */
  const tamper = {
    putSecret: (regionKey: string, name: string, data: Record<string, string>) =>
      Effect.sync(() => void clusters.get(regionKey)!.secrets.set(name, { value: data, revision: next() })),
    secret: (regionKey: string, name: string) => Effect.sync(() => clusters.get(regionKey)!.secrets.get(name)?.value),
    failRestarts: (regionKey: string) =>
      Effect.sync(() => {
        clusters.get(regionKey)!.restartsFail = true
      }),
    removeDaemonSet: (regionKey: string) =>
      Effect.sync(() => {
        clusters.get(regionKey)!.daemonSetMissing = true
      })
  }

  return { clustersLayer, worldLayer, tamper }
}
