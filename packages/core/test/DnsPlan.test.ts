import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import * as fc from "fast-check"
import { canonical, defaultSubdomains, desiredRecords, isEmpty, plan, isSubdomain, resolveZone, wipePlan } from "../src/DnsPlan.js"
import type { DnsPolicy, RecordSet } from "../src/DnsPlan.js"

const us = "0123456789abcdef"
const them = "fedcba9876543210"
const a = (name: string, ip: string, owner?: string, ttl = 60): RecordSet =>
  owner === undefined ? { name, type: "A", ttl, records: [ip] } : { name, type: "A", ttl, records: [ip], owner }

describe("desiredRecords", () => {
  const records = desiredRecords({
    deploymentId: us,
    fqdn: "T1.Omani.Works",
    primaryLoadBalancerIP: "198.51.100.1",
    consoleLoadBalancerIP: "198.51.100.2"
  })

  it("publishes the apex and all 18 default names as A records with TTL 60, owned by the deployment", () => {
    expect(records).toHaveLength(19)
    expect(records.map((record) => record.name)).toEqual([
      "t1.omani.works.",
      ...defaultSubdomains.map((label) => `${label}.t1.omani.works.`)
    ])
    for (const record of records) {
      expect(record).toMatchObject({ type: "A", ttl: 60, owner: us })
    }
  })

  it("sends console, api and marketplace to the console load balancer, everything else (apex too) to the primary", () => {
    const target = Object.fromEntries(records.map((record) => [record.name, record.records]))
    for (const label of ["console", "api", "marketplace"]) expect(target[`${label}.t1.omani.works.`]).toEqual(["198.51.100.2"])
    expect(target["t1.omani.works."]).toEqual(["198.51.100.1"])
    expect(target["grafana.t1.omani.works."]).toEqual(["198.51.100.1"])
  })

  it("without a console load balancer every name goes to the primary", () => {
    const all = desiredRecords({ deploymentId: us, fqdn: "t1.omani.works", primaryLoadBalancerIP: "198.51.100.1" })
    expect(new Set(all.flatMap((record) => record.records))).toEqual(new Set(["198.51.100.1"]))
  })

  it("a configured list replaces the default, keeps the apex and drops duplicates", () => {
    const custom = desiredRecords({
      deploymentId: us,
      fqdn: "t1.omani.works",
      subdomains: ["console", "docs", "console"],
      primaryLoadBalancerIP: "198.51.100.1"
    })
    expect(custom.map((record) => record.name)).toEqual(["t1.omani.works.", "console.t1.omani.works.", "docs.t1.omani.works."])
  })
})

describe("isSubdomain", () => {
  it("accepts RFC 1123 names and refuses anything else", () => {
    for (const name of ["console", "a", "openova-flow", "docs.internal", "x1"]) expect(isSubdomain(name), name).toBe(true)
    for (const name of ["", "bad_label", "-lead", "trail-", "Console", "a..b", ".a", "a".repeat(64)])
      expect(isSubdomain(name), name).toBe(false)
  })
})

describe("resolveZone", () => {
  const rows: ReadonlyArray<[string, string, ReadonlyArray<string>, ReadonlyArray<string>, string | undefined, string | undefined]> = [
    ["longest suffix wins", "console.t1.omani.works.", ["works.", "omani.works.", "t1.omani.works."], [], undefined, "t1.omani.works."],
    ["label boundary: at1 is not t1", "console.at1.omani.works.", ["t1.omani.works.", "omani.works."], [], undefined, "omani.works."],
    ["no zone", "console.t1.omani.works.", ["example.com."], [], undefined, undefined],
    ["names compare canonically", "Console.T1.Omani.Works", ["OMANI.WORKS"], [], undefined, "omani.works."],
    [
      "a zone below the parent qualifies",
      "console.t1.omani.works.",
      ["omani.works.", "t1.omani.works."],
      ["omani.works"],
      "t1.omani.works",
      "t1.omani.works."
    ],
    ["a zone above the parent does not", "console.t1.omani.works.", ["works."], ["omani.works"], "t1.omani.works", undefined],
    [
      "parent equal to the FQDN falls back to its tail",
      "console.t1.omani.works.",
      ["omani.works."],
      ["t1.omani.works"],
      "t1.omani.works",
      "omani.works."
    ],
    ["the fallback holds for the apex too", "t1.omani.works.", ["omani.works."], ["t1.omani.works"], "t1.omani.works", "omani.works."],
    [
      "no fallback when the parent's zone exists",
      "console.t1.omani.works.",
      ["omani.works.", "t1.omani.works."],
      ["t1.omani.works"],
      "t1.omani.works",
      "t1.omani.works."
    ],
    ["no fallback for a parent other than the FQDN", "console.t1.omani.works.", ["works."], ["omani.works"], "t1.omani.works", undefined]
  ]
  for (const [title, name, zones, parents, fqdn, expected] of rows) {
    it(title, () => {
      expect(Option.getOrUndefined(resolveZone(name, zones, parents, fqdn))).toBe(expected)
    })
  }
})

describe("plan", () => {
  const desired = [a("t1.x.", "10.0.0.1", us), a("console.t1.x.", "10.0.0.2", us), a("grafana.t1.x.", "10.0.0.1", us)]

  it("creates what is missing, under every policy", () => {
    for (const policy of ["sync", "upsert-only", "create-only"] as const) {
      const result = plan([], desired, policy, us)
      expect(result.changes.create.map((record) => record.name)).toEqual(["t1.x.", "console.t1.x.", "grafana.t1.x."])
      expect(result.changes.update).toEqual([])
      expect(result.changes.delete).toEqual([])
      expect(result.warnings).toEqual([])
    }
  })

  it("is empty when the zone already holds exactly our records (record order does not matter)", () => {
    const current = [...desired, { ...a("api.t1.x.", "10.0.0.2", them) }]
    const result = plan(current, desired, "sync", us)
    expect(isEmpty(result.changes)).toBe(true)
  })

  it("updates our own records whose content or TTL changed, except under create-only", () => {
    const current = [a("t1.x.", "10.9.9.9", us), a("console.t1.x.", "10.0.0.2", us, 300), a("grafana.t1.x.", "10.0.0.1", us)]
    expect(plan(current, desired, "sync", us).changes.update.map((record) => record.name)).toEqual(["t1.x.", "console.t1.x."])
    expect(plan(current, desired, "upsert-only", us).changes.update).toHaveLength(2)
    expect(isEmpty(plan(current, desired, "create-only", us).changes)).toBe(true)
  })

  it("deletes our records that are no longer desired only under sync", () => {
    const current = [...desired, a("old.t1.x.", "10.0.0.1", us)]
    expect(plan(current, desired, "sync", us).changes.delete.map((record) => record.name)).toEqual(["old.t1.x."])
    expect(plan(current, desired, "upsert-only", us).changes.delete).toEqual([])
    expect(plan(current, desired, "create-only", us).changes.delete).toEqual([])
  })

  it("never touches a record owned by another deployment, and says so", () => {
    const current = [a("console.t1.x.", "203.0.113.7", them), a("other.t1.x.", "203.0.113.7", them)]
    const result = plan(current, desired, "sync", us)
    expect(result.changes.create.map((record) => record.name)).toEqual(["t1.x.", "grafana.t1.x."])
    expect(result.changes.update).toEqual([])
    expect(result.changes.delete).toEqual([])
    expect(result.warnings).toEqual([expect.objectContaining({ name: "console.t1.x.", reason: "owned-by-other" })])
    expect(result.warnings[0]?.message).toContain(them)
  })

  it("reports an unowned A record, a TXT and a CNAME at our names, touching none and not adding an A beside a CNAME", () => {
    const current: Array<RecordSet> = [
      a("grafana.t1.x.", "203.0.113.9"),
      { name: "console.t1.x.", type: "TXT", ttl: 300, records: ['"hello"'] },
      { name: "t1.x.", type: "CNAME", ttl: 300, records: ["elsewhere.example."] }
    ]
    const result = plan(current, desired, "sync", us)
    expect(result.changes.create.map((record) => record.name)).toEqual(["console.t1.x."])
    expect(result.changes.update).toEqual([])
    expect(result.changes.delete).toEqual([])
    expect(result.warnings.map((warning) => [warning.name, warning.type, warning.reason])).toEqual([
      ["t1.x.", "CNAME", "conflicting-record"],
      ["console.t1.x.", "TXT", "conflicting-record"],
      ["grafana.t1.x.", "A", "conflicting-record"]
    ])
  })

  it("SOA and NS at our apex (the FQDN is its own zone) are no conflict", () => {
    const current: Array<RecordSet> = [
      { name: "t1.x.", type: "SOA", ttl: 3600, records: ["ns1.t1.x. hostmaster.t1.x. 1 10800 3600 604800 3600"] },
      { name: "t1.x.", type: "NS", ttl: 3600, records: ["ns1.t1.x."] }
    ]
    const result = plan(current, desired, "sync", us)
    expect(result.warnings).toEqual([])
    expect(result.changes.create).toHaveLength(3)
  })

  it("reports a wildcard that covers our names and points elsewhere, but not one that points at us", () => {
    const elsewhere = plan([a("*.t1.x.", "203.0.113.50")], desired, "sync", us)
    expect(elsewhere.warnings).toEqual([expect.objectContaining({ name: "*.t1.x.", reason: "wildcard-covers-name" })])
    expect(elsewhere.changes.delete).toEqual([])
    const above = plan([a("*.x.", "203.0.113.50")], desired, "sync", us)
    expect(above.warnings.map((warning) => warning.reason)).toEqual(["wildcard-covers-name"])
    expect(plan([a("*.t1.x.", "10.0.0.1")], desired, "sync", us).warnings).toEqual([])
    expect(plan([a("*.unrelated.x.", "203.0.113.50")], desired, "sync", us).warnings).toEqual([])
  })

  it("wipePlan deletes exactly what the deployment owns", () => {
    const current = [
      a("t1.x.", "10.0.0.1", us),
      a("console.t1.x.", "10.0.0.2", them),
      a("www.x.", "10.0.0.3"),
      a("old.t1.x.", "1.1.1.1", us)
    ]
    expect(wipePlan(current, us)).toEqual({ create: [], update: [], delete: [current[0], current[3]] })
  })

  const owners = fc.constantFrom(us, them, "aaaaaaaaaaaaaaaa", undefined)
  const names = fc.constantFrom("t1.x.", "console.t1.x.", "api.t1.x.", "*.t1.x.", "www.x.", "grafana.t1.x.")
  const recordArb: fc.Arbitrary<RecordSet> = fc
    .record({
      name: names,
      type: fc.constantFrom("A", "TXT", "CNAME"),
      ttl: fc.constantFrom(60, 300),
      records: fc.array(fc.constantFrom("10.0.0.1", "10.0.0.2", "203.0.113.9"), { minLength: 1, maxLength: 2 }),
      owner: owners
    })
    .map(({ owner, ...rest }) => (owner === undefined ? rest : { ...rest, owner }))
  const zoneArb = fc.uniqueArray(recordArb, { selector: (record) => `${record.name} ${record.type}`, maxLength: 10 })
  const desiredArb = fc
    .uniqueArray(fc.record({ name: names.filter((name) => !name.startsWith("*")), ip: fc.constantFrom("10.0.0.1", "10.0.0.2") }), {
      selector: (entry) => entry.name,
      maxLength: 5
    })
    .map((entries) => entries.map((entry) => a(entry.name, entry.ip, us)))
  const policyArb = fc.constantFrom<DnsPolicy>("sync", "upsert-only", "create-only")

  it.prop(
    "under every policy no change touches a record whose owner differs from ours",
    [zoneArb, desiredArb, policyArb],
    ([current, wanted, policy]) => {
      const { changes, warnings } = plan(current, wanted, policy, us)
      const existing = new Map(current.map((record) => [`${canonical(record.name)} ${record.type}`, record]))
      for (const want of wanted) {
        const there = existing.get(`${want.name} A`)
        if (there !== undefined && there.owner !== us) expect(warnings.map((warning) => warning.name)).toContain(want.name)
      }
      for (const change of [...changes.update, ...changes.delete]) {
        expect(existing.get(`${change.name} ${change.type}`)?.owner).toBe(us)
      }
      for (const change of changes.create) {
        expect(existing.has(`${change.name} ${change.type}`)).toBe(false)
        expect(change.owner).toBe(us)
      }
      if (policy !== "sync") expect(changes.delete).toEqual([])
      if (policy === "create-only") expect(changes.update).toEqual([])
      for (const record of wipePlan(current, us).delete) expect(record.owner).toBe(us)
    },
    { fastCheck: { numRuns: 1000 } }
  )

  it.prop(
    "applying a plan and planning again yields nothing to do",
    [zoneArb, desiredArb, policyArb],
    ([current, wanted, policy]) => {
      const { changes } = plan(current, wanted, policy, us)
      const touched = new Set([...changes.create, ...changes.update, ...changes.delete].map((record) => `${record.name} ${record.type}`))
      const after = [
        ...current.filter((record) => !touched.has(`${canonical(record.name)} ${record.type}`)),
        ...changes.create,
        ...changes.update
      ]
      expect(isEmpty(plan(after, wanted, policy, us).changes)).toBe(true)
    },
    { fastCheck: { numRuns: 1000 } }
  )
})
