/** The PowerDNS Authoritative HTTP API (v1) wire shapes Sovereign uses: zones, rrsets, their records and comments. */
import { Schema } from "effect"

/** One entry of `GET /servers/{id}/zones`. */
export const ZoneSummary = Schema.Struct({
  id: Schema.String,
  name: Schema.String
})
export type ZoneSummary = typeof ZoneSummary.Type

export const ZoneList = Schema.Array(ZoneSummary)

export const Record = Schema.Struct({
  content: Schema.String,
  disabled: Schema.optionalWith(Schema.Boolean, { default: () => false })
})
export type Record = typeof Record.Type

export const Comment = Schema.Struct({
  content: Schema.String,
  account: Schema.optionalWith(Schema.String, { default: () => "" }),
  modified_at: Schema.optional(Schema.Number)
})
export type Comment = typeof Comment.Type

export const RRSet = Schema.Struct({
  name: Schema.String,
  type: Schema.String,
  ttl: Schema.Number,
  records: Schema.Array(Record),
  comments: Schema.optionalWith(Schema.Array(Comment), { default: () => [] })
})
export type RRSet = typeof RRSet.Type

/** `GET /servers/{id}/zones/{zone}`. */
export const Zone = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  rrsets: Schema.Array(RRSet)
})
export type Zone = typeof Zone.Type

/** One rrset of a PATCH body. REPLACE carries records and comments (both replaced); DELETE carries neither. */
export const RRSetChange = Schema.Union(
  Schema.Struct({
    name: Schema.String,
    type: Schema.String,
    ttl: Schema.Number,
    changetype: Schema.Literal("REPLACE"),
    records: Schema.Array(Schema.Struct({ content: Schema.String, disabled: Schema.Boolean })),
    comments: Schema.Array(Schema.Struct({ content: Schema.String, account: Schema.String }))
  }),
  Schema.Struct({
    name: Schema.String,
    type: Schema.String,
    changetype: Schema.Literal("DELETE")
  })
)
export type RRSetChange = typeof RRSetChange.Type

/** `PATCH /servers/{id}/zones/{zone}`: applied atomically, all rrsets or none. */
export const PatchZone = Schema.Struct({
  rrsets: Schema.Array(RRSetChange)
})
export type PatchZone = typeof PatchZone.Type

/** The body of every 4xx/5xx answer that has one. */
export const ApiError = Schema.Struct({
  error: Schema.String
})
