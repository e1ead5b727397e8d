/** The DnsProvider port over PowerDNS: ownership as rrset comments, one atomic PATCH per zone with only the rrsets that change. */
import type { HttpClient } from "@effect/platform"
import { DnsPlan, DnsProvider } from "@sovereign/core"
import { Config, Effect, Layer } from "effect"
import type { ConfigError } from "effect"
import { make as makeClient } from "./PowerDnsClient.js"
import type { PowerDnsClientOptions } from "./PowerDnsClient.js"
import type { Comment, PatchZone, RRSet, RRSetChange } from "./PowerDnsSchema.js"

/** The comment account that marks Sovereign's ownership claim; the content is `owner=<deploymentId>`. */
export const ownerAccount = "sovereign"
const ownerPrefix = "owner="

export const ownerOf = (comments: ReadonlyArray<Comment>): string | undefined =>
  comments
    .find((comment) => comment.account === ownerAccount && comment.content.startsWith(ownerPrefix))
    ?.content.slice(ownerPrefix.length)
    .trim() || undefined

/** A PowerDNS rrset as the port sees it: canonical name, enabled contents only, owner from the comment. */
export const toRecordSet = (rrset: RRSet): DnsPlan.RecordSet => {
  const owner = ownerOf(rrset.comments)
  const base = {
    name: DnsPlan.canonical(rrset.name),
    type: rrset.type.toUpperCase(),
    ttl: rrset.ttl,
    records: rrset.records.filter((record) => !record.disabled).map((record) => record.content)
  }
  return owner === undefined ? base : { ...base, owner }
}

const replace = (record: DnsPlan.RecordSet): RRSetChange => ({
  name: DnsPlan.canonical(record.name),
  type: record.type.toUpperCase(),
  ttl: record.ttl,
  changetype: "REPLACE",
  records: record.records.map((content) => ({ content, disabled: false })),
  comments: record.owner === undefined ? [] : [{ content: `${ownerPrefix}${record.owner}`, account: ownerAccount }]
})

/**
 * Creates and updates are both REPLACE (PowerDNS has no create-only changetype); deletes carry no
 * records and go first, so an A record may replace a CNAME of ours in the same atomic PATCH.
 */
export const toPatch = (changes: DnsPlan.DnsChanges): PatchZone => ({
  rrsets: [
    ...changes.delete.map((record): RRSetChange => ({
      name: DnsPlan.canonical(record.name),
      type: record.type.toUpperCase(),
      changetype: "DELETE"
    })),
    ...changes.create.map(replace),
    ...changes.update.map(replace)
  ]
})

export type PowerDnsOptions = PowerDnsClientOptions

export const make = (options: PowerDnsOptions): Effect.Effect<DnsProvider.DnsProviderService, never, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const client = yield* makeClient(options)
    return {
      zones: () => client.listZones().pipe(Effect.map((zones) => zones.map((zone) => DnsPlan.canonical(zone.name)).sort())),
      records: (zone) => client.getZone(DnsPlan.canonical(zone)).pipe(Effect.map((found) => found.rrsets.map(toRecordSet))),
      apply: (zone, changes) => (DnsPlan.isEmpty(changes) ? Effect.void : client.patchZone(DnsPlan.canonical(zone), toPatch(changes)))
    }
  })

export const layer = (options: PowerDnsOptions): Layer.Layer<DnsProvider.DnsProvider, never, HttpClient.HttpClient> =>
  Layer.effect(DnsProvider.DnsProvider, make(options))

/** `PDNS_API_URL`, `PDNS_API_KEY` (secret), `PDNS_SERVER_ID` (default `localhost`), SPEC §8. */
export const config: Config.Config<PowerDnsOptions> = Config.all({
  apiUrl: Config.string("PDNS_API_URL"),
  apiKey: Config.redacted("PDNS_API_KEY"),
  serverId: Config.string("PDNS_SERVER_ID").pipe(Config.withDefault("localhost"))
})

export const layerConfig = (
  options: Config.Config<PowerDnsOptions> = config
): Layer.Layer<DnsProvider.DnsProvider, ConfigError.ConfigError, HttpClient.HttpClient> => Layer.unwrapEffect(Effect.map(options, layer))
