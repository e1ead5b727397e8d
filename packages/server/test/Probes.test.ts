/**
 * `/livez` and `/readyz` of the real server process on a PostgreSQL of the test's own: `?verbose` lists
 * each check as Kubernetes does; the store check fails while PostgreSQL is stopped, then the leases
 * check once renewals are overdue (liveness holds), and both pass again once it is back.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Control, type ControlService } from "../src/Control.js"
import * as Database from "../src/Database.js"
import * as Probes from "../src/Probes.js"
import { requestJson } from "./support/fixtures.js"
import * as PrivatePostgres from "./support/privatePostgres.js"
import { start, waitUntil } from "./support/process.js"
import { testToken } from "./support/tokens.js"

const token = testToken("probes-admin")

const resumedControl = Layer.succeed(Control, { ready: Effect.succeed(true) } as unknown as ControlService)

describe("probes", () => {
  it.effect(
    "a check another module registers joins /readyz, its failure named with its reason; a later one of the same name replaces it",
    () =>
      Effect.gen(function* () {
        const before = yield* Probes.run("readyz")
        expect(before.map((result) => result.name)).toEqual(["store", "migrations", "deployments-resumed"])
        expect(before.every((result) => result.ok)).toBe(true)
        yield* Probes.add("readyz", { name: "leases", run: Effect.fail(new Probes.CheckFailed({ reason: "lease renewal is 40 s late" })) })
        const failing = yield* Probes.run("readyz")
        expect(Probes.renderVerbose("readyz", failing)).toBe(
          "[+]store ok\n[+]migrations ok\n[+]deployments-resumed ok\n[-]leases failed: lease renewal is 40 s late\nreadyz check failed\n"
        )
        yield* Probes.add("readyz", { name: "leases", run: Effect.void })
        expect((yield* Probes.run("readyz")).every((result) => result.ok)).toBe(true)
        // Liveness does not depend on readiness checks.
        expect(yield* Probes.run("livez")).toEqual([{ name: "ping", ok: true }])
      }).pipe(Effect.provide(Layer.mergeAll(Probes.layer, resumedControl, Database.layerPglite(undefined))))
  )

  it(
    "/readyz?verbose shows failing store and lease checks while PostgreSQL is stopped and recovers when it is back",
    { timeout: 300_000 },
    async () => {
      const postgres = await PrivatePostgres.create()
      const server = await start({
        SOVEREIGN_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-probes-")),
        SOVEREIGN_API_TOKENS: `${token}:admin:admin@example.com`,
        SOVEREIGN_SECRET_KEY: "c".repeat(64),
        DATABASE_URL: postgres.url,
        // Short leases, so an outage shows in the leases check within seconds.
        SOVEREIGN_LEASE_TTL: "6 seconds"
      })
      const get = async (route: string) => {
        const response = await fetch(`${server.url}${route}`)
        return { status: response.status, type: response.headers.get("content-type") ?? "", text: await response.text() }
      }
      try {
        const ready = await get("/readyz?verbose")
        expect(ready.status).toBe(200)
        expect(ready.type).toMatch(/^text\/plain/)
        expect(ready.text).toBe("[+]store ok\n[+]migrations ok\n[+]deployments-resumed ok\n[+]leases ok\nreadyz check passed\n")
        expect(await get("/readyz")).toMatchObject({ status: 200, text: '{"status":"ok"}' })
        expect(await get("/livez?verbose")).toMatchObject({ status: 200, text: "[+]ping ok\nlivez check passed\n" })
        expect((await get("/healthz")).status).toBe(200)

        // A deployment in flight, so this replica holds a lease that must keep renewing.
        const created = await fetch(`${server.url}/api/v1/deployments`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify(requestJson("probes.omani.works", 1))
        })
        expect(created.status).toBe(201)
        const metrics = /metrics\s+(http:\/\/\S+\/metrics)/.exec(server.output())?.[1]
        await waitUntil(
          async () => /^sovereign_leases_held 1$/m.test(await (await fetch(metrics!)).text()),
          60_000,
          () => "no lease held"
        )

        postgres.stop()
        let down = { status: 0, type: "", text: "" }
        await waitUntil(
          async () => (down = await get("/readyz?verbose")).status === 503,
          60_000,
          () => `readyz stayed ${down.status}: ${down.text}`
        )
        expect(down.text).toMatch(/^\[-\]store failed: .+$/m)
        // Renewals fail with the store: once overdue, the leases check says so too.
        await waitUntil(
          async () => (down = await get("/readyz?verbose")).text.includes("[-]leases failed"),
          60_000,
          () => `leases still ok: ${down.text}`
        )
        expect(down.text).toMatch(/^\[-\]leases failed: leases are not renewing \(\d+ held; last renewal \d+ s ago\)$/m)
        expect(down.text).toMatch(/readyz check failed\n$/)
        const plain = await get("/readyz")
        expect(plain.status).toBe(503)
        expect(JSON.parse(plain.text)).toMatchObject({ error: "not-ready", message: expect.stringContaining("store:") })
        // The process itself is alive: Kubernetes must not restart it for a database outage.
        expect((await get("/livez")).status).toBe(200)

        postgres.start()
        let up = { status: 0, type: "", text: "" }
        await waitUntil(
          async () => (up = await get("/readyz?verbose")).status === 200,
          120_000,
          () => `readyz stayed ${up.status}: ${up.text}`
        )
        expect(up.text).toContain("[+]store ok")
        expect(up.text).toContain("[+]leases ok")
        expect(up.text).toContain("readyz check passed")
      } finally {
        await server.kill("SIGTERM")
        postgres.destroy()
      }
    }
  )
})
