/**
 * The ClusterWatch conformance suite: what every cluster-watch adapter (Kubernetes, the simulator,
 * yours) must do, run from a three-line test file against a cluster the suite drives.
 */
import { expect, layer } from "@effect/vitest"
import { ClusterWatch, HelmRelease } from "@sovereign/core"
import { Duration, Effect, Layer, Stream, SubscriptionRef } from "effect"
import type { Scope } from "effect"
import { ClusterDriver, type ReleaseState } from "./ClusterDriver.js"

export { ClusterDriver, fakeKubernetesDriverLayer, helmReleaseObject, type ReleaseState } from "./ClusterDriver.js"

export interface SuiteOptions {
  /** Whether the driver implements `faults` (the fault tests are registered only then). */
  readonly faults: boolean
  /** Releases × transitions of the scale test (default 1,000 × 10). */
  readonly scale?: { readonly releases: number; readonly transitions: number }
  /** The resync period used where a re-list must reveal what a silent watch hid (default 1 s). */
  readonly shortResync?: Duration.DurationInput
  /** Longest wait for an expected event (default 30 s; the scale test gets 4×). */
  readonly waitTimeout?: Duration.DurationInput
}

// ---------------------------------------------------------------------------------------------
// Observing the adapter

type Observation = HelmRelease.HelmReleaseObservation

interface Collected {
  readonly events: Array<ClusterWatch.ReleaseEvent>
  readonly history: Map<string, Array<Observation>>
  readonly latest: Map<string, Observation | "deleted">
  syncedAfter: number | undefined
  failure: ClusterWatch.ClusterError | undefined
}

interface Session {
  readonly collected: Collected
  /** Waits until `predicate` holds over what was collected; fails with `what` (and the last events) on timeout. */
  readonly until: (what: string, predicate: (collected: Collected) => boolean, timeout?: Duration.DurationInput) => Effect.Effect<void>
}

/** The part of an observation the driver controls. */
export const stateOf = (observation: Observation): ReleaseState => {
  const ready = observation.conditions.find((condition) => condition.type === "Ready")
  const stalled = observation.conditions.some((condition) => condition.type === "Stalled" && condition.status === "True")
  return {
    ...(ready === undefined ? {} : { ready: { status: ready.status, reason: ready.reason ?? "", message: ready.message ?? "" } }),
    ...(stalled ? { stalled: true } : {}),
    suspend: observation.suspend,
    dependsOn: [...observation.dependsOn]
  }
}

const normalState = (state: ReleaseState): ReleaseState => ({
  ...(state.ready === undefined
    ? {}
    : { ready: { status: state.ready.status, reason: state.ready.reason, message: state.ready.message ?? "" } }),
  ...(state.stalled === true ? { stalled: true } : {}),
  suspend: state.suspend ?? false,
  dependsOn: [...(state.dependsOn ?? [])]
})

const sameState = (observation: Observation | "deleted" | undefined, state: ReleaseState): boolean =>
  observation !== undefined && observation !== "deleted" && JSON.stringify(stateOf(observation)) === JSON.stringify(normalState(state))

/** True when `observed` appears in `applied` in the same order (the adapter may coalesce across a re-list, never reorder or invent). */
const isOrderedSubsequence = (observed: ReadonlyArray<ReleaseState>, applied: ReadonlyArray<ReleaseState>): boolean => {
  let index = 0
  for (const state of observed) {
    const key = JSON.stringify(normalState(state))
    while (index < applied.length && JSON.stringify(normalState(applied[index]!)) !== key) index++
    if (index === applied.length) return false
    index++
  }
  return true
}

const describeEvent = (event: ClusterWatch.ReleaseEvent): string =>
  event._tag === "Observed"
    ? `Observed ${event.release.name} ${JSON.stringify(stateOf(event.release).ready ?? "no-ready")}`
    : event._tag === "Deleted"
      ? `Deleted ${event.name}`
      : event._tag

const attach = (
  prefix: string,
  resyncInterval: Duration.DurationInput,
  defaultTimeout: Duration.DurationInput
): Effect.Effect<Session, never, ClusterWatch.ClusterWatch | ClusterDriver | Scope.Scope> =>
  Effect.gen(function* () {
    const watch = yield* ClusterWatch.ClusterWatch
    const driver = yield* ClusterDriver
    const collected: Collected = { events: [], history: new Map(), latest: new Map(), syncedAfter: undefined, failure: undefined }
    const version = yield* SubscriptionRef.make(0)
    const record = (event: ClusterWatch.ReleaseEvent) =>
      Effect.gen(function* () {
        collected.events.push(event)
        if (event._tag === "Observed") {
          const list = collected.history.get(event.release.name) ?? []
          list.push(event.release)
          collected.history.set(event.release.name, list)
          collected.latest.set(event.release.name, event.release)
        } else if (event._tag === "Deleted") collected.latest.set(event.name, "deleted")
        else if (event._tag === "Synced" && collected.syncedAfter === undefined) collected.syncedAfter = collected.events.length - 1
        yield* SubscriptionRef.update(version, (n) => n + 1)
      })
    yield* watch
      .watch(driver.kubeconfig, { namespace: driver.namespace, namePrefix: prefix, resyncInterval: Duration.decode(resyncInterval) })
      .pipe(
        Stream.runForEach(record),
        Effect.catchAll((error) =>
          Effect.gen(function* () {
            collected.failure = error
            yield* SubscriptionRef.update(version, (n) => n + 1)
          })
        ),
        Effect.forkScoped
      )
    const until = (what: string, predicate: (collected: Collected) => boolean, timeout?: Duration.DurationInput) =>
      version.changes.pipe(
        Stream.filter(() => predicate(collected) || collected.failure !== undefined),
        Stream.take(1),
        Stream.runDrain,
        Effect.timeoutFail({
          duration: timeout ?? defaultTimeout,
          onTimeout: () =>
            new Error(`timed out waiting for ${what}; last events: ${collected.events.slice(-8).map(describeEvent).join(", ") || "none"}`)
        }),
        Effect.flatMap(() =>
          collected.failure === undefined
            ? Effect.void
            : Effect.fail(new Error(`the watch failed while waiting for ${what}: ${collected.failure.message}`))
        ),
        Effect.orDie
      )
    return { collected, until }
  })

// ---------------------------------------------------------------------------------------------
// The suite

const ready = (reason = "UpgradeSucceeded"): ReleaseState => ({ ready: { status: "True", reason } })
const progressing = (message = ""): ReleaseState => ({ ready: { status: "Unknown", reason: "Progressing", message } })
const failed = (reason = "InstallFailed", message = ""): ReleaseState => ({ ready: { status: "False", reason, message } })

/**
 * Registers the suite. `watchLayer` provides the ClusterWatch under test and the driver of its
 * cluster; it is built once for the suite. Example (test/Conformance.test.ts of an adapter):
 *
 *   import { ClusterWatchSuite } from "@sovereign/testkit"
 *   ClusterWatchSuite.suite("kubernetes", Layer.merge(KubernetesClusterWatch.layer(), ClusterWatchSuite.fakeKubernetesDriverLayer()), { faults: true })
 */
export const suite = <E>(
  name: string,
  watchLayer: Layer.Layer<ClusterWatch.ClusterWatch | ClusterDriver, E>,
  options: SuiteOptions
): void => {
  const waitTimeout = Duration.decode(options.waitTimeout ?? Duration.seconds(30))
  const shortResync = Duration.decode(options.shortResync ?? Duration.seconds(1))
  /** Long enough that no re-list happens during a test unless the test asks for one. */
  const longResync = Duration.minutes(30)
  const scale = options.scale ?? { releases: 1000, transitions: 10 }
  let counter = 0
  /** A fresh name prefix per test, so tests never see each other's releases. */
  const freshPrefix = () => `bp-cw${++counter}x-`
  const driver = ClusterDriver
  const testTimeout = Duration.toMillis(waitTimeout) * 2
  if (!options.faults) {
    console.info(
      `ClusterWatch conformance (${name}): the driver has no fault operations; the 410, dropped-connection and silent-watch checks are not registered`
    )
  }

  layer(watchLayer, { excludeTestServices: true })(`ClusterWatch conformance: ${name}`, (it) => {
    it.scoped(
      "reports every matching release present at attach, already Ready ones too, then Synced",
      () =>
        Effect.gen(function* () {
          const cluster = yield* driver
          const prefix = freshPrefix()
          yield* cluster.apply(`${prefix}ready`, ready())
          yield* cluster.apply(`${prefix}installing`, progressing())
          yield* cluster.apply(`${prefix}pending`, {})
          yield* cluster.apply(`other-${prefix}ready`, ready())
          const session = yield* attach(prefix, longResync, waitTimeout)
          yield* session.until("Synced", (collected) => collected.syncedAfter !== undefined)
          const before = session.collected.events.slice(0, session.collected.syncedAfter)
          const names = before.flatMap((event) => (event._tag === "Observed" ? [event.release.name] : [])).sort()
          expect(names).toEqual([`${prefix}installing`, `${prefix}pending`, `${prefix}ready`])
          expect(before.every((event) => event._tag === "Observed")).toBe(true)
          const readyRelease = session.collected.latest.get(`${prefix}ready`)
          expect(sameState(readyRelease, ready())).toBe(true)
          expect(sameState(session.collected.latest.get(`${prefix}pending`), {})).toBe(true)
          for (const event of before) {
            if (event._tag === "Observed") {
              expect(event.release.namespace).toBe(cluster.namespace)
              expect(event.release.observedGeneration ?? 0).toBeLessThanOrEqual(event.release.generation)
            }
          }
          expect(session.collected.events.filter((event) => event._tag === "Synced")).toHaveLength(1)
        }),
      testTimeout
    )

    it.scoped(
      "reports every transition in order, per release, none lost",
      () =>
        Effect.gen(function* () {
          const cluster = yield* driver
          const prefix = freshPrefix()
          const session = yield* attach(prefix, longResync, waitTimeout)
          yield* session.until("Synced", (collected) => collected.syncedAfter !== undefined)
          const sequenceA = [progressing(), failed("InstallFailed"), progressing("retry"), failed("UpgradeFailed"), ready()]
          const sequenceB = [
            {},
            failed("DependencyNotReady", "dependency 'flux-system/x' is not ready"),
            progressing(),
            ready("InstallSucceeded")
          ]
          for (let step = 0; step < Math.max(sequenceA.length, sequenceB.length); step++) {
            if (step < sequenceA.length) yield* cluster.apply(`${prefix}a`, sequenceA[step]!)
            if (step < sequenceB.length) yield* cluster.apply(`${prefix}b`, sequenceB[step]!)
          }
          yield* session.until(
            "both releases Ready",
            (collected) =>
              sameState(collected.latest.get(`${prefix}a`), ready()) &&
              sameState(collected.latest.get(`${prefix}b`), ready("InstallSucceeded"))
          )
          const historyOf = (release: string) =>
            (session.collected.history.get(release) ?? []).map((observation) => JSON.stringify(stateOf(observation)))
          expect(historyOf(`${prefix}a`)).toEqual(sequenceA.map((state) => JSON.stringify(normalState(state))))
          expect(historyOf(`${prefix}b`)).toEqual(sequenceB.map((state) => JSON.stringify(normalState(state))))
        }),
      testTimeout
    )

    it.scoped(
      "reports suspend, dependsOn and a Stalled condition as written",
      () =>
        Effect.gen(function* () {
          const cluster = yield* driver
          const prefix = freshPrefix()
          const session = yield* attach(prefix, longResync, waitTimeout)
          yield* session.until("Synced", (collected) => collected.syncedAfter !== undefined)
          const suspended: ReleaseState = { ...ready(), suspend: true, dependsOn: [`${prefix}base`, `${prefix}other`] }
          const stalled: ReleaseState = { ...failed("RetriesExceeded"), stalled: true }
          yield* cluster.apply(`${prefix}suspended`, suspended)
          yield* cluster.apply(`${prefix}stalled`, stalled)
          yield* session.until(
            "the suspended and the stalled release",
            (collected) =>
              sameState(collected.latest.get(`${prefix}suspended`), suspended) &&
              sameState(collected.latest.get(`${prefix}stalled`), stalled)
          )
          const observed = session.collected.latest.get(`${prefix}suspended`)
          expect(observed !== "deleted" && observed?.dependsOn).toEqual([`${prefix}base`, `${prefix}other`])
        }),
      testTimeout
    )

    it.scoped(
      "reports a deletion, and the deleted release is not reported again",
      () =>
        Effect.gen(function* () {
          const cluster = yield* driver
          const prefix = freshPrefix()
          yield* cluster.apply(`${prefix}gone`, progressing())
          yield* cluster.apply(`${prefix}stays`, progressing())
          const session = yield* attach(prefix, longResync, waitTimeout)
          yield* session.until("Synced", (collected) => collected.syncedAfter !== undefined)
          yield* cluster.remove(`${prefix}gone`)
          yield* session.until("the deletion", (collected) => collected.latest.get(`${prefix}gone`) === "deleted")
          yield* cluster.apply(`${prefix}stays`, ready())
          yield* session.until("the surviving release Ready", (collected) => sameState(collected.latest.get(`${prefix}stays`), ready()))
          const deletions = session.collected.events.filter((event) => event._tag === "Deleted")
          expect(deletions.map((event) => (event._tag === "Deleted" ? event.name : ""))).toEqual([`${prefix}gone`])
          expect(session.collected.latest.get(`${prefix}gone`)).toBe("deleted")
        }),
      testTimeout
    )

    if (options.faults) {
      const faultTest = (fault: "forceGone" | "dropConnections") =>
        Effect.gen(function* () {
          const cluster = yield* driver
          const faults = cluster.faults!
          const prefix = freshPrefix()
          const names = ["a", "b", "c", "d", "e"].map((suffix) => `${prefix}${suffix}`)
          const applied = new Map<string, Array<ReleaseState>>(names.map((release) => [release, [progressing()]]))
          for (const release of names) yield* cluster.apply(release, progressing())
          const session = yield* attach(prefix, longResync, waitTimeout)
          yield* session.until("Synced", (collected) => collected.syncedAfter !== undefined)
          const step = (state: (release: string) => ReleaseState) =>
            Effect.forEach(names, (release) => {
              applied.get(release)!.push(state(release))
              return cluster.apply(release, state(release))
            })
          yield* step(() => failed("InstallFailed", "before the fault"))
          yield* faults[fault]
          yield* step(() => progressing("after the fault"))
          yield* faults[fault]
          yield* step(() => failed("UpgradeFailed", "after the second fault"))
          yield* step((release) => (release.endsWith("e") ? failed("ArtifactFailed", "final") : ready()))
          const final = (release: string) => applied.get(release)![applied.get(release)!.length - 1]!
          yield* session.until("every release at its final state", (collected) =>
            names.every((release) => sameState(collected.latest.get(release), final(release)))
          )
          for (const release of names) {
            const observed = (session.collected.history.get(release) ?? []).map(stateOf)
            expect(isOrderedSubsequence(observed, applied.get(release)!), `${release}: ${JSON.stringify(observed)}`).toBe(true)
          }
        })

      it.scoped(
        "a forced 410 Gone loses no transition (the final state of every release is reported, in order)",
        () => faultTest("forceGone"),
        testTimeout
      )
      it.scoped("a dropped connection loses no transition", () => faultTest("dropConnections"), testTimeout)

      it.scoped(
        "the periodic re-list reports a convergence and a deletion that a silent watch hid",
        () =>
          Effect.gen(function* () {
            const cluster = yield* driver
            const faults = cluster.faults!
            const prefix = freshPrefix()
            yield* cluster.apply(`${prefix}quiet`, progressing())
            yield* cluster.apply(`${prefix}removed`, progressing())
            const session = yield* attach(prefix, shortResync, waitTimeout)
            yield* session.until("Synced", (collected) => collected.syncedAfter !== undefined)
            yield* Effect.acquireRelease(faults.silenceWatches(true), () => faults.silenceWatches(false))
            yield* cluster.apply(`${prefix}quiet`, ready())
            yield* cluster.remove(`${prefix}removed`)
            yield* session.until(
              "the re-list to report the hidden changes",
              (collected) =>
                sameState(collected.latest.get(`${prefix}quiet`), ready()) && collected.latest.get(`${prefix}removed`) === "deleted"
            )
          }),
        testTimeout
      )
    }

    it.scoped(
      `processes ${scale.releases} releases with ${scale.transitions} transitions each without loss`,
      () =>
        Effect.gen(function* () {
          const cluster = yield* driver
          const prefix = freshPrefix()
          const names = Array.from({ length: scale.releases }, (_, index) => `${prefix}${String(index).padStart(4, "0")}`)
          /** Transition t of a release: distinct from its predecessor, ending Ready. */
          const stateAt = (t: number): ReleaseState =>
            t === scale.transitions ? ready() : t % 2 === 0 ? progressing(`round ${t}`) : failed("InstallFailed", `round ${t}`)
          yield* Effect.forEach(names, (release) => cluster.apply(release, stateAt(0)), { discard: true })
          const session = yield* attach(prefix, longResync, Duration.times(waitTimeout, 4))
          yield* session.until("Synced", (collected) => collected.syncedAfter !== undefined)
          expect(session.collected.history.size).toBe(scale.releases)
          for (let t = 1; t <= scale.transitions; t++) {
            yield* Effect.forEach(names, (release) => cluster.apply(release, stateAt(t)), { discard: true })
          }
          let settled = 0
          yield* session.until("every release Ready", (collected) => {
            while (settled < names.length && sameState(collected.latest.get(names[settled]!), ready())) settled++
            return settled === names.length
          })
          const expected = Array.from({ length: scale.transitions + 1 }, (_, t) => JSON.stringify(normalState(stateAt(t))))
          const lossy = names.filter(
            (release) =>
              JSON.stringify((session.collected.history.get(release) ?? []).map((observation) => JSON.stringify(stateOf(observation)))) !==
              JSON.stringify(expected)
          )
          expect(lossy).toEqual([])
          yield* Effect.forEach(names, (release) => cluster.remove(release), { discard: true })
        }),
      testTimeout * 4
    )
  })
}
