/** The OpenTelemetry SDK with an OTLP/HTTP span exporter; loaded only when traces are configured. */
import { NodeSdk } from "@effect/opentelemetry"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Option, Tracer } from "effect"
import { randomBytes } from "node:crypto"

/**
 * Spans not exported: `@effect/sql` opens one per SQL statement and per transaction, hundreds per
 * deployment, each with its statement text. The trace an operator reads is runs, steps, adapter
 * calls and HTTP requests; store spans would multiply the export (and tracing's cost, `npm run
 * bench`) for little.
 */
const unexported = new Set(["sql.execute", "sql.transaction"])

let skipped = 0

/** A span that records nothing and is not sampled; it keeps its parent's trace so context still flows. */
class SkippedSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly sampled = false
  // Never exported: a counter is id enough, and cheaper than random bytes for hundreds of spans a second.
  readonly spanId = (++skipped).toString(16).padStart(16, "0")
  readonly traceId: string
  status: Tracer.SpanStatus
  readonly attributes = new Map<string, unknown>()
  readonly links: Array<Tracer.SpanLink> = []
  constructor(
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: import("effect").Context.Context<never>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind
  ) {
    this.traceId = Option.match(parent, { onNone: () => randomBytes(16).toString("hex"), onSome: (span) => span.traceId })
    this.status = { _tag: "Started", startTime }
  }
  end(endTime: bigint, exit: import("effect").Exit.Exit<unknown, unknown>) {
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
  }
  attribute() {}
  event() {}
  addLinks() {}
}

const skipping = (tracer: Tracer.Tracer): Tracer.Tracer =>
  Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) =>
      unexported.has(name)
        ? new SkippedSpan(name, parent, context, startTime, kind)
        : tracer.span(name, parent, context, links, startTime, kind, options),
    // The OpenTelemetry tracer makes every fiber step run inside an OTel context (for OTel's own
    // instrumentations of Node modules); the server uses none, and that wrapping was most of tracing's cost.
    context: (f) => f()
  })

export const layer = (options: { readonly url: string; readonly serviceVersion?: string }): Layer.Layer<never> =>
  Layer.unwrapEffect(Effect.map(Effect.tracer, (tracer) => Layer.setTracer(skipping(tracer)))).pipe(
    Layer.provide(
      Layer.discard(
        NodeSdk.layer(() => ({
          resource: {
            serviceName: "sovereign",
            ...(options.serviceVersion === undefined ? {} : { serviceVersion: options.serviceVersion })
          },
          spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter({ url: options.url }), { scheduledDelayMillis: 1000 })
        }))
      )
    )
  )
