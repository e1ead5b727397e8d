/** The kubeconfig port: each region's control plane delivers its kubeconfig once; the orchestration awaits it (SPEC §4.2). */
import { Context, Schema } from "effect"
import type { Effect, Option, Redacted } from "effect"
import type { DeploymentId } from "./Deployment.js"
import { UnixMillis } from "./Time.js"

/** `Fenced`: written under a stale lease epoch (`Leases`); nothing was stored. */
export const KubeconfigErrorReason = Schema.Literal("AlreadySet", "Empty", "Invalid", "Unavailable", "Unknown", "Fenced")

export class KubeconfigError extends Schema.TaggedError<KubeconfigError>()("KubeconfigError", {
  reason: KubeconfigErrorReason,
  message: Schema.String,
  /** What the driver said (an SQL error with its SQLSTATE, a decode error): kept for the log, never shown to API clients. */
  cause: Schema.optional(Schema.Defect),
  region: Schema.optional(Schema.String)
}) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

export const KubeconfigArrival = Schema.Struct({
  regionKey: Schema.String,
  /** Unix milliseconds. */
  receivedAt: UnixMillis
})
export type KubeconfigArrival = typeof KubeconfigArrival.Type

export interface KubeconfigsService {
  /**
   * Stores a region's kubeconfig (encrypted at rest), single use: a second put for the same
   * (deployment, region) fails `AlreadySet` and leaves the first untouched; an empty one fails `Empty`.
   * Atomic; wakes every `await` of that region once committed.
   */
  readonly put: (
    deploymentId: DeploymentId,
    regionKey: string,
    kubeconfig: Redacted.Redacted<string>,
    receivedAt: number
  ) => Effect.Effect<void, KubeconfigError>
  /**
   * The owner's repair: stores the region's kubeconfig whether or not one is stored (the previous one
   * is gone), and wakes every `await` of the region. Checks are the caller's, as for `put`.
   */
  readonly replace: (
    deploymentId: DeploymentId,
    regionKey: string,
    kubeconfig: Redacted.Redacted<string>,
    receivedAt: number
  ) => Effect.Effect<void, KubeconfigError>
  readonly get: (deploymentId: DeploymentId, regionKey: string) => Effect.Effect<Option.Option<Redacted.Redacted<string>>, KubeconfigError>
  /** Which regions have delivered, in arrival order. */
  readonly arrivals: (deploymentId: DeploymentId) => Effect.Effect<ReadonlyArray<KubeconfigArrival>, KubeconfigError>
  /**
   * Completes with the kubeconfig as soon as it is stored (at once when it already is). Never times
   * out by itself: callers bound it with their own timeout (the orchestration's 15-minute arrival
   * window). Interruptible.
   */
  readonly await: (deploymentId: DeploymentId, regionKey: string) => Effect.Effect<Redacted.Redacted<string>, KubeconfigError>
  /** Removes every kubeconfig of a deployment (wipe, record deletion). Idempotent. */
  readonly remove: (deploymentId: DeploymentId) => Effect.Effect<void, KubeconfigError>
}

export class Kubeconfigs extends Context.Tag("@sovereign/core/Kubeconfigs")<Kubeconfigs, KubeconfigsService>() {}
