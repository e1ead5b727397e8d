import { describe, expect, layer } from "@effect/vitest"
import { DnsProvider, DnsPublish } from "@sovereign/core"
import { PowerDnsServer } from "@sovereign/testkit"
import { Effect, Redacted, Ref } from "effect"
import { Resolver } from "node:dns/promises"
import { PowerDnsClient, PowerDnsProvider } from "../src/index.js"
import { powerDnsWorld, RequestLog } from "./support.js"

const deploymentA = "aaaaaaaaaaaaaaa1"
const deploymentB = "bbbbbbbbbbbbbbb2"
const primary = "198.51.100.10"
const consoleLb = "198.51.100.20"

const publishInput = (deploymentId: string, fqdn: string, parentDomains: ReadonlyArray<string>) => ({
  deploymentId,
  fqdn,
  parentDomains,
  loadBalancers: { primary, console: consoleLb }
})

/** Raw rrsets of a zone as PowerDNS holds them (records and comments), keyed `name type`; the SOA, whose serial every edit bumps, left out. */
const rawZone = (zone: string) =>
  Effect.gen(function* () {
    const server = yield* PowerDnsServer.PowerDnsServerTag
    const answer = yield* server.request("GET", `/zones/${zone}`)
    const parsed = JSON.parse(answer.body) as { rrsets: ReadonlyArray<{ name: string; type: string }> }
    return new Map(parsed.rrsets.filter((rrset) => rrset.type !== "SOA").map((rrset) => [`${rrset.name} ${rrset.type}`, rrset]))
  })

const patches = Effect.flatMap(RequestLog, Ref.get).pipe(Effect.map((entries) => entries.filter((entry) => entry.startsWith("PATCH"))))

const resolve4 = (name: string) =>
  Effect.gen(function* () {
    const server = yield* PowerDnsServer.PowerDnsServerTag
    const resolver = new Resolver()
    resolver.setServers([`127.0.0.1:${server.dnsPort}`])
    return yield* Effect.promise(() => resolver.resolve4(name).catch((error: Error) => [`error: ${error.message}`]))
  })

const zones = ["omani.test.", "byo.test.", "conflict.test.", "shared.test.", "wipe.test."]

layer(powerDnsWorld(zones), { excludeTestServices: true })("PowerDNS provider against a real pdns_server", (it) => {
  describe("publish", () => {
    it.effect("publishes all 19 names with the apex, console/api/marketplace to the console LB, served over DNS", () =>
      Effect.gen(function* () {
        const result = yield* DnsPublish.publish(publishInput(deploymentA, "t1.omani.test", ["omani.test"]))
        expect(result.warnings).toEqual([])
        expect(result.plans).toHaveLength(1)
        expect(result.plans[0]?.changes.create).toHaveLength(19)

        const raw = yield* rawZone("omani.test.")
        const ours = [...raw.values()].filter((rrset) => rrset.name.endsWith("t1.omani.test."))
        expect(ours).toHaveLength(19)
        expect(raw.get("t1.omani.test. A")).toMatchObject({
          ttl: 60,
          records: [{ content: primary, disabled: false }],
          comments: [expect.objectContaining({ account: "sovereign", content: `owner=${deploymentA}` })]
        })
        for (const label of ["console", "api", "marketplace"]) {
          expect(raw.get(`${label}.t1.omani.test. A`)).toMatchObject({ records: [{ content: consoleLb, disabled: false }] })
        }
        expect(raw.get("pdns-admin.t1.omani.test. A")).toMatchObject({ records: [{ content: primary, disabled: false }] })

        expect(yield* resolve4("console.t1.omani.test")).toEqual([consoleLb])
        expect(yield* resolve4("t1.omani.test")).toEqual([primary])
        expect(yield* resolve4("newapi.t1.omani.test")).toEqual([primary])
      })
    )

    it.effect("a second publish with nothing new sends no PATCH", () =>
      Effect.gen(function* () {
        const input = publishInput(deploymentA, "t2.omani.test", ["omani.test"])
        yield* DnsPublish.publish(input)
        const before = (yield* patches).length
        const again = yield* DnsPublish.publish(input)
        expect(again.plans.map((plan) => plan.applied)).toEqual([false])
        expect((yield* patches).length).toBe(before)
      })
    )

    it.effect("a parent equal to the FQDN whose zone does not exist falls back to the FQDN minus its first label", () =>
      Effect.gen(function* () {
        const result = yield* DnsPublish.publish(publishInput(deploymentA, "t1.byo.test", ["t1.byo.test"]))
        expect(result.plans.map((plan) => [plan.zone, plan.changes.create.length])).toEqual([["byo.test.", 19]])
        expect(yield* resolve4("gitea.t1.byo.test")).toEqual([primary])
      })
    )

    it.effect("leaves a wildcard, an unowned A record and a TXT record at our names untouched and warns about each", () =>
      Effect.gen(function* () {
        const server = yield* PowerDnsServer.PowerDnsServerTag
        const seeded = yield* server.request("PATCH", "/zones/conflict.test.", {
          rrsets: [
            {
              name: "*.conflict.test.",
              type: "A",
              ttl: 300,
              changetype: "REPLACE",
              records: [{ content: "203.0.113.50", disabled: false }]
            },
            {
              name: "grafana.t3.conflict.test.",
              type: "A",
              ttl: 300,
              changetype: "REPLACE",
              records: [{ content: "203.0.113.51", disabled: false }]
            },
            {
              name: "console.t3.conflict.test.",
              type: "TXT",
              ttl: 300,
              changetype: "REPLACE",
              records: [{ content: '"verification=1"', disabled: false }]
            },
            {
              name: "www.conflict.test.",
              type: "A",
              ttl: 300,
              changetype: "REPLACE",
              records: [{ content: "203.0.113.52", disabled: false }]
            }
          ]
        })
        expect(seeded.status).toBe(204)
        const before = yield* rawZone("conflict.test.")

        const result = yield* DnsPublish.publish(publishInput(deploymentA, "t3.conflict.test", ["conflict.test"]))
        expect(result.warnings.map((warning) => [warning.name, warning.type, warning.reason]).sort()).toEqual([
          ["*.conflict.test.", "A", "wildcard-covers-name"],
          ["console.t3.conflict.test.", "TXT", "conflicting-record"],
          ["grafana.t3.conflict.test.", "A", "conflicting-record"]
        ])
        for (const warning of result.warnings) expect(warning.message).toContain(warning.name)

        const after = yield* rawZone("conflict.test.")
        for (const key of ["*.conflict.test. A", "grafana.t3.conflict.test. A", "console.t3.conflict.test. TXT", "www.conflict.test. A"]) {
          expect(after.get(key)).toEqual(before.get(key))
        }
        // Our A record goes beside the TXT; the unowned A at grafana stays the only answer there.
        expect(after.get("console.t3.conflict.test. A")).toMatchObject({ records: [{ content: consoleLb, disabled: false }] })
        expect(result.plans[0]?.changes.create).toHaveLength(18)
        expect(yield* resolve4("grafana.t3.conflict.test")).toEqual(["203.0.113.51"])
      })
    )

    it.effect("never touches a record another deployment owns, under sync, and unpublish removes exactly ours", () =>
      Effect.gen(function* () {
        yield* DnsPublish.publish(publishInput(deploymentB, "t4.shared.test", ["shared.test"]))
        const theirs = yield* rawZone("shared.test.")

        const clash = yield* DnsPublish.publish({ ...publishInput(deploymentA, "t4.shared.test", ["shared.test"]), policy: "sync" })
        expect(clash.warnings).toHaveLength(19)
        expect(new Set(clash.warnings.map((warning) => warning.reason))).toEqual(new Set(["owned-by-other"]))
        expect(clash.plans.every((plan) => !plan.applied)).toBe(true)
        expect(yield* rawZone("shared.test.")).toEqual(theirs)

        const wiped = yield* DnsPublish.unpublish(deploymentA)
        expect(wiped.plans.flatMap((plan) => plan.changes.delete).some((record) => record.name.endsWith("shared.test."))).toBe(false)
        expect(yield* rawZone("shared.test.")).toEqual(theirs)
      })
    )

    it.effect("a wipe deletes exactly the deployment's records and nothing else", () =>
      Effect.gen(function* () {
        const server = yield* PowerDnsServer.PowerDnsServerTag
        yield* DnsPublish.publish(publishInput(deploymentA, "t6.wipe.test", ["wipe.test"]))
        yield* DnsPublish.publish(publishInput(deploymentB, "t7.wipe.test", ["wipe.test"]))
        yield* server.request("PATCH", "/zones/wipe.test.", {
          rrsets: [
            { name: "www.wipe.test.", type: "A", ttl: 300, changetype: "REPLACE", records: [{ content: "203.0.113.60", disabled: false }] }
          ]
        })
        const before = yield* rawZone("wipe.test.")
        yield* DnsPublish.unpublish(deploymentA)
        const after = yield* rawZone("wipe.test.")
        const expected = [...before.keys()].filter((key) => !key.endsWith("t6.wipe.test. A")).sort()
        expect([...after.keys()].sort()).toEqual(expected)
        for (const key of expected) expect(after.get(key)).toEqual(before.get(key))
        expect([...before.keys()].filter((key) => key.endsWith("t6.wipe.test. A"))).toHaveLength(19)
        expect(yield* resolve4("console.t6.wipe.test")).toEqual([expect.stringContaining("error")])
      })
    )
  })

  describe("errors", () => {
    it.effect("a 422 for a non-canonical name becomes a Rejected DnsError naming the record", () =>
      Effect.gen(function* () {
        const server = yield* PowerDnsServer.PowerDnsServerTag
        const client = yield* PowerDnsClient.make({ apiUrl: server.apiUrl, apiKey: server.apiKey })
        const error = yield* client
          .patchZone("omani.test.", {
            rrsets: [
              {
                name: "bad.omani.test",
                type: "A",
                ttl: 60,
                changetype: "REPLACE",
                records: [{ content: primary, disabled: false }],
                comments: []
              }
            ]
          })
          .pipe(Effect.flip)
        expect(error).toBeInstanceOf(DnsProvider.DnsError)
        expect(error.reason).toBe("Rejected")
        expect(error.record).toBe("bad.omani.test")
        expect(error.zone).toBe("omani.test.")
        expect(error.message).toContain("not canonical")
      })
    )

    it.effect("a 422 for bad content fails the whole batch and names the rejected rrset", () =>
      Effect.gen(function* () {
        const provider = yield* DnsProvider.DnsProvider
        const error = yield* provider
          .apply("omani.test.", {
            create: [
              { name: "fine.omani.test.", type: "A", ttl: 60, records: [primary], owner: deploymentA },
              { name: "broken.omani.test.", type: "A", ttl: 60, records: ["300.1.2.3"], owner: deploymentA }
            ],
            update: [],
            delete: []
          })
          .pipe(Effect.flip)
        expect(error.reason).toBe("Rejected")
        expect(error.record).toBe("broken.omani.test. A")
        const raw = yield* rawZone("omani.test.")
        expect(raw.has("fine.omani.test. A")).toBe(false)
      })
    )

    it.effect("a wrong API key is Unauthorized, a missing zone is ZoneNotFound", () =>
      Effect.gen(function* () {
        const server = yield* PowerDnsServer.PowerDnsServerTag
        const wrongKey = yield* PowerDnsProvider.make({ apiUrl: server.apiUrl, apiKey: Redacted.make("wrong-key") })
        const unauthorized = yield* wrongKey.zones().pipe(Effect.flip)
        expect(unauthorized.reason).toBe("Unauthorized")
        expect(unauthorized.message).not.toContain(Redacted.value(server.apiKey))
        const provider = yield* DnsProvider.DnsProvider
        const missing = yield* provider.records("nowhere.test.").pipe(Effect.flip)
        expect(missing).toMatchObject({ reason: "ZoneNotFound", zone: "nowhere.test." })
      })
    )

    it.effect("an unreachable server is retried, then Unavailable (retryable)", () =>
      Effect.gen(function* () {
        const closed = yield* PowerDnsProvider.make({
          apiUrl: "http://127.0.0.1:9",
          apiKey: Redacted.make("k"),
          retry: { times: 2, base: "1 millis" }
        })
        const log = yield* RequestLog
        const before = (yield* Ref.get(log)).length
        const error = yield* closed.zones().pipe(Effect.flip)
        expect(error.reason).toBe("Unavailable")
        expect(error.isRetryable).toBe(true)
        expect((yield* Ref.get(log)).length - before).toBe(3)
      })
    )
  })
})
