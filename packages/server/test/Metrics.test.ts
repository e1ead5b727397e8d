/**
 * The real server process with JSON logs, scraped on its metrics port while a simulated 3-region
 * deployment runs: every metric of issue 14 is there with sensible values, the scrape parses with a
 * Prometheus text-format parser, and every log line is one JSON object without a secret.
 */
import { describe, expect, it } from "@effect/vitest"
import parsePrometheus, { type Family } from "parse-prometheus-text-format"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { requestJson } from "./support/fixtures.js"
import { start, waitUntil } from "./support/process.js"
import { testToken } from "./support/tokens.js"

const token = testToken("metrics-admin")
const secretKey = "b".repeat(64)

const families = (text: string) => new Map(parsePrometheus(text).map((family) => [family.name, family]))
const value = (family: Family | undefined, labels: Record<string, string> = {}) =>
  family?.metrics
    .filter((sample) => Object.entries(labels).every(([key, wanted]) => sample.labels?.[key] === wanted))
    .reduce((sum, sample) => sum + Number(sample.value ?? sample.count ?? 0), 0) ?? Number.NaN

/**
 * One labelled series' value read from the text: the parser checks the syntax but flattens labelled
 * histograms into one sample (it keeps neither their labels nor their counts).
 */
const series = (text: string, name: string, labels: Record<string, string>) => {
  for (const line of text.split("\n")) {
    const match = /^([a-z_:][a-z0-9_:]*)(?:\{(.*)\})? (\S+)$/i.exec(line)
    if (match === null || match[1] !== name) continue
    const found = Object.fromEntries([...(match[2] ?? "").matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/gi)].map((pair) => [pair[1]!, pair[2]!]))
    if (Object.entries(labels).every(([key, wanted]) => found[key] === wanted)) return Number(match[3])
  }
  return Number.NaN
}

describe("metrics and JSON logs of the real server process", () => {
  it("counts a simulated 3-region deployment in every metric, in the Prometheus text format", { timeout: 300_000 }, async () => {
    const captured = { text: "" }
    const server = await start(
      {
        SOVEREIGN_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-metrics-")),
        SOVEREIGN_API_TOKENS: `${token}:admin:admin@example.com`,
        SOVEREIGN_SECRET_KEY: secretKey,
        SOVEREIGN_SIM_SPEED: "100",
        SOVEREIGN_SIM_SEED: "5",
        SOVEREIGN_LOG_FORMAT: "json"
      },
      captured
    )
    const events = new AbortController()
    try {
      const metricsUrl = /metrics\s+(http:\/\/\S+\/metrics)/.exec(captured.text)?.[1]
      expect(metricsUrl, captured.text).toBeDefined()
      // Not on the API port: an API-port /metrics is not served.
      expect(new URL(metricsUrl!).port).not.toBe(new URL(server.url).port)
      const scrape = async () => {
        const response = await fetch(metricsUrl!)
        expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/)
        return response.text()
      }
      const before = families(await scrape())
      expect(value(before.get("sovereign_deployments"))).toBe(0)

      const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" }
      const created = await fetch(`${server.url}/api/v1/deployments`, {
        method: "POST",
        headers,
        body: JSON.stringify(requestJson("metrics.omani.works", 3))
      })
      expect(created.status).toBe(201)
      const id = ((await created.json()) as { readonly id: string }).id

      // An event stream held open is an SSE client while it lasts.
      const stream = await fetch(`${server.url}/api/v1/deployments/${id}/events`, { headers, signal: events.signal })
      const reader = stream.body!.getReader()
      void (async () => {
        while (!(await reader.read().catch(() => ({ done: true }))).done) {
          // drained until aborted
        }
      })()

      const seen = new Set<string>()
      let sseSeen = 0
      let status = ""
      await waitUntil(
        async () => {
          const scraped = families(await scrape())
          const gauge = scraped.get("sovereign_deployments")
          for (const sample of gauge?.metrics ?? []) if (Number(sample.value) > 0) seen.add(sample.labels!.status!)
          sseSeen = Math.max(sseSeen, value(scraped.get("sovereign_sse_clients"), { stream: "events" }))
          status = ((await (await fetch(`${server.url}/api/v1/deployments/${id}`, { headers })).json()) as { readonly status: string })
            .status
          return status === "ready" || status === "failed" || status === "partial-failure"
        },
        240_000,
        () => `the deployment did not finish (${status})`
      )
      expect(status).toBe("ready")

      const text = await scrape()
      const scraped = families(text)
      // The gauge moved through the statuses and now counts the deployment once, as ready.
      expect(
        [...seen].some((s) => ["pending", "provisioning", "phase1-watching"].includes(s)),
        [...seen].join(",")
      ).toBe(true)
      expect(value(scraped.get("sovereign_deployments"), { status: "ready" })).toBe(1)
      expect(value(scraped.get("sovereign_deployments"))).toBe(1)

      // Steps: one count per execution, as many as the deployment's step jobs; a duration for each.
      const jobs = (
        (await (await fetch(`${server.url}/api/v1/deployments/${id}/jobs`, { headers })).json()) as {
          readonly jobs: ReadonlyArray<{ readonly jobName: string; readonly status: string }>
        }
      ).jobs
      const stepTotal = scraped.get("sovereign_step_total")!
      expect(stepTotal.type).toBe("COUNTER")
      const steps = new Set(stepTotal.metrics.map((sample) => sample.labels!.step!))
      expect(steps.size).toBeGreaterThan(2)
      for (const step of steps) {
        const executions = jobs.filter((job) => job.jobName === step || job.jobName.endsWith(`:${step}`)).length
        expect(value(stepTotal, { step, result: "succeeded" }), step).toBe(executions)
        expect(value(stepTotal, { step, result: "failed" }), step).toBe(0)
        expect(series(text, "sovereign_step_duration_seconds_count", { step }), step).toBe(executions)
        expect(series(text, "sovereign_step_duration_seconds_bucket", { step, le: "+Inf" }), step).toBe(executions)
      }
      expect(scraped.get("sovereign_step_duration_seconds")!.type).toBe("HISTOGRAM")
      expect(scraped.get("sovereign_phase_duration_seconds")!.type).toBe("HISTOGRAM")
      expect(series(text, "sovereign_phase_duration_seconds_count", { phase: "phase0" })).toBe(1)
      expect(series(text, "sovereign_phase_duration_seconds_count", { phase: "phase1" })).toBe(1)
      expect(series(text, "sovereign_phase_duration_seconds_sum", { phase: "phase0" })).toBeGreaterThan(0)
      expect(value(scraped.get("sovereign_release_events_total"), { state: "installed" })).toBeGreaterThan(0)
      expect(value(scraped.get("sovereign_cloud_requests_total"), { provider: "simulator", code: "ok" })).toBeGreaterThan(0)
      const remaining = value(scraped.get("sovereign_cloud_ratelimit_remaining"), { provider: "simulator" })
      expect(remaining).toBeGreaterThan(0)
      expect(remaining).toBeLessThan(3600)
      expect(value(scraped.get("sovereign_dns_changes_total"), { action: "create" })).toBeGreaterThan(0)
      expect(sseSeen).toBe(1)
      expect(value(scraped.get("sovereign_store_errors_total"))).toBe(0)
      expect(scraped.get("sovereign_store_errors_total")!.type).toBe("COUNTER")
      // The ready deployment is still run (watched) by this replica, under its lease.
      expect(value(scraped.get("sovereign_leases_held"))).toBe(1)
      // Node's process figures.
      expect(value(scraped.get("process_cpu_seconds_total"))).toBeGreaterThan(0)
      expect(value(scraped.get("process_resident_memory_bytes"))).toBeGreaterThan(1_000_000)
      expect(value(scraped.get("nodejs_heap_size_used_bytes"))).toBeGreaterThan(0)
      // Low cardinality: no deployment id, FQDN or region name is a label value.
      expect(text).not.toContain(id)
      expect(text).not.toContain("metrics.omani.works")

      events.abort()
      await waitUntil(
        async () => value(families(await scrape()).get("sovereign_sse_clients"), { stream: "events" }) === 0,
        30_000,
        () => "the SSE client was not released"
      )
    } finally {
      events.abort()
      await server.kill("SIGTERM")
    }

    // Every line the server printed is one JSON object with level, time and message; the deployment's
    // lines carry its id, the steps' their step; no secret anywhere.
    const lines = captured.text.split("\n").filter((line) => line.trim() !== "")
    const entries = lines.map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>
      } catch {
        throw new Error(`not a JSON log line: ${line}`)
      }
    })
    for (const entry of entries) {
      expect(typeof entry.level).toBe("string")
      expect(Number.isNaN(Date.parse(String(entry.time)))).toBe(false)
      expect(typeof entry.message).toBe("string")
    }
    expect(entries.some((entry) => typeof entry.deploymentId === "string")).toBe(true)
    expect(entries.some((entry) => typeof entry.step === "string")).toBe(true)
    for (const secret of [token, secretKey, "hcloud-secret-token-do-not-leak"]) expect(captured.text).not.toContain(secret)
  })
})
