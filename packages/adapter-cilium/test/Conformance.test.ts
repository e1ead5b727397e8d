/** The MeshProvider suite against one fake Kubernetes API server per region (Cilium installed by a Flux HelmRelease), through adapter-kubernetes' verified client. */
import { Deployment, MeshPlan, MeshProvider } from "@sovereign/core"
import { FakeKubernetesApi } from "@sovereign/testkit"
import { MeshWorld, suite, suiteRegions, testAuthority, testRemoteCertificate } from "@sovereign/testkit/MeshProviderSuite"
import type { CiliumSeed, MeshRegionSeed } from "@sovereign/testkit/MeshProviderSuite"
import * as CiliumWorld from "@sovereign/testkit/kubernetes/CiliumWorld"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import * as CiliumMesh from "../src/CiliumMesh.js"

const namespace = "kube-system"
const ref = (apiVersion: string, kind: string, name: string, inNamespace = namespace) => ({
  apiVersion,
  kind,
  namespace: inNamespace,
  name
})
const decoded = (data: unknown) =>
  Object.fromEntries(
    Object.entries((data ?? {}) as Record<string, string>).map(([key, value]) => [key, Buffer.from(value, "base64").toString("utf8")])
  )
const base64 = (data: Readonly<Record<string, string>>) =>
  Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, "utf8").toString("base64")]))

const provider = CiliumMesh.layerKubernetes({ requestTimeout: "10 seconds", releaseTimeout: "20 seconds" })
const world = Layer.scoped(
  MeshWorld,
  Effect.flatMap(Effect.scope, (scope) => Effect.map(CiliumWorld.make(scope), (made) => made.world))
)

suite("CiliumMesh over the Kubernetes API", Layer.merge(provider, world), { mintsRemoteCertificates: true })

// The suite's deployment (one derivation of names and ids); these tests use its first two regions.
const [fsn1, hel1] = suiteRegions as unknown as [Deployment.Region, Deployment.Region]

const seedOf = (region: Deployment.Region, ip: string, cilium: CiliumSeed): MeshRegionSeed => {
  const ca = testAuthority(region.clusterName)
  return {
    cilium,
    service: { type: "LoadBalancer", loadBalancerIP: ip, port: 2379 },
    ca,
    remote: testRemoteCertificate(ca),
    local: undefined,
    ciliumConfig: { clusterName: region.clusterName, clusterId: region.clusterId }
  }
}

/** Two healthy regions in a fresh Cilium world, with direct access to their API servers. */
const twoRegions = (cilium: CiliumSeed) =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const made = yield* CiliumWorld.make(scope)
    const regions = [
      yield* made.world.seed(fsn1, seedOf(fsn1, "203.0.113.10", cilium)),
      yield* made.world.seed(hel1, seedOf(hel1, "203.0.113.20", cilium))
    ]
    const establish = Effect.flatMap(MeshProvider.MeshProvider, (mesh) => mesh.establish("0123456789abcdef", regions)).pipe(
      Effect.provide(provider)
    )
    return { ...made, regions, establish }
  })

const writesBeside = { version: "1.19.2", kvstoreMesh: true, chartRendersConfig: false } satisfies CiliumSeed
const chartRenders = { version: "1.19.2", kvstoreMesh: true, chartRendersConfig: true } satisfies CiliumSeed

describe("CiliumMesh over the Kubernetes API", () => {
  it.scopedLive(
    "a region whose API server is not trusted by its kubeconfig's CA is reported, and its peer is not written",
    () =>
      Effect.gen(function* () {
        const stranger = FakeKubernetesApi.makeCertificateAuthority("someone else")
        const { regions, server } = yield* twoRegions(writesBeside)
        const { api: second } = yield* server(hel1.key)
        const statuses = yield* Effect.flatMap(MeshProvider.MeshProvider, (mesh) =>
          mesh.establish("00000000000000bb", [
            regions[0]!,
            { region: hel1, kubeconfig: Redacted.make(second.kubeconfigWith({ caPem: stranger.certPem })) }
          ])
        ).pipe(Effect.provide(provider))
        const untrusted = statuses.find((status) => status.regionKey === hel1.key)!
        expect(untrusted.error).toMatch(/unreachable: .*not trusted/)
        expect(untrusted.ciliumVersion).toBeUndefined()
        expect(statuses.find((status) => status.regionKey === fsn1.key)!.peers).toEqual([
          expect.objectContaining({ name: hel1.clusterName, configured: false, error: expect.stringMatching(/peer region hel1-1 failed/) })
        ])
        expect(JSON.stringify(statuses)).not.toContain(second.token)
        const { api: first } = yield* server(fsn1.key)
        expect(Option.isNone(yield* first.get(ref("v1", "Secret", "cilium-kvstoremesh")))).toBe(true)
      }),
    60_000
  )

  it.scopedLive(
    "an existing Secret keeps its other keys, gets a stale endpoint rewritten, and loses what the earlier recipe left",
    () =>
      Effect.gen(function* () {
        const { server, establish } = yield* twoRegions({ version: "1.19.2", kvstoreMesh: false, chartRendersConfig: false })
        const { api } = yield* server(fsn1.key)
        yield* api.put({
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: "cilium-clustermesh", namespace },
          type: "Opaque",
          data: base64({
            [hel1.clusterName]: MeshPlan.peerConfig(hel1.clusterName, 12379),
            [`${hel1.clusterName}-ca.crt`]: "old",
            [`${hel1.clusterName}.crt`]: "old",
            [`${hel1.clusterName}.key`]: "old",
            "someone-else": "kept"
          })
        })
        yield* establish
        const data = decoded(Option.getOrThrow(yield* api.get(ref("v1", "Secret", "cilium-clustermesh")))["data"])
        expect(data["someone-else"]).toBe("kept")
        expect(data[hel1.clusterName]).toBe(MeshPlan.peerConfig(hel1.clusterName, 2379))
        expect(Object.keys(data).sort()).toEqual([
          "someone-else",
          "t1-hel",
          "t1-hel.etcd-client-ca.crt",
          "t1-hel.etcd-client.crt",
          "t1-hel.etcd-client.key"
        ])
      }),
    60_000
  )

  it.scopedLive(
    "a remote-cert Secret without tls.crt/tls.key is reported and left alone",
    () =>
      Effect.gen(function* () {
        const { server, establish } = yield* twoRegions(writesBeside)
        const { api } = yield* server(hel1.key)
        yield* api.put({
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: "clustermesh-apiserver-remote-cert", namespace },
          data: base64({ "ca.crt": "x" })
        })
        const statuses = yield* establish
        expect(statuses[0]!.peers[0]).toMatchObject({
          configured: false,
          error: expect.stringMatching(/exists but holds no tls.crt and tls.key/)
        })
        expect(decoded(Option.getOrThrow(yield* api.get(ref("v1", "Secret", "clustermesh-apiserver-remote-cert")))["data"])).toEqual({
          "ca.crt": "x"
        })
      }),
    60_000
  )

  it.scopedLive(
    "a region without the cilium DaemonSet reports it and gets nothing written; its peers still configure it",
    () =>
      Effect.gen(function* () {
        const { server, establish } = yield* twoRegions(writesBeside)
        const { api } = yield* server(hel1.key)
        yield* api.remove(ref("apps/v1", "DaemonSet", "cilium"))
        yield* api.clearRequests
        const [first, second] = yield* establish
        expect(second!.error).toMatch(/DaemonSet kube-system\/cilium not found/)
        expect(second!.readyAt).toBeUndefined()
        expect(second!.peers[0]).toMatchObject({ configured: false, error: expect.stringMatching(/^local region failed: DaemonSet/) })
        expect((yield* api.requests).filter((request) => request.method !== "GET")).toEqual([])
        expect(first!.peers[0]).toMatchObject({ configured: true })
      }),
    60_000
  )

  it.scopedLive(
    "an agent image whose tag names no version is reported, never guessed",
    () =>
      Effect.gen(function* () {
        const { server, establish } = yield* twoRegions(writesBeside)
        const { api } = yield* server(hel1.key)
        yield* api.modify(ref("apps/v1", "DaemonSet", "cilium"), (daemonSet) => {
          const spec = structuredClone(daemonSet["spec"]) as { template: { spec: { containers: Array<{ image: string }> } } }
          spec.template.spec.containers[0]!.image =
            "quay.io/cilium/cilium@sha256:758ca0793f5995bb938a2fa219dcce63dc0b3fa7345f7e6f4ba9fb67b5eafa5f"
          return { ...daemonSet, spec }
        })
        const [, second] = yield* establish
        expect(second!.error).toMatch(/cannot be told from the agent image 'quay.io\/cilium\/cilium@sha256/)
      }),
    60_000
  )

  it.scopedLive(
    "when the chart renders the config, spec.values naming the clusters is reported: it would override Sovereign's values",
    () =>
      Effect.gen(function* () {
        const { server, establish } = yield* twoRegions(chartRenders)
        const { api } = yield* server(hel1.key)
        yield* api.modify(ref("helm.toolkit.fluxcd.io/v2", "HelmRelease", "bp-cilium", "flux-system"), (release) => {
          const spec = structuredClone(release["spec"]) as { values: { clustermesh: { config: Record<string, unknown> } } }
          spec.values.clustermesh.config["clusters"] = []
          return { ...release, spec }
        })
        const [first, second] = yield* establish
        expect(second!.error).toMatch(/sets clustermesh.config.clusters in spec.values, which overrides/)
        expect(second!.peers[0]).toMatchObject({ configured: false, configuredIn: "helm-values" })
        expect(first!.readyAt).toBeTypeOf("number")
      }),
    60_000
  )

  it.scopedLive(
    "when the release cannot reconcile, its reason is the peers' error and nothing is reported configured",
    () =>
      Effect.gen(function* () {
        const { server, establish } = yield* twoRegions(chartRenders)
        const { api } = yield* server(hel1.key)
        yield* api.modify(ref("helm.toolkit.fluxcd.io/v2", "HelmRelease", "bp-cilium", "flux-system"), (release) => ({
          ...release,
          spec: { ...(release["spec"] as object), valuesFrom: [{ kind: "Secret", name: "kit-overrides" }] }
        }))
        const [, second] = yield* establish
        expect(second!.readyAt).toBeUndefined()
        expect(second!.peers[0]!.error).toMatch(
          /bp-cilium failed to reconcile: InitFailed: could not resolve Secret chart values reference 'flux-system\/kit-overrides'/
        )
        // Sovereign's own reference was added after the kit's, not instead of it
        const release = Option.getOrThrow(yield* api.get(ref("helm.toolkit.fluxcd.io/v2", "HelmRelease", "bp-cilium", "flux-system")))
        expect((release["spec"] as { valuesFrom: unknown }).valuesFrom).toEqual([
          { kind: "Secret", name: "kit-overrides" },
          { kind: "Secret", name: "sovereign-clustermesh-values", valuesKey: "values.yaml" }
        ])
      }),
    60_000
  )

  it.scopedLive(
    "when the release never reconciles, the pass gives up after the release timeout and the next pass finishes the job",
    () =>
      Effect.gen(function* () {
        const scope = yield* Effect.scope
        const made = yield* CiliumWorld.make(scope)
        const regions = [
          yield* made.world.seed(fsn1, seedOf(fsn1, "203.0.113.10", chartRenders)),
          yield* made.world.seed(hel1, seedOf(hel1, "203.0.113.20", chartRenders))
        ]
        // helm-controller is down in hel1: its watch no longer delivers anything.
        const { api } = yield* made.server(hel1.key)
        yield* api.silenceWatches(true)
        const impatient = CiliumMesh.layerKubernetes({ requestTimeout: "10 seconds", releaseTimeout: "300 millis" })
        const pass = Effect.flatMap(MeshProvider.MeshProvider, (mesh) => mesh.establish("0123456789abcdef", regions))
        const [, stuck] = yield* pass.pipe(Effect.provide(impatient))
        expect(stuck!.peers[0]!.error).toMatch(/has not reconciled the peers Sovereign gave it within 300ms/)
        expect(stuck!.readyAt).toBeUndefined()
        yield* api.silenceWatches(false)
        yield* made.world.reconcile(hel1.key)
        const [, healed] = yield* pass.pipe(Effect.provide(impatient))
        expect(healed!.readyAt).toBeTypeOf("number")
      }),
    60_000
  )
})
