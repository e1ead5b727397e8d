/** The flow-event port: per-deployment, numbered, bounded log of FlowMessage deltas that SSE streams read (SPEC §5, §6). */
import { Context, Schema } from "effect"
import type { Effect, Option, Stream } from "effect"
import type { DeploymentId } from "./Deployment.js"
import { UnixMillis } from "./Time.js"

/** `Fenced`: published under a stale lease epoch (`Leases`); nothing was written. */
export const FlowEventsErrorReason = Schema.Literal("Conflict", "Invalid", "Unavailable", "Unknown", "Fenced")

export class FlowEventsError extends Schema.TaggedError<FlowEventsError>()("FlowEventsError", {
  reason: FlowEventsErrorReason,
  message: Schema.String,
  /** What the driver said (an SQL error with its SQLSTATE, a decode error): kept for the log, never shown to API clients. */
  cause: Schema.optional(Schema.Defect)
}) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

/**
 * One published flow message. `message` is a FlowMessage (schema version 1, see `FlowMessage`);
 * the store treats it as an opaque JSON value.
 */
export const FlowEvent = Schema.Struct({
  /** Strictly increasing per deployment, from 1; the SSE event id. */
  seq: Schema.Number,
  deploymentId: Schema.String,
  /** Unix milliseconds. */
  at: UnixMillis,
  message: Schema.Unknown
})
export type FlowEvent = typeof FlowEvent.Type

/** How many events a store keeps per deployment; older ones are trimmed (a reader then takes a snapshot). */
export const defaultRetention = 2000

export interface FlowEventsService {
  /**
   * Appends the messages (in order) with the next sequence numbers, trims to the retention bound,
   * and announces them to subscribers after the commit. Atomic for the batch.
   */
  readonly publish: (
    deploymentId: DeploymentId,
    messages: ReadonlyArray<unknown>,
    at: number
  ) => Effect.Effect<ReadonlyArray<FlowEvent>, FlowEventsError>
  /**
   * Stored events with `seq > afterSeq`. `None` when some of them were already trimmed (the
   * reader must start again from a fresh snapshot).
   */
  readonly since: (deploymentId: DeploymentId, afterSeq: number) => Effect.Effect<Option.Option<ReadonlyArray<FlowEvent>>, FlowEventsError>
  /** The highest published sequence number (0 when none). */
  readonly latestSeq: (deploymentId: DeploymentId) => Effect.Effect<number, FlowEventsError>
  /**
   * Events published after `afterSeq`: the stored ones, then live ones, in order, without gaps or
   * duplicates (subscribe before reading the replay). When some were trimmed the stream starts at
   * the oldest retained event: callers that need completeness check `since` first. Runs until interrupted.
   */
  readonly tail: (deploymentId: DeploymentId, afterSeq: number) => Stream.Stream<FlowEvent, FlowEventsError>
  /** Drops every event of a deployment. Idempotent. */
  readonly remove: (deploymentId: DeploymentId) => Effect.Effect<void, FlowEventsError>
}

export class FlowEvents extends Context.Tag("@sovereign/core/FlowEvents")<FlowEvents, FlowEventsService>() {}
