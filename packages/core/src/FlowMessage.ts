/** The FlowMessage wire contract, schema version 1: flows, nodes, relationships and the six messages (SPEC 2.5). */
import { Schema } from "effect"
import { UnixMillis } from "./Time.js"

/** Additive optional fields and new relationship types keep version 1; renaming a discriminator or a required field is version 2. */
export const schemaVersion = 1 as const

/** Unix milliseconds. */
export const Timestamp = UnixMillis

const Meta = Schema.Record({ key: Schema.String, value: Schema.Unknown })

export const TriggerCondition = Schema.Literal("success", "failure", "always")

export const FlowInstance = Schema.Struct({
  id: Schema.String,
  definitionId: Schema.optional(Schema.String),
  parentFlowId: Schema.optional(Schema.String),
  triggeredBy: Schema.optional(Schema.Array(Schema.Struct({ flowId: Schema.String, when: TriggerCondition }))),
  /** An open vocabulary; Sovereign emits `pending`, `running`, `succeeded`, `failed`. */
  status: Schema.String,
  /** 0 when nothing has started. */
  startedAt: Timestamp,
  endedAt: Schema.optional(Timestamp),
  /** Opaque to consumers. */
  meta: Schema.optional(Meta)
})
export type FlowInstance = typeof FlowInstance.Type

/** A node of a flow; there is no parent field: hierarchy is carried by `contains` relationships only. */
export const FlowNode = Schema.Struct({
  /** Unique within the flow. */
  id: Schema.String,
  flowId: Schema.String,
  /** Plain text. */
  label: Schema.String,
  status: Schema.String,
  family: Schema.optional(Schema.String),
  region: Schema.optional(Schema.String),
  /** A queued node has neither timestamp; a running one only `startedAt`. */
  startedAt: Schema.optional(Timestamp),
  endedAt: Schema.optional(Timestamp),
  meta: Schema.optional(Meta)
})
export type FlowNode = typeof FlowNode.Type

/** The relationship types of the contract; the vocabulary is open (a new type does not bump the version). */
export const RelationshipType = Schema.Literal(
  "contains",
  "finish-to-start",
  "start-to-start",
  "finish-to-finish",
  "start-to-finish",
  "triggers"
)
export type RelationshipType = typeof RelationshipType.Type

export const RelationshipCondition = Schema.Literal("on-success", "on-failure", "always")
export type RelationshipCondition = typeof RelationshipCondition.Type

/** `contains`: `toId` is the parent (container) and `fromId` the child. `finish-to-start`: `toId` starts after `fromId` finishes. */
export const Relationship = Schema.Struct({
  fromId: Schema.String,
  toId: Schema.String,
  /** Omitted within one flow; `toFlowId` is required when a relationship crosses flows. */
  fromFlowId: Schema.optional(Schema.String),
  toFlowId: Schema.optional(Schema.String),
  type: Schema.String,
  condition: Schema.optional(RelationshipCondition),
  /** Seconds, ≥ 0; 0 when omitted. */
  lag: Schema.optional(Schema.Number.pipe(Schema.nonNegative()))
})
export type Relationship = typeof Relationship.Type

/** A relationship's natural key. */
export const RelationshipKey = Schema.Struct({ fromId: Schema.String, toId: Schema.String, type: Schema.String })
export type RelationshipKey = typeof RelationshipKey.Type

const nonEmpty = <A, I>(item: Schema.Schema<A, I>) => Schema.Array(item).pipe(Schema.minItems(1, { message: () => "must not be empty" }))

/** A missing array is an empty one (Go's omitempty drops empty slices). */
const orEmpty = <A, I>(item: Schema.Schema<A, I>) => Schema.optionalWith(Schema.Array(item), { default: () => [] })

/** Replaces the consumer's whole state for the flow. */
export const Snapshot = Schema.Struct({
  type: Schema.Literal("snapshot"),
  flow: FlowInstance,
  nodes: orEmpty(FlowNode),
  relationships: orEmpty(Relationship)
})
export type Snapshot = typeof Snapshot.Type

export const UpsertFlow = Schema.Struct({ type: Schema.Literal("upsert-flow"), flow: FlowInstance })
export type UpsertFlow = typeof UpsertFlow.Type

/** Sets nodes by id: an existing node keeps its position, a new one is appended. */
export const UpsertNodes = Schema.Struct({ type: Schema.Literal("upsert-nodes"), nodes: nonEmpty(FlowNode) })
export type UpsertNodes = typeof UpsertNodes.Type

/** Sets relationships by natural key: an existing one keeps its position, a new one is appended. */
export const UpsertRels = Schema.Struct({ type: Schema.Literal("upsert-rels"), relationships: nonEmpty(Relationship) })
export type UpsertRels = typeof UpsertRels.Type

/** Removes nodes; the consumer also removes every relationship that touches one of them. */
export const DeleteNodes = Schema.Struct({ type: Schema.Literal("delete-nodes"), ids: nonEmpty(Schema.String) })
export type DeleteNodes = typeof DeleteNodes.Type

export const DeleteRels = Schema.Struct({ type: Schema.Literal("delete-rels"), pairs: nonEmpty(RelationshipKey) })
export type DeleteRels = typeof DeleteRels.Type

/** One message of a flow's stream, discriminated by `type`. */
export const FlowMessage = Schema.Union(Snapshot, UpsertFlow, UpsertNodes, UpsertRels, DeleteNodes, DeleteRels)
export type FlowMessage = typeof FlowMessage.Type
export const decode = Schema.decodeUnknownEither(FlowMessage)
export const decodeSync = Schema.decodeUnknownSync(FlowMessage)
export const encodeSync = Schema.encodeSync(FlowMessage)
