/**
 * Store faults are waits (issue 11): the real server process on a PostgreSQL of the test's own, six
 * 3-region deployments in flight, PostgreSQL stopped for 6 s and started again. Every deployment
 * reaches `ready`, none is failed or left without a run, and the log shows the waits with their cause.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { requestJson } from "./support/fixtures.js"
import * as PrivatePostgres from "./support/privatePostgres.js"
import { start, waitUntil, type ServerProcess } from "./support/process.js"
import { testToken } from "./support/tokens.js"

const token = testToken("outage-admin")
const headers = { authorization: `Bearer ${token}` }

const statusOf = async (server: ServerProcess, id: string): Promise<string | undefined> => {
  // While the database is down the API answers 503; a reset keep-alive connection is retried by the caller.
  const response = await fetch(`${server.url}/api/v1/deployments/${id}`, { headers }).catch(() => undefined)
  if (response === undefined || response.status !== 200) return undefined
  return ((await response.json()) as { readonly status: string }).status
}

describe("a PostgreSQL outage while deployments run", () => {
  it(
    "six 3-region deployments survive PostgreSQL stopped for 6 s: all ready, none stranded, the waits logged with their cause",
    { timeout: 600_000 },
    async () => {
      const postgres = await PrivatePostgres.create()
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-outage-"))
      const server = await start({
        DATABASE_URL: postgres.url,
        SOVEREIGN_DATA_DIR: dataDir,
        SOVEREIGN_API_TOKENS: `${token}:admin:admin@example.com`,
        SOVEREIGN_SECRET_KEY: "c".repeat(64),
        SOVEREIGN_SIM_SPEED: "60",
        SOVEREIGN_SIM_SEED: "7"
      })
      try {
        const ids: Array<string> = []
        for (let index = 0; index < 6; index++) {
          const created = await fetch(`${server.url}/api/v1/deployments`, {
            method: "POST",
            headers: { ...headers, "content-type": "application/json" },
            body: JSON.stringify(requestJson(`outage${index}.omani.works`, 3))
          })
          expect(created.status).toBe(201)
          ids.push(((await created.json()) as { readonly id: string }).id)
        }
        // Every deployment is under way (Phase 0 running or Phase 1 watching) when the database goes.
        await waitUntil(
          async () => {
            const statuses = await Promise.all(ids.map((id) => statusOf(server, id)))
            return statuses.every((status) => status === "provisioning" || status === "phase1-watching")
          },
          120_000,
          () => "every deployment under way"
        )
        const before = server.output().length
        postgres.stop()
        await new Promise((resolve) => setTimeout(resolve, 6_000))
        postgres.start()

        const statuses = new Map<string, string | undefined>()
        await waitUntil(
          async () => {
            for (const id of ids) statuses.set(id, await statusOf(server, id))
            return [...statuses.values()].every((status) => status === "ready" || status === "failed" || status === "partial-failure")
          },
          420_000,
          () => `every deployment finished (now ${JSON.stringify([...statuses])})`
        )
        expect([...statuses.values()]).toEqual(ids.map(() => "ready"))

        const during = server.output().slice(before)
        const waits = during.split("\n").filter((line) => line.includes("the store is unavailable while"))
        expect(waits.length).toBeGreaterThan(0)
        // The cause is in the log: the administrator's shutdown, or the refused connection after it.
        expect(waits.some((line) => /57P01|ECONNREFUSED|57P03|Connection terminated/.test(line))).toBe(true)
        expect(during).toContain("the store answers again while")
        expect(during).not.toContain("stopped on a defect")
        // Nothing left running: every job of every deployment finished.
        for (const id of ids) {
          await waitUntil(
            async () => {
              const response = await fetch(`${server.url}/api/v1/deployments/${id}/jobs`, { headers })
              const jobs = ((await response.json()) as { readonly jobs: ReadonlyArray<{ readonly status: string }> }).jobs
              return jobs.every((job) => job.status === "succeeded")
            },
            120_000,
            () => `every job of ${id} succeeded`
          )
        }
      } finally {
        await server.kill("SIGTERM")
        postgres.destroy()
      }
    }
  )
})
