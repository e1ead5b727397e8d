/**
 * Time is integer milliseconds at any simulated speed (issue 11): the real server process at
 * `SOVEREIGN_SIM_SPEED=400` and `=5000` takes a 3-region deployment to `ready`, and every timestamp it
 * stored and serves is an integer (at 400 a fractional one used to fail the deployment within a second).
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { requestJson } from "./support/fixtures.js"
import { start, waitUntil } from "./support/process.js"
import { testToken } from "./support/tokens.js"

const token = testToken("sim-speed-admin")

describe("simulated speeds", () => {
  for (const speed of ["400", "5000"]) {
    it(`SOVEREIGN_SIM_SPEED=${speed}: a 3-region deployment reaches ready with integer timestamps`, { timeout: 300_000 }, async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `sovereign-speed-${speed}-`))
      const server = await start({
        SOVEREIGN_DATA_DIR: dataDir,
        SOVEREIGN_API_TOKENS: `${token}:admin:admin@example.com`,
        SOVEREIGN_SECRET_KEY: "b".repeat(64),
        SOVEREIGN_SIM_SPEED: speed,
        SOVEREIGN_SIM_SEED: "7"
      })
      try {
        const headers = { authorization: `Bearer ${token}` }
        const created = await fetch(`${server.url}/api/v1/deployments`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json" },
          body: JSON.stringify(requestJson(`speed${speed}.omani.works`, 3))
        })
        expect(created.status).toBe(201)
        const id = ((await created.json()) as { readonly id: string }).id
        const state = async () =>
          (await (await fetch(`${server.url}/api/v1/deployments/${id}`, { headers })).json()) as Record<string, unknown>
        let last: Record<string, unknown> = {}
        await waitUntil(
          async () => {
            last = await state()
            return ["ready", "failed", "partial-failure"].includes(String(last.status))
          },
          240_000,
          () => `a terminal status (now ${JSON.stringify(last).slice(0, 400)}; ${server.output().slice(-2000)})`
        )
        expect([last.status, last.error]).toEqual(["ready", undefined])
        for (const field of ["createdAt", "updatedAt", "phase1StartedAt", "finishedAt"]) expect(Number.isInteger(last[field])).toBe(true)
        const jobs = (
          (await (await fetch(`${server.url}/api/v1/deployments/${id}/jobs`, { headers })).json()) as {
            jobs: Array<Record<string, unknown>>
          }
        ).jobs
        for (const job of jobs) {
          for (const field of ["startedAt", "finishedAt", "durationMs"]) {
            if (job[field] !== undefined) expect([job.jobName, field, Number.isInteger(job[field])]).toEqual([job.jobName, field, true])
          }
        }
        expect(server.output()).not.toContain("invalid input syntax")
      } finally {
        await server.kill("SIGTERM")
      }
    })
  }
})
