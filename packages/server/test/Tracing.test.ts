/**
 * Traces of the real server process, exported over OTLP/HTTP to a receiver this test runs: a simulated
 * deployment's spans nest run → step → adapter call and carry `deployment.id`; HTTP requests are spans too.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { requestJson } from "./support/fixtures.js"
import { start, waitUntil } from "./support/process.js"
import { testToken } from "./support/tokens.js"

const token = testToken("tracing-admin")

interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly name: string
  readonly attributes: Readonly<Record<string, unknown>>
}

interface OtlpValue {
  readonly stringValue?: string
  readonly intValue?: string | number
  readonly boolValue?: boolean
  readonly doubleValue?: number
}

interface OtlpRequest {
  readonly resourceSpans?: ReadonlyArray<{
    readonly resource?: { readonly attributes?: ReadonlyArray<{ readonly key: string; readonly value: OtlpValue }> }
    readonly scopeSpans?: ReadonlyArray<{
      readonly spans?: ReadonlyArray<{
        readonly traceId: string
        readonly spanId: string
        readonly parentSpanId?: string
        readonly name: string
        readonly attributes?: ReadonlyArray<{ readonly key: string; readonly value: OtlpValue }>
      }>
    }>
  }>
}

const valueOf = (value: OtlpValue) => value.stringValue ?? value.intValue ?? value.boolValue ?? value.doubleValue

/** An OTLP/HTTP trace receiver (JSON encoding, what the exporter sends by default). */
const receiver = async () => {
  const spans: Array<ReceivedSpan> = []
  const services = new Set<string>()
  const server = http.createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      if (
        request.method !== "POST" ||
        request.url !== "/v1/traces" ||
        !String(request.headers["content-type"]).startsWith("application/json")
      ) {
        response.writeHead(415).end()
        return
      }
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as OtlpRequest
      for (const resource of body.resourceSpans ?? []) {
        for (const attribute of resource.resource?.attributes ?? [])
          if (attribute.key === "service.name") services.add(String(valueOf(attribute.value)))
        for (const scope of resource.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) {
            spans.push({
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId === "" ? undefined : span.parentSpanId,
              name: span.name,
              attributes: Object.fromEntries((span.attributes ?? []).map((attribute) => [attribute.key, valueOf(attribute.value)]))
            })
          }
        }
      }
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address() as { readonly port: number }
  return {
    url: `http://127.0.0.1:${address.port}`,
    spans,
    services,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

describe("traces over OTLP", () => {
  it("nests a simulated deployment's spans run → step → adapter call, each with deployment.id", { timeout: 300_000 }, async () => {
    const otlp = await receiver()
    const server = await start({
      SOVEREIGN_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-tracing-")),
      SOVEREIGN_API_TOKENS: `${token}:admin:admin@example.com`,
      SOVEREIGN_SECRET_KEY: "d".repeat(64),
      SOVEREIGN_SIM_SPEED: "200",
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url
    })
    try {
      const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" }
      const created = await fetch(`${server.url}/api/v1/deployments`, {
        method: "POST",
        headers,
        body: JSON.stringify(requestJson("traced.omani.works", 2))
      })
      expect(created.status).toBe(201)
      const id = ((await created.json()) as { readonly id: string }).id
      let status = ""
      await waitUntil(
        async () => {
          status = ((await (await fetch(`${server.url}/api/v1/deployments/${id}`, { headers })).json()) as { readonly status: string })
            .status
          return ["ready", "failed", "partial-failure"].includes(status)
        },
        240_000,
        () => `the deployment did not finish (${status})`
      )
      expect(status).toBe("ready")

      const byId = () => new Map(otlp.spans.map((span) => [span.spanId, span]))
      const nested = () => {
        const spans = byId()
        return otlp.spans.filter((span) => {
          if (span.name !== "cloud.apply") return false
          const step = spans.get(span.parentSpanId ?? "")
          const run = spans.get(step?.parentSpanId ?? "")
          return step?.name === "deployment.step" && run?.name === "deployment.run"
        })
      }
      // Spans are exported in batches: the Phase-0 run span ends when Phase 0 does.
      await waitUntil(
        async () => nested().length > 0,
        60_000,
        () => `no run → step → adapter call chain among ${otlp.spans.map((span) => span.name).join(", ")}`
      )

      const spans = byId()
      const applies = nested()
      for (const apply of applies) {
        const step = spans.get(apply.parentSpanId!)!
        const run = spans.get(step.parentSpanId!)!
        for (const span of [apply, step, run]) expect(span.attributes["deployment.id"], span.name).toBe(id)
        expect(step.attributes.step).toBe(apply.attributes.step)
        expect(["pending", "provisioning"]).toContain(run.attributes["deployment.status"])
        expect(new Set([apply.traceId, step.traceId, run.traceId]).size).toBe(1)
      }
      // Every Phase-0 step of the deployment shows up under the run.
      const stepNames = new Set(
        otlp.spans
          .filter((span) => span.name === "deployment.step" && span.attributes["deployment.id"] === id)
          .map((span) => span.attributes.step)
      )
      expect(stepNames.size).toBeGreaterThan(2)
      expect(otlp.spans.some((span) => span.name.startsWith("http.server") && span.attributes["http.request.method"] === "POST")).toBe(true)
      expect([...otlp.services]).toContain("sovereign")
      // SQL statements are not exported (one span each would bury the runs and steps).
      expect(otlp.spans.filter((span) => span.name === "sql.execute")).toEqual([])
      // No credential in any attribute.
      expect(JSON.stringify(otlp.spans)).not.toContain(token)
      expect(JSON.stringify(otlp.spans)).not.toContain("hcloud-secret-token-do-not-leak")
    } finally {
      await server.kill("SIGTERM")
      await otlp.close()
    }
  })
})
