/**
 * The deployment store port: records with an optimistic version, the typed event log, and the
 * Phase-0 step journal (SPEC §3, §6). Every status change is persisted (with its event) before it
 * is announced to `tail` subscribers.
 */
import { Context, Schema } from "effect"
import type { Effect, Option, Stream } from "effect"
import { StepResult } from "./CloudProvider.js"
import { PublicSpec, type DeploymentId } from "./Deployment.js"
import * as DeploymentStatus from "./DeploymentStatus.js"
import { MeshRegionStatus } from "./MeshPlan.js"
import { UnixMillis } from "./Time.js"

/** The deployment statuses: one definition, the status machine's (SPEC 2.3). */
export const Status = DeploymentStatus.DeploymentStatus
export type Status = DeploymentStatus.DeploymentStatus

/** Phase-0 in-flight (SPEC 2.3): counted by in-flight-count. */
export const phase0InFlight: ReadonlyArray<Status> = DeploymentStatus.phase0InFlightStatuses
/** In-flight: an FQDN held by one of these cannot be requested again (409). */
export const inFlight: ReadonlyArray<Status> = DeploymentStatus.inFlightStatuses
/** Statuses the runtime resumes at start-up. */
export const resumable: ReadonlyArray<Status> = DeploymentStatus.inFlightStatuses

export const RegionHealth = Schema.Struct({
  /** Releases installed / observed; `failed` counts terminal failures. */
  installed: Schema.Number,
  total: Schema.Number,
  failed: Schema.Number,
  state: Schema.Literal("waiting", "watching", "ready", "degraded", "failed")
})
export type RegionHealth = typeof RegionHealth.Type

/** What is known about one region; filled in as the deployment progresses. */
export const RegionResult = Schema.Struct({
  regionKey: Schema.String,
  cloudRegion: Schema.String,
  provider: Schema.String,
  primary: Schema.Boolean,
  phase0: Schema.Literal("pending", "running", "succeeded", "failed"),
  controlPlaneIPs: Schema.optional(Schema.Array(Schema.String)),
  loadBalancerIP: Schema.optional(Schema.String),
  consoleLoadBalancerIP: Schema.optional(Schema.String),
  /** Unix ms at which the region's kubeconfig call-back arrived. */
  kubeconfigAt: Schema.optional(UnixMillis),
  phase1: Schema.optional(RegionHealth),
  error: Schema.optional(Schema.String)
})
export type RegionResult = typeof RegionResult.Type

export const DnsResult = Schema.Struct({
  at: UnixMillis,
  created: Schema.Number,
  updated: Schema.Number,
  deleted: Schema.Number,
  warnings: Schema.Array(Schema.String)
})
export type DnsResult = typeof DnsResult.Type

export const DeploymentResults = Schema.Struct({
  regions: Schema.Array(RegionResult),
  /** `ready` | `failed` | `timeout` | `kubeconfig-missing` | ...: why Phase 1 ended. */
  phase1Outcome: Schema.optional(Schema.String),
  dns: Schema.optional(DnsResult),
  mesh: Schema.optional(Schema.Array(MeshRegionStatus)),
  /** Unix ms at which the handover was prepared and `handover-ready` announced. */
  handoverAt: Schema.optional(UnixMillis),
  /** Set when a wipe could not finish: such a deployment is wiped again, never retried. */
  wipeFailedAt: Schema.optional(UnixMillis)
})
export type DeploymentResults = typeof DeploymentResults.Type

export const DeploymentRecord = Schema.Struct({
  id: Schema.String,
  /** The owner's e-mail (the principal that created it). */
  owner: Schema.String,
  status: Status,
  /** The request without its secrets. */
  spec: PublicSpec,
  /** The credentials map, sealed by `Secrets.seal`; opaque to the store. */
  sealedCredentials: Schema.String,
  results: DeploymentResults,
  /** What went wrong and what to do next; absent unless failed/partial-failure. */
  error: Schema.optional(Schema.String),
  /** Incremented by every successful `update`; the optimistic lock. */
  version: Schema.Number,
  /** Unix milliseconds. */
  createdAt: UnixMillis,
  updatedAt: UnixMillis,
  phase1StartedAt: Schema.optional(UnixMillis),
  finishedAt: Schema.optional(UnixMillis),
  adoptedAt: Schema.optional(UnixMillis)
})
export type DeploymentRecord = typeof DeploymentRecord.Type

export const EventPhase = Schema.Literal("deployment", "provisioner", "kubeconfig", "phase1", "dns", "handover", "mesh", "wipe")
export type EventPhase = typeof EventPhase.Type

export const EventLevel = Schema.Literal("info", "warn", "error")
export type EventLevel = typeof EventLevel.Type

/** A typed deployment event. Never carries a secret (no credential, token or kubeconfig text). */
export const DeploymentEvent = Schema.Struct({
  /** 1-based, strictly increasing per deployment; the SSE event id. */
  seq: Schema.Number,
  deploymentId: Schema.String,
  /** Unix milliseconds. */
  at: UnixMillis,
  phase: EventPhase,
  level: EventLevel,
  message: Schema.String,
  /** A job name / chart (`install-cilium`, `hel1-1:cilium`) or a step (`hel1-1:network`). */
  component: Schema.optional(Schema.String),
  /** A status, component state or step state the event reports. */
  state: Schema.optional(Schema.String),
  /** A machine-readable kind: `status`, `handover-ready`, `dns-warning`, `mesh`, `step`, `component`, ... */
  type: Schema.optional(Schema.String),
  /** Region key when the event concerns one region. */
  region: Schema.optional(Schema.String)
})
export type DeploymentEvent = typeof DeploymentEvent.Type
/** An event before the store numbers it. */
export type NewDeploymentEvent = Omit<DeploymentEvent, "seq" | "deploymentId">

export const StepStatus = Schema.Literal("running", "succeeded", "failed")

/** One Phase-0 step's latest outcome. Keyed by (deploymentId, jobName). */
export const JournalEntry = Schema.Struct({
  deploymentId: Schema.String,
  /** The step's job name: `<step>` (primary) or `<regionKey>:<step>`. */
  jobName: Schema.String,
  region: Schema.String,
  step: Schema.String,
  status: StepStatus,
  attempts: Schema.Number,
  /** Unix milliseconds of this entry. */
  at: UnixMillis,
  result: Schema.optional(StepResult),
  error: Schema.optional(Schema.String)
})
export type JournalEntry = typeof JournalEntry.Type

/** `Fenced`: the write was made under a lease epoch that is no longer current (`Leases`); nothing was written. */
export const DeploymentRepoErrorReason = Schema.Literal(
  "NotFound",
  "Conflict",
  "VersionConflict",
  "Invalid",
  "Unavailable",
  "Unknown",
  "Fenced"
)

export class DeploymentRepoError extends Schema.TaggedError<DeploymentRepoError>()("DeploymentRepoError", {
  reason: DeploymentRepoErrorReason,
  message: Schema.String,
  /** What the driver said (an SQL error with its SQLSTATE, a decode error): kept for the log, never shown to API clients. */
  cause: Schema.optional(Schema.Defect)
}) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable" || this.reason === "VersionConflict"
  }
}

export type NewDeployment = Omit<DeploymentRecord, "version" | "updatedAt">

/** Fields an update may change; `error: undefined` in `clear` removes the error. */
export interface DeploymentChanges {
  readonly status?: Status
  readonly results?: DeploymentResults
  readonly error?: string
  readonly phase1StartedAt?: number
  readonly finishedAt?: number
  readonly adoptedAt?: number
  /** Optional fields to remove (e.g. `["error", "finishedAt"]` on retry). */
  readonly clear?: ReadonlyArray<"error" | "finishedAt" | "phase1StartedAt">
}

export interface DeploymentRepoService {
  /**
   * Inserts the record (version 1) and its first event, atomically, unless another deployment with
   * the same `spec.sovereignFQDN` is in an `inFlight` status: then fails `Conflict` and writes nothing.
   * Fails `Conflict` too when the id exists.
   */
  readonly create: (record: NewDeployment, event: NewDeploymentEvent) => Effect.Effect<DeploymentRecord, DeploymentRepoError>
  readonly get: (id: DeploymentId) => Effect.Effect<Option.Option<DeploymentRecord>, DeploymentRepoError>
  /** Newest first (createdAt descending, then id); `owner` filters to one principal. */
  readonly list: (filter: {
    readonly owner?: string
    readonly statuses?: ReadonlyArray<Status>
  }) => Effect.Effect<ReadonlyArray<DeploymentRecord>, DeploymentRepoError>
  /**
   * Applies `changes` and appends `events` in one transaction if the stored version equals
   * `expectedVersion` (else `VersionConflict`, nothing written; `NotFound` for an unknown id).
   * Returns the new record (version + 1) and the numbered events. Only after the commit are the
   * events announced to `tail`.
   */
  readonly update: (
    id: DeploymentId,
    expectedVersion: number,
    changes: DeploymentChanges,
    events: ReadonlyArray<NewDeploymentEvent>,
    updatedAt: number
  ) => Effect.Effect<{ readonly record: DeploymentRecord; readonly events: ReadonlyArray<DeploymentEvent> }, DeploymentRepoError>
  /** Appends events that change no field (warnings, progress). Persisted, then announced. */
  readonly appendEvents: (
    id: DeploymentId,
    events: ReadonlyArray<NewDeploymentEvent>
  ) => Effect.Effect<ReadonlyArray<DeploymentEvent>, DeploymentRepoError>
  /** Events with `seq > afterSeq`, ascending. */
  readonly events: (id: DeploymentId, afterSeq: number) => Effect.Effect<ReadonlyArray<DeploymentEvent>, DeploymentRepoError>
  /**
   * Replays events after `afterSeq`, then every event committed later, in order, without gaps or
   * duplicates (implementations subscribe before reading the replay). Runs until interrupted.
   */
  readonly tail: (id: DeploymentId, afterSeq: number) => Stream.Stream<DeploymentEvent, DeploymentRepoError>
  /**
   * Records a step's latest outcome: an upsert keyed by (deploymentId, jobName), idempotent for the
   * same entry. The orchestration writes it before starting any step that depends on this one.
   */
  readonly recordStep: (entry: JournalEntry) => Effect.Effect<void, DeploymentRepoError>
  /** The journal, ordered by `at` then jobName. */
  readonly journal: (id: DeploymentId) => Effect.Effect<ReadonlyArray<JournalEntry>, DeploymentRepoError>
  /** Deletes the record, its events and its journal (DELETE endpoint). Idempotent. */
  readonly remove: (id: DeploymentId) => Effect.Effect<void, DeploymentRepoError>
}

export class DeploymentRepo extends Context.Tag("@sovereign/core/DeploymentRepo")<DeploymentRepo, DeploymentRepoService>() {}
