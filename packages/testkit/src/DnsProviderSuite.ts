/** The DnsProvider conformance suite: what every DNS adapter (PowerDNS, the simulator, yours) must do, run from a three-line test file. */
import { expect, layer } from "@effect/vitest"
import { DnsPlan, DnsProvider, DnsPublish } from "@sovereign/core"
import { Duration, Effect } from "effect"
import type { Layer } from "effect"

type RecordSet = DnsPlan.RecordSet

export interface SuiteOptions {
  /** A canonical zone that exists on the provider. The suite writes only below fresh labels in it. */
  readonly zone: string
  /** A canonical zone name that does not exist; default `missing-zone.invalid.`. */
  readonly missingZone?: string
  /** A record the provider must refuse; default an A record whose content is not an IPv4 address. */
  readonly invalidRecord?: (name: string) => RecordSet
  /** Per test; default 30 seconds. */
  readonly timeout?: Duration.DurationInput
}

const owner = "c0ffee0000000001"
const otherOwner = "c0ffee0000000002"

const a = (name: string, records: ReadonlyArray<string>, recordOwner?: string): RecordSet =>
  recordOwner === undefined ? { name, type: "A", ttl: 60, records } : { name, type: "A", ttl: 60, records, owner: recordOwner }

/** Record order inside an rrset is not significant; compare sorted. */
const normal = (record: RecordSet): RecordSet => ({ ...record, records: [...record.records].sort() })

const none: DnsPlan.DnsChanges = { create: [], update: [], delete: [] }

/**
 * Registers the suite. `layer` provides the DnsProvider under test; it is built once for the whole
 * suite, so a layer that starts a server (and stops it with its scope) costs one start. Example
 * (test/Conformance.test.ts of an adapter):
 *
 *   import { DnsProviderSuite } from "@sovereign/testkit"
 *   DnsProviderSuite.suite("powerdns", providerLayer, { zone: "conformance.test." })
 */
export const suite = <E>(name: string, providerLayer: Layer.Layer<DnsProvider.DnsProvider, E>, options: SuiteOptions): void => {
  const zone = DnsPlan.canonical(options.zone)
  const missingZone = options.missingZone ?? "missing-zone.invalid."
  const invalidRecord = options.invalidRecord ?? ((recordName: string) => a(recordName, ["not-an-ip-address"], owner))
  const run = `r${Date.now().toString(36)}`
  let counter = 0
  /** A fresh label below the zone per test, so tests never see each other's records. */
  const fresh = (what: string) => `${what}-${run}-${++counter}.${zone}`

  const within = (prefix: string) =>
    Effect.flatMap(DnsProvider.DnsProvider, (provider) => provider.records(zone)).pipe(
      Effect.map((records) =>
        records
          .filter((record) => record.name === prefix || record.name.endsWith(`.${prefix}`))
          .map(normal)
          .sort((x, y) => `${x.name} ${x.type}`.localeCompare(`${y.name} ${y.type}`))
      )
    )
  const apply = (changes: Partial<DnsPlan.DnsChanges>) =>
    Effect.flatMap(DnsProvider.DnsProvider, (provider) => provider.apply(zone, { ...none, ...changes }))

  const timeout = Duration.toMillis(Duration.decode(options.timeout ?? Duration.seconds(30)))
  // Live services: adapters retry and time out on the real clock.
  layer(providerLayer, { excludeTestServices: true })(`DnsProvider conformance: ${name}`, (it) => {
    it.effect(
      "lists zones by canonical name, the configured zone among them",
      () =>
        Effect.gen(function* () {
          const zones = yield* Effect.flatMap(DnsProvider.DnsProvider, (provider) => provider.zones())
          expect(zones).toContain(zone)
          for (const listed of zones) expect(listed).toBe(DnsPlan.canonical(listed))
        }),
      timeout
    )

    it.effect(
      "records round-trip with their owner, and without one when none was written",
      () =>
        Effect.gen(function* () {
          const base = fresh("roundtrip")
          const owned = a(`www.${base}`, ["192.0.2.20", "192.0.2.10"], owner)
          const unowned = a(`plain.${base}`, ["192.0.2.30"])
          yield* apply({ create: [owned, unowned] })
          expect(yield* within(base)).toEqual([normal(unowned), normal(owned)])
        }),
      timeout
    )

    it.effect(
      "update replaces content and TTL under the same owner; delete removes the rrset",
      () =>
        Effect.gen(function* () {
          const base = fresh("update")
          yield* apply({ create: [a(`x.${base}`, ["192.0.2.1"], owner), a(`y.${base}`, ["192.0.2.2"], owner)] })
          const changed: RecordSet = { ...a(`x.${base}`, ["192.0.2.9"], owner), ttl: 120 }
          yield* apply({ update: [changed], delete: [a(`y.${base}`, ["192.0.2.2"], owner)] })
          expect(yield* within(base)).toEqual([changed])
        }),
      timeout
    )

    it.effect(
      "apply is atomic: a batch with one invalid record fails as Rejected and changes nothing",
      () =>
        Effect.gen(function* () {
          const base = fresh("atomic")
          const kept = a(`kept.${base}`, ["192.0.2.1"], owner)
          const doomed = a(`doomed.${base}`, ["192.0.2.2"], owner)
          yield* apply({ create: [kept, doomed] })
          const before = yield* within(base)
          const error = yield* apply({
            create: [a(`new.${base}`, ["192.0.2.3"], owner), invalidRecord(`bad.${base}`)],
            update: [a(`kept.${base}`, ["192.0.2.99"], owner)],
            delete: [doomed]
          }).pipe(Effect.flip)
          expect(error).toBeInstanceOf(DnsProvider.DnsError)
          expect(error.reason).toBe("Rejected")
          expect(error.isRetryable).toBe(false)
          expect(yield* within(base)).toEqual(before)
        }),
      timeout
    )

    it.effect(
      "records of another owner survive creates, updates and deletes of ours",
      () =>
        Effect.gen(function* () {
          const base = fresh("owners")
          const theirs = a(`theirs.${base}`, ["198.51.100.7"], otherOwner)
          const unowned = a(`unowned.${base}`, ["198.51.100.8"])
          yield* apply({ create: [theirs, unowned, a(`ours.${base}`, ["192.0.2.1"], owner), a(`gone.${base}`, ["192.0.2.2"], owner)] })
          yield* apply({
            create: [a(`more.${base}`, ["192.0.2.3"], owner)],
            update: [a(`ours.${base}`, ["192.0.2.4"], owner)],
            delete: [a(`gone.${base}`, ["192.0.2.2"], owner)]
          })
          const after = yield* within(base)
          expect(after).toContainEqual(normal(theirs))
          expect(after).toContainEqual(normal(unowned))
          expect(after.map((record) => record.name)).toEqual([`more.${base}`, `ours.${base}`, `theirs.${base}`, `unowned.${base}`])
        }),
      timeout
    )

    it.effect(
      "an empty apply succeeds and changes nothing",
      () =>
        Effect.gen(function* () {
          const before = yield* within(zone)
          yield* apply({})
          expect(yield* within(zone)).toEqual(before)
        }),
      timeout
    )

    it.effect(
      "a missing zone fails with ZoneNotFound, for reads and for writes",
      () =>
        Effect.gen(function* () {
          const provider = yield* DnsProvider.DnsProvider
          const readError = yield* provider.records(missingZone).pipe(Effect.flip)
          expect(readError.reason).toBe("ZoneNotFound")
          const writeError = yield* provider
            .apply(missingZone, { ...none, create: [a(`www.${missingZone}`, ["192.0.2.1"], owner)] })
            .pipe(Effect.flip)
          expect(writeError.reason).toBe("ZoneNotFound")
        }),
      timeout
    )

    it.effect(
      "publish writes 19 names, a second publish changes nothing, unpublish removes exactly ours",
      () =>
        Effect.gen(function* () {
          const fqdn = fresh("sovereign")
          const theirs = a(`theirs.${fqdn}`, ["198.51.100.7"], otherOwner)
          yield* apply({ create: [theirs] })
          const input = { deploymentId: owner, fqdn, parentDomains: [zone], loadBalancers: { primary: "192.0.2.1", console: "192.0.2.2" } }
          const first = yield* DnsPublish.publish(input)
          expect(first.plans.map((plan) => [plan.zone, plan.changes.create.length, plan.applied])).toEqual([[zone, 19, true]])
          expect((yield* within(fqdn)).filter((record) => record.owner === owner)).toHaveLength(19)
          const second = yield* DnsPublish.publish(input)
          expect(second.plans.every((plan) => !plan.applied && DnsPlan.isEmpty(plan.changes))).toBe(true)
          yield* DnsPublish.unpublish(owner)
          expect(yield* within(fqdn)).toEqual([normal(theirs)])
        }),
      timeout
    )
  })
}
