/**
 * Kubernetes adapter: how fast the HelmRelease watch turns API-server events into observations,
 * against the testkit's fake API server (HTTPS) through the real @kubernetes/client-node.
 */
import { KubernetesClusterWatch } from "@sovereign/adapter-kubernetes"
import type { ClusterWatch } from "@sovereign/core"
// A module path, not the testkit index: the index also loads the vitest-bound suites.
import * as FakeKubernetesApi from "@sovereign/testkit/FakeKubernetesApi"
import { Deferred, Duration, Effect, Redacted, Stream } from "effect"
import type { Metric } from "./run.js"

const releases = 1000
const transitions = 10

const helmRelease = (name: string, round: number): FakeKubernetesApi.KubeObject => ({
  apiVersion: "helm.toolkit.fluxcd.io/v2",
  kind: "HelmRelease",
  metadata: { name, namespace: "flux-system", generation: 1 },
  spec: { interval: "10m" },
  status: {
    observedGeneration: 1,
    conditions: [
      round === transitions
        ? { type: "Ready", status: "True", reason: "UpgradeSucceeded", message: "done" }
        : {
            type: "Ready",
            status: round % 2 === 0 ? "Unknown" : "False",
            reason: round % 2 === 0 ? "Progressing" : "InstallFailed",
            message: `round ${round}`
          }
    ]
  }
})

const measure = Effect.gen(function* () {
  const fake = yield* FakeKubernetesApi.make()
  const names = Array.from({ length: releases }, (_, index) => `bp-r${String(index).padStart(4, "0")}`)
  for (const name of names) yield* fake.put(helmRelease(name, 0))
  const synced = yield* Deferred.make<void>()
  const done = yield* Deferred.make<void>()
  let observations = 0
  let ready = 0
  const options: ClusterWatch.WatchOptions = { namespace: "flux-system", namePrefix: "bp-", resyncInterval: Duration.minutes(30) }
  const attachedAt = performance.now()
  yield* KubernetesClusterWatch.make({ tailLogs: false })
    .watch(Redacted.make(fake.kubeconfig), options)
    .pipe(
      Stream.runForEach((event) =>
        Effect.gen(function* () {
          if (event._tag === "Synced") yield* Deferred.succeed(synced, undefined)
          if (event._tag !== "Observed") return
          observations++
          if (event.release.conditions[0]?.status === "True" && ++ready === releases) yield* Deferred.succeed(done, undefined)
        })
      ),
      Effect.forkScoped
    )
  yield* Deferred.await(synced)
  const syncMs = performance.now() - attachedAt
  yield* fake.awaitWatches(1)
  const started = performance.now()
  for (let round = 1; round <= transitions; round++) for (const name of names) yield* fake.put(helmRelease(name, round))
  yield* Deferred.await(done)
  const seconds = (performance.now() - started) / 1000
  return {
    "kubernetes.watch.initial_list_1000.ms": { value: syncMs, unit: "ms", goal: "—" },
    "kubernetes.watch.events_per_second": { value: (releases * transitions) / seconds, unit: "events/s", goal: ">= 1000" },
    "kubernetes.watch.lost_transitions": { value: releases * (transitions + 1) - observations, unit: "observations", goal: "0" }
  } satisfies Record<string, Metric>
})

export default (): Promise<Record<string, Metric>> => Effect.runPromise(Effect.scoped(measure))
