/**
 * The doors every request passes before and after the API (issue 16): a body timeout and a cap on
 * request bodies in flight per client, a brake on repeated failed authentication per client (logged,
 * never with the token), and the headers every answer carries.
 */
import { HttpApp, HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, Duration, Effect, Option } from "effect"

export interface GuardOptions {
  /** How long a client may take to send a whole request, headers and body (SSE answers are not affected). */
  readonly bodyTimeout: Duration.DurationInput
  /** Requests from one client that may be sending a body at once; more are answered 429 and closed. */
  readonly maxUploadsPerClient: number
  /** Failed authentications (401/403) from one client within `authFailureWindow` before it is slowed down. */
  readonly authFailureLimit: number
  readonly authFailureWindow: Duration.DurationInput
  /** The longest a slowed-down client waits (the wait doubles with every further failure). */
  readonly maxBackoff: Duration.DurationInput
}

export const defaultGuards: GuardOptions = {
  bodyTimeout: Duration.seconds(30),
  maxUploadsPerClient: 16,
  authFailureLimit: 10,
  authFailureWindow: Duration.minutes(1),
  maxBackoff: Duration.minutes(5)
}

/** Node's own timeouts: `requestTimeout` closes a request whose body stalls (408), checked often enough to matter. */
export const nodeServerOptions = (options: GuardOptions) => {
  const requestTimeout = Math.max(1, Math.round(Duration.toMillis(Duration.decode(options.bodyTimeout))))
  return {
    requestTimeout,
    headersTimeout: Math.min(30_000, requestTimeout),
    connectionsCheckingInterval: Math.max(100, Math.min(5_000, Math.floor(requestTimeout / 4)))
  }
}

// ---------------------------------------------------------------------------------------------
// The brake

interface ClientRecord {
  /** Failures since `windowStart` (or since the client was first slowed down). */
  failures: number
  windowStart: number
  /** Unix ms until which the client is answered 429. */
  blockedUntil: number
  lastFailure: number
}

/** Per-client failure counts with a doubling wait once the limit is passed. Bounded: old clients are forgotten. */
export const makeBrake = (options: GuardOptions, capacity = 10_000) => {
  const clients = new Map<string, ClientRecord>()
  const window = Duration.toMillis(Duration.decode(options.authFailureWindow))
  const maxBackoff = Duration.toMillis(Duration.decode(options.maxBackoff))
  const forget = (now: number) => {
    for (const [client, record] of clients) {
      if (record.blockedUntil <= now && now - record.lastFailure > Math.max(window, maxBackoff) * 3) clients.delete(client)
    }
    while (clients.size > capacity) clients.delete(clients.keys().next().value!)
  }
  return {
    /** Milliseconds the client must still wait; 0 when it may go on. */
    waitOf: (client: string, now: number): number => Math.max(0, (clients.get(client)?.blockedUntil ?? 0) - now),
    /** Counts a failure; returns the failures counted and the wait it imposes (0 below the limit). */
    fail: (client: string, now: number): { readonly failures: number; readonly waitMs: number } => {
      let record = clients.get(client)
      const quiet =
        record !== undefined &&
        record.blockedUntil <= now &&
        ((record.failures <= options.authFailureLimit && now - record.windowStart > window) ||
          now - record.lastFailure > Math.max(window, maxBackoff) * 3)
      if (record === undefined || quiet) {
        record = { failures: 0, windowStart: now, blockedUntil: 0, lastFailure: now }
        clients.delete(client)
        clients.set(client, record)
        if (clients.size > capacity) forget(now)
      }
      record.failures++
      record.lastFailure = now
      const over = record.failures - options.authFailureLimit
      const waitMs = over > 0 ? Math.min(maxBackoff, 1000 * 2 ** Math.min(over - 1, 30)) : 0
      if (waitMs > 0) record.blockedUntil = now + waitMs
      return { failures: record.failures, waitMs }
    },
    size: () => clients.size
  }
}

// ---------------------------------------------------------------------------------------------
// The middleware

const tooMany = (error: "too-many-failures" | "too-many-uploads", message: string, waitMs?: number) =>
  HttpServerResponse.unsafeJson(
    { error, message, ...(waitMs === undefined ? {} : { retryAfterSec: Math.ceil(waitMs / 1000) }) },
    { status: 429, headers: { ...(waitMs === undefined ? {} : { "retry-after": String(Math.ceil(waitMs / 1000)) }), connection: "close" } }
  )

const hasBody = (request: HttpServerRequest.HttpServerRequest) => {
  const length = request.headers["content-length"]
  return (length !== undefined && length.trim() !== "0") || request.headers["transfer-encoding"] !== undefined
}

/** The headers of every answer: no sniffing; nothing authenticated is cached; a 401 says how to authenticate. */
const withHeaders = (request: HttpServerRequest.HttpServerRequest, response: HttpServerResponse.HttpServerResponse) => {
  const headers: Record<string, string> = { "x-content-type-options": "nosniff" }
  if (request.headers["authorization"] !== undefined) {
    const current = response.headers["cache-control"] ?? ""
    headers["cache-control"] = current.includes("no-transform") ? "no-store, no-transform" : "no-store"
  }
  if (response.status === 401) {
    headers["www-authenticate"] =
      request.headers["authorization"] === undefined ? 'Bearer realm="sovereign"' : 'Bearer realm="sovereign", error="invalid_token"'
  }
  // An upload refused before its body was read: close the connection instead of waiting for the rest.
  if (response.status >= 400 && hasBody(request)) headers["connection"] = "close"
  return HttpServerResponse.setHeaders(response, headers)
}

/** The middleware for `HttpApiBuilder.serve`. */
export const middleware = (options: GuardOptions) => {
  const brake = makeBrake(options)
  const uploads = new Map<string, number>()
  return (app: HttpApp.Default): HttpApp.Default<never, never> =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const client = Option.getOrElse(request.remoteAddress, () => "unknown")
      const path = request.url.split("?")[0] ?? "/"
      const guarded = path.startsWith("/api/")
      const now = yield* Clock.currentTimeMillis
      if (guarded) {
        const wait = brake.waitOf(client, now)
        if (wait > 0) {
          return withHeaders(
            request,
            tooMany("too-many-failures", "too many failed authentications from this client; wait and try again", wait)
          )
        }
      }
      const upload = hasBody(request)
      if (upload) {
        const inFlight = uploads.get(client) ?? 0
        if (inFlight >= options.maxUploadsPerClient) {
          return withHeaders(
            request,
            tooMany("too-many-uploads", `at most ${options.maxUploadsPerClient} request bodies from one client at a time`)
          )
        }
        uploads.set(client, inFlight + 1)
      }
      // The app writes its answer itself; a pre-response handler is how headers reach every answer it writes.
      yield* HttpApp.appendPreResponseHandler((request, response) => Effect.succeed(withHeaders(request, response)))
      const response = yield* app.pipe(
        Effect.catchAllCause((cause) => Effect.map(HttpServerError.causeResponse(cause), ([answer]) => answer)),
        Effect.ensuring(
          Effect.sync(() => {
            if (!upload) return
            const left = (uploads.get(client) ?? 1) - 1
            if (left <= 0) uploads.delete(client)
            else uploads.set(client, left)
          })
        )
      )
      if (guarded && (response.status === 401 || response.status === 403)) {
        const { failures, waitMs } = brake.fail(client, yield* Clock.currentTimeMillis)
        // Who, what and how often; never the token, never the body.
        yield* Effect.logWarning(
          `authentication failed (${response.status}) for ${request.method} ${path} from ${client}: failure ${failures} in this window` +
            (waitMs > 0 ? `; slowing the client down: further requests are answered 429 for ${Math.ceil(waitMs / 1000)} s` : "")
        )
      }
      return response
    })
}
