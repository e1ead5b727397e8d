/**
 * Server benchmarks: SSE fan-out latency to 1,000 flow-stream clients, cold start of the real process on
 * PGlite, its idle memory, and watch ingestion (a scripted ClusterWatch through the orchestrator's Phase 1 into
 * the SQL store on PGlite; see support/ingest.ts).
 */
import { FlowEvents } from "@sovereign/core"
import { randomBytes } from "node:crypto"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { Worker } from "node:worker_threads"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { makeServer, tokens } from "../packages/server/test/support/apiServer.js"
import { requestJson } from "../packages/server/test/support/fixtures.js"
import { freePort, waitUntil } from "../packages/server/test/support/process.js"
import { buildServer } from "../scripts/build.mjs"
import type { Metric } from "./run.js"
import { ingest } from "./support/ingest.js"

const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  const sorted = samples.slice().sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)]!
}

// ---------------------------------------------------------------------------------------------
// SSE fan-out

/**
 * The clients run in a worker thread (their own event loop), as real clients would; each records when
 * every event id arrives, on the clock both threads share (`timeOrigin + now`). They are plain TCP
 * sockets speaking HTTP/1.1 and reading SSE frames out of the chunked body, stamped the moment the
 * bytes reach JavaScript: with node:http clients the one client thread's own HTTP parsing queued
 * behind 1,000 sockets and added ~5 ms to the p99 (measured 35-42 vs 32-38 ms).
 */
const clientsWorker = `
const { parentPort, workerData } = require("node:worker_threads")
const net = require("node:net")
const { base, id, token, clients } = workerData
const { hostname, port } = new URL(base)
const arrivals = new Map()
const sockets = []
const now = () => performance.timeOrigin + performance.now()
const request = "GET /api/v1/flows/" + id + "/stream HTTP/1.1\\r\\nHost: " + hostname + "\\r\\nAuthorization: Bearer " + token + "\\r\\nAccept: text/event-stream\\r\\n\\r\\n"
const open = () => new Promise((resolve, reject) => {
  const socket = net.connect({ host: hostname, port: Number(port) }, () => { socket.write(request); resolve() })
  let buffer = ""
  socket.setEncoding("latin1")
  socket.on("data", (chunk) => {
    const at = now()
    buffer += chunk
    let end = buffer.indexOf("\\n\\n")
    while (end >= 0) {
      const frame = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const match = /^id: (\\d+)\\r?$/m.exec(frame)
      if (match) {
        const list = arrivals.get(match[1]) || []
        list.push(at)
        arrivals.set(match[1], list)
        if (list.length === clients) parentPort.postMessage({ id: match[1], arrivals: list })
      }
      end = buffer.indexOf("\\n\\n")
    }
  })
  socket.on("error", reject)
  sockets.push(socket)
})
;(async () => {
  for (let i = 0; i < clients; i += 50) await Promise.all(Array.from({ length: Math.min(50, clients - i) }, open))
})()
parentPort.on("message", (message) => { if (message === "stop") { for (const s of sockets) s.destroy(); process.exit(0) } })
`

/**
 * `warmup` rounds first (V8 compiles the delivery path; those frames are not counted), then `rounds`
 * measured ones, each a job change published once every client has the previous one.
 */
export const sseLatency = async (clients: number, rounds: number, warmup = 3) => {
  const server = makeServer()
  try {
    const base = await server.url()
    const created = await fetch(`${base}/api/v1/deployments`, {
      method: "POST",
      headers: { authorization: `Bearer ${tokens.alice}`, "content-type": "application/json" },
      body: JSON.stringify(requestJson("bench.example.com"))
    })
    const id = ((await created.json()) as { readonly id: string }).id
    const complete = new Map<string, ReadonlyArray<number>>()
    const worker = new Worker(clientsWorker, { eval: true, workerData: { base, id, token: tokens.alice, clients } })
    worker.on("message", (message: { readonly id: string; readonly arrivals: ReadonlyArray<number> }) => complete.set(message.id, message.arrivals))
    await waitUntil(async () => complete.has("0"), 180_000, () => "every client got its snapshot")
    const latencies: Array<number> = []
    for (let round = 1; round <= warmup + rounds; round++) {
      const sentAt = performance.timeOrigin + performance.now()
      await server.runtime.runPromise(
        Effect.flatMap(FlowEvents.FlowEvents, (flow) =>
          flow.publish(id, [{ type: "upsert-nodes", nodes: [{ id: `${id}:n${round}`, flowId: id, label: "n", status: "running" }] }], Date.now())
        )
      )
      const key = String(round)
      await waitUntil(async () => complete.has(key), 60_000, () => `round ${round} reached every client`)
      if (round > warmup) latencies.push(...complete.get(key)!.map((at) => at - sentAt))
    }
    worker.postMessage("stop")
    await worker.terminate()
    return { p99: percentile(latencies, 0.99), p50: percentile(latencies, 0.5), max: percentile(latencies, 1) }
  } finally {
    await server.dispose()
  }
}

// ---------------------------------------------------------------------------------------------
// The real process: cold start and idle memory

// What `npm start` runs: the bundle of the current sources.
const startProcess = async (bundle: string, dataDir: string) => {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(process.execPath, [bundle, "serve"], {
    env: { ...process.env, SOVEREIGN_DATA_DIR: dataDir, SOVEREIGN_PORT: String(port), SOVEREIGN_HOST: "127.0.0.1", SOVEREIGN_API_TOKENS: `bench-admin-${randomBytes(24).toString("hex")}:admin:a@b.c` },
    stdio: "ignore"
  })
  await waitUntil(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, 180_000, () => "readyz")
  const readyAfter = performance.now() - started
  const stop = () => new Promise<void>((resolve) => {
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
  const sse = await sseLatency(1000, 20)
  const start = await coldStart()
  // A watch's events: 1 in 4 changes a release's state (see support/ingest.ts); then the worst case, every one.
  const ingested = await ingest(20_000, 3)
  const changes = await ingest(20_000, 0)
  return {
    "sse.latency.1000_clients.p99_ms": { value: sse.p99, unit: "ms", goal: "<= 50" },
    "sse.latency.1000_clients.p50_ms": { value: sse.p50, unit: "ms" },
    "sse.latency.1000_clients.max_ms": { value: sse.max, unit: "ms" },
    "server.cold_start_ms": { value: start.coldStart, unit: "ms", goal: "<= 3000" },
    "server.first_start_ms": { value: start.firstStart, unit: "ms" },
    "server.rss_idle_mb": { value: start.rss, unit: "MB", goal: "<= 200" },
    "watch.ingest.events_per_s": { value: ingested.eventsPerSecond, unit: "events/s", goal: ">= 10000" },
    "watch.ingest.state_changes_per_s": { value: changes.eventsPerSecond, unit: "events/s" },
    "watch.ingest.store_round_trips_per_event": { value: ingested.roundTripsPerEvent, unit: "statements/event" },
    "watch.ingest.store_transactions_per_event": { value: ingested.transactionsPerEvent, unit: "transactions/event" }
  }
}
