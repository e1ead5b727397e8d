/** The OpenTelemetry SDK with an OTLP/HTTP span exporter; loaded only when traces are configured. */
import { NodeSdk } from "@effect/opentelemetry"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Layer } from "effect"

export const layer = (options: { readonly url: string; readonly serviceVersion?: string }): Layer.Layer<never> =>
  Layer.discard(
    NodeSdk.layer(() => ({
      resource: { serviceName: "sovereign", ...(options.serviceVersion === undefined ? {} : { serviceVersion: options.serviceVersion }) },
      spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter({ url: options.url }), { scheduledDelayMillis: 1000 })
    }))
  )
