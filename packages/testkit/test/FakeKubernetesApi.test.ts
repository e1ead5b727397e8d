import { describe, expect, it } from "@effect/vitest"
import * as k8s from "@kubernetes/client-node"
import { Effect, Option } from "effect"
import * as FakeKubernetesApi from "../src/FakeKubernetesApi.js"

const clientOf = (kubeconfig: string) => {
  const config = new k8s.KubeConfig()
  config.loadFromString(kubeconfig)
  return {
    config,
    core: config.makeApiClient(k8s.CoreV1Api),
    apps: config.makeApiClient(k8s.AppsV1Api),
    custom: config.makeApiClient(k8s.CustomObjectsApi),
    rbac: config.makeApiClient(k8s.RbacAuthorizationV1Api)
  }
}

/** The Status a call failed with (the client's ApiException carries the body as text). */
const failureOf = (promise: Promise<unknown>) =>
  Effect.promise(() =>
    promise.then(
      () => ({ code: 0, reason: "none" }),
      (error: unknown) => {
        if (error instanceof k8s.ApiException) {
          // The generated client drops the body of responses its OpenAPI document declares without one (401).
          const body =
            typeof error.body === "string"
              ? (JSON.parse(error.body) as { reason: string; kind: string })
              : (error.body as { reason: string; kind: string } | undefined)
          return { code: error.code, reason: body?.reason ?? error.message, kind: body?.kind }
        }
        return { code: -1, reason: String(error) }
      }
    )
  )

const helmRelease = (name: string, ready: "True" | "False" | "Unknown") => ({
  apiVersion: "helm.toolkit.fluxcd.io/v2",
  kind: "HelmRelease",
  metadata: { name, namespace: "flux-system" },
  spec: { interval: "5m", chart: { spec: { chart: name } } },
  status: { conditions: [{ type: "Ready", status: ready, reason: "Test" }] }
})

interface WatchEvent {
  readonly type: string
  readonly object: {
    readonly metadata: { readonly name?: string; readonly resourceVersion: string }
    readonly code?: number
    readonly reason?: string
  }
}

/** Opens a watch through the client's Watch; collects events and whether the stream ended. */
const openWatch = (config: k8s.KubeConfig, path: string, query: Record<string, string | boolean>) =>
  Effect.promise(async () => {
    const events: Array<WatchEvent> = []
    const state = { done: false, error: undefined as unknown }
    const listeners = new Set<() => void>()
    const controller = await new k8s.Watch(config).watch(
      path,
      query,
      (type, object) => {
        events.push({ type, object } as WatchEvent)
        for (const listener of listeners) listener()
      },
      (error) => {
        state.done = true
        state.error = error
        for (const listener of listeners) listener()
      }
    )
    const until = (predicate: () => boolean) =>
      Effect.async<void>((resume) => {
        const check = () => {
          if (predicate()) {
            listeners.delete(check)
            resume(Effect.void)
          }
        }
        listeners.add(check)
        check()
        return Effect.sync(() => void listeners.delete(check))
      })
    return { events, state, until, stop: () => controller.abort() }
  })

describe("FakeKubernetesApi through @kubernetes/client-node", () => {
  it.scoped(
    "serves Secrets with NotFound, AlreadyExists and Conflict as Status objects",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const { core } = clientOf(fake.kubeconfig)
        const body = { metadata: { name: "s1", labels: { app: "x" } }, data: { key: Buffer.from("v").toString("base64") } }
        const created = yield* Effect.promise(() => core.createNamespacedSecret({ namespace: "kube-system", body }))
        expect(created.metadata?.resourceVersion).toBeDefined()
        const read = yield* Effect.promise(() => core.readNamespacedSecret({ name: "s1", namespace: "kube-system" }))
        expect(read.data?.["key"]).toBe(Buffer.from("v").toString("base64"))

        expect(yield* failureOf(core.createNamespacedSecret({ namespace: "kube-system", body }))).toMatchObject({
          code: 409,
          reason: "AlreadyExists",
          kind: "Status"
        })
        expect(yield* failureOf(core.readNamespacedSecret({ name: "missing", namespace: "kube-system" }))).toMatchObject({
          code: 404,
          reason: "NotFound"
        })

        const stale = { ...read, metadata: { ...read.metadata, resourceVersion: "1" } }
        expect(yield* failureOf(core.replaceNamespacedSecret({ name: "s1", namespace: "kube-system", body: stale }))).toMatchObject({
          code: 409,
          reason: "Conflict"
        })
        const replaced = yield* Effect.promise(() =>
          core.replaceNamespacedSecret({ name: "s1", namespace: "kube-system", body: { ...read, data: { key: "eA==" } } })
        )
        expect(replaced.data?.["key"]).toBe("eA==")

        const labelled = yield* Effect.promise(() => core.listNamespacedSecret({ namespace: "kube-system", labelSelector: "app=x" }))
        expect(labelled.items.map((item) => item.metadata?.name)).toEqual(["s1"])
        const none = yield* Effect.promise(() => core.listNamespacedSecret({ namespace: "kube-system", labelSelector: "app!=x" }))
        expect(none.items).toEqual([])
      }),
    30_000
  )

  it.scoped(
    "refuses a wrong bearer token with 401 and a client that trusts another CA",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const wrongToken = clientOf(fake.kubeconfigWith({ token: "nope" }))
        expect(yield* failureOf(wrongToken.core.listNamespacedConfigMap({ namespace: "default" }))).toMatchObject({ code: 401 })
        const otherAuthority = FakeKubernetesApi.makeCertificateAuthority("someone-else")
        const wrongCa = clientOf(fake.kubeconfigWith({ caPem: otherAuthority.certPem }))
        const failure = yield* failureOf(wrongCa.core.listNamespacedConfigMap({ namespace: "default" }))
        expect(failure.code).toBe(-1)
        expect(failure.reason).toMatch(/certificate/i)
      }),
    30_000
  )

  it.scoped(
    "lists and watches HelmReleases from a resourceVersion, in order, with bookmarks",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const { config, custom } = clientOf(fake.kubeconfig)
        yield* fake.put(helmRelease("bp-a", "Unknown"))
        yield* fake.put(helmRelease("bp-b", "True"))
        const list = (yield* Effect.promise(() =>
          custom.listNamespacedCustomObject({
            group: "helm.toolkit.fluxcd.io",
            version: "v2",
            namespace: "flux-system",
            plural: "helmreleases"
          })
        )) as { metadata: { resourceVersion: string }; items: Array<{ metadata: { name: string; generation: number } }> }
        expect(list.items.map((item) => item.metadata.name)).toEqual(["bp-a", "bp-b"])
        expect(list.items[0]?.metadata.generation).toBe(1)

        const watch = yield* openWatch(config, "/apis/helm.toolkit.fluxcd.io/v2/namespaces/flux-system/helmreleases", {
          resourceVersion: list.metadata.resourceVersion,
          allowWatchBookmarks: true
        })
        yield* fake.awaitWatches(1)
        yield* fake.put(helmRelease("bp-a", "False"))
        yield* fake.put(helmRelease("bp-a", "True"))
        yield* fake.remove({ apiVersion: "helm.toolkit.fluxcd.io/v2", kind: "HelmRelease", namespace: "flux-system", name: "bp-b" })
        yield* fake.sendBookmarks
        yield* watch.until(() => watch.events.length >= 4)
        expect(watch.events.map((event) => `${event.type}:${event.object.metadata.name ?? ""}`)).toEqual([
          "MODIFIED:bp-a",
          "MODIFIED:bp-a",
          "DELETED:bp-b",
          "BOOKMARK:"
        ])
        const versions = watch.events.map((event) => Number(event.object.metadata.resourceVersion))
        expect([...versions].sort((a, b) => a - b)).toEqual(versions)
        watch.stop()
      }),
    30_000
  )

  it.scoped(
    "answers a watch from a compacted resourceVersion with a 410 ERROR event, and ends open watches on forceGone",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const { config } = clientOf(fake.kubeconfig)
        yield* fake.put(helmRelease("bp-a", "Unknown"))
        const before = yield* fake.resourceVersion
        yield* fake.put(helmRelease("bp-a", "True"))
        yield* fake.compact
        const path = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/flux-system/helmreleases"
        const stale = yield* openWatch(config, path, { resourceVersion: String(before) })
        yield* stale.until(() => stale.state.done)
        expect(stale.events.map((event) => [event.type, event.object.code, event.object.reason])).toEqual([["ERROR", 410, "Expired"]])

        const current = yield* openWatch(config, path, { resourceVersion: String(yield* fake.resourceVersion) })
        yield* fake.awaitWatches(1)
        yield* fake.forceGone
        yield* current.until(() => current.state.done)
        expect(current.events.map((event) => [event.type, event.object.code])).toEqual([["ERROR", 410]])
      }),
    30_000
  )

  it.scoped(
    "drops watch connections on demand",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const { config } = clientOf(fake.kubeconfig)
        const watch = yield* openWatch(config, "/api/v1/namespaces/default/configmaps", {})
        yield* fake.awaitWatches(1)
        yield* fake.dropConnections
        yield* watch.until(() => watch.state.done)
        expect(yield* fake.openWatches).toBe(0)
      }),
    30_000
  )

  it.scoped(
    "pages a list with limit/continue and expires the continue token after a compaction",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const { core } = clientOf(fake.kubeconfig)
        for (const name of ["a", "b", "c"])
          yield* fake.put({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "default" }, data: {} })
        const first = yield* Effect.promise(() => core.listNamespacedConfigMap({ namespace: "default", limit: 2 }))
        expect(first.items.map((item) => item.metadata?.name)).toEqual(["a", "b"])
        const token = first.metadata?._continue ?? ""
        const second = yield* Effect.promise(() => core.listNamespacedConfigMap({ namespace: "default", limit: 2, _continue: token }))
        expect(second.items.map((item) => item.metadata?.name)).toEqual(["c"])
        yield* fake.put({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "d", namespace: "default" }, data: {} })
        yield* fake.compact
        expect(yield* failureOf(core.listNamespacedConfigMap({ namespace: "default", limit: 2, _continue: token }))).toMatchObject({
          code: 410,
          reason: "Expired"
        })
      }),
    30_000
  )

  it.scoped(
    "applies strategic merge patches with the ip merge key of hostAliases, and merge patches that replace lists",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const { apps } = clientOf(fake.kubeconfig)
        const deployment = {
          metadata: { name: "clustermesh-apiserver", namespace: "kube-system" },
          spec: {
            selector: { matchLabels: { app: "x" } },
            template: {
              metadata: { labels: { app: "x" } },
              spec: { containers: [{ name: "main", image: "one" }], hostAliases: [{ ip: "10.0.0.1", hostnames: ["r1.mesh.cilium.io"] }] }
            }
          },
          status: { replicas: 7 }
        }
        const created = yield* Effect.promise(() => apps.createNamespacedDeployment({ namespace: "kube-system", body: deployment }))
        expect(created.metadata?.generation).toBe(1)
        expect(created.status).toBeUndefined()

        const strategic = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch)
        const merged = yield* Effect.promise(() =>
          apps.patchNamespacedDeployment(
            {
              name: "clustermesh-apiserver",
              namespace: "kube-system",
              body: {
                spec: {
                  template: {
                    spec: {
                      hostAliases: [{ ip: "10.0.0.2", hostnames: ["r2.mesh.cilium.io"] }],
                      containers: [{ name: "main", image: "two" }]
                    }
                  }
                }
              }
            },
            strategic
          )
        )
        expect(merged.spec?.template.spec?.hostAliases).toEqual([
          { ip: "10.0.0.1", hostnames: ["r1.mesh.cilium.io"] },
          { ip: "10.0.0.2", hostnames: ["r2.mesh.cilium.io"] }
        ])
        expect(merged.spec?.template.spec?.containers.map((container) => container.image)).toEqual(["two"])
        expect(merged.metadata?.generation).toBe(2)

        const replaced = yield* Effect.promise(() =>
          apps.patchNamespacedDeployment(
            {
              name: "clustermesh-apiserver",
              namespace: "kube-system",
              body: {
                spec: { template: { spec: { hostAliases: [{ $patch: "replace" }, { ip: "10.0.0.3", hostnames: ["r2.mesh.cilium.io"] }] } } }
              }
            },
            strategic
          )
        )
        expect(replaced.spec?.template.spec?.hostAliases).toEqual([{ ip: "10.0.0.3", hostnames: ["r2.mesh.cilium.io"] }])

        const mergePatched = yield* Effect.promise(() =>
          apps.patchNamespacedDeployment(
            {
              name: "clustermesh-apiserver",
              namespace: "kube-system",
              body: { spec: { template: { spec: { hostAliases: [{ ip: "10.0.0.4", hostnames: ["r3"] }] } } } }
            },
            k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch)
          )
        )
        expect(mergePatched.spec?.template.spec?.hostAliases).toEqual([{ ip: "10.0.0.4", hostnames: ["r3"] }])

        const jsonPatched = yield* Effect.promise(() =>
          apps.patchNamespacedDeployment({
            name: "clustermesh-apiserver",
            namespace: "kube-system",
            body: [{ op: "add", path: "/spec/template/metadata/annotations", value: { "kubectl.kubernetes.io/restartedAt": "now" } }]
          })
        )
        expect(jsonPatched.spec?.template.metadata?.annotations).toEqual({ "kubectl.kubernetes.io/restartedAt": "now" })
        const noChange = yield* Effect.promise(() =>
          apps.patchNamespacedDeployment(
            { name: "clustermesh-apiserver", namespace: "kube-system", body: { metadata: { labels: { a: "b" } } } },
            strategic
          )
        )
        expect(noChange.metadata?.generation).toBe(jsonPatched.metadata?.generation)
      }),
    30_000
  )

  it.scoped(
    "keeps Service status written by a controller and refuses a strategic merge patch on a custom resource",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const { core, custom } = clientOf(fake.kubeconfig)
        yield* fake.put({
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: "clustermesh-apiserver", namespace: "kube-system" },
          spec: { type: "LoadBalancer", ports: [{ port: 2379 }] },
          status: { loadBalancer: { ingress: [{ ip: "203.0.113.7" }] } }
        })
        const service = yield* Effect.promise(() => core.readNamespacedService({ name: "clustermesh-apiserver", namespace: "kube-system" }))
        expect(service.status?.loadBalancer?.ingress?.[0]?.ip).toBe("203.0.113.7")
        const replaced = yield* Effect.promise(() =>
          core.replaceNamespacedService({ name: "clustermesh-apiserver", namespace: "kube-system", body: { ...service, status: {} } })
        )
        expect(replaced.status?.loadBalancer?.ingress?.[0]?.ip).toBe("203.0.113.7")

        yield* fake.put(helmRelease("bp-a", "True"))
        const failure = yield* failureOf(
          custom.patchNamespacedCustomObject(
            {
              group: "helm.toolkit.fluxcd.io",
              version: "v2",
              namespace: "flux-system",
              plural: "helmreleases",
              name: "bp-a",
              body: { spec: { suspend: true } }
            },
            k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch)
          )
        )
        expect(failure).toMatchObject({ code: 415 })
        const stored = yield* fake.get({
          apiVersion: "helm.toolkit.fluxcd.io/v2",
          kind: "HelmRelease",
          namespace: "flux-system",
          name: "bp-a"
        })
        expect(Option.map(stored, (object) => object["spec"])).toEqual(Option.some(helmRelease("bp-a", "True").spec))
      }),
    30_000
  )

  it.scoped(
    "creates cluster-scoped ClusterRoleBindings once",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const { rbac } = clientOf(fake.kubeconfig)
        const body = {
          metadata: { name: "owner" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
          subjects: [{ kind: "User", name: "owner@example.com", apiGroup: "rbac.authorization.k8s.io" }]
        }
        yield* Effect.promise(() => rbac.createClusterRoleBinding({ body }))
        expect(yield* failureOf(rbac.createClusterRoleBinding({ body }))).toMatchObject({ code: 409, reason: "AlreadyExists" })
        const all = yield* fake.list({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding" })
        expect(all.map((object) => object.metadata.name)).toEqual(["owner"])
      }),
    30_000
  )

  it.scoped(
    "fails the next requests on demand",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const { core } = clientOf(fake.kubeconfig)
        yield* fake.failNext(1, 503)
        expect(yield* failureOf(core.listNamespacedSecret({ namespace: "default" }))).toMatchObject({
          code: 503,
          reason: "ServiceUnavailable"
        })
        const ok = yield* Effect.promise(() => core.listNamespacedSecret({ namespace: "default" }))
        expect(ok.items).toEqual([])
        expect((yield* fake.requests).map((request) => request.status)).toEqual([503, 200])
      }),
    30_000
  )
})

describe("FakeKubernetesApi patch semantics (as the API server applies them)", () => {
  const daemonSet = {
    metadata: { name: "cilium", finalizers: ["a"] },
    spec: {
      template: {
        spec: {
          containers: [
            {
              name: "agent",
              image: "v1",
              env: [
                { name: "A", value: "1" },
                { name: "B", value: "2" }
              ]
            },
            { name: "sidecar", image: "s1" }
          ],
          hostAliases: [
            { ip: "10.0.0.1", hostnames: ["r1"] },
            { ip: "10.0.0.2", hostnames: ["r2"] }
          ],
          tolerations: [{ key: "x" }]
        }
      }
    }
  }
  const spec = (value: unknown) => (value as { spec: { template: { spec: Record<string, unknown> } } }).spec.template.spec

  it("merges keyed lists by their merge key and replaces unkeyed lists", () => {
    const patched = FakeKubernetesApi.strategicMergePatch(daemonSet, {
      spec: {
        template: {
          spec: {
            containers: [{ name: "agent", env: [{ name: "B", value: "3" }] }],
            hostAliases: [{ ip: "10.0.0.2", hostnames: ["r2b"] }],
            tolerations: [{ key: "y" }]
          }
        }
      }
    })
    expect(spec(patched)["containers"]).toEqual([
      {
        name: "agent",
        image: "v1",
        env: [
          { name: "A", value: "1" },
          { name: "B", value: "3" }
        ]
      },
      { name: "sidecar", image: "s1" }
    ])
    expect(spec(patched)["hostAliases"]).toEqual([
      { ip: "10.0.0.1", hostnames: ["r1"] },
      { ip: "10.0.0.2", hostnames: ["r2b"] }
    ])
    expect(spec(patched)["tolerations"]).toEqual([{ key: "y" }])
  })

  it("honours the directives: $patch replace/delete, $setElementOrder, $deleteFromPrimitiveList, $retainKeys, null", () => {
    const patched = FakeKubernetesApi.strategicMergePatch(daemonSet, {
      metadata: { "$deleteFromPrimitiveList/finalizers": ["a"] },
      spec: {
        template: {
          spec: {
            "$setElementOrder/hostAliases": [{ ip: "10.0.0.2" }, { ip: "10.0.0.1" }],
            hostAliases: [
              { ip: "10.0.0.1", $patch: "delete" },
              { ip: "10.0.0.3", hostnames: ["r3"] }
            ],
            containers: [{ name: "sidecar", $patch: "delete" }],
            tolerations: null
          }
        }
      }
    })
    expect((patched as { metadata: { finalizers: Array<string> } }).metadata.finalizers).toEqual([])
    expect(spec(patched)["hostAliases"]).toEqual([
      { ip: "10.0.0.2", hostnames: ["r2"] },
      { ip: "10.0.0.3", hostnames: ["r3"] }
    ])
    expect((spec(patched)["containers"] as Array<{ name: string }>).map((container) => container.name)).toEqual(["agent"])
    expect("tolerations" in spec(patched)).toBe(false)
    const replacedMap = FakeKubernetesApi.strategicMergePatch(daemonSet, {
      spec: { template: { spec: { $patch: "replace", hostAliases: [] } } }
    })
    expect(spec(replacedMap)).toEqual({ hostAliases: [] })
    const retained = FakeKubernetesApi.strategicMergePatch({ a: 1, b: 2, c: 3 }, { $retainKeys: ["a", "c"], c: 4 })
    expect(retained).toEqual({ a: 1, c: 4 })
  })

  it("JSON merge patch replaces lists and deletes with null; JSON Patch applies operations in order", () => {
    expect(FakeKubernetesApi.jsonMergePatch({ a: [1, 2], b: { c: 1, d: 2 } }, { a: [3], b: { c: null } })).toEqual({ a: [3], b: { d: 2 } })
    expect(
      FakeKubernetesApi.jsonPatch({ a: [1, 2], b: { c: 1 } }, [
        { op: "test", path: "/b/c", value: 1 },
        { op: "add", path: "/a/-", value: 3 },
        { op: "replace", path: "/b/c", value: 2 },
        { op: "remove", path: "/a/0" },
        { op: "copy", from: "/b", path: "/e" },
        { op: "move", from: "/b/c", path: "/d" }
      ])
    ).toEqual({ a: [2, 3], b: {}, d: 2, e: { c: 2 } })
    expect(() => FakeKubernetesApi.jsonPatch({ a: 1 }, [{ op: "test", path: "/a", value: 2 }])).toThrow()
  })
})
