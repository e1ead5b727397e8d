/**
 * The real server process with `SOVEREIGN_DNS=powerdns` against a real PowerDNS: a simulated
 * deployment publishes its 19 names when Phase 0 ends, `GET …/dns/plan` then has nothing left to
 * change, and a wipe removes exactly the deployment's records (another record of the zone stays).
 */
import { describe, expect, it } from "@effect/vitest"
import { PowerDnsServer } from "@sovereign/testkit"
import { DnsPlan } from "@sovereign/core"
import { Effect, Exit, Redacted, Scope } from "effect"
import { Resolver } from "node:dns/promises"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { requestJson } from "./support/fixtures.js"
import { start, type ServerProcess } from "./support/process.js"
import { testToken } from "./support/tokens.js"

const admin = testToken("dns-admin")
const bob = testToken("dns-bob")
const zone = "omani.works."
const fqdn = "t1.omani.works"
const unrelated = { name: "www.omani.works.", type: "A", ttl: 300, content: "203.0.113.7" }

interface RRSet {
  readonly name: string
  readonly type: string
  readonly ttl: number
  readonly records: ReadonlyArray<{ readonly content: string }>
  readonly comments: ReadonlyArray<{ readonly account: string; readonly content: string }>
}

interface DeploymentEvent {
  readonly type?: string
  readonly phase?: string
  readonly state?: string
  readonly message: string
}

const call = async (
  server: ServerProcess,
  route: string,
  options: { readonly token?: string; readonly method?: string; readonly body?: unknown } = {}
) => {
  const response = await fetch(`${server.url}${route}`, {
    method: options.method ?? "GET",
    headers: {
      authorization: `Bearer ${options.token ?? admin}`,
      ...(options.body === undefined ? {} : { "content-type": "application/json" })
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) })
  })
  const text = await response.text()
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) }
}

/**
 * Follows the deployment's event stream until an event satisfies `wanted` (resolves with it) or the
 * stream ends with `done` first (rejects, with what was seen).
 */
const eventUntil = async (server: ServerProcess, id: string, wanted: (event: DeploymentEvent) => boolean, timeoutMs: number) => {
  const abort = new AbortController()
  const timer = setTimeout(() => abort.abort(), timeoutMs)
  const seen: Array<string> = []
  try {
    const response = await fetch(`${server.url}/api/v1/deployments/${id}/events`, {
      headers: { authorization: `Bearer ${admin}` },
      signal: abort.signal
    })
    const decoder = new TextDecoder()
    let buffer = ""
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true })
      let end: number
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const name = /^event: (.*)$/m.exec(frame)?.[1]
        const data = /^data: (.*)$/m.exec(frame)?.[1]
        if (data === undefined || name === "heartbeat") continue
        if (name === "done") throw new Error(`the deployment finished first; events:\n${seen.join("\n")}`)
        const event = JSON.parse(data) as DeploymentEvent
        seen.push(`${event.phase}/${event.type}: ${event.message}`)
        if (wanted(event)) return event
      }
    }
    throw new Error(`the event stream ended; events:\n${seen.join("\n")}`)
  } catch (error) {
    if (abort.signal.aborted) throw new Error(`no such event within ${timeoutMs} ms; events:\n${seen.join("\n")}`)
    throw error
  } finally {
    clearTimeout(timer)
    abort.abort()
  }
}

describe("the server with SOVEREIGN_DNS=powerdns", () => {
  it(
    "publishes a deployment's 19 names after Phase 0, plans nothing more, and a wipe removes exactly its records",
    { timeout: 300_000 },
    async () => {
      const scope = Effect.runSync(Scope.make())
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-dns-"))
      let server: ServerProcess | undefined
      try {
        const pdns = await Effect.runPromise(Scope.extend(PowerDnsServer.start({ zones: [zone] }), scope))
        const pdnsRequest = (method: string, route: string, body?: unknown) => Effect.runPromise(pdns.request(method, route, body))
        const seeded = await pdnsRequest("PATCH", `/zones/${zone}`, {
          rrsets: [
            {
              name: unrelated.name,
              type: unrelated.type,
              ttl: unrelated.ttl,
              changetype: "REPLACE",
              records: [{ content: unrelated.content, disabled: false }]
            }
          ]
        })
        expect(seeded.status).toBe(204)
        const rrsets = async () =>
          (JSON.parse((await pdnsRequest("GET", `/zones/${zone}`)).body) as { readonly rrsets: ReadonlyArray<RRSet> }).rrsets
        const before = await rrsets()

        const { SOVEREIGN_DNS_SUBDOMAINS: _subdomains, ...inherited } = process.env
        server = await start({
          ...(inherited as Record<string, string>),
          SOVEREIGN_DATA_DIR: dataDir,
          SOVEREIGN_API_TOKENS: `${admin}:admin:admin@example.com,${bob}:operator:bob@example.com`,
          SOVEREIGN_SECRET_KEY: "b".repeat(64),
          SOVEREIGN_SIM_SPEED: "60",
          SOVEREIGN_DNS: "powerdns",
          PDNS_API_URL: pdns.apiUrl,
          PDNS_API_KEY: Redacted.value(pdns.apiKey),
          PDNS_SERVER_ID: pdns.serverId
        })

        const created = await call(server, "/api/v1/deployments", { method: "POST", body: requestJson(fqdn, 1) })
        expect(created.status).toBe(201)
        const id = created.body.id as string

        // Before Phase 0 has given the primary a load balancer there is nothing to plan.
        const early = await call(server, `/api/v1/deployments/${id}/dns/plan`)
        expect(early.status).toBe(409)
        expect(early.body.error).toBe("no-load-balancer")

        // Same auth and 404 rules as every deployment route.
        const unknown = await call(server, "/api/v1/deployments/0123456789abcdef/dns/plan")
        expect(unknown.status).toBe(404)
        expect(await call(server, `/api/v1/deployments/${id}/dns/plan`, { token: bob })).toEqual(unknown)
        expect((await call(server, `/api/v1/deployments/${id}/dns/plan`, { token: "not-a-known-token" })).status).toBe(401)

        const published = await eventUntil(server, id, (event) => event.phase === "dns" && event.type === "dns", 180_000)
        expect(published.message).toBe("DNS published: 19 created, 0 updated, 0 deleted")

        const state = await call(server, `/api/v1/deployments/${id}`)
        const primary = (
          state.body.results.regions as Array<{ primary: boolean; loadBalancerIP?: string; consoleLoadBalancerIP?: string }>
        ).find((region) => region.primary)!
        expect(primary.loadBalancerIP).toBeDefined()
        const targetOf = (label: string) =>
          DnsPlan.consoleSubdomains.includes(label) && primary.consoleLoadBalancerIP !== undefined
            ? primary.consoleLoadBalancerIP
            : primary.loadBalancerIP

        const owned = (await rrsets()).filter((rrset) =>
          rrset.comments.some((comment) => comment.account === "sovereign" && comment.content === `owner=${id}`)
        )
        const expected = ["", ...DnsPlan.defaultSubdomains.map((label) => `${label}.`)].map((prefix) => `${prefix}${fqdn}.`).sort()
        expect(owned.map((rrset) => rrset.name).sort()).toEqual(expected)
        expect(owned).toHaveLength(19)
        for (const rrset of owned) {
          const label = rrset.name === `${fqdn}.` ? "" : rrset.name.split(".")[0]!
          expect({ name: rrset.name, type: rrset.type, ttl: rrset.ttl, records: rrset.records.map((record) => record.content) }).toEqual({
            name: rrset.name,
            type: "A",
            ttl: 60,
            records: [targetOf(label)]
          })
        }

        // A real DNS query reaches the published name.
        const resolver = new Resolver({ timeout: 2_000, tries: 2 })
        resolver.setServers([`127.0.0.1:${pdns.dnsPort}`])
        expect(await resolver.resolve4(`console.${fqdn}`)).toEqual([targetOf("console")])

        // Published: the dry run has nothing left to change, and no warnings.
        const plan = await call(server, `/api/v1/deployments/${id}/dns/plan`)
        expect(plan.status).toBe(200)
        expect(plan.body.warnings).toEqual([])
        expect(plan.body.plans).toEqual([{ zone, changes: { create: [], update: [], delete: [] }, applied: false }])

        // The wipe removes exactly the deployment's records.
        const wiped = await call(server, `/api/v1/deployments/${id}/wipe?force=true`, { method: "POST" })
        expect(wiped.status).toBe(202)
        await eventUntil(server, id, (event) => event.type === "status" && event.state === "wiped", 180_000)
        const after = await rrsets()
        expect(after.filter((rrset) => rrset.comments.some((comment) => comment.content === `owner=${id}`))).toEqual([])
        // Everything else is as it was (PowerDNS bumps the SOA serial on every change: compared without it).
        const shape = (list: ReadonlyArray<RRSet>) =>
          list
            .filter((rrset) => rrset.type !== "SOA")
            .map((rrset) => ({ name: rrset.name, type: rrset.type, records: rrset.records.map((record) => record.content) }))
            .sort((a, b) => `${a.name} ${a.type}`.localeCompare(`${b.name} ${b.type}`))
        expect(shape(after)).toEqual(shape(before))
        expect(shape(after)).toContainEqual({ name: unrelated.name, type: "A", records: [unrelated.content] })
        expect(after.filter((rrset) => rrset.type === "SOA").map((rrset) => rrset.name)).toEqual([zone])

        const planAfterWipe = await call(server, `/api/v1/deployments/${id}/dns/plan`)
        expect(planAfterWipe.status).toBe(409)
      } finally {
        await server?.kill("SIGTERM")
        await Effect.runPromise(Scope.close(scope, Exit.void))
        fs.rmSync(dataDir, { recursive: true, force: true })
      }
    }
  )

  it("answers dns-disabled with SOVEREIGN_DNS=none, and documents the route in the OpenAPI document", { timeout: 300_000 }, async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-dns-none-"))
    let server: ServerProcess | undefined
    try {
      server = await start({
        ...(process.env as Record<string, string>),
        SOVEREIGN_DATA_DIR: dataDir,
        SOVEREIGN_API_TOKENS: `${admin}:admin:admin@example.com`,
        SOVEREIGN_SECRET_KEY: "c".repeat(64),
        SOVEREIGN_DNS: "none"
      })
      const created = await call(server, "/api/v1/deployments", { method: "POST", body: requestJson("t2.omani.works", 1) })
      expect(created.status).toBe(201)
      const plan = await call(server, `/api/v1/deployments/${created.body.id}/dns/plan`)
      expect(plan.status).toBe(409)
      expect(plan.body.error).toBe("dns-disabled")

      const document = (await call(server, "/api/v1/openapi.json")).body as {
        paths: Record<string, Record<string, { responses: Record<string, unknown> }>>
      }
      const route = document.paths["/api/v1/deployments/{id}/dns/plan"]?.get
      expect(route).toBeDefined()
      expect(Object.keys(route!.responses)).toEqual(expect.arrayContaining(["200", "401", "404", "409"]))
    } finally {
      await server?.kill("SIGTERM")
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
