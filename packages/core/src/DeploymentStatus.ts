/** The deployment status machine of SPEC 2.3: statuses, events, a pure transition, predicates and the restart policy. */
import { Data, Either, Schema } from "effect"
import type { Phase1Outcome } from "./HelmRelease.js"

export const DeploymentStatus = Schema.Literal(
  "pending",
  "provisioning",
  "phase1-watching",
  "ready",
  "failed",
  "partial-failure",
  "wiping",
  "wiped",
  "adopted"
)
export type DeploymentStatus = typeof DeploymentStatus.Type

/** Where work picks up again after a retry or a restart. */
export const ResumePhase = Schema.Literal("phase0", "phase1", "wipe")
export type ResumePhase = typeof ResumePhase.Type

// ---------------------------------------------------------------------------------------------
// Events

export type StatusEvent = Data.TaggedEnum<{
  /** Phase 0 begins (the adapters accepted the request and the steps are planned). */
  Phase0Started: {}
  /** Phase 0 finished and the primary kubeconfig is in: Phase 1 starts. */
  Phase0Succeeded: {}
  /** Phase 0 could build some regions but not `regions`. */
  PartiallyFailed: { readonly regions: ReadonlyArray<string>; readonly reason: string }
  /** The explicit ready outcome of the primary region's Phase 1: the only way to `ready`. */
  Phase1Succeeded: {}
  /** Phase 1 ended with a failed component or without a known outcome. */
  Phase1Failed: { readonly reason: string }
  /** Phase 1 ran into its deadline; a timeout is not convergence. */
  Phase1TimedOut: { readonly reason: string }
  /** Anything else that stops an in-flight deployment (a Phase-0 step failed, a restart that cannot resume). */
  Failed: { readonly reason: string }
  /** An operator asked for a wipe (the API applies the 30-minute Phase-1 guard before this). */
  WipeRequested: {}
  /** The purge could not finish or could not verify that nothing is left. */
  WipeFailed: { readonly reason: string }
  /** Purged and verified: nothing of the deployment is left. */
  Wiped: {}
  /** `POST …/retry`: re-run from the first unfinished step, in Phase 0 or Phase 1. */
  Retry: { readonly from: "phase0" | "phase1" }
  /** `POST …/finalise`: the owner took over. */
  Finalised: {}
  /** The server restarted and picks the deployment up where it stopped; the status stays. */
  Resumed: { readonly phase: ResumePhase }
}>
export const StatusEvent = Data.taggedEnum<StatusEvent>()

/** The wire form of a status event (what the event log stores). */
export const StatusEventSchema = Schema.Union(
  Schema.TaggedStruct("Phase0Started", {}),
  Schema.TaggedStruct("Phase0Succeeded", {}),
  Schema.TaggedStruct("PartiallyFailed", { regions: Schema.Array(Schema.String), reason: Schema.String }),
  Schema.TaggedStruct("Phase1Succeeded", {}),
  Schema.TaggedStruct("Phase1Failed", { reason: Schema.String }),
  Schema.TaggedStruct("Phase1TimedOut", { reason: Schema.String }),
  Schema.TaggedStruct("Failed", { reason: Schema.String }),
  Schema.TaggedStruct("WipeRequested", {}),
  Schema.TaggedStruct("WipeFailed", { reason: Schema.String }),
  Schema.TaggedStruct("Wiped", {}),
  Schema.TaggedStruct("Retry", { from: Schema.Literal("phase0", "phase1") }),
  Schema.TaggedStruct("Finalised", {}),
  Schema.TaggedStruct("Resumed", { phase: ResumePhase })
)
// The schema and the enum describe the same values.
const _schemaMatchesEnum: (event: typeof StatusEventSchema.Type) => StatusEvent = (event) => event
const _enumMatchesSchema: (event: StatusEvent) => typeof StatusEventSchema.Type = (event) => event
void _schemaMatchesEnum
void _enumMatchesSchema

/** A short name for an event, e.g. `Retry(phase1)`, used in errors and logs. */
export const describeEvent = (event: StatusEvent): string => {
  switch (event._tag) {
    case "Retry":
      return `Retry(${event.from})`
    case "Resumed":
      return `Resumed(${event.phase})`
    default:
      return event._tag
  }
}

/** The error text a failing event leaves on the record; undefined for events that do not fail. */
export const failureReason = (event: StatusEvent): string | undefined => {
  switch (event._tag) {
    case "PartiallyFailed":
      return `${event.reason} (regions not built: ${event.regions.join(", ")})`
    case "Phase1Failed":
    case "Phase1TimedOut":
    case "Failed":
    case "WipeFailed":
      return event.reason
    default:
      return undefined
  }
}

/** The event for the primary region's Phase-1 outcome; no outcome at all (the watch ended) is a failure. */
export const phase1Event = (outcome: Phase1Outcome | undefined, regionKey: string): StatusEvent => {
  if (outcome === undefined) {
    return StatusEvent.Phase1Failed({ reason: `region ${regionKey}: Phase 1 ended without an outcome` })
  }
  switch (outcome._tag) {
    case "Ready":
      return StatusEvent.Phase1Succeeded()
    case "Failed":
      return StatusEvent.Phase1Failed({ reason: `region ${regionKey}: ${outcome.message}` })
    case "TimedOut":
      return StatusEvent.Phase1TimedOut({ reason: `region ${regionKey}: ${outcome.message}` })
  }
}

// ---------------------------------------------------------------------------------------------
// Transitions

export const IllegalTransitionReason = Schema.Literal("Adopted", "NotAllowed")

/** An event that the current status does not accept; nothing changes. */
export class IllegalTransition extends Schema.TaggedError<IllegalTransition>()("IllegalTransition", {
  from: DeploymentStatus,
  /** The event, as `describeEvent` names it. */
  event: Schema.String,
  /** `Adopted`: the deployment was handed over and never changes (the API answers 422); else 409. */
  reason: IllegalTransitionReason
}) {
  get isRetryable(): boolean {
    return false
  }

  override get message(): string {
    if (this.reason === "Adopted") {
      return `${this.event} ignored: the deployment has been handed over to its owner (adopted) and never changes`
    }
    const allowed = acceptedEvents(this.from)
    return (
      `${this.event} is not allowed while the deployment is ${this.from}` + (allowed.length > 0 ? `; allowed: ${allowed.join(", ")}` : "")
    )
  }
}

const allowedEvents: Record<DeploymentStatus, ReadonlyArray<string>> = {
  pending: ["Phase0Started", "Failed", "WipeRequested", "Resumed(phase0)"],
  provisioning: ["Phase0Succeeded", "PartiallyFailed", "Failed", "WipeRequested", "Resumed(phase0)"],
  "phase1-watching": ["Phase1Succeeded", "Phase1Failed", "Phase1TimedOut", "Failed", "WipeRequested", "Resumed(phase1)"],
  ready: ["Finalised", "WipeRequested"],
  failed: ["Retry(phase0)", "Retry(phase1)", "WipeRequested"],
  "partial-failure": ["Retry(phase0)", "WipeRequested"],
  wiping: ["Wiped", "WipeFailed", "WipeRequested", "Resumed(wipe)"],
  wiped: ["WipeRequested"],
  adopted: []
}

/** The events a status accepts, by `describeEvent` name. */
export const acceptedEvents = (status: DeploymentStatus): ReadonlyArray<string> => allowedEvents[status]

/**
 * The status after `event`, or why it cannot happen. Pure; the caller records the event and
 * persists the new status before announcing it.
 *
 * `adopted` is sticky: every event on it is an `IllegalTransition` with reason `Adopted` (a late
 * Phase-1 outcome, a wipe, a second finalise), so nothing can ever change a handed-over Sovereign.
 * A wipe is accepted again while wiping (idempotent) and after wiped (the purge is by label, so a
 * second one only re-verifies that nothing is left).
 */
export const transition = (from: DeploymentStatus, event: StatusEvent): Either.Either<DeploymentStatus, IllegalTransition> => {
  const illegal = () =>
    Either.left(new IllegalTransition({ from, event: describeEvent(event), reason: from === "adopted" ? "Adopted" : "NotAllowed" }))
  if (!allowedEvents[from].includes(describeEvent(event))) return illegal()
  switch (event._tag) {
    case "Phase0Started":
      return Either.right("provisioning")
    case "Phase0Succeeded":
      return Either.right("phase1-watching")
    case "PartiallyFailed":
      return Either.right("partial-failure")
    case "Phase1Succeeded":
      return Either.right("ready")
    case "Phase1Failed":
    case "Phase1TimedOut":
    case "Failed":
    case "WipeFailed":
      return Either.right("failed")
    case "WipeRequested":
      return Either.right("wiping")
    case "Wiped":
      return Either.right("wiped")
    case "Retry":
      return Either.right(event.from === "phase0" ? "provisioning" : "phase1-watching")
    case "Finalised":
      return Either.right("adopted")
    case "Resumed":
      return Either.right(from)
  }
}

// ---------------------------------------------------------------------------------------------
// Predicates (SPEC 2.3)

/** Phase-0 in-flight: counted by `in-flight-count`. */
export const phase0InFlightStatuses: ReadonlyArray<DeploymentStatus> = ["pending", "provisioning"]
/** In-flight: Phase 0, Phase 1 and wiping; also what the runtime resumes at start-up. */
export const inFlightStatuses: ReadonlyArray<DeploymentStatus> = ["pending", "provisioning", "phase1-watching", "wiping"]

const phase0InFlight: ReadonlySet<DeploymentStatus> = new Set(phase0InFlightStatuses)
const inFlight: ReadonlySet<DeploymentStatus> = new Set(inFlightStatuses)

/** Counted by `in-flight-count`. */
export const isPhase0InFlight = (status: DeploymentStatus): boolean => phase0InFlight.has(status)
/** Work is running for it: its FQDN cannot be requested again and its record cannot be deleted. */
export const isInFlight = (status: DeploymentStatus): boolean => inFlight.has(status)
/** Nothing runs for it until an operator acts (retry, wipe, finalise). */
export const isTerminal = (status: DeploymentStatus): boolean => !inFlight.has(status)

// ---------------------------------------------------------------------------------------------
// Restart policy

/** What the restart policy needs from a stored deployment; a `DeploymentRecord` and its journal fit. */
export interface RestartRecord {
  readonly id: string
  readonly status: DeploymentStatus
  /** The Phase-0 step journal: steps that ran, with the resources they reported. */
  readonly journal?: ReadonlyArray<{
    readonly jobName: string
    readonly status: string
    readonly result?: { readonly resources: ReadonlyArray<{ readonly kind: string; readonly name: string }> } | undefined
  }>
}

export type ResumeDecision = Data.TaggedEnum<{
  /** Continue where it stopped. */
  Resume: { readonly phase: ResumePhase }
  /** Terminal: nothing runs for it. */
  NothingToDo: {}
  /** The cloud adapter cannot resume: fail it with this message (apply `StatusEvent.Failed`). */
  MarkFailed: { readonly message: string }
}>
export const ResumeDecision = Data.taggedEnum<ResumeDecision>()

/** The label every adapter puts on what it creates (see `CloudProvider.ownershipLabels`). */
const deploymentLabel = "sovereign.dev/deployment"

const orphanMessage = (record: RestartRecord): string => {
  const journal = record.journal ?? []
  const resources = journal.flatMap((entry) => (entry.result?.resources ?? []).map((resource) => `${resource.kind} ${resource.name}`))
  const interrupted = journal.filter((entry) => entry.status === "running").map((entry) => entry.jobName)
  const parts = [
    `The server restarted while this deployment was ${record.status}, and its cloud adapter cannot resume an interrupted Phase 0.`
  ]
  if (resources.length > 0) parts.push(`These cloud resources may be orphaned: ${resources.join(", ")}.`)
  if (interrupted.length > 0) parts.push(`Steps interrupted mid-way (they may have created more): ${interrupted.join(", ")}.`)
  parts.push(
    `Every resource it created carries the label ${deploymentLabel}=${record.id}.`,
    `Wipe the deployment (POST /api/v1/deployments/${record.id}/wipe) to remove them, then create it again.`
  )
  return parts.join(" ")
}

/**
 * What to do with a stored deployment at start-up. Every non-terminal deployment resumes where it
 * stopped. An adapter that declares itself non-resumable gets the original policy for an
 * interrupted Phase 0 only: `failed`, naming what may be orphaned and offering the wipe. A
 * `pending` deployment that has not started a step has nothing to orphan and simply starts;
 * Phase 1 (watches) and wipes (purge by label) do not depend on the adapter's journal, so they
 * always resume.
 */
export const resumeDecision = (record: RestartRecord, adapter: { readonly resumable: boolean }): ResumeDecision => {
  switch (record.status) {
    case "pending":
    case "provisioning": {
      const started = (record.journal ?? []).length > 0
      if (adapter.resumable || (record.status === "pending" && !started)) return ResumeDecision.Resume({ phase: "phase0" })
      return ResumeDecision.MarkFailed({ message: orphanMessage(record) })
    }
    case "phase1-watching":
      return ResumeDecision.Resume({ phase: "phase1" })
    case "wiping":
      return ResumeDecision.Resume({ phase: "wipe" })
    case "ready":
    case "failed":
    case "partial-failure":
    case "wiped":
    case "adopted":
      return ResumeDecision.NothingToDo()
  }
}
