/** The MeshProvider suite against one fake Kubernetes API server per region, through adapter-kubernetes' verified client. */
import { Deployment, MeshPlan, MeshProvider } from "@sovereign/core"
import { FakeKubernetesApi } from "@sovereign/testkit"
import { MeshWorld, meshProviderSuite, suiteRegions, testAuthority, testRemoteCertificate } from "@sovereign/testkit/MeshProviderSuite"
import type { MeshRegionObservation, MeshRegionSeed, Workload } from "@sovereign/testkit/MeshProviderSuite"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, Scope } from "effect"
import * as CiliumMesh from "../src/CiliumMesh.js"

const namespace = "kube-system"
const restartAnnotation = "kubectl.kubernetes.io/restartedAt"

const ref = (apiVersion: string, kind: string, name: string) => ({ apiVersion, kind, namespace, name })
const text = (data: Readonly<Record<string, string>>) =>
  Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, "utf8").toString("base64")]))
const decoded = (data: unknown) =>
  Object.fromEntries(Object.entries((data ?? {}) as Record<string, string>).map(([key, value]) => [key, Buffer.from(value, "base64").toString("utf8")]))

const workloadRefs: Record<Workload, ReturnType<typeof ref>> = {
  cilium: ref("apps/v1", "DaemonSet", "cilium"),
  "cilium-operator": ref("apps/v1", "Deployment", "cilium-operator"),
  "clustermesh-apiserver": ref("apps/v1", "Deployment", "clustermesh-apiserver")
}

const podTemplate = (app: string) => ({
  selector: { matchLabels: { app } },
  template: { metadata: { labels: { app } }, spec: { containers: [{ name: app, image: `quay.io/cilium/${app}:v1.16.0` }] } }
})

/** Seeds one fake API server per region with the objects the Cilium chart would have made. */
const seedObjects = (api: FakeKubernetesApi.FakeKubernetesApi, region: Deployment.Region, seed: MeshRegionSeed) =>
  Effect.gen(function* () {
    for (const name of ["cilium-ca", "clustermesh-apiserver-remote-cert"]) yield* api.remove(ref("v1", "Secret", name))
    yield* api.remove(ref("v1", "Service", "clustermesh-apiserver"))
    yield* api.remove(ref("v1", "ConfigMap", "cilium-config"))
    if (seed.service !== undefined) {
      yield* api.put({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "clustermesh-apiserver", namespace },
        spec: { type: seed.service.type, ports: [{ name: "apiserv", port: seed.service.port, protocol: "TCP" }] },
        status: { loadBalancer: seed.service.loadBalancerIP === undefined ? {} : { ingress: [{ ip: seed.service.loadBalancerIP }] } }
      })
    }
    if (seed.ca !== undefined) {
      yield* api.put({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "cilium-ca", namespace },
        type: "Opaque",
        data: text({ "ca.crt": seed.ca.cert, "ca.key": seed.ca.key })
      })
    }
    if (seed.remote !== undefined) {
      yield* api.put({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "clustermesh-apiserver-remote-cert", namespace },
        type: "kubernetes.io/tls",
        data: text({ "tls.crt": seed.remote.cert, "tls.key": seed.remote.key, ...(seed.ca === undefined ? {} : { "ca.crt": seed.ca.cert }) })
      })
    }
    if (seed.ciliumConfig !== undefined) {
      yield* api.put({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "cilium-config", namespace },
        data: { "cluster-name": seed.ciliumConfig.clusterName, "cluster-id": String(seed.ciliumConfig.clusterId), "identity-allocation-mode": "crd" }
      })
    }
    for (const [name, workload] of Object.entries(workloadRefs)) {
      if (Option.isNone(yield* api.get(workload))) {
        yield* api.put({ apiVersion: "apps/v1", kind: workload.kind, metadata: { name, namespace }, spec: podTemplate(name) })
      }
    }
    return { region, kubeconfig: Redacted.make(api.kubeconfig) } satisfies MeshProvider.MeshRegion
  })

const observeObjects = (api: FakeKubernetesApi.FakeKubernetesApi) =>
  Effect.gen(function* () {
    const secret = yield* api.get(ref("v1", "Secret", "cilium-clustermesh"))
    const remote = yield* api.get(ref("v1", "Secret", "clustermesh-apiserver-remote-cert"))
    const workloads = {} as Record<Workload, Option.Option<FakeKubernetesApi.KubeObject>>
    for (const [name, workload] of Object.entries(workloadRefs)) workloads[name as Workload] = yield* api.get(workload)
    const template = (name: Workload) =>
      Option.getOrUndefined(workloads[name])?.["spec"] as
        | { readonly template?: { readonly metadata?: { readonly annotations?: Record<string, string> }; readonly spec?: { readonly hostAliases?: ReadonlyArray<{ ip: string; hostnames: ReadonlyArray<string> }> } } }
        | undefined
    const revision = (name: Workload) => Option.getOrUndefined(workloads[name])?.metadata.resourceVersion
    const remoteData = Option.map(remote, (object) => decoded(object["data"]))
    return {
      secretData: Option.getOrUndefined(Option.map(secret, (object) => decoded(object["data"]))),
      hostAliases: template("cilium")?.template?.spec?.hostAliases ?? [],
      remote: Option.getOrUndefined(Option.map(remoteData, (data) => ({ cert: data["tls.crt"]!, key: data["tls.key"]! }))),
      secretRevision: Option.getOrUndefined(secret)?.metadata.resourceVersion,
      workloadRevisions: { cilium: revision("cilium"), "cilium-operator": revision("cilium-operator"), "clustermesh-apiserver": revision("clustermesh-apiserver") },
      restarted: {
        cilium: template("cilium")?.template?.metadata?.annotations?.[restartAnnotation] !== undefined,
        "cilium-operator": template("cilium-operator")?.template?.metadata?.annotations?.[restartAnnotation] !== undefined,
        "clustermesh-apiserver": template("clustermesh-apiserver")?.template?.metadata?.annotations?.[restartAnnotation] !== undefined
      }
    } satisfies MeshRegionObservation
  })

/** One fake API server per region, started on first use and stopped with the test. */
const fakeWorld = Layer.scoped(
  MeshWorld,
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const authority = FakeKubernetesApi.makeCertificateAuthority("fake-kubernetes-ca")
    const servers = new Map<string, FakeKubernetesApi.FakeKubernetesApi>()
    const serverOf = (regionKey: string) =>
      Effect.suspend(() => {
        const existing = servers.get(regionKey)
        if (existing !== undefined) return Effect.succeed(existing)
        return Scope.extend(FakeKubernetesApi.make({ authority }), scope).pipe(Effect.tap((api) => Effect.sync(() => servers.set(regionKey, api))))
      })
    return {
      seed: (region, seed) => Effect.flatMap(serverOf(region.key), (api) => seedObjects(api, region, seed)),
      observe: (regionKey) => Effect.flatMap(serverOf(regionKey), observeObjects)
    }
  })
)

const provider = CiliumMesh.layerKubernetes({ requestTimeout: "10 seconds" })

meshProviderSuite("CiliumMesh over the Kubernetes API", Layer.merge(provider, fakeWorld), { mintsRemoteCertificates: true })

// The suite's deployment (one derivation of names and ids); these tests use its first two regions.
const [fsn1, hel1] = suiteRegions as unknown as [Deployment.Region, Deployment.Region]

describe("CiliumMesh over the Kubernetes API", () => {
  it.scoped("a region whose API server is not trusted by its kubeconfig's CA is reported, and its peer is not written", () =>
    Effect.gen(function* () {
      const stranger = FakeKubernetesApi.makeCertificateAuthority("someone else")
      const [first, second] = [yield* FakeKubernetesApi.make(), yield* FakeKubernetesApi.make()]
      const healthy = yield* seedObjects(first, fsn1, {
        service: { type: "LoadBalancer", loadBalancerIP: "203.0.113.10", port: 2379 },
        ca: undefined,
        remote: undefined,
        ciliumConfig: { clusterName: fsn1.clusterName, clusterId: fsn1.clusterId }
      })
      const statuses = yield* Effect.flatMap(MeshProvider.MeshProvider, (mesh) =>
        mesh.establish("00000000000000bb", [healthy, { region: hel1, kubeconfig: Redacted.make(second.kubeconfigWith({ caPem: stranger.certPem })) }])
      ).pipe(Effect.provide(provider))
      const untrusted = statuses.find((status) => status.regionKey === hel1.key)!
      expect(untrusted.error).toMatch(/unreachable: .*not trusted/)
      expect(statuses.find((status) => status.regionKey === fsn1.key)!.peers).toEqual([
        expect.objectContaining({ name: hel1.clusterName, configured: false, error: expect.stringMatching(/peer region hel1-1 failed/) })
      ])
      expect(JSON.stringify(statuses)).not.toContain(second.token)
      expect(Option.isNone(yield* first.get(ref("v1", "Secret", "cilium-clustermesh")))).toBe(true)
    }),
    60_000
  )

  it.scoped(
    "an existing cilium-clustermesh Secret keeps its other keys and gets a stale endpoint rewritten",
    () =>
      Effect.gen(function* () {
        const [first, second] = [yield* FakeKubernetesApi.make(), yield* FakeKubernetesApi.make()]
        const seedOf = (region: Deployment.Region, ip: string) => {
          const ca = testAuthority(region.clusterName)
          return {
            service: { type: "LoadBalancer", loadBalancerIP: ip, port: 2379 },
            ca,
            remote: testRemoteCertificate(ca),
            ciliumConfig: { clusterName: region.clusterName, clusterId: region.clusterId }
          }
        }
        const regions = [yield* seedObjects(first, fsn1, seedOf(fsn1, "203.0.113.10")), yield* seedObjects(second, hel1, seedOf(hel1, "203.0.113.20"))]
        yield* first.put({
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: "cilium-clustermesh", namespace },
          type: "Opaque",
          data: text({ [hel1.clusterName]: MeshPlan.peerConfig(hel1.clusterName, 12379), "someone-else": "kept" })
        })
        yield* Effect.flatMap(MeshProvider.MeshProvider, (mesh) => mesh.establish("00000000000000bb", regions)).pipe(Effect.provide(provider))
        const data = decoded(Option.getOrThrow(yield* first.get(ref("v1", "Secret", "cilium-clustermesh")))["data"])
        expect(data["someone-else"]).toBe("kept")
        expect(data[hel1.clusterName]).toBe(MeshPlan.peerConfig(hel1.clusterName, 2379))
        expect(Object.keys(data).sort()).toEqual(["someone-else", "t1-hel", "t1-hel-ca.crt", "t1-hel.crt", "t1-hel.key"])
      }),
    60_000
  )
})
