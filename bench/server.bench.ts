/**
 * Server benchmarks (the SSE fan-out has its own, `sse.bench.ts`): cold start of the real process on
 * PGlite, its idle memory, and watch ingestion (a scripted ClusterWatch through the orchestrator's Phase 1 into
 * the SQL store on PGlite; see support/ingest.ts).
 */
import { randomBytes } from "node:crypto"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { freePort, waitUntil } from "../packages/server/test/support/process.js"
import { buildServer } from "../scripts/build.mjs"
import type { Metric } from "./run.js"
import { ingest } from "./support/ingest.js"

const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  const sorted = samples.slice().sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)]!
}

// ---------------------------------------------------------------------------------------------
// The real process: cold start and idle memory

// What `npm start` runs: the bundle of the current sources.
const startProcess = async (bundle: string, dataDir: string) => {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(process.execPath, [bundle, "serve"], {
    env: {
      ...process.env,
      SOVEREIGN_METRICS_PORT: "0",
      SOVEREIGN_DATA_DIR: dataDir,
      SOVEREIGN_PORT: String(port),
      SOVEREIGN_HOST: "127.0.0.1",
      SOVEREIGN_API_TOKENS: `bench-admin-${randomBytes(24).toString("hex")}:admin:a@b.c`
    },
    stdio: "ignore"
  })
  await waitUntil(
    async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200,
    180_000,
    () => "readyz"
  )
  const readyAfter = performance.now() - started
  const stop = () =>
    new Promise<void>((resolve) => {
      child.once("exit", () => resolve())
      child.kill("SIGTERM")
    })
  const rssMb = () => {
    const status = fs.readFileSync(`/proc/${child.pid}/status`, "utf8")
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? "0")
    return kb / 1024
  }
  return { readyAfter, stop, rssMb }
}

const coldStart = async () => {
  const bundle = await buildServer()
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-bench-"))
  try {
    const first = await startProcess(bundle, dataDir)
    await first.stop()
    const samples: Array<number> = []
    let rss = 0
    for (let i = 0; i < 3; i++) {
      const run = await startProcess(bundle, dataDir)
      samples.push(run.readyAfter)
      if (i === 2) {
        // Idle: let start-up garbage settle, then read the resident set.
        await new Promise((resolve) => setTimeout(resolve, 3000))
        rss = run.rssMb()
      }
      await run.stop()
    }
    return { firstStart: first.readyAfter, coldStart: percentile(samples, 0.5), rss }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}

export default async (): Promise<Record<string, Metric>> => {
  const start = await coldStart()
  // A watch's events: 1 in 4 changes a release's state (see support/ingest.ts); then the worst case, every one.
  const ingested = await ingest(20_000, 3)
  const changes = await ingest(20_000, 0)
  return {
    "server.cold_start_ms": { value: start.coldStart, unit: "ms", goal: "<= 3000" },
    "server.first_start_ms": { value: start.firstStart, unit: "ms" },
    "server.rss_idle_mb": { value: start.rss, unit: "MB", goal: "<= 200" },
    "watch.ingest.events_per_s": { value: ingested.eventsPerSecond, unit: "events/s", goal: ">= 10000" },
    "watch.ingest.state_changes_per_s": { value: changes.eventsPerSecond, unit: "events/s" },
    "watch.ingest.store_round_trips_per_event": { value: ingested.roundTripsPerEvent, unit: "statements/event" },
    "watch.ingest.store_transactions_per_event": { value: ingested.transactionsPerEvent, unit: "transactions/event" }
  }
}
