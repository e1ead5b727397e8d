import { describe, expect, it } from "@effect/vitest"
import { ClusterWatch } from "@sovereign/core"
import { ClusterWatchSuite, FakeKubernetesApi } from "@sovereign/testkit"
import { Chunk, Duration, Effect, Fiber, Redacted, Stream } from "effect"
import * as KubernetesClusterWatch from "../src/KubernetesClusterWatch.js"

const options: ClusterWatch.WatchOptions = { namespace: "flux-system", namePrefix: "bp-", resyncInterval: Duration.minutes(30) }

const fiberJoin = Fiber.join

/** Events up to and including Synced. */
const initialList = (fake: FakeKubernetesApi.FakeKubernetesApi, settings: KubernetesClusterWatch.KubernetesClusterWatchOptions = {}) =>
  KubernetesClusterWatch.make(settings)
    .watch(Redacted.make(fake.kubeconfig), options)
    .pipe(
      Stream.takeUntil((event) => event._tag === "Synced"),
      Stream.runCollect,
      Effect.map(Chunk.toArray)
    )

describe("KubernetesClusterWatch", () => {
  it.scopedLive(
    "decodes the fields that decide a release's state, and skips what does not decode or match",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const release = ClusterWatchSuite.helmReleaseObject(
          "flux-system",
          "bp-gitea",
          { ready: { status: "False", reason: "InstallFailed", message: "boom" }, dependsOn: ["bp-keycloak"] },
          3
        )
        yield* fake.put({ ...release, status: { ...(release["status"] as object), observedGeneration: 2 } })
        yield* fake.put(
          ClusterWatchSuite.helmReleaseObject("flux-system", "bp-broken", { ready: { status: "Maybe" as "True", reason: "x" } }, 1)
        )
        yield* fake.put(ClusterWatchSuite.helmReleaseObject("flux-system", "cilium", { ready: { status: "True", reason: "x" } }, 1))
        yield* fake.put(ClusterWatchSuite.helmReleaseObject("other", "bp-elsewhere", { ready: { status: "True", reason: "x" } }, 1))
        const events = yield* initialList(fake)
        expect(events.map((event) => event._tag)).toEqual(["Observed", "Synced"])
        const observed = events[0]!
        expect(observed._tag === "Observed" && observed.release).toMatchObject({
          name: "bp-gitea",
          namespace: "flux-system",
          generation: 3,
          observedGeneration: 2,
          suspend: false,
          dependsOn: ["bp-keycloak"],
          conditions: [{ type: "Ready", status: "False", reason: "InstallFailed", message: "boom" }]
        })
      }),
    30_000
  )

  it.scopedLive(
    "lists in pages and reports every release of a large namespace before Synced",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        for (let index = 0; index < 25; index++) {
          yield* fake.put(ClusterWatchSuite.helmReleaseObject("flux-system", `bp-r${index}`, { ready: { status: "True", reason: "x" } }, 1))
        }
        const events = yield* initialList(fake, { listPageSize: 10, tailLogs: false })
        expect(events.filter((event) => event._tag === "Observed")).toHaveLength(25)
        const lists = (yield* fake.requests).filter((request) => request.path.endsWith("/helmreleases") && !request.watch)
        expect(lists.map((request) => request.query["limit"])).toEqual(["10", "10", "10"])
      }),
    30_000
  )

  it.scopedLive(
    "keeps retrying a list the server fails (e.g. Flux not installed yet) until it succeeds",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        yield* fake.put(ClusterWatchSuite.helmReleaseObject("flux-system", "bp-late", { ready: { status: "True", reason: "x" } }, 1))
        // A zero reachability budget: one failed probe, then on to the list, whose first two attempts fail.
        yield* fake.failNext(3, 500)
        const events = yield* initialList(fake, {
          reachability: { budget: Duration.zero },
          tailLogs: false,
          reconnectInitialDelay: Duration.millis(10),
          reconnectMaxDelay: Duration.millis(20)
        })
        const statuses = (yield* fake.requests)
          .filter((request) => !request.watch)
          .map((request) => `${request.path.endsWith("/version") ? "probe" : "list"} ${request.status}`)
        expect(statuses).toEqual(["probe 500", "list 500", "list 500", "list 200"])
        expect(events.map((event) => event._tag)).toEqual(["Observed", "Synced"])
      }),
    30_000
  )

  it.scopedLive(
    "reports helm-controller log lines that name a watched release, attributed to it",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        yield* fake.put({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "helm-controller-7d9f", namespace: "flux-system", labels: { app: "helm-controller" } },
          spec: { containers: [{ name: "manager", image: "helm-controller" }] },
          status: { phase: "Running" }
        })
        yield* fake.put(
          ClusterWatchSuite.helmReleaseObject("flux-system", "bp-gitea", { ready: { status: "Unknown", reason: "Progressing" } }, 1)
        )
        const logs = yield* KubernetesClusterWatch.make({ logRetryDelay: Duration.millis(20) })
          .watch(Redacted.make(fake.kubeconfig), options)
          .pipe(
            Stream.filter((event) => event._tag === "Log"),
            Stream.take(2),
            Stream.runCollect,
            Effect.fork
          )
        yield* fake.awaitLogFollowers(1)
        yield* fake.appendPodLog("flux-system", "helm-controller-7d9f", '{"level":"info","msg":"starting manager"}')
        yield* fake.appendPodLog(
          "flux-system",
          "helm-controller-7d9f",
          '{"level":"error","msg":"install failed","HelmRelease":{"name":"bp-gitea","namespace":"flux-system"}}'
        )
        yield* fake.appendPodLog(
          "flux-system",
          "helm-controller-7d9f",
          '{"level":"info","msg":"x","HelmRelease":{"name":"podinfo","namespace":"flux-system"}}'
        )
        yield* fake.appendPodLog("flux-system", "helm-controller-7d9f", 'level=warn msg="retrying" helmrelease="flux-system/bp-gitea"')
        const events = Chunk.toArray(yield* fiberJoin(logs))
        expect(events.map((event) => (event._tag === "Log" ? [event.release, event.level] : []))).toEqual([
          ["bp-gitea", "ERROR"],
          ["bp-gitea", "WARN"]
        ])
      }),
    30_000
  )

  it.scopedLive(
    "gives up on a watch whose response never starts, and keeps trying until the server answers",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        yield* fake.put(
          ClusterWatchSuite.helmReleaseObject("flux-system", "bp-a", { ready: { status: "Unknown", reason: "Progressing" } }, 1)
        )
        const seen = yield* KubernetesClusterWatch.make({
          requestTimeout: Duration.millis(200),
          reconnectInitialDelay: Duration.millis(10),
          reconnectMaxDelay: Duration.millis(20),
          tailLogs: false
        })
          .watch(Redacted.make(fake.kubeconfig), options)
          .pipe(
            Stream.filter((event) => event._tag === "Observed" && event.release.conditions[0]?.status === "True"),
            Stream.runHead,
            Effect.fork
          )
        yield* fake.awaitWatches(1)
        yield* fake.hangRequests(true)
        yield* fake.dropConnections
        // Two hung watch requests: the adapter abandoned the first at its deadline and tried again.
        yield* fake.awaitRequests((request) => request.watch && request.status === 0, 2)
        yield* fake.hangRequests(false)
        yield* fake.put(
          ClusterWatchSuite.helmReleaseObject("flux-system", "bp-a", { ready: { status: "True", reason: "InstallSucceeded" } }, 1)
        )
        const observed = yield* Fiber.join(seen)
        expect(observed._tag).toBe("Some")
      }),
    30_000
  )
})
