/** Flux HelmRelease observations, their derived component state, and the Phase-1 completion gate (SPEC 2.6). */
import { Data, Duration, Schema } from "effect"
import type { ReleaseEvent } from "./ClusterWatch.js"
import type { JobStatus } from "./Job.js"

export const ConditionStatus = Schema.Literal("True", "False", "Unknown")

export const Condition = Schema.Struct({
  type: Schema.String,
  status: ConditionStatus,
  reason: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  lastTransitionTime: Schema.optional(Schema.String)
})
export type Condition = typeof Condition.Type

/** The fields of a HelmRelease that decide its state; what a `ClusterWatch` reports per object. */
export const HelmReleaseObservation = Schema.Struct({
  name: Schema.String,
  namespace: Schema.String,
  generation: Schema.Number,
  observedGeneration: Schema.optional(Schema.Number),
  suspend: Schema.Boolean,
  conditions: Schema.Array(Condition),
  /** Names of the HelmReleases this one depends on (`spec.dependsOn[].name`). */
  dependsOn: Schema.Array(Schema.String),
  resourceVersion: Schema.optional(Schema.String)
})
export type HelmReleaseObservation = typeof HelmReleaseObservation.Type

export const ComponentState = Schema.Literal("pending", "installing", "retrying", "installed", "failed")
export type ComponentState = typeof ComponentState.Type

// ---------------------------------------------------------------------------------------------
// State derivation (SPEC 2.6 rules 2–10; rule 1, deletion, is the census' business below)

/** A release's derived state, whether it is suspended, and the text an operator sees for it. */
export const ReleaseStatus = Schema.Struct({
  state: ComponentState,
  suspended: Schema.Boolean,
  message: Schema.String
})
export type ReleaseStatus = typeof ReleaseStatus.Type

/** Installed and failed are final: nothing more will happen to the release without a change to it. */
export const isTerminalState = (state: ComponentState): boolean => state === "installed" || state === "failed"

/** Flux reasons after which helm-controller retries by itself (rule 9). */
export const retryingReasons: ReadonlySet<string> = new Set([
  "InstallFailed",
  "UpgradeFailed",
  "ChartPullError",
  "ChartLoadError",
  "ArtifactFailed"
])

const dependencyNotReadyMessage = /dependency '[^']*' is not ready/i

const defaultMessages: Record<ComponentState, string> = {
  pending: "HelmRelease observed, waiting for its first reconcile",
  installing: "Helm install in progress",
  retrying: "Helm install failed; helm-controller will retry",
  installed: "Helm install complete (Ready=True)",
  failed: "Helm install failed and will not be retried"
}

const conditionOf = (release: HelmReleaseObservation, type: string): Condition | undefined =>
  release.conditions.find((condition) => condition.type === type)

/**
 * Derives a release's state by the first matching row of SPEC 2.6. The message is the Ready
 * condition's when it has one, so the operator reads Flux's own words.
 */
export const deriveState = (release: HelmReleaseObservation): ReleaseStatus => {
  const ready = conditionOf(release, "Ready")
  const result = (state: ComponentState, fallback: string = defaultMessages[state]): ReleaseStatus => ({
    state,
    suspended: false,
    message: ready?.message !== undefined && ready.message.length > 0 ? ready.message : fallback
  })
  // 2
  if (release.suspend) {
    return { state: "installed", suspended: true, message: "suspended (spec.suspend); counted as installed" }
  }
  // 3
  if (ready === undefined) return result("pending")
  // 4: a status written for an older spec says nothing about the current one. A missing
  // observedGeneration is not evidence of staleness (older controllers and fakes omit it).
  if (release.observedGeneration !== undefined && release.observedGeneration < release.generation) {
    return {
      state: "installing",
      suspended: false,
      message: `generation ${release.generation} not reconciled yet (last reconciled ${release.observedGeneration})`
    }
  }
  // 5, 6
  if (ready.status === "True") return result("installed")
  if (ready.status === "Unknown") return result("installing")
  // Ready=False from here on.
  // 7
  if (conditionOf(release, "Stalled")?.status === "True" || ready.reason === "RetriesExceeded") return result("failed")
  // 8
  if (ready.reason === "DependencyNotReady" || dependencyNotReadyMessage.test(ready.message ?? "")) return result("pending")
  // 9
  if (ready.reason !== undefined && retryingReasons.has(ready.reason)) return result("retrying")
  // 10
  return result("installing")
}

/** SPEC 2.6: installed → succeeded, failed → failed, pending → pending, anything else → running. */
export const jobStatusOf = (state: ComponentState): JobStatus => {
  switch (state) {
    case "installed":
      return "succeeded"
    case "failed":
      return "failed"
    case "pending":
      return "pending"
    case "installing":
    case "retrying":
      return "running"
  }
}

// ---------------------------------------------------------------------------------------------
// The Phase-1 completion gate: a pure reducer over a region's release events

export interface GateOptions {
  /**
   * A release whose presence says the kit is complete (e.g. `catalyst-platform`); matched with or
   * without the name prefix. Undefined: no sentinel.
   */
  readonly sentinel: string | undefined
  readonly namePrefix: string
  /** The deadline when nothing is progressing any more. */
  readonly softTimeout: Duration.Duration
  /** The soft deadline is deferred while the installed count rose within this window. */
  readonly progressWindow: Duration.Duration
  /** No deferral goes beyond this, measured from the start of the gate. */
  readonly hardCeiling: Duration.Duration
}

export const defaultGateOptions: GateOptions = {
  sentinel: undefined,
  namePrefix: "bp-",
  softTimeout: Duration.minutes(120),
  progressWindow: Duration.minutes(30),
  hardCeiling: Duration.minutes(240)
}

export interface CensusEntry {
  readonly name: string
  readonly status: ReleaseStatus
  /** HelmRelease names this one depends on. */
  readonly dependsOn: ReadonlyArray<string>
}

export const ReleaseFailure = Schema.Struct({ release: Schema.String, message: Schema.String })
export type ReleaseFailure = typeof ReleaseFailure.Type

/** Every observed release is installed and the sentinel (if any) is present: the only way to `ready`. */
export const Phase1Ready = Schema.TaggedStruct("Ready", {
  installed: Schema.Number,
  /** Releases counted as installed because they are suspended. */
  suspended: Schema.Array(Schema.String),
  message: Schema.String
})
/** Nothing can progress any more and at least one release failed terminally. */
export const Phase1Failed = Schema.TaggedStruct("Failed", {
  failures: Schema.NonEmptyArray(ReleaseFailure),
  /** Releases that can never start because something they depend on (transitively) failed. */
  blocked: Schema.Array(Schema.String),
  message: Schema.String
})
/** The deadline passed without completion; never `ready` (SPEC §9.6). */
export const Phase1TimedOut = Schema.TaggedStruct("TimedOut", {
  installed: Schema.Number,
  total: Schema.Number,
  /** Releases not terminal at the deadline. */
  pending: Schema.Array(Schema.String),
  elapsed: Schema.DurationFromMillis,
  message: Schema.String
})
export const Phase1Outcome = Schema.Union(Phase1Ready, Phase1Failed, Phase1TimedOut)
export type Phase1Outcome = typeof Phase1Outcome.Type

export interface Phase1Gate {
  readonly options: GateOptions
  /** Unix ms. */
  readonly startedAt: number
  /** The initial list has been delivered; before it, nothing completes (an informer's first burst is partial). */
  readonly synced: boolean
  /** The current census by release name, in order of first observation. */
  readonly census: ReadonlyMap<string, CensusEntry>
  /** The highest installed count so far, and when it was reached (progress for deferral). */
  readonly installedHighWater: number
  readonly lastProgressAt: number | undefined
  /** Unix ms at which the gate next checks for a timeout: the soft deadline, possibly deferred. */
  readonly deadline: number
  /** Set once; a decided gate ignores every further input. */
  readonly outcome: Phase1Outcome | undefined
}

export type GateInput = Data.TaggedEnum<{
  Observed: { readonly release: HelmReleaseObservation; readonly now: number }
  Deleted: { readonly name: string; readonly now: number }
  Synced: { readonly now: number }
  Tick: { readonly now: number }
}>
export const GateInput = Data.taggedEnum<GateInput>()

export type GateNotice = Data.TaggedEnum<{
  /** The first observation of a release (always, even when already installed), or a change of its status or dependencies. */
  ReleaseReported: {
    readonly name: string
    readonly status: ReleaseStatus
    readonly dependsOn: ReadonlyArray<string>
    readonly first: boolean
  }
  /** A release left the census (deleted); it no longer blocks completion. */
  ReleaseRemoved: { readonly name: string }
  /** The soft deadline passed while releases were still being installed; `deadline` is the new one. */
  DeadlineDeferred: { readonly installed: number; readonly total: number; readonly deadline: number }
  /** The gate decided; the last notice it ever gives. */
  Completed: { readonly outcome: Phase1Outcome }
}>
export const GateNotice = Data.taggedEnum<GateNotice>()

export interface GateStep {
  readonly gate: Phase1Gate
  readonly notices: ReadonlyArray<GateNotice>
}

/**
 * A gate whose deadlines count from `now`. A watch resumed after a restart starts a new gate, so
 * the server's downtime never turns into a timeout of a healthy deployment.
 */
export const makeGate = (options: GateOptions, now: number): Phase1Gate => ({
  options,
  startedAt: now,
  synced: false,
  census: new Map(),
  installedHighWater: 0,
  lastProgressAt: undefined,
  deadline: Math.min(now + Duration.toMillis(options.softTimeout), now + Duration.toMillis(options.hardCeiling)),
  outcome: undefined
})

/** The gate input for a watch event at `now`; log lines are not census input. */
export const gateInputOf = (event: ReleaseEvent, now: number): GateInput | undefined => {
  switch (event._tag) {
    case "Observed":
      return GateInput.Observed({ release: event.release, now })
    case "Deleted":
      return GateInput.Deleted({ name: event.name, now })
    case "Synced":
      return GateInput.Synced({ now })
    case "Log":
      return undefined
  }
}

/** When the caller should send the next `Tick` (unix ms); undefined once decided. */
export const nextDeadline = (gate: Phase1Gate): number | undefined => (gate.outcome === undefined ? gate.deadline : undefined)

const matchesSentinel = (options: GateOptions, name: string): boolean =>
  options.sentinel !== undefined && (name === options.sentinel || name === `${options.namePrefix}${options.sentinel}`)

export interface CensusSummary {
  readonly total: number
  readonly installed: number
  readonly failed: ReadonlyArray<ReleaseFailure>
  /** Not terminal and not blocked by a failure, in census order. */
  readonly unfinished: ReadonlyArray<string>
  /** Not terminal, but waiting (transitively) on a failed release. */
  readonly blocked: ReadonlyArray<string>
  readonly sentinelSeen: boolean
}

/** What the census says right now (also what a heartbeat reports). */
export const summarise = (gate: Phase1Gate): CensusSummary => {
  const entries = Array.from(gate.census.values())
  const failedNames = new Set(entries.filter((entry) => entry.status.state === "failed").map((entry) => entry.name))
  // Blocked: a non-terminal release with a failed or blocked dependency, to a fixpoint.
  const blocked = new Set<string>()
  for (let changed = true; changed;) {
    changed = false
    for (const entry of entries) {
      if (isTerminalState(entry.status.state) || blocked.has(entry.name)) continue
      if (entry.dependsOn.some((dependency) => failedNames.has(dependency) || blocked.has(dependency))) {
        blocked.add(entry.name)
        changed = true
      }
    }
  }
  return {
    total: entries.length,
    installed: entries.filter((entry) => entry.status.state === "installed").length,
    failed: entries
      .filter((entry) => entry.status.state === "failed")
      .map((entry) => ({ release: entry.name, message: entry.status.message })),
    unfinished: entries.filter((entry) => !isTerminalState(entry.status.state) && !blocked.has(entry.name)).map((entry) => entry.name),
    blocked: entries.filter((entry) => blocked.has(entry.name)).map((entry) => entry.name),
    sentinelSeen: entries.some((entry) => matchesSentinel(gate.options, entry.name))
  }
}

const sameStatus = (a: ReleaseStatus, b: ReleaseStatus): boolean =>
  a.state === b.state && a.suspended === b.suspended && a.message === b.message

const minutes = (duration: Duration.Duration): string => `${Math.round(Duration.toMinutes(duration))} min`

const failedMessage = (failures: ReadonlyArray<ReleaseFailure>, blocked: ReadonlyArray<string>): string =>
  `Phase 1 finished with ${failures.length} failed component(s): ` +
  failures.map((failure) => `${failure.release} (${failure.message})`).join("; ") +
  (blocked.length > 0 ? `; blocked by them: ${blocked.join(", ")}` : "")

const timedOutMessage = (gate: Phase1Gate, summary: CensusSummary, elapsed: Duration.Duration): string => {
  const parts = [`Phase 1 timed out after ${minutes(elapsed)}`]
  if (!gate.synced) parts.push("the initial list of HelmReleases never completed (is the cluster API reachable?)")
  if (summary.total === 0) {
    parts.push(`no HelmRelease named ${gate.options.namePrefix}* was ever observed (is Flux installed and reconciling?)`)
  } else {
    parts.push(`${summary.installed} of ${summary.total} releases installed`)
    if (summary.unfinished.length > 0) parts.push(`not finished: ${summary.unfinished.join(", ")}`)
    if (summary.failed.length > 0) parts.push(`failed: ${summary.failed.map((failure) => failure.release).join(", ")}`)
  }
  if (gate.options.sentinel !== undefined && !summary.sentinelSeen) {
    parts.push(`the ready sentinel ${gate.options.sentinel} was never observed`)
  }
  return parts.join("; ")
}

const decide = (gate: Phase1Gate, now: number, notices: Array<GateNotice>): Phase1Gate => {
  const summary = summarise(gate)
  const complete = (outcome: Phase1Outcome): Phase1Gate => {
    notices.push(GateNotice.Completed({ outcome }))
    return { ...gate, outcome }
  }
  // Completion: only after the initial list, never on an empty census, and only once nothing can
  // progress any more. A failure is reported the moment it is observed (ReleaseReported); the
  // outcome waits for the rest to settle so the operator gets every failure in one verdict, but
  // never waits on releases that a failure blocks for good.
  if (gate.synced && summary.total > 0 && summary.unfinished.length === 0) {
    const [firstFailure, ...otherFailures] = summary.failed
    if (firstFailure !== undefined) {
      const failures = [firstFailure, ...otherFailures] as const
      return complete(Phase1Failed.make({ failures, blocked: summary.blocked, message: failedMessage(failures, summary.blocked) }))
    }
    if (gate.options.sentinel === undefined || summary.sentinelSeen) {
      const suspended = Array.from(gate.census.values())
        .filter((entry) => entry.status.suspended)
        .map((entry) => entry.name)
      const message =
        `Phase 1 finished: ${summary.installed} release(s) installed` +
        (suspended.length > 0 ? ` (suspended, counted as installed: ${suspended.join(", ")})` : "")
      return complete(Phase1Ready.make({ installed: summary.installed, suspended, message }))
    }
  }
  const hardDeadline = gate.startedAt + Duration.toMillis(gate.options.hardCeiling)
  if (now < gate.deadline && now < hardDeadline) return gate
  const progressing = gate.lastProgressAt !== undefined && now - gate.lastProgressAt < Duration.toMillis(gate.options.progressWindow)
  if (progressing && now < hardDeadline) {
    const deadline = Math.min(hardDeadline, gate.lastProgressAt! + Duration.toMillis(gate.options.progressWindow))
    notices.push(GateNotice.DeadlineDeferred({ installed: summary.installed, total: summary.total, deadline }))
    return { ...gate, deadline }
  }
  const elapsed = Duration.millis(now - gate.startedAt)
  return complete(
    Phase1TimedOut.make({
      installed: summary.installed,
      total: summary.total,
      pending: [...summary.unfinished, ...summary.blocked],
      elapsed,
      message: timedOutMessage(gate, summary, elapsed)
    })
  )
}

const withProgress = (gate: Phase1Gate, now: number): Phase1Gate => {
  let installed = 0
  for (const entry of gate.census.values()) if (entry.status.state === "installed") installed++
  return installed > gate.installedHighWater ? { ...gate, installedHighWater: installed, lastProgressAt: now } : gate
}

/** Feeds one input to the gate: the next gate and what to tell the operator, in order. */
export const step = (gate: Phase1Gate, input: GateInput): GateStep => {
  if (gate.outcome !== undefined) return { gate, notices: [] }
  const notices: Array<GateNotice> = []
  let next: Phase1Gate = gate
  switch (input._tag) {
    case "Observed": {
      const { release } = input
      const status = deriveState(release)
      const previous = gate.census.get(release.name)
      const changed =
        previous === undefined || !sameStatus(previous.status, status) || previous.dependsOn.join("\n") !== release.dependsOn.join("\n")
      if (changed) {
        const census = new Map(gate.census)
        census.set(release.name, { name: release.name, status, dependsOn: release.dependsOn })
        next = { ...gate, census }
        notices.push(
          GateNotice.ReleaseReported({ name: release.name, status, dependsOn: release.dependsOn, first: previous === undefined })
        )
      }
      break
    }
    case "Deleted": {
      if (gate.census.has(input.name)) {
        const census = new Map(gate.census)
        census.delete(input.name)
        next = { ...gate, census }
        notices.push(GateNotice.ReleaseRemoved({ name: input.name }))
      }
      break
    }
    case "Synced":
      next = gate.synced ? gate : { ...gate, synced: true }
      break
    case "Tick":
      break
  }
  next = decide(withProgress(next, input.now), input.now, notices)
  return { gate: next, notices }
}

/** Feeds several inputs in order (convenient for tests and for replaying a list). */
export const stepAll = (gate: Phase1Gate, inputs: Iterable<GateInput>): GateStep => {
  const notices: Array<GateNotice> = []
  let current = gate
  for (const input of inputs) {
    const result = step(current, input)
    current = result.gate
    notices.push(...result.notices)
  }
  return { gate: current, notices }
}
