/** The DNS port: list zones, read rrsets with their owner, apply one zone's changes atomically (SPEC 2.7). */
import { Context, Schema } from "effect"
import type { Effect } from "effect"
import type { DnsChanges, RecordSet } from "./DnsPlan.js"

export const DnsErrorReason = Schema.Literal("Unauthorized", "ZoneNotFound", "Rejected", "Unavailable", "Unknown")
export type DnsErrorReason = typeof DnsErrorReason.Type

export class DnsError extends Schema.TaggedError<DnsError>()("DnsError", {
  reason: DnsErrorReason,
  message: Schema.String,
  zone: Schema.optional(Schema.String),
  /** The record the server rejected, when it said which. */
  record: Schema.optional(Schema.String)
}) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

export interface DnsProviderService {
  /** Canonical zone names (trailing dot). */
  readonly zones: () => Effect.Effect<ReadonlyArray<string>, DnsError>
  /** Every rrset of the zone, with its owner when the server holds one. */
  readonly records: (zone: string) => Effect.Effect<ReadonlyArray<RecordSet>, DnsError>
  /** One atomic request; records in `create`/`update` are written with their `owner`. */
  readonly apply: (zone: string, changes: DnsChanges) => Effect.Effect<void, DnsError>
}

export class DnsProvider extends Context.Tag("@sovereign/core/DnsProvider")<DnsProvider, DnsProviderService>() {}
