import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as FakeKubernetesApi from "../src/FakeKubernetesApi.js"
import * as CiliumChart from "../src/kubernetes/CiliumChart.js"
import * as HelmController from "../src/kubernetes/HelmController.js"

const releaseRef = { apiVersion: "helm.toolkit.fluxcd.io/v2", kind: "HelmRelease", namespace: "flux-system", name: "bp-cilium" }
const ref = (apiVersion: string, kind: string, name: string) => ({ apiVersion, kind, namespace: "kube-system", name })
const daemonSet = ref("apps/v1", "DaemonSet", "cilium")
const apiserver = ref("apps/v1", "Deployment", "clustermesh-apiserver")
const b64 = (text: string) => Buffer.from(text).toString("base64")
const text = (data: unknown) =>
  Object.fromEntries(
    Object.entries((data ?? {}) as Record<string, string>).map(([key, value]) => [key, Buffer.from(value, "base64").toString("utf8")])
  )

type Pod = {
  spec: {
    template: {
      metadata: { annotations?: Record<string, string> }
      spec: Record<string, unknown> & { containers: Array<{ image: string }> }
    }
  }
}
const podOf = (object: FakeKubernetesApi.KubeObject) => (object as unknown as Pod).spec.template

const release = (version: string, values: object, valuesFrom: ReadonlyArray<object> = []) => ({
  apiVersion: "helm.toolkit.fluxcd.io/v2",
  kind: "HelmRelease",
  metadata: { name: "bp-cilium", namespace: "flux-system" },
  spec: { releaseName: "cilium", targetNamespace: "kube-system", chart: { spec: { chart: "cilium", version } }, values, valuesFrom }
})

const kit = (configEnabled: boolean, kvstoreMesh = true) => ({
  cluster: { name: "t1-mesh", id: 42 },
  clustermesh: {
    useAPIServer: true,
    config: { enabled: configEnabled },
    apiserver: { kvstoremesh: { enabled: kvstoreMesh }, service: { type: "LoadBalancer" } }
  }
})

const peerValues = {
  clustermesh: {
    config: {
      clusters: [{ name: "t1-hel", port: 2379, ips: ["203.0.113.20"], tls: { cert: b64("CERT"), key: b64("KEY"), caCert: b64("CA") } }]
    }
  }
}

/** A fake API server with the stand-in watching it. */
const started = Effect.gen(function* () {
  const api = yield* FakeKubernetesApi.make()
  const controller = yield* HelmController.make({ api, render: CiliumChart.render })
  const statusOf = Effect.map(api.get(releaseRef), (found) => (Option.getOrThrow(found)["status"] ?? {}) as Record<string, unknown>)
  /** Waits until the controller has handled the release's current generation (and reconcile request). */
  const settled = Effect.gen(function* () {
    for (;;) {
      const current = Option.getOrThrow(yield* api.get(releaseRef))
      const status = (current["status"] ?? {}) as Record<string, unknown>
      const requested = current.metadata.annotations?.[HelmController.requestedAtAnnotation]
      if (
        status["observedGeneration"] === current.metadata.generation &&
        (requested === undefined || status["lastHandledReconcileAt"] === requested)
      )
        return
      yield* Effect.sleep("10 millis")
    }
  })
  return { api, controller, statusOf, settled }
})

describe("Helm values and three-way merge", () => {
  it("merges maps key by key and replaces everything else, lists included", () => {
    expect(HelmController.mergeValues({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, e: 2 })).toEqual({
      a: { b: 1, c: [3] },
      d: 1,
      e: 2
    })
  })

  it("puts back what the chart renders, drops what it stopped rendering, and leaves what it never rendered", () => {
    const previous = { spec: { image: "v1", hostAliases: [{ ip: "1" }] } }
    const rendered = { spec: { image: "v2" } }
    const live = { spec: { image: "patched", hostAliases: [{ ip: "1" }], nodeName: "kept" }, status: { ready: 1 } }
    expect(HelmController.threeWayMerge(previous, rendered, live)).toEqual({
      spec: { image: "v2", nodeName: "kept" },
      status: { ready: 1 }
    })
  })
})

describe("helm-controller stand-in", () => {
  it.scopedLive("renders a new release once its watch sees it, and reports it Ready for the generation", () =>
    Effect.gen(function* () {
      const { api, statusOf, settled } = yield* started
      yield* api.put(release("1.16.5", kit(false)))
      yield* settled
      const status = yield* statusOf
      expect(status["conditions"]).toEqual([expect.objectContaining({ type: "Ready", status: "True", reason: "InstallSucceeded" })])
      const agents = Option.getOrThrow(yield* api.get(daemonSet))
      expect(agents.metadata.annotations?.["meta.helm.sh/release-name"]).toBe("cilium")
      expect(podOf(agents).spec.containers[0]!.image).toBe("quay.io/cilium/cilium:v1.16.5")
      expect(
        podOf(Option.getOrThrow(yield* api.get(apiserver))).spec.containers.map(
          (container) => (container as unknown as { name: string }).name
        )
      ).toEqual(["etcd", "apiserver", "kvstoremesh"])
      // the chart leaves the clustermesh config to others
      expect(Option.isNone(yield* api.get(ref("v1", "Secret", "cilium-clustermesh")))).toBe(true)
    })
  )

  it.scopedLive(
    "a reconcile reverts a patched rendered field, keeps fields the chart never rendered, and rolls nothing when nothing changed",
    () =>
      Effect.gen(function* () {
        const { api, controller, settled } = yield* started
        yield* api.put(release("1.19.2", kit(false, false)))
        yield* settled
        yield* api.modify(daemonSet, (object) => {
          const patched = structuredClone(object) as unknown as Pod
          patched.spec.template.spec.containers[0]!.image = "quay.io/cilium/cilium:v9.9.9"
          patched.spec.template.spec["hostAliases"] = [{ ip: "203.0.113.20", hostnames: ["t1-hel.mesh.cilium.io"] }]
          patched.spec.template.metadata.annotations = { "kubectl.kubernetes.io/restartedAt": "now" }
          return patched as unknown as FakeKubernetesApi.KubeObject
        })
        yield* controller.reconcile("flux-system", "bp-cilium")
        const reconciled = podOf(Option.getOrThrow(yield* api.get(daemonSet)))
        expect(reconciled.spec.containers[0]!.image).toBe("quay.io/cilium/cilium:v1.19.2")
        expect(reconciled.spec["hostAliases"]).toEqual([{ ip: "203.0.113.20", hostnames: ["t1-hel.mesh.cilium.io"] }])
        expect(reconciled.metadata.annotations).toEqual({ "kubectl.kubernetes.io/restartedAt": "now" })
        const generation = Option.getOrThrow(yield* api.get(daemonSet)).metadata.generation
        yield* controller.reconcile("flux-system", "bp-cilium")
        expect(Option.getOrThrow(yield* api.get(daemonSet)).metadata.generation).toBe(generation)
      })
  )

  it.scopedLive(
    "with the config enabled, renders the peers from a valuesFrom Secret on request and owns the dialling workload's aliases",
    () =>
      Effect.gen(function* () {
        const { api, statusOf, settled } = yield* started
        yield* api.put({
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: "peers", namespace: "flux-system" },
          data: { "values.yaml": b64(JSON.stringify(peerValues)) }
        })
        yield* api.put(release("1.19.2", kit(true), [{ kind: "Secret", name: "peers" }]))
        yield* settled
        const kvstoremesh = text(Option.getOrThrow(yield* api.get(ref("v1", "Secret", "cilium-kvstoremesh")))["data"])
        expect(kvstoremesh).toEqual({
          "t1-hel":
            "endpoints:\n- https://t1-hel.mesh.cilium.io:2379\ntrusted-ca-file: /var/lib/cilium/clustermesh/t1-hel.etcd-client-ca.crt\n" +
            "key-file: /var/lib/cilium/clustermesh/t1-hel.etcd-client.key\ncert-file: /var/lib/cilium/clustermesh/t1-hel.etcd-client.crt\n",
          "t1-hel.etcd-client-ca.crt": "CA",
          "t1-hel.etcd-client.key": "KEY",
          "t1-hel.etcd-client.crt": "CERT"
        })
        expect(text(Option.getOrThrow(yield* api.get(ref("v1", "Secret", "cilium-clustermesh")))["data"])["t1-hel"]).toContain(
          "- https://clustermesh-apiserver.kube-system.svc:2379\ntrusted-ca-file: /var/lib/cilium/clustermesh/local-etcd-client-ca.crt"
        )
        expect(podOf(Option.getOrThrow(yield* api.get(apiserver))).spec["hostAliases"]).toEqual([
          { ip: "203.0.113.20", hostnames: ["t1-hel.mesh.cilium.io"] }
        ])
        expect(podOf(Option.getOrThrow(yield* api.get(daemonSet))).spec["hostAliases"]).toBeUndefined()
        // A changed values Secret alone is not seen; a reconcile request is.
        const moved = structuredClone(peerValues)
        moved.clustermesh.config.clusters[0]!.ips = ["198.51.100.7"]
        yield* api.modify({ apiVersion: "v1", kind: "Secret", namespace: "flux-system", name: "peers" }, (secret) => ({
          ...secret,
          data: { "values.yaml": b64(JSON.stringify(moved)) }
        }))
        yield* api.modify(releaseRef, (object) => ({
          ...object,
          metadata: { ...object.metadata, annotations: { [HelmController.requestedAtAnnotation]: "2026-12-01T10:00:00Z" } }
        }))
        yield* settled
        expect((yield* statusOf)["lastHandledReconcileAt"]).toBe("2026-12-01T10:00:00Z")
        expect(podOf(Option.getOrThrow(yield* api.get(apiserver))).spec["hostAliases"]).toEqual([
          { ip: "198.51.100.7", hostnames: ["t1-hel.mesh.cilium.io"] }
        ])
      })
  )

  for (const [version, values, why] of [
    ["1.20.1", { disableKubernetesHostAliases: true }, "1.20 told not to"],
    ["1.21.0", {}, "1.21"]
  ] as const) {
    it.scopedLive(`${why}: the peer's address rides in its config and no pod is aliased`, () =>
      Effect.gen(function* () {
        const { api, settled } = yield* started
        const kitValues = kit(true)
        yield* api.put(
          release(version, {
            ...kitValues,
            clustermesh: {
              ...kitValues.clustermesh,
              ...values,
              config: { enabled: true, clusters: peerValues.clustermesh.config.clusters }
            }
          })
        )
        yield* settled
        const config = text(Option.getOrThrow(yield* api.get(ref("v1", "Secret", "cilium-kvstoremesh")))["data"])["t1-hel"]
        expect(config).toContain('cilium-host-aliases:\n- hostname: t1-hel.mesh.cilium.io\n  ips:\n  - "203.0.113.20"\n')
        expect(podOf(Option.getOrThrow(yield* api.get(apiserver))).spec["hostAliases"]).toBeUndefined()
      })
    )
  }

  it.scopedLive("a missing values source fails the reconcile with Flux's message; an optional one is skipped", () =>
    Effect.gen(function* () {
      const { api, statusOf, settled } = yield* started
      yield* api.put(
        release("1.16.5", kit(false), [
          { kind: "Secret", name: "optional-one", optional: true },
          { kind: "ConfigMap", name: "absent" }
        ])
      )
      yield* settled
      expect((yield* statusOf)["conditions"]).toEqual([
        expect.objectContaining({
          type: "Ready",
          status: "False",
          reason: "InitFailed",
          message: "could not resolve ConfigMap chart values reference 'flux-system/absent' with key 'values.yaml': not found"
        })
      ])
      expect(Option.isNone(yield* api.get(daemonSet))).toBe(true)
    })
  )
})
