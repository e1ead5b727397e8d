/** Flux HelmRelease observations and their derived component state (SPEC 2.6). */
import { Schema } from "effect"

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
