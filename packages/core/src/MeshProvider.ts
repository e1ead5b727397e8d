/** The mesh port: one level-triggered pass that connects every region to every other (SPEC 2.8). */
import { Context, Schema } from "effect"
import type { Effect, Redacted } from "effect"
import type { DeploymentId, Region } from "./Deployment.js"
import type { MeshRegionStatus } from "./MeshPlan.js"

export const MeshErrorReason = Schema.Literal("Unreachable", "Forbidden", "Invalid", "Unknown")
export type MeshErrorReason = typeof MeshErrorReason.Type

export class MeshError extends Schema.TaggedError<MeshError>()("MeshError", {
  reason: MeshErrorReason,
  message: Schema.String,
  region: Schema.optional(Schema.String)
}) {
  get isRetryable(): boolean {
    return this.reason === "Unreachable"
  }
}

export interface MeshRegion {
  readonly region: Region
  readonly kubeconfig: Redacted.Redacted<string>
}

export interface MeshProviderService {
  /**
   * Reads every region, writes what differs, restarts only what changed. Per-region and per-peer
   * problems are reported in the statuses; the error is for a pass that could not run at all.
   */
  readonly establish: (
    deploymentId: DeploymentId,
    regions: ReadonlyArray<MeshRegion>
  ) => Effect.Effect<ReadonlyArray<MeshRegionStatus>, MeshError>
}

export class MeshProvider extends Context.Tag("@sovereign/core/MeshProvider")<MeshProvider, MeshProviderService>() {}
