/**
 * The handover port: what happens when a deployment becomes `ready` (SPEC 2.9). The server
 * implements it with its RS256 key; the orchestration only calls it and records the outcome.
 *
 * The `handover-ready` deployment event carries the console URL WITHOUT the token (events never
 * carry a secret and are replayed for a long time); whoever streams that event mints a fresh
 * short-lived token with `url` (re-mint on request, SPEC 2.9).
 */
import { Context, Effect, Schema } from "effect"
import type { DeploymentRecord } from "./DeploymentRepo.js"

export class HandoverError extends Schema.TaggedError<HandoverError>()("HandoverError", {
  reason: Schema.Literal("Unavailable", "Unknown"),
  message: Schema.String
}) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

export interface HandoverService {
  /**
   * Called once per transition to `ready` (and again after a restart that finds a `ready` deployment
   * whose handover was not recorded): idempotent. E.g. creates the owner's access object in the cluster.
   */
  readonly prepare: (deployment: DeploymentRecord) => Effect.Effect<void, HandoverError>
  /** `https://console.<fqdn>/auth/handover?token=…` with a freshly minted short-lived token. */
  readonly url: (deployment: DeploymentRecord) => Effect.Effect<string, HandoverError>
}

export class Handover extends Context.Tag("@sovereign/core/Handover")<Handover, HandoverService>() {}
