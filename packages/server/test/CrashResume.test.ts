/**
 * The real server process, killed with SIGKILL during Phase 0 and again during Phase 1, restarted on
 * the same data directory: the deployment still reaches `ready`, every simulated resource exists
 * once and carries its owner, no job is left running, the event history has no gap, and no secret
 * ever shows up in what the server printed or streamed.
 */
import { PGlite } from "@electric-sql/pglite"
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { requestJson } from "./support/fixtures.js"
import { start, waitUntil, type ServerProcess } from "./support/process.js"
import { testToken } from "./support/tokens.js"

const token = testToken("crash-admin")
const secretKey = "a".repeat(64)

const get = async (server: ServerProcess, route: string) => {
  const once = async () => {
    const response = await fetch(`${server.url}${route}`, { headers: { authorization: `Bearer ${token}` } })
    return { status: response.status, text: await response.text() }
  }
  // A reused keep-alive connection the server just closed resets once; a dead server fails again.
  return once().catch(async (error) => {
    if (server.child.exitCode !== null || server.child.signalCode !== null)
      throw new Error(`the server died: ${server.output().slice(-3000)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
    return once().catch(() => {
      throw new Error(`${String(error)}; server output: ${server.output().slice(-3000)}`)
    })
  })
}
const json = async (server: ServerProcess, route: string) => JSON.parse((await get(server, route)).text)

describe("crash and resume of the real server process", () => {
  it(
    "reaches ready after SIGKILL in Phase 0 and in Phase 1, with nothing duplicated, orphaned or stuck",
    { timeout: 600_000 },
    async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-crash-"))
      const captured = { text: "" }
      const env = {
        SOVEREIGN_DATA_DIR: dataDir,
        SOVEREIGN_API_TOKENS: `${token}:admin:admin@example.com`,
        SOVEREIGN_SECRET_KEY: secretKey,
        SOVEREIGN_SIM_SPEED: "40",
        SOVEREIGN_SIM_SEED: "7"
      }
      let server = await start(env, captured)
      try {
        const request = requestJson("crash.omani.works", 2)
        const created = await fetch(`${server.url}/api/v1/deployments`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify(request)
        })
        expect(created.status).toBe(201)
        const id = ((await created.json()) as { readonly id: string }).id

        const jobs = async () => (await json(server, `/api/v1/deployments/${id}/jobs`)).jobs as Array<any>
        const status = async () => (await json(server, `/api/v1/deployments/${id}`)).status as string

        // Phase 0: some steps done, not all.
        await waitUntil(
          async () => {
            const current = await jobs()
            const steps = current.filter((job) => job.type === "install" && !job.jobName.startsWith("install-"))
            return (
              (await status()) === "provisioning" &&
              steps.some((job) => job.status === "succeeded") &&
              steps.some((job) => job.status !== "succeeded")
            )
          },
          120_000,
          () => "Phase 0 under way"
        )
        await server.kill("SIGKILL")

        server = await start(env, captured)
        // Phase 1: the bootstrap kit is converging.
        await waitUntil(
          async () => {
            const current = await jobs()
            const installs = current.filter((job) => job.jobName.startsWith("install-"))
            return (
              (await status()) === "phase1-watching" &&
              installs.some((job) => job.status === "succeeded") &&
              installs.some((job) => job.status !== "succeeded")
            )
          },
          180_000,
          () => "Phase 1 under way"
        )
        await server.kill("SIGKILL")

        server = await start(env, captured)
        await waitUntil(
          async () => (await status()) === "ready",
          240_000,
          () => `ready (now ${captured.text.slice(-2000)})`
        )
        // Secondaries report after the primary decided; every job ends, none stays running.
        await waitUntil(
          async () => (await jobs()).every((job) => job.status === "succeeded" || job.status === "failed"),
          120_000,
          () => "every job finished"
        )
        const finalJobs = await jobs()
        expect(finalJobs.filter((job) => job.status === "failed")).toEqual([])

        const inventory = (await json(server, "/api/v1/simulator/inventory")).resources as Array<any>
        const mine = inventory.filter((resource) => resource.labels["sovereign.dev/deployment"] === id)
        expect(mine.length).toBeGreaterThan(0)
        const names = mine.map((resource) => `${resource.kind}/${resource.name}`)
        expect(new Set(names).size).toBe(names.length)
        expect(inventory.filter((resource) => resource.labels["sovereign.dev/deployment"] === undefined)).toEqual([])

        const events = await get(server, `/api/v1/deployments/${id}/events`)
        const seqs = [...events.text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]))
        expect(seqs.length).toBeGreaterThan(10)
        expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, index) => index + 1))
        const statuses = [
          ...events.text.matchAll(/"type":"status"[^\n]*?"state":"([a-z0-9-]+)"|"state":"([a-z0-9-]+)"[^\n]*?"type":"status"/g)
        ].map((match) => match[1] ?? match[2])
        expect(statuses[0]).toBe("pending")
        expect(statuses).toContain("provisioning")
        expect(statuses).toContain("phase1-watching")
        expect(statuses.at(-1)).toBe("ready")
        expect(events.text).toContain("event: done")

        const kubeconfig = await get(server, `/api/v1/deployments/${id}/kubeconfig`)
        expect(kubeconfig.status).toBe(200)
        await server.kill("SIGTERM")

        // Nothing secret in what the server printed or streamed.
        const secretLines = kubeconfig.text.split("\n").filter((line) => line.trim().length > 20)
        for (const haystack of [captured.text, events.text]) {
          expect(haystack).not.toContain(request.credentials.hetznerToken)
          for (const line of secretLines) expect(haystack).not.toContain(line.trim())
        }

        // The simulated world counted every creation: each resource was created exactly once.
        const db = await PGlite.create(path.join(dataDir, "pgdata"))
        try {
          const rows = await db.query<{ state: { creations: Record<string, number> } }>(
            "SELECT state FROM simulator_state WHERE key = $1",
            [`deployment/${id}`]
          )
          const creations = rows.rows[0]!.state.creations
          expect(Object.keys(creations).length).toBeGreaterThan(0)
          expect(Object.entries(creations).filter(([, count]) => count !== 1)).toEqual([])
          const stored = await db.query<{ sealed_credentials: string }>("SELECT sealed_credentials FROM deployments WHERE id = $1", [id])
          expect(stored.rows[0]!.sealed_credentials).not.toContain(request.credentials.hetznerToken)
          const kubeconfigs = await db.query<{ sealed: string }>("SELECT sealed FROM kubeconfigs WHERE deployment_id = $1", [id])
          expect(kubeconfigs.rows.length).toBe(2)
          for (const row of kubeconfigs.rows) for (const line of secretLines) expect(row.sealed).not.toContain(line.trim())
        } finally {
          await db.close()
        }
      } finally {
        await server.kill("SIGKILL")
        fs.rmSync(dataDir, { recursive: true, force: true })
      }
    }
  )
})
