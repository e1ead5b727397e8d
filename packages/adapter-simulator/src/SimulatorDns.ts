/** The simulated DNS server: zones with rrsets and their owners, one atomic apply per zone (SPEC 2.7). */
import { canonical, type DnsChanges, RecordSet } from "@sovereign/core/DnsPlan"
import { DnsError, DnsProvider, type DnsProviderService } from "@sovereign/core/DnsProvider"
import { Effect, Layer, Option, Schema } from "effect"
import { SimulatorWorld, type SimulatorWorldService } from "./SimulatorWorld.js"

const DnsDocument = Schema.parseJson(Schema.Struct({ zones: Schema.Record({ key: Schema.String, value: Schema.Array(RecordSet) }) }))
type DnsDocument = typeof DnsDocument.Type
const decode = Schema.decodeUnknownSync(DnsDocument)
const encode = Schema.encodeSync(DnsDocument)

const documentKey = "dns"

const unavailable = (message: string) => new DnsError({ reason: "Unavailable", message })

const readDocument = (document: Option.Option<string>): DnsDocument =>
  Option.match(document, { onNone: () => ({ zones: {} }), onSome: (text) => decode(text) })

/**
 * Makes sure the zones exist: the simulated world plays the operator's DNS, where the parent domains
 * of a request are already delegated. Called when a simulated deployment is planned.
 */
export const ensureZones = (world: SimulatorWorldService, names: ReadonlyArray<string>) =>
  world.modifyShared(documentKey, (document) => {
    const current = readDocument(document)
    const missing = names.map(canonical).filter((zone) => current.zones[zone] === undefined)
    if (missing.length === 0) return [undefined, Option.none()]
    const zones = { ...current.zones }
    for (const zone of missing) {
      zones[zone] = [
        { name: zone, type: "SOA", ttl: 3600, records: [`ns1.${zone} hostmaster.${zone} 1 10800 3600 604800 3600`] },
        { name: zone, type: "NS", ttl: 3600, records: [`ns1.${zone}`] }
      ]
    }
    return [undefined, Option.some(encode({ zones }))]
  })

const ipv4 = (value: string) =>
  /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(value) && value.split(".").every((part) => Number(part) <= 255)

/** What a real DNS server refuses: bad content for the type, a non-positive TTL, an empty rrset. */
const invalidReason = (record: RecordSet): string | undefined => {
  if (!Number.isInteger(record.ttl) || record.ttl < 1) return `TTL ${record.ttl} is not a positive integer`
  if (record.records.length === 0) return "an rrset needs at least one record"
  if (record.type === "A") {
    const bad = record.records.find((value) => !ipv4(value))
    if (bad !== undefined) return `'${bad}' is not an IPv4 address`
  }
  if (record.type === "AAAA") {
    const bad = record.records.find((value) => !/^[0-9a-f:]+$/i.test(value) || !value.includes(":"))
    if (bad !== undefined) return `'${bad}' is not an IPv6 address`
  }
  return undefined
}

const sameRrset = (a: RecordSet, b: RecordSet) => canonical(a.name) === canonical(b.name) && a.type === b.type

export const make = (options: { readonly zones?: ReadonlyArray<string> } = {}) =>
  Effect.gen(function* () {
    const world = yield* SimulatorWorld
    if (options.zones !== undefined && options.zones.length > 0) yield* Effect.orDie(ensureZones(world, options.zones))
    const read = Effect.map(
      world.modifyShared(documentKey, (document) => [readDocument(document), Option.none()]),
      (d) => d
    )
    const service: DnsProviderService = {
      zones: () =>
        read.pipe(
          Effect.map((document) => Object.keys(document.zones).sort()),
          Effect.mapError((error) => unavailable(error.message))
        ),
      records: (zone) =>
        read.pipe(
          Effect.mapError((error) => unavailable(error.message)),
          Effect.flatMap((document) => {
            const records = document.zones[canonical(zone)]
            return records === undefined
              ? Effect.fail(new DnsError({ reason: "ZoneNotFound", message: `zone ${zone} does not exist`, zone }))
              : Effect.succeed(records)
          })
        ),
      apply: (zone, changes: DnsChanges) =>
        world
          .modifyShared(documentKey, (document) => {
            const current = readDocument(document)
            const name = canonical(zone)
            const records = current.zones[name]
            if (records === undefined) {
              return [
                Option.some(new DnsError({ reason: "ZoneNotFound", message: `zone ${zone} does not exist`, zone })),
                Option.none()
              ] as const
            }
            const outside = [...changes.create, ...changes.update, ...changes.delete].find(
              (record) => canonical(record.name) !== name && !canonical(record.name).endsWith(`.${name}`)
            )
            if (outside !== undefined) {
              return [
                Option.some(
                  new DnsError({ reason: "Rejected", message: `${outside.name} is not within zone ${name}`, zone, record: outside.name })
                ),
                Option.none()
              ] as const
            }
            for (const record of [...changes.create, ...changes.update]) {
              const reason = invalidReason(record)
              if (reason !== undefined) {
                return [
                  Option.some(
                    new DnsError({ reason: "Rejected", message: `${record.name} ${record.type}: ${reason}`, zone, record: record.name })
                  ),
                  Option.none()
                ] as const
              }
            }
            let next = records.filter((record) => !changes.delete.some((doomed) => sameRrset(doomed, record)))
            for (const record of [...changes.create, ...changes.update]) {
              next = [...next.filter((existing) => !sameRrset(existing, record)), { ...record, name: canonical(record.name) }]
            }
            return [Option.none(), Option.some(encode({ zones: { ...current.zones, [name]: next } }))] as const
          })
          .pipe(
            Effect.mapError((error) => unavailable(error.message)),
            Effect.flatMap(Option.match({ onNone: () => Effect.void, onSome: Effect.fail }))
          )
    }
    return service
  })

export const layer = (options: { readonly zones?: ReadonlyArray<string> } = {}): Layer.Layer<DnsProvider, never, SimulatorWorld> =>
  Layer.effect(DnsProvider, make(options))
