import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import type { DnsChanges, RecordSet } from "../src/DnsPlan.js"
import { DnsError, DnsProvider } from "../src/DnsProvider.js"
import { publish, unpublish } from "../src/DnsPublish.js"

const us = "0123456789abcdef"
const them = "fedcba9876543210"

/** A DnsProvider held in memory, counting applies, so the program's decisions are observable without I/O. */
const inMemory = (initial: Record<string, ReadonlyArray<RecordSet>>) =>
  Effect.gen(function* () {
    const state = yield* Ref.make(new Map(Object.entries(initial)))
    const applies = yield* Ref.make<Array<{ zone: string; changes: DnsChanges }>>([])
    const key = (record: RecordSet) => `${record.name} ${record.type}`
    const layer = Layer.succeed(DnsProvider, {
      zones: () => Ref.get(state).pipe(Effect.map((zones) => [...zones.keys()])),
      records: (zone) =>
        Ref.get(state).pipe(
          Effect.flatMap((zones) => {
            const records = zones.get(zone)
            return records === undefined
              ? Effect.fail(new DnsError({ reason: "ZoneNotFound", message: `no zone ${zone}`, zone }))
              : Effect.succeed(records)
          })
        ),
      apply: (zone, changes) =>
        Ref.update(applies, (list) => [...list, { zone, changes }]).pipe(
          Effect.zipRight(
            Ref.update(state, (zones) => {
              const touched = new Set([...changes.create, ...changes.update, ...changes.delete].map(key))
              const next = new Map(zones)
              next.set(zone, [
                ...(zones.get(zone) ?? []).filter((record) => !touched.has(key(record))),
                ...changes.create,
                ...changes.update
              ])
              return next
            })
          )
        )
    })
    return { layer, state, applies }
  })

const input = {
  deploymentId: us,
  fqdn: "t1.omani.works",
  parentDomains: ["omani.works"],
  loadBalancers: { primary: "198.51.100.1", console: "198.51.100.2" }
}

describe("publish", () => {
  it.effect("writes all 19 names in one apply, then nothing on the second run", () =>
    Effect.gen(function* () {
      const world = yield* inMemory({ "omani.works.": [] })
      const first = yield* publish(input).pipe(Effect.provide(world.layer))
      expect(first.plans).toHaveLength(1)
      expect(first.plans[0]).toMatchObject({ zone: "omani.works.", applied: true })
      expect(first.plans[0]?.changes.create).toHaveLength(19)
      const second = yield* publish(input).pipe(Effect.provide(world.layer))
      expect(second.plans[0]).toMatchObject({ applied: false, changes: { create: [], update: [], delete: [] } })
      expect(yield* Ref.get(world.applies)).toHaveLength(1)
    })
  )

  it.effect("a dry run returns the plan and writes nothing", () =>
    Effect.gen(function* () {
      const world = yield* inMemory({ "omani.works.": [] })
      const result = yield* publish({ ...input, dryRun: true }).pipe(Effect.provide(world.layer))
      expect(result.plans[0]?.changes.create).toHaveLength(19)
      expect(result.plans[0]?.applied).toBe(false)
      expect(yield* Ref.get(world.applies)).toEqual([])
    })
  )

  it.effect("falls back from a parent equal to the FQDN to the FQDN's tail", () =>
    Effect.gen(function* () {
      const world = yield* inMemory({ "omani.works.": [] })
      const result = yield* publish({ ...input, parentDomains: ["t1.omani.works"] }).pipe(Effect.provide(world.layer))
      expect(result.plans.map((zonePlan) => zonePlan.zone)).toEqual(["omani.works."])
      expect(result.warnings).toEqual([])
    })
  )

  it.effect("warns about every name without a zone and writes nothing", () =>
    Effect.gen(function* () {
      const world = yield* inMemory({ "example.com.": [] })
      const result = yield* publish(input).pipe(Effect.provide(world.layer))
      expect(result.plans).toEqual([])
      expect(result.warnings).toHaveLength(19)
      expect(new Set(result.warnings.map((warning) => warning.reason))).toEqual(new Set(["zone-missing"]))
    })
  )

  it.effect("under sync removes our records stranded in a zone that no longer receives names", () =>
    Effect.gen(function* () {
      const stale: RecordSet = { name: "console.t1.omani.works.", type: "A", ttl: 60, records: ["10.0.0.9"], owner: us }
      const foreign: RecordSet = { name: "www.omani.works.", type: "A", ttl: 60, records: ["10.0.0.8"], owner: them }
      const world = yield* inMemory({ "omani.works.": [stale, foreign], "t1.omani.works.": [] })
      const result = yield* publish(input).pipe(Effect.provide(world.layer))
      const zones = yield* Ref.get(world.state)
      expect(zones.get("omani.works.")).toEqual([foreign])
      expect(zones.get("t1.omani.works.")).toHaveLength(19)
      expect(result.plans.map((zonePlan) => zonePlan.zone)).toEqual(["omani.works.", "t1.omani.works."])
    })
  )
})

describe("unpublish", () => {
  it.effect("deletes exactly our records in every zone", () =>
    Effect.gen(function* () {
      const world = yield* inMemory({ "omani.works.": [], "example.com.": [] })
      yield* publish(input).pipe(Effect.provide(world.layer))
      const foreign: RecordSet = { name: "other.t1.omani.works.", type: "A", ttl: 60, records: ["10.0.0.8"], owner: them }
      const unowned: RecordSet = { name: "www.example.com.", type: "A", ttl: 60, records: ["10.0.0.7"] }
      yield* Ref.update(world.state, (zones) =>
        new Map(zones).set("example.com.", [unowned]).set("omani.works.", [...(zones.get("omani.works.") ?? []), foreign])
      )
      const result = yield* unpublish(us).pipe(Effect.provide(world.layer))
      expect(result.plans[0]?.changes.delete).toHaveLength(19)
      const zones = yield* Ref.get(world.state)
      expect(zones.get("omani.works.")).toEqual([foreign])
      expect(zones.get("example.com.")).toEqual([unowned])
    })
  )
})
