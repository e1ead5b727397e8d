/** DNS records a Sovereign needs, zone resolution and the pure plan against what exists (SPEC 2.7). */
import { Schema } from "effect"

/** One rrset. Names are canonical: lowercase, with the trailing dot. */
export const RecordSet = Schema.Struct({
  name: Schema.String,
  type: Schema.String,
  ttl: Schema.Number,
  records: Schema.Array(Schema.String),
  /** The deployment id that owns the rrset; absent for records nobody (or someone else) claimed. */
  owner: Schema.optional(Schema.String)
})
export type RecordSet = typeof RecordSet.Type

export const DnsPolicy = Schema.Literal("sync", "upsert-only", "create-only")
export type DnsPolicy = typeof DnsPolicy.Type

/** What one zone needs changed. Applied only when non-empty, in one atomic request. */
export const DnsChanges = Schema.Struct({
  create: Schema.Array(RecordSet),
  update: Schema.Array(RecordSet),
  delete: Schema.Array(RecordSet)
})
export type DnsChanges = typeof DnsChanges.Type

/** Something the plan refused to touch, reported as a warning event. */
export const DnsWarning = Schema.Struct({
  name: Schema.String,
  type: Schema.String,
  reason: Schema.Literal("owned-by-other", "conflicting-record", "wildcard-covers-name", "zone-missing"),
  message: Schema.String
})
export type DnsWarning = typeof DnsWarning.Type
