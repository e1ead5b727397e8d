/**
 * The server's log format: `pretty` (Effect's readable lines, the default) or `json`, one object per
 * line with `level`, `time`, `message`, the `deploymentId` and `step` annotations and the cause.
 */
import { Cause, Effect, FiberId, FiberRef, HashMap, HashSet, Inspectable, Layer, List, Logger, Redacted } from "effect"
import type { LogFormat } from "./ServerConfig.js"

const messageText = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((part) => (typeof part === "string" ? part : Inspectable.toStringUnknown(part, 0))).join(" ")
}

/** Annotation values as JSON: a `Redacted` stays redacted, anything else is made serialisable. */
const annotationValue = (value: unknown): unknown => {
  if (Redacted.isRedacted(value)) return "<redacted>"
  if (value === null || ["string", "number", "boolean"].includes(typeof value)) return value
  return Inspectable.toJSON(value)
}

/** One log entry as the JSON object a collector indexes. */
export const entryOf = (options: Logger.Logger.Options<unknown>): Record<string, unknown> => {
  const entry: Record<string, unknown> = {
    level: options.logLevel.label.toLowerCase(),
    time: options.date.toISOString(),
    message: messageText(options.message)
  }
  for (const [key, value] of HashMap.toEntries(options.annotations)) entry[key] = annotationValue(value)
  if (!Cause.isEmpty(options.cause)) entry.cause = Cause.pretty(options.cause, { renderErrorCause: true })
  const spans = List.toArray(options.spans)
  if (spans.length > 0) entry.spans = Object.fromEntries(spans.map((span) => [span.label, options.date.getTime() - span.startTime]))
  entry.fiber = FiberId.threadName(options.fiberId)
  return entry
}

export const jsonLogger = Logger.make<unknown, void>((options) => {
  globalThis.console.log(JSON.stringify(entryOf(options)))
})

/**
 * Installs the configured format. `json` replaces every text logger (the default one, or the pretty one
 * `NodeRuntime.runMain` installs) and keeps the tracer's, which turns log lines into span events.
 */
export const layer = (format: LogFormat): Layer.Layer<never> =>
  format === "json"
    ? Layer.scopedDiscard(
        Effect.locallyScopedWith(FiberRef.currentLoggers, (loggers) =>
          HashSet.add(
            HashSet.filter(loggers, (logger) => logger === Logger.tracerLogger),
            jsonLogger
          )
        )
      )
    : Layer.empty
