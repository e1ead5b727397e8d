/**
 * Operability benchmarks (issue 14): one scrape of `/metrics` over HTTP with 100 deployments stored
 * and a busy process's metrics registered; and what tracing costs watch ingestion (support/ingest.ts)
 * when spans are exported over OTLP to a local receiver, against tracing off.
 */
import { DeploymentRepo } from "@sovereign/core"
import { Effect, Layer, ManagedRuntime, Metric, Option } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import * as Database from "../packages/server/src/Database.js"
import * as SecretBox from "../packages/server/src/SecretBox.js"
import * as SqlStore from "../packages/server/src/SqlStore.js"
import * as Telemetry from "../packages/server/src/Telemetry.js"
import * as Tracing from "../packages/server/src/Tracing.js"
import { acceptedEvent, newDeployment } from "../packages/server/test/support/fixtures.js"
import type { Metric as BenchMetric } from "./run.js"
import { ingest } from "./support/ingest.js"

const median = (samples: ReadonlyArray<number>) => {
  const sorted = samples.slice().sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

const statuses = DeploymentRepo.Status.literals

/** The metrics a server that has run many deployments holds: every step, result, phase, state and code seen. */
const busyRegistry = Effect.gen(function* () {
  const steps = ["ssh-key", "network", "firewall", "control-plane", "workers", "load-balancer", "dns", "mesh", "handover", "owner-access"]
  for (const step of steps) {
    for (const result of ["succeeded", "failed"])
      yield* Metric.incrementBy(Metric.tagged(Metric.tagged(Telemetry.stepTotal, "step", step), "result", result), 300)
    for (let sample = 0; sample < 300; sample++) yield* Metric.update(Metric.tagged(Telemetry.stepDuration, "step", step), sample / 10)
  }
  for (const phase of ["phase0", "phase1", "wipe"])
    for (let sample = 0; sample < 100; sample++) yield* Metric.update(Metric.tagged(Telemetry.phaseDuration, "phase", phase), sample * 3)
  for (const state of ["pending", "installing", "retrying", "installed", "failed", "deleted"])
    yield* Metric.incrementBy(Metric.tagged(Telemetry.releaseEvents, "state", state), 5000)
  for (const code of ["ok", "RateLimited", "Unavailable", "Conflict"])
    yield* Metric.incrementBy(Metric.tagged(Metric.tagged(Telemetry.cloudRequests, "provider", "hetzner"), "code", code), 1000)
})

const scrapeTime = async (deployments: number) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-scrape-"))
  const storage = SqlStore.layer().pipe(
    Layer.provideMerge(SecretBox.layerKey(Buffer.alloc(32, 2))),
    Layer.provideMerge(Database.layerPglite(path.join(dataDir, "pgdata")))
  )
  const runtime = ManagedRuntime.make(Telemetry.serverLayer({ host: "127.0.0.1", port: Option.some(0) }).pipe(Layer.provideMerge(storage)))
  try {
    await runtime.runPromise(
      Effect.gen(function* () {
        const repo = yield* DeploymentRepo.DeploymentRepo
        for (let index = 0; index < deployments; index++) {
          const id = (0xb000000000000000n + BigInt(index)).toString(16)
          yield* Effect.orDie(
            repo.create(
              newDeployment(id, {
                fqdn: `d${index}.bench.example.com`,
                status: statuses[index % statuses.length]!,
                createdAt: 1_000 + index
              }),
              acceptedEvent
            )
          )
        }
        yield* busyRegistry
      })
    )
    const address = await runtime.runPromise(Telemetry.MetricsAddress)
    const url = Option.getOrThrow(address).url
    const agent = new http.Agent({ keepAlive: true })
    const get = () =>
      new Promise<number>((resolve, reject) => {
        const started = performance.now()
        http
          .get(url, { agent }, (response) => {
            let bytes = 0
            response.on("data", (chunk: Buffer) => (bytes += chunk.length))
            response.on("end", () =>
              response.statusCode === 200 && bytes > 0
                ? resolve(performance.now() - started)
                : reject(new Error(`scrape answered ${response.statusCode}`))
            )
          })
          .on("error", reject)
      })
    for (let warm = 0; warm < 20; warm++) await get()
    const samples: Array<number> = []
    for (let run = 0; run < 100; run++) samples.push(await get())
    agent.destroy()
    return { p50: median(samples), max: Math.max(...samples) }
  } finally {
    await runtime.dispose()
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}

/** An OTLP/HTTP endpoint on loopback that takes every batch and answers 200, as a collector would. */
const receiver = async () => {
  let spans = 0
  const server = http.createServer((request, response) => {
    let body = ""
    request.setEncoding("utf8")
    request.on("data", (chunk: string) => (body += chunk))
    request.on("end", () => {
      spans += (body.match(/"spanId"/g) ?? []).length
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as { readonly port: number }).port
  return { url: `http://127.0.0.1:${port}`, spans: () => spans, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

const tracingOverhead = async () => {
  const otlp = await receiver()
  try {
    const off: Array<number> = []
    const on: Array<number> = []
    // Alternating runs, so drift of a shared machine hits both sides alike.
    for (let round = 0; round < 5; round++) {
      off.push((await ingest(20_000, 3, { tracing: Tracing.layer({ endpoint: Option.none() }) })).eventsPerSecond)
      on.push((await ingest(20_000, 3, { tracing: Tracing.layer({ endpoint: Option.some(otlp.url) }) })).eventsPerSecond)
    }
    if (otlp.spans() === 0) throw new Error("no span reached the receiver: tracing was not on")
    // Time with tracing on over time with it off, for the same events: the inverse ratio of the rates.
    return { ratio: median(off) / median(on), off: median(off), on: median(on), spans: otlp.spans() }
  } finally {
    await otlp.close()
  }
}

export default async (): Promise<Record<string, BenchMetric>> => {
  const scrape = await scrapeTime(100)
  const tracing = await tracingOverhead()
  return {
    "metrics.scrape_ms": { value: scrape.p50, unit: "ms", goal: "<= 50" },
    "metrics.scrape_ms.max": { value: scrape.max, unit: "ms" },
    "tracing.overhead.ratio": { value: tracing.ratio, unit: "ratio", goal: "<= 1.15" },
    "tracing.ingest.events_per_s.off": { value: tracing.off, unit: "events/s" },
    "tracing.ingest.events_per_s.on": { value: tracing.on, unit: "events/s" },
    "tracing.spans_exported": { value: tracing.spans, unit: "spans" }
  }
}
