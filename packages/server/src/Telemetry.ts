/**
 * The server's metrics: Effect `Metric`s with controller-style names, and a Prometheus text exporter
 * that reads their snapshots (plus the Node process's own figures) on every scrape.
 */
import { SqlClient } from "@effect/sql"
import { DeploymentRepo, Orchestrator } from "@sovereign/core"
import { Context, Effect, Layer, Metric, MetricBoundaries, MetricState, Option, Runtime } from "effect"
import type { MetricPair } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import { monitorEventLoopDelay } from "node:perf_hooks"
import * as SseFanout from "./SseFanout.js"

// Metrics carry no description: an Effect metric's key includes it, and the adapters that update a
// metric of the same name (the Hetzner rate-limit budget) must hit the same key. Help texts live in `help`.

/** Deployments by status, counted in the store at every scrape (so every replica reports the same). */
export const deployments = Metric.gauge("sovereign_deployments")
/** Finished step executions by step and result (`succeeded`, `failed`): one per execution, not per attempt. */
export const stepTotal = Metric.counter("sovereign_step_total", { incremental: true })
export const stepDuration = Metric.histogram(
  "sovereign_step_duration_seconds",
  MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 18 })
)
export const phaseDuration = Metric.histogram(
  "sovereign_phase_duration_seconds",
  MetricBoundaries.exponential({ start: 0.05, factor: 2, count: 18 })
)
export const releaseEvents = Metric.counter("sovereign_release_events_total", { incremental: true })
export const cloudRequests = Metric.counter("sovereign_cloud_requests_total", { incremental: true })
export const dnsChanges = Metric.counter("sovereign_dns_changes_total", { incremental: true })
export const sseClients = Metric.gauge("sovereign_sse_clients")
export const storeErrors = Metric.counter("sovereign_store_errors_total", { incremental: true })
/** Leases this replica holds (the replicas' lease holder sets it). */
export const leasesHeld = Metric.gauge("sovereign_leases_held")

export const help: Readonly<Record<string, string>> = {
  sovereign_deployments: "Deployments in the store by status.",
  sovereign_step_total: "Finished step executions by step and result.",
  sovereign_step_duration_seconds: "Duration of step executions in seconds.",
  sovereign_phase_duration_seconds: "Duration of deployment phases (phase0, phase1, wipe) in seconds.",
  sovereign_release_events_total: "HelmRelease state changes seen while watching clusters, by state.",
  sovereign_cloud_requests_total: "Calls to the cloud provider by provider and result code (ok or the error reason).",
  sovereign_cloud_ratelimit_remaining: "Requests left in the cloud provider's current rate-limit window.",
  sovereign_dns_changes_total: "DNS record-set changes applied by action (create, update, delete).",
  sovereign_sse_clients: "Connected server-sent-event clients by stream (events, flow).",
  sovereign_store_errors_total: "Failed store operations by reason.",
  sovereign_leases_held: "Deployment leases this replica holds.",
  process_cpu_seconds_total: "Total user and system CPU time spent in seconds.",
  process_resident_memory_bytes: "Resident memory size in bytes.",
  process_start_time_seconds: "Start time of the process since the Unix epoch in seconds.",
  process_open_fds: "Number of open file descriptors.",
  nodejs_heap_size_used_bytes: "Process heap size used from Node.js in bytes.",
  nodejs_heap_size_total_bytes: "Process heap size from Node.js in bytes.",
  nodejs_eventloop_lag_p99_seconds: "The 99th percentile of the event loop delay in seconds.",
  nodejs_active_handles: "Number of active libuv handles."
}

const processCpu = Metric.counter("process_cpu_seconds_total")
const processResident = Metric.gauge("process_resident_memory_bytes")
const processStart = Metric.gauge("process_start_time_seconds")
const processFds = Metric.gauge("process_open_fds")
const heapUsed = Metric.gauge("nodejs_heap_size_used_bytes")
const heapTotal = Metric.gauge("nodejs_heap_size_total_bytes")
const eventLoopLag = Metric.gauge("nodejs_eventloop_lag_p99_seconds")
const activeHandles = Metric.gauge("nodejs_active_handles")

/** Counts a raw event-stream response (the flow fan-out writes to it directly) until its connection closes. */
export const countSseUntilClosed = (
  stream: SseFanout.StreamName,
  response: Option.Option<{ readonly once: (event: "close", listener: () => void) => unknown }>
) =>
  Option.match(response, {
    onNone: () => Effect.void,
    onSome: (node) =>
      Effect.tap(Metric.increment(Metric.tagged(sseClients, "stream", stream)), () =>
        Effect.sync(
          () => void node.once("close", () => Effect.runSync(Metric.incrementBy(Metric.tagged(sseClients, "stream", stream), -1)))
        )
      )
  })

/** Label values that exist before anything happened, so every family shows from the first scrape. */
export const initialise = Effect.all(
  [
    Effect.forEach(DeploymentRepo.Status.literals, (status) => Metric.set(Metric.tagged(deployments, "status", status), 0)),
    Effect.forEach(SseFanout.streamNames, (stream) => Metric.modify(Metric.tagged(sseClients, "stream", stream), 0)),
    Effect.forEach(["Unavailable", "Conflict", "VersionConflict", "NotFound"], (reason) =>
      Metric.incrementBy(Metric.tagged(storeErrors, "reason", reason), 0)
    ),
    Effect.forEach(["create", "update", "delete"], (action) => Metric.incrementBy(Metric.tagged(dnsChanges, "action", action), 0)),
    Metric.modify(leasesHeld, 0)
  ],
  { discard: true }
)

const loopDelay = (() => {
  const histogram = monitorEventLoopDelay({ resolution: 20 })
  histogram.enable()
  return histogram
})()

const openFds = () => {
  try {
    return fs.readdirSync("/proc/self/fd").length
  } catch {
    return undefined
  }
}

let cpuReported = 0
const processFigures = Effect.suspend(() => {
  const usage = process.cpuUsage()
  const cpuSeconds = (usage.user + usage.system) / 1e6
  const cpuDelta = Math.max(0, cpuSeconds - cpuReported)
  cpuReported = Math.max(cpuReported, cpuSeconds)
  const memory = process.memoryUsage()
  const fds = openFds()
  const handles = (process as unknown as { readonly _getActiveHandles?: () => ReadonlyArray<unknown> })._getActiveHandles?.().length
  return Effect.all(
    [
      Metric.incrementBy(processCpu, cpuDelta),
      Metric.set(processResident, memory.rss),
      Metric.set(processStart, Math.round((Date.now() - process.uptime() * 1000) / 1000)),
      fds === undefined ? Effect.void : Metric.set(processFds, fds),
      Metric.set(heapUsed, memory.heapUsed),
      Metric.set(heapTotal, memory.heapTotal),
      Metric.set(eventLoopLag, loopDelay.percentile(99) / 1e9),
      handles === undefined ? Effect.void : Metric.set(activeHandles, handles)
    ],
    { discard: true }
  )
})

/** Counts the stored deployments by status with one grouped query (cheap with any number stored). */
const deploymentFigures = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{
    readonly status: string
    readonly count: number | string
  }>`SELECT status, count(*) AS count FROM deployments GROUP BY status`
  const counts = new Map(rows.map((row) => [row.status, Number(row.count)]))
  yield* Effect.forEach(
    DeploymentRepo.Status.literals,
    (status) => Metric.set(Metric.tagged(deployments, "status", status), counts.get(status) ?? 0),
    { discard: true }
  )
})

/** The leases this replica holds, from the orchestrator's lease holder (0 without replicas). */
const leaseFigures = Effect.serviceOption(Orchestrator.Orchestrator).pipe(
  Effect.flatMap(Option.match({ onNone: () => Effect.succeedNone, onSome: (orchestrator) => orchestrator.leaseHealth })),
  Effect.flatMap((health) => Metric.set(leasesHeld, Option.match(health, { onNone: () => 0, onSome: (current) => current.held })))
)

// ---------------------------------------------------------------------------------------------
// Prometheus text format (version 0.0.4)

export const contentType = "text/plain; version=0.0.4; charset=utf-8"

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')
const escapeHelp = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const formatNumber = (value: number | bigint) => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Number.POSITIVE_INFINITY) return "+Inf"
  if (value === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(value)
}

const labels = (tags: ReadonlyArray<{ readonly key: string; readonly value: string }>, extra?: readonly [string, string]) => {
  const all = [...tags.map((tag) => [tag.key, tag.value] as const), ...(extra === undefined ? [] : [extra])]
  return all.length === 0 ? "" : `{${all.map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(",")}}`
}

/** Renders metric snapshots as one Prometheus family per name, samples sorted by labels. */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, { type: string; samples: Array<string> }>()
  const familyOf = (name: string, type: string) => {
    let family = families.get(name)
    if (family === undefined) {
      family = { type, samples: [] }
      families.set(name, family)
    }
    return family
  }
  for (const pair of pairs) {
    const name = pair.metricKey.name
    const tags = pair.metricKey.tags
    const state = pair.metricState
    if (MetricState.isCounterState(state)) {
      familyOf(name, "counter").samples.push(`${name}${labels(tags)} ${formatNumber(state.count)}`)
    } else if (MetricState.isGaugeState(state)) {
      familyOf(name, "gauge").samples.push(`${name}${labels(tags)} ${formatNumber(state.value)}`)
    } else if (MetricState.isHistogramState(state)) {
      const family = familyOf(name, "histogram")
      for (const [boundary, count] of state.buckets) {
        family.samples.push(`${name}_bucket${labels(tags, ["le", formatNumber(boundary)])} ${count}`)
      }
      if (!state.buckets.some(([boundary]) => boundary === Number.POSITIVE_INFINITY)) {
        family.samples.push(`${name}_bucket${labels(tags, ["le", "+Inf"])} ${state.count}`)
      }
      family.samples.push(`${name}_sum${labels(tags)} ${formatNumber(state.sum)}`)
      family.samples.push(`${name}_count${labels(tags)} ${state.count}`)
    } else if (MetricState.isFrequencyState(state)) {
      const family = familyOf(name, "counter")
      for (const [value, count] of state.occurrences) family.samples.push(`${name}${labels(tags, ["value", value])} ${count}`)
    } else if (MetricState.isSummaryState(state)) {
      const family = familyOf(name, "summary")
      for (const [quantile, value] of state.quantiles) {
        family.samples.push(
          `${name}${labels(tags, ["quantile", String(quantile)])} ${value._tag === "Some" ? formatNumber(value.value) : "NaN"}`
        )
      }
      family.samples.push(`${name}_sum${labels(tags)} ${formatNumber(state.sum)}`)
      family.samples.push(`${name}_count${labels(tags)} ${state.count}`)
    }
  }
  const out: Array<string> = []
  for (const name of [...families.keys()].sort()) {
    const family = families.get(name)!
    const text = help[name]
    if (text !== undefined) out.push(`# HELP ${name} ${escapeHelp(text)}`)
    out.push(`# TYPE ${name} ${family.type}`)
    // Histogram samples keep their bucket order; other families are sorted for stable output.
    out.push(...(family.type === "histogram" ? family.samples : family.samples.sort()))
  }
  return `${out.join("\n")}\n`
}

/** One scrape: refreshes the figures read on demand, then renders every metric of the process. */
export const scrape: Effect.Effect<string, never, SqlClient.SqlClient> = Effect.gen(function* () {
  yield* deploymentFigures.pipe(
    Effect.catchAll((error) =>
      Effect.zipRight(
        Metric.increment(Metric.tagged(storeErrors, "reason", "Unavailable")),
        Effect.logWarning("metrics: deployments cannot be counted", error.message)
      )
    )
  )
  yield* processFigures
  yield* leaseFigures
  return render(yield* Metric.snapshot)
})

// ---------------------------------------------------------------------------------------------
// The metrics listener

/** Where `/metrics` listens (for announcements and tests). */
export class MetricsAddress extends Context.Tag("@sovereign/server/MetricsAddress")<
  MetricsAddress,
  Option.Option<{ readonly url: string }>
>() {}

/**
 * `GET /metrics` on a port of its own (SOVEREIGN_METRICS_PORT): a scraper needs no API token, and a
 * NetworkPolicy can open this port to the monitoring namespace only. Anything else there is a 404.
 */
export const serverLayer = (listen: {
  readonly host: string
  readonly port: Option.Option<number>
}): Layer.Layer<MetricsAddress, Error, SqlClient.SqlClient> =>
  Layer.scoped(
    MetricsAddress,
    Effect.gen(function* () {
      yield* initialise
      if (Option.isNone(listen.port)) return Option.none()
      const wanted = listen.port.value
      const runtime = yield* Effect.runtime<SqlClient.SqlClient>()
      const server = http.createServer((request, response) => {
        const url = new URL(request.url ?? "/", "http://metrics")
        if (request.method !== "GET" || url.pathname !== "/metrics") {
          response.writeHead(404, { "content-type": "text/plain" }).end("not found: GET /metrics\n")
          return
        }
        Runtime.runPromise(runtime)(scrape).then(
          (text) => response.writeHead(200, { "content-type": contentType, "cache-control": "no-store" }).end(text),
          () => response.writeHead(500, { "content-type": "text/plain" }).end("the metrics could not be gathered\n")
        )
      })
      const port = yield* Effect.async<number, Error>((resume) => {
        server.once("error", (error: NodeJS.ErrnoException) =>
          resume(
            Effect.fail(
              new Error(`metrics cannot listen on ${listen.host}:${wanted} (SOVEREIGN_METRICS_PORT): ${error.code ?? error.message}`)
            )
          )
        )
        void server.listen(wanted, listen.host, () => {
          const address = server.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
        })
      })
      yield* Effect.addFinalizer(() =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
      )
      const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host
      return Option.some({ url: `http://${host}:${port}/metrics` })
    })
  )
