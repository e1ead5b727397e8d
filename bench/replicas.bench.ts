/**
 * Replicas (issue 11): three real server processes on a PostgreSQL of their own (initdb + pg_ctl on a
 * free port), twelve deployments in flight, lease time 3 s.
 *
 * - `replicas.takeover_after_kill.p99_ms`: SIGKILL of a replica → the first step another replica
 *   takes for each of its deployments (the `Resumed` status event it writes), in the database's time.
 * - `replicas.takeover_after_sigterm.p99_ms`: the same after SIGTERM (the leases are released).
 * - `replicas.fencing_overhead.ratio`: statements per release event of Phase 1 with the run under a
 *   lease (every write transaction checks the epoch) ÷ without (support/ingest.ts, PGlite).
 */
import { createRequire } from "node:module"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { requestJson } from "../packages/server/test/support/fixtures.js"
import * as PrivatePostgres from "../packages/server/test/support/privatePostgres.js"
import { start, waitUntil, type ServerProcess } from "../packages/server/test/support/process.js"
import { buildServer } from "../scripts/build.mjs"
import type { Metric } from "./run.js"
import { ingest } from "./support/ingest.js"

interface PgClient {
  connect(): Promise<void>
  query<R>(text: string, values?: ReadonlyArray<unknown>): Promise<{ readonly rows: ReadonlyArray<R> }>
  end(): Promise<void>
}
const pg = createRequire(import.meta.url)("pg") as { readonly Client: new (options: { readonly connectionString: string }) => PgClient }

const leaseSeconds = 3
const token = `bench-replicas-${"x".repeat(40)}`

const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  const sorted = samples.slice().sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)]!
}

const takeovers = async () => {
  await buildServer()
  const postgres = await PrivatePostgres.create()
  const replicas: Array<ServerProcess> = []
  const db = new pg.Client({ connectionString: postgres.url })
  try {
    for (let index = 0; index < 3; index++) {
      replicas.push(
        await start({
          DATABASE_URL: postgres.url,
          SOVEREIGN_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), `sovereign-bench-replica-${index}-`)),
          SOVEREIGN_API_TOKENS: `${token}:admin:admin@example.com`,
          SOVEREIGN_SECRET_KEY: "e".repeat(64),
          SOVEREIGN_LEASE_TTL: `${leaseSeconds} seconds`,
          SOVEREIGN_METRICS_PORT: "0",
          // Slow enough that every deployment is still in flight when its replica goes.
          SOVEREIGN_SIM_SPEED: "1"
        })
      )
    }
    await db.connect()
    // Twelve deployments, four created (and so claimed) by each replica.
    for (let index = 0; index < 12; index++) {
      const replica = replicas[index % 3]!
      const created = await fetch(`${replica.url}/api/v1/deployments`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(requestJson(`bench${index}.omani.works`, 1))
      })
      if (created.status !== 201) throw new Error(`create answered ${created.status}`)
    }
    const heldBy = async (replica: ServerProcess) =>
      (
        await db.query<{ deployment_id: string }>(`SELECT deployment_id FROM leases WHERE holder LIKE $1`, [`%-${replica.child.pid}-%`])
      ).rows.map((row) => row.deployment_id)
    const measure = async (victim: ServerProcess, signal: NodeJS.Signals) => {
      const ids = await heldBy(victim)
      const [{ now }] = (await db.query<{ now: string }>(`SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now`)).rows as [
        { now: string }
      ]
      const before = Number(now)
      await victim.kill(signal)
      const firstSteps = new Map<string, number>()
      await waitUntil(
        async () => {
          for (const id of ids) {
            if (firstSteps.has(id)) continue
            const rows = (
              await db.query<{ at: string }>(
                `SELECT (event->>'at') AS at FROM deployment_events WHERE deployment_id = $1 AND event->>'message' LIKE 'Resumed%' AND (event->>'at')::bigint >= $2 ORDER BY seq LIMIT 1`,
                [id, before]
              )
            ).rows
            if (rows[0] !== undefined) firstSteps.set(id, Number(rows[0].at) - before)
          }
          return firstSteps.size === ids.length
        },
        120_000,
        () => `takeover of ${ids.length} deployments after ${signal}`
      )
      return [...firstSteps.values()]
    }
    const afterKill = await measure(replicas[0]!, "SIGKILL")
    const afterTerm = await measure(replicas[1]!, "SIGTERM")
    return { afterKill, afterTerm }
  } finally {
    await db.end().catch(() => undefined)
    for (const replica of replicas) await replica.kill("SIGKILL")
    postgres.destroy()
  }
}

export default async (): Promise<Record<string, Metric>> => {
  const { afterKill, afterTerm } = await takeovers()
  const plain = await ingest(5_000, 3)
  const fenced = await ingest(5_000, 3, { leases: true })
  return {
    "replicas.takeover_after_kill.p99_ms": {
      value: percentile(afterKill, 0.99),
      unit: "ms",
      goal: `<= ${leaseSeconds * 1000 + 2000} (lease ${leaseSeconds} s + 2,000)`
    },
    "replicas.takeover_after_kill.samples": { value: afterKill.length, unit: "deployments" },
    "replicas.takeover_after_sigterm.p99_ms": { value: percentile(afterTerm, 0.99), unit: "ms", goal: "<= 2000" },
    "replicas.takeover_after_sigterm.samples": { value: afterTerm.length, unit: "deployments" },
    "replicas.fencing_overhead.ratio": { value: fenced.roundTripsPerEvent / plain.roundTripsPerEvent, unit: "ratio", goal: "<= 1.2" },
    "replicas.fencing_overhead.statements_per_event": { value: fenced.roundTripsPerEvent, unit: "statements" }
  }
}
