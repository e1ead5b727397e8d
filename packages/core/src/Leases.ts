/**
 * The lease port: which replica runs a deployment (issue 11). Several servers share one store; each
 * deployment is run by exactly one of them at a time, under a lease with a fencing epoch and a
 * heartbeat. The epoch of the run is carried by `currentFence` (a FiberRef set for the whole run and
 * inherited by its forks); a store refuses every write made under an epoch that is no longer the
 * lease's (reason `Fenced`), and the run stops without writing anything more.
 *
 * Without a `Leases` service (the in-memory store of tests), a process runs what it starts, as before.
 */
import { Cause, Context, FiberRef, Option, Schema } from "effect"
import type { Duration, Effect, Stream } from "effect"
import type { DeploymentId } from "./Deployment.js"

/** A held lease: the deployment, the replica holding it and the epoch it was claimed at. */
export const Lease = Schema.Struct({
  deploymentId: Schema.String,
  holder: Schema.String,
  /** Strictly increasing per deployment: every claim takes the next one; never reused. */
  epoch: Schema.Int
})
export type Lease = typeof Lease.Type

export const LeaseErrorReason = Schema.Literal("Unavailable", "Unknown")

export class LeaseError extends Schema.TaggedError<LeaseError>()("LeaseError", {
  reason: LeaseErrorReason,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

/**
 * A run that lost its lease (the heartbeat found it taken, or it went unrenewed for longer than the
 * lease lasts, e.g. a frozen process): raised as a defect by the guard before an outside call, so
 * nothing of the run continues. `Orchestrator.run` ends such a run quietly.
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  deploymentId: Schema.String,
  epoch: Schema.Int,
  message: Schema.String
}) {}

export interface LeasesService {
  /** This replica's identity (unique per process start). */
  readonly holder: string
  /** How long a lease lasts without a renewal. */
  readonly ttl: Duration.Duration
  /**
   * Claims the deployment when its lease is free, released or expired: the next epoch, now held by
   * this replica. `None` when another replica holds it.
   */
  readonly claim: (deploymentId: DeploymentId) => Effect.Effect<Option.Option<Lease>, LeaseError>
  /** Extends every given lease this replica still holds; returns those (the others were taken over). */
  readonly renew: (leases: ReadonlyArray<Lease>) => Effect.Effect<ReadonlyArray<Lease>, LeaseError>
  /** Gives the lease up (when still held) and wakes the other replicas so one of them may claim it at once. */
  readonly release: (lease: Lease) => Effect.Effect<void, LeaseError>
  /** Deployments in one of `statuses` whose lease is free, released or expired (candidates for `claim`). */
  readonly unheld: (statuses: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<DeploymentId>, LeaseError>
  /** Ticks when another replica released a lease or the store says there may be work to take over. */
  readonly wakeups: Stream.Stream<void>
}

export class Leases extends Context.Tag("@sovereign/core/Leases")<Leases, LeasesService>() {}

/** The lease the current fiber runs under: every store write of the run is checked against it. */
export const currentFence: FiberRef.FiberRef<Option.Option<Lease>> = FiberRef.unsafeMake<Option.Option<Lease>>(Option.none())

/** What this replica holds and whether its leases renew, for metrics and readiness (issue 14). */
export interface LeaseHealth {
  /** Leases held now. */
  readonly held: number
  /** Unix ms of the last successful renewal round (or of the start, before the first one). */
  readonly lastRenewalAt: number
  /** False when the last renewal round failed or is overdue (more than a third of the lease time late). */
  readonly renewing: boolean
}

const fencedReasons = new Set(["Fenced"])

/** A `LeaseLost`, a store error with reason `Fenced`, or a defect wrapping one (its `error` or `cause`). */
const isFenceError = (value: unknown, depth = 0): boolean => {
  if (typeof value !== "object" || value === null || depth > 3) return false
  if ("_tag" in value && (value as { _tag: unknown })._tag === "LeaseLost") return true
  if ("reason" in value && fencedReasons.has(String((value as { reason: unknown }).reason))) return true
  return isFenceError((value as { error?: unknown }).error, depth + 1) || isFenceError((value as { cause?: unknown }).cause, depth + 1)
}

/** True when a cause says the run lost its lease: a `Fenced` store error or a `LeaseLost`, as a failure or a defect. */
export const isFenced = (cause: Cause.Cause<unknown>): boolean =>
  [...Cause.failures(cause), ...Cause.defects(cause)].some((value) => isFenceError(value))
