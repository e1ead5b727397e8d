/**
 * A Cilium world over the fake Kubernetes API: one API server per region, Cilium installed by a Flux
 * HelmRelease (`flux-system/bp-cilium`) of a given version and mode and rendered by the helm-controller
 * stand-in, plus what the world does outside Helm (the certificates, the load balancer's address).
 * Observation reads each component's view the way the kubelet would mount it: the projected volume
 * at `/var/lib/cilium/clustermesh` of its pod template, and the template's hostAliases.
 */
import type { Deployment, MeshProvider } from "@sovereign/core"
import { Effect, Option, Redacted, Scope } from "effect"
import * as FakeKubernetesApi from "../FakeKubernetesApi.js"
import type { ComponentView, MeshRegionObservation, MeshRegionSeed, MeshWorldService, Workload } from "../MeshWorld.js"
import * as CiliumChart from "./CiliumChart.js"
import * as HelmController from "./HelmController.js"

export const releaseNamespace = "flux-system"
export const releaseName = "bp-cilium"
const namespace = "kube-system"
const clustermeshDirectory = "/var/lib/cilium/clustermesh"

const ref = (apiVersion: string, kind: string, name: string, inNamespace: string = namespace): FakeKubernetesApi.ObjectRef => ({
  apiVersion,
  kind,
  namespace: inNamespace,
  name
})
const releaseRef = ref("helm.toolkit.fluxcd.io/v2", "HelmRelease", releaseName, releaseNamespace)
const workloadRefs: Record<Workload, FakeKubernetesApi.ObjectRef> = {
  cilium: ref("apps/v1", "DaemonSet", "cilium"),
  "cilium-operator": ref("apps/v1", "Deployment", "cilium-operator"),
  "clustermesh-apiserver": ref("apps/v1", "Deployment", "clustermesh-apiserver")
}

const base64 = (data: Readonly<Record<string, string>>) =>
  Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, "utf8").toString("base64")]))
const decoded = (data: unknown): Record<string, string> =>
  Object.fromEntries(
    Object.entries((data ?? {}) as Record<string, string>).map(([key, value]) => [key, Buffer.from(value, "base64").toString("utf8")])
  )

/** The values the bootstrap kit gives the chart for this region (Sovereign's own values come through `valuesFrom`). */
const kitValues = (seed: MeshRegionSeed) => ({
  cluster: { name: seed.ciliumConfig.clusterName, id: seed.ciliumConfig.clusterId },
  clustermesh: {
    useAPIServer: true,
    config: { enabled: seed.cilium.chartRendersConfig },
    apiserver: { kvstoremesh: { enabled: seed.cilium.kvstoreMesh }, service: { type: seed.service.type } }
  }
})

interface PodTemplate {
  readonly spec?: {
    readonly template?: {
      readonly spec?: {
        readonly containers?: ReadonlyArray<{
          readonly name: string
          readonly volumeMounts?: ReadonlyArray<{ readonly name: string; readonly mountPath: string }>
        }>
        readonly volumes?: ReadonlyArray<{
          readonly name: string
          readonly projected?: { readonly sources?: ReadonlyArray<ProjectedSource> }
        }>
        readonly hostAliases?: ReadonlyArray<{ readonly ip: string; readonly hostnames: ReadonlyArray<string> }>
      }
    }
  }
}
interface ProjectedSource {
  readonly secret?: {
    readonly name: string
    readonly optional?: boolean
    readonly items?: ReadonlyArray<{ readonly key: string; readonly path: string }>
  }
}

interface Region {
  readonly api: FakeKubernetesApi.FakeKubernetesApi
  readonly controller: HelmController.HelmController
  baseline: Record<Workload, number> | undefined
}

export interface CiliumWorld {
  readonly world: MeshWorldService
  /** A region's API server and helm-controller, for tests that tamper beyond what seeds express. */
  readonly server: (
    regionKey: string
  ) => Effect.Effect<{ readonly api: FakeKubernetesApi.FakeKubernetesApi; readonly controller: HelmController.HelmController }>
}

let sharedAuthority: FakeKubernetesApi.CertificateAuthority | undefined

/** The world's regions live in `scope`; every API server of the process shares one CA (forge's RSA key generation is slow). */
export const make = (scope: Scope.Scope): Effect.Effect<CiliumWorld> =>
  Effect.gen(function* () {
    const authority = (sharedAuthority ??= FakeKubernetesApi.makeCertificateAuthority("fake-kubernetes-ca"))
    const regions = new Map<string, Region>()

    const regionOf = (regionKey: string) =>
      Effect.suspend(() => {
        const existing = regions.get(regionKey)
        if (existing !== undefined) return Effect.succeed(existing)
        return Effect.gen(function* () {
          const api = yield* FakeKubernetesApi.make({ authority })
          const controller = yield* HelmController.make({ api, render: CiliumChart.render })
          const region: Region = { api, controller, baseline: undefined }
          regions.set(regionKey, region)
          return region
        }).pipe(Scope.extend(scope))
      })

    const generations = (api: FakeKubernetesApi.FakeKubernetesApi) =>
      Effect.gen(function* () {
        const result = {} as Record<Workload, number>
        for (const [name, workloadRef] of Object.entries(workloadRefs) as ReadonlyArray<[Workload, FakeKubernetesApi.ObjectRef]>) {
          result[name] = Option.getOrUndefined(yield* api.get(workloadRef))?.metadata.generation ?? 0
        }
        return result
      })

    const putSecret = (api: FakeKubernetesApi.FakeKubernetesApi, name: string, type: string, data: Record<string, string> | undefined) =>
      data === undefined
        ? Effect.asVoid(api.remove(ref("v1", "Secret", name)))
        : Effect.asVoid(api.put({ apiVersion: "v1", kind: "Secret", metadata: { name, namespace }, type, data: base64(data) }))

    const seed = (region: Deployment.Region, seed: MeshRegionSeed) =>
      Effect.gen(function* () {
        const state = yield* regionOf(region.key)
        const { api } = state
        const caData = seed.ca === undefined ? {} : { "ca.crt": seed.ca.cert }
        yield* putSecret(api, "cilium-ca", "Opaque", seed.ca === undefined ? undefined : { "ca.crt": seed.ca.cert, "ca.key": seed.ca.key })
        yield* putSecret(
          api,
          "clustermesh-apiserver-remote-cert",
          "kubernetes.io/tls",
          seed.remote === undefined ? undefined : { "tls.crt": seed.remote.cert, "tls.key": seed.remote.key, ...caData }
        )
        yield* putSecret(
          api,
          "clustermesh-apiserver-local-cert",
          "kubernetes.io/tls",
          seed.local === undefined ? undefined : { "tls.crt": seed.local.cert, "tls.key": seed.local.key, ...caData }
        )
        const spec = {
          releaseName: "cilium",
          targetNamespace: namespace,
          interval: "10m",
          chart: { spec: { chart: "cilium", version: seed.cilium.version } }
        }
        const existing = yield* api.get(releaseRef)
        if (Option.isNone(existing)) {
          yield* api.put({
            apiVersion: "helm.toolkit.fluxcd.io/v2",
            kind: "HelmRelease",
            metadata: { name: releaseName, namespace: releaseNamespace },
            spec: { ...spec, values: kitValues(seed) }
          })
        } else {
          // Keep what others added to the release (Sovereign's valuesFrom); the kit owns the chart and its values.
          yield* api.modify(releaseRef, (current) => ({
            ...current,
            spec: { ...(current["spec"] as object), ...spec, values: kitValues(seed) }
          }))
        }
        yield* state.controller.reconcile(releaseNamespace, releaseName)
        // The cloud's load balancer, not Helm, gives the Service its address.
        yield* api.modify(ref("v1", "Service", "clustermesh-apiserver"), (service) => ({
          ...service,
          status: { loadBalancer: seed.service.loadBalancerIP === undefined ? {} : { ingress: [{ ip: seed.service.loadBalancerIP }] } }
        }))
        state.baseline ??= yield* generations(api)
        return { region, kubeconfig: Redacted.make(api.kubeconfig) } satisfies MeshProvider.MeshRegion
      })

    const view = (api: FakeKubernetesApi.FakeKubernetesApi, workload: FakeKubernetesApi.ObjectRef, container: string) =>
      Effect.gen(function* () {
        const found = yield* api.get(workload)
        if (Option.isNone(found)) return undefined
        const pod = (found.value as unknown as PodTemplate).spec?.template?.spec
        const mount = pod?.containers
          ?.find((each) => each.name === container)
          ?.volumeMounts?.find((each) => each.mountPath === clustermeshDirectory)
        if (pod === undefined || mount === undefined) return undefined
        const files: Record<string, string> = {}
        for (const source of pod.volumes?.find((volume) => volume.name === mount.name)?.projected?.sources ?? []) {
          if (source.secret === undefined) continue
          const secret = yield* api.get(ref("v1", "Secret", source.secret.name))
          const data = decoded(Option.getOrUndefined(secret)?.["data"])
          if (source.secret.items === undefined) Object.assign(files, data)
          else for (const item of source.secret.items) if (data[item.key] !== undefined) files[item.path] = data[item.key]!
        }
        return {
          files,
          hostAliases: (pod.hostAliases ?? []).map((alias) => ({ ip: alias.ip, hostnames: [...alias.hostnames] }))
        } satisfies ComponentView
      })

    const observe = (regionKey: string) =>
      Effect.gen(function* () {
        const { api, baseline } = yield* regionOf(regionKey)
        const agent = yield* view(api, workloadRefs.cilium, "cilium-agent")
        const kvstoremesh = yield* view(api, workloadRefs["clustermesh-apiserver"], "kvstoremesh")
        const remote = Option.map(yield* api.get(ref("v1", "Secret", "clustermesh-apiserver-remote-cert")), (secret) =>
          decoded(secret["data"])
        )
        const now = yield* generations(api)
        const writes = (yield* api.requests).filter((request) => request.method !== "GET").length
        return {
          agent: agent ?? { files: {}, hostAliases: [] },
          kvstoremesh,
          remote: Option.getOrUndefined(Option.map(remote, (data) => ({ cert: data["tls.crt"]!, key: data["tls.key"]! }))),
          writes,
          restarts: {
            cilium: now.cilium - (baseline?.cilium ?? now.cilium),
            "cilium-operator": now["cilium-operator"] - (baseline?.["cilium-operator"] ?? now["cilium-operator"]),
            "clustermesh-apiserver": now["clustermesh-apiserver"] - (baseline?.["clustermesh-apiserver"] ?? now["clustermesh-apiserver"])
          }
        } satisfies MeshRegionObservation
      })

    const reconcile = (regionKey: string) =>
      Effect.flatMap(regionOf(regionKey), (state) => state.controller.reconcile(releaseNamespace, releaseName))

    return { world: { seed, observe, reconcile }, server: regionOf }
  })
