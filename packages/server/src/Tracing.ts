/**
 * Traces through `@effect/opentelemetry`: spans of deployment runs, steps, adapter calls and HTTP
 * requests exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set; without it no tracer at all.
 */
import { Effect, Layer, Option } from "effect"

/** The OTLP/HTTP traces URL for an endpoint as the OpenTelemetry variable names it (a base URL). */
export const tracesUrl = (endpoint: string): string => `${endpoint.replace(/\/+$/, "")}/v1/traces`

/**
 * The tracer for `endpoint` (the SDK is loaded only then: it stays out of every start without it);
 * `Layer.setTracerEnabled(false)` otherwise, so `withSpan` makes no span objects and tracing off costs
 * a flag check. Spans are batched and flushed when the layer closes.
 */
export const layer = (options: { readonly endpoint: Option.Option<string>; readonly serviceVersion?: string }): Layer.Layer<never> =>
  Option.match(options.endpoint, {
    onNone: () => Layer.setTracerEnabled(false),
    onSome: (endpoint) =>
      Layer.unwrapEffect(
        Effect.map(
          Effect.promise(() => import("./internal/otlp.js")),
          (otlp) =>
            otlp.layer({
              url: tracesUrl(endpoint),
              ...(options.serviceVersion === undefined ? {} : { serviceVersion: options.serviceVersion })
            })
        )
      )
  })
