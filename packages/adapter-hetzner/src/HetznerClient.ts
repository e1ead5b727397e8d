/** A thin typed client of the Hetzner Cloud API: Schema-decoded answers, pagination, actions, one shared rate-limit budget. */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import type { HttpClientResponse } from "@effect/platform"
import { Context, Duration, Effect, Exit, Layer, Option, Redacted, Schedule, Schema } from "effect"
import { createHash } from "node:crypto"
import * as HetznerSchema from "./HetznerSchema.js"
import * as RateLimitBudget from "./internal/RateLimitBudget.js"

/** The public API base path; `HCLOUD_ENDPOINT` overrides it (tests point it at the fake). */
export const defaultEndpoint = "https://api.hetzner.cloud/v1"

// ---------------------------------------------------------------------------------------------
// Errors

/** Error codes the API documents as worth retrying: the state will change by itself. */
const retryableCodes: ReadonlySet<string> = new Set([
  "rate_limit_exceeded",
  "conflict",
  "locked",
  "server_error",
  "unavailable",
  "timeout",
  "maintenance",
  "robot_unavailable"
])

/** A failed call: the HTTP status (0 when no answer came) and the API's `error.code`. */
export class HetznerApiError extends Schema.TaggedError<HetznerApiError>()("HetznerApiError", {
  status: Schema.Number,
  code: Schema.String,
  message: Schema.String,
  method: Schema.String,
  path: Schema.String
}) {
  /** 429, 5xx, `conflict`, `locked` and lost connections heal by themselves; everything else is permanent. */
  get isRetryable(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500 || retryableCodes.has(this.code)
  }
}

// ---------------------------------------------------------------------------------------------
// Service

export interface ListQuery {
  /** `k=v,k2=v2` (equality and presence terms only). */
  readonly labelSelector?: string
  readonly name?: string
  readonly fingerprint?: string
}

export interface Created<A> {
  readonly resource: A
  /** Actions that must finish before the resource is usable. */
  readonly actions: ReadonlyArray<HetznerSchema.Action>
}

/** The API as one project (token) sees it. */
export interface HetznerApi {
  /** Every item of a kind matching the query, following `meta.pagination.next_page`. */
  readonly list: <A, I>(kind: HetznerSchema.Kind<A, I>, query?: ListQuery) => Effect.Effect<ReadonlyArray<A>, HetznerApiError>
  readonly get: <A, I>(kind: HetznerSchema.Kind<A, I>, id: number) => Effect.Effect<Option.Option<A>, HetznerApiError>
  readonly create: <A, I>(kind: HetznerSchema.Kind<A, I>, body: unknown) => Effect.Effect<Created<A>, HetznerApiError>
  /** Deletes; a resource that is already gone (404) counts as deleted. */
  readonly remove: <A, I>(kind: HetznerSchema.Kind<A, I>, id: number) => Effect.Effect<ReadonlyArray<HetznerSchema.Action>, HetznerApiError>
  /** `POST /<kind>/<id>/actions/<name>`. */
  readonly action: <A, I>(
    kind: HetznerSchema.Kind<A, I>,
    id: number,
    name: string,
    body: unknown
  ) => Effect.Effect<ReadonlyArray<HetznerSchema.Action>, HetznerApiError>
  /** Polls each running action with backoff until it succeeds; an action that ends in error fails. */
  readonly awaitActions: (actions: ReadonlyArray<HetznerSchema.Action>) => Effect.Effect<void, HetznerApiError>
}

export interface HetznerClientOptions {
  readonly endpoint?: string
  /** First wait before a retry; doubled on each attempt. Default 1 s. */
  readonly retryBase?: Duration.DurationInput
  /** Longest wait between retries. Default 60 s. */
  readonly retryCap?: Duration.DurationInput
  /** Attempts of one call before its retryable error is returned. Default 8. */
  readonly maxAttempts?: number
  /** First wait between action polls (grows ×1.5 up to 10 s). Default 500 ms. */
  readonly actionPollInitial?: Duration.DurationInput
  /** Give up on an action after this long. Default 30 min. */
  readonly actionTimeout?: Duration.DurationInput
  /** Items per list page. Default 50 (the API's maximum). */
  readonly perPage?: number
}

export interface HetznerClientService {
  readonly endpoint: string
  readonly forToken: (token: Redacted.Redacted<string>) => HetznerApi
}

export class HetznerClient extends Context.Tag("@sovereign/adapter-hetzner/HetznerClient")<HetznerClient, HetznerClientService>() {}

const maxPages = 200

const rateLimitHeaders = (response: HttpClientResponse.HttpClientResponse): RateLimitBudget.RateLimitHeaders | undefined => {
  const limit = Number(response.headers["ratelimit-limit"])
  const remaining = Number(response.headers["ratelimit-remaining"])
  const reset = Number(response.headers["ratelimit-reset"])
  if (![limit, remaining, reset].every(Number.isFinite) || response.headers["ratelimit-limit"] === undefined) return undefined
  return { limit, remaining, reset }
}

const decodeErrorEnvelope = Schema.decodeUnknownOption(HetznerSchema.ErrorEnvelope)
const decodeJsonObject = Schema.decodeUnknown(HetznerSchema.JsonObject)
const decodeListMeta = Schema.decodeUnknown(HetznerSchema.ListMeta)
const decodeActionsCarrier = Schema.decodeUnknown(HetznerSchema.ActionsCarrier)
const decodeActionResponse = Schema.decodeUnknown(HetznerSchema.ActionResponse)

/** Rate-limit budgets to share between clients made with `make` (a layer has its own). */
export { type Budgets, makeBudgets } from "./internal/RateLimitBudget.js"

/**
 * A client over `http`. Clients made with the same `budgets` share one rate-limit budget per project
 * (endpoint and token); without, this client has budgets of its own.
 */
export const make = (
  http: HttpClient.HttpClient,
  options: HetznerClientOptions = {},
  budgets: RateLimitBudget.Budgets = RateLimitBudget.makeBudgets()
): HetznerClientService => {
  const endpoint = (options.endpoint ?? defaultEndpoint).replace(/\/+$/, "")
  const retryBase = Duration.decode(options.retryBase ?? Duration.seconds(1))
  const retryCap = Duration.decode(options.retryCap ?? Duration.seconds(60))
  const maxAttempts = options.maxAttempts ?? 8
  const pollInitial = Duration.decode(options.actionPollInitial ?? Duration.millis(500))
  const actionTimeout = Duration.decode(options.actionTimeout ?? Duration.minutes(30))
  const perPage = options.perPage ?? 50

  const retryPolicy = Schedule.exponential(retryBase, 2).pipe(
    Schedule.either(Schedule.spaced(retryCap)),
    Schedule.intersect(Schedule.recurs(maxAttempts - 1))
  )

  const forToken = (token: Redacted.Redacted<string>): HetznerApi => {
    const budgetKey = `${endpoint}#${createHash("sha256").update(Redacted.value(token)).digest("hex")}`
    const budget = budgets.get(budgetKey)

    const failure = (method: string, path: string, status: number, code: string, message: string) =>
      new HetznerApiError({ status, code, message, method, path })

    /** One attempt: wait for budget, send, reconcile the budget, classify the status, parse JSON. */
    const attempt = (method: "GET" | "POST" | "DELETE", path: string, params: Record<string, string>, body: unknown) =>
      Effect.gen(function* () {
        yield* budget.acquire
        let request = HttpClientRequest.make(method)(`${endpoint}${path}`).pipe(
          HttpClientRequest.bearerToken(token),
          HttpClientRequest.acceptJson,
          HttpClientRequest.setUrlParams(params)
        )
        if (body !== undefined) request = HttpClientRequest.bodyUnsafeJson(request, body)
        const response = yield* http.execute(request).pipe(
          Effect.onExit((exit) => budget.observe(Exit.isSuccess(exit) ? rateLimitHeaders(exit.value) : undefined)),
          Effect.mapError((error) => failure(method, path, 0, "transport_error", error.message))
        )
        const text = yield* response.text.pipe(Effect.mapError((error) => failure(method, path, 0, "transport_error", error.message)))
        const json: unknown =
          text.length === 0
            ? undefined
            : yield* Effect.try({
                try: () => JSON.parse(text) as unknown,
                catch: () => failure(method, path, response.status, "invalid_response", `answer is not JSON (status ${response.status})`)
              })
        if (response.status >= 200 && response.status < 300) return { status: response.status, json }
        const envelope = decodeErrorEnvelope(json)
        const code = Option.match(envelope, {
          onNone: () => (response.status === 429 ? "rate_limit_exceeded" : `http_${response.status}`),
          onSome: (value) => value.error.code
        })
        const message = Option.match(envelope, { onNone: () => `HTTP ${response.status}`, onSome: (value) => value.error.message })
        return yield* failure(method, path, response.status, code, message)
      })

    /** A call with its retries: backoff between attempts, and the budget wait before each. */
    const call = (method: "GET" | "POST" | "DELETE", path: string, params: Record<string, string> = {}, body?: unknown) =>
      attempt(method, path, params, body).pipe(Effect.retry({ schedule: retryPolicy, while: (error) => error.isRetryable }))

    const decodeFailure = (method: string, path: string) => (error: { readonly message: string }) =>
      failure(method, path, 200, "invalid_response", `unexpected answer: ${error.message}`)

    const pick = <A, I>(json: unknown, key: string, schema: Schema.Schema<A, I>, method: string, path: string) =>
      decodeJsonObject(json).pipe(
        Effect.flatMap((object) => Schema.decodeUnknown(schema)(object[key])),
        Effect.mapError(decodeFailure(method, path))
      )

    const actionsOf = (json: unknown, method: string, path: string) =>
      json === undefined
        ? Effect.succeed<ReadonlyArray<HetznerSchema.Action>>([])
        : decodeActionsCarrier(json).pipe(
            Effect.map((carrier) => [
              ...(carrier.action ? [carrier.action] : []),
              ...(carrier.actions ?? []),
              ...(carrier.next_actions ?? [])
            ]),
            Effect.mapError(decodeFailure(method, path))
          )

    const list: HetznerApi["list"] = (kind, query = {}) =>
      Effect.gen(function* () {
        const path = `/${kind.collection}`
        const items: Array<Schema.Schema.Type<typeof kind.schema>> = []
        let page: number | null = 1
        for (let count = 0; page !== null && count < maxPages; count++) {
          const params: Record<string, string> = { page: String(page), per_page: String(perPage) }
          if (query.labelSelector !== undefined) params.label_selector = query.labelSelector
          if (query.name !== undefined) params.name = query.name
          if (query.fingerprint !== undefined) params.fingerprint = query.fingerprint
          const { json } = yield* call("GET", path, params)
          items.push(...(yield* pick(json, kind.collection, Schema.Array(kind.schema), "GET", path)))
          const meta = yield* decodeListMeta(json).pipe(Effect.mapError(decodeFailure("GET", path)))
          page = meta.meta.pagination.next_page
        }
        return items
      })

    const get: HetznerApi["get"] = (kind, id) => {
      const path = `/${kind.collection}/${id}`
      return call("GET", path).pipe(
        Effect.flatMap(({ json }) => pick(json, kind.item, kind.schema, "GET", path)),
        Effect.map(Option.some),
        Effect.catchIf(
          (error) => error.status === 404,
          () => Effect.succeed(Option.none())
        )
      )
    }

    const create: HetznerApi["create"] = (kind, body) => {
      const path = `/${kind.collection}`
      return call("POST", path, {}, body).pipe(
        Effect.flatMap(({ json }) =>
          Effect.all({
            resource: pick(json, kind.item, kind.schema, "POST", path),
            actions: actionsOf(json, "POST", path)
          })
        )
      )
    }

    const remove: HetznerApi["remove"] = (kind, id) => {
      const path = `/${kind.collection}/${id}`
      return call("DELETE", path).pipe(
        Effect.flatMap(({ json }) => actionsOf(json, "DELETE", path)),
        Effect.catchIf(
          (error) => error.status === 404,
          () => Effect.succeed([])
        )
      )
    }

    const action: HetznerApi["action"] = (kind, id, name, body) => {
      const path = `/${kind.collection}/${id}/actions/${name}`
      return call("POST", path, {}, body).pipe(Effect.flatMap(({ json }) => actionsOf(json, "POST", path)))
    }

    const awaitAction = (initial: HetznerSchema.Action) =>
      Effect.gen(function* () {
        let current = initial
        let delay = pollInitial
        const path = `/actions/${initial.id}`
        while (current.status === "running") {
          yield* Effect.sleep(delay)
          delay = Duration.min(Duration.times(delay, 1.5), Duration.seconds(10))
          const { json } = yield* call("GET", path)
          current = (yield* decodeActionResponse(json).pipe(Effect.mapError(decodeFailure("GET", path)))).action
        }
        if (current.status === "error") {
          return yield* failure(
            "GET",
            path,
            200,
            current.error?.code ?? "action_failed",
            `action ${current.command} failed: ${current.error?.message ?? "no reason given"}`
          )
        }
      }).pipe(
        Effect.timeoutFail({
          duration: actionTimeout,
          onTimeout: () => failure("GET", `/actions/${initial.id}`, 0, "timeout", `action ${initial.command} did not finish in time`)
        })
      )

    const awaitActions: HetznerApi["awaitActions"] = (actions) =>
      Effect.forEach(actions, awaitAction, { concurrency: "unbounded", discard: true })

    return { list, get, create, remove, action, awaitActions }
  }

  return { endpoint, forToken }
}

/**
 * The client over whatever `HttpClient` the application provides, with the rate-limit budgets of its
 * projects for as long as the layer lives (one per token, idle ones swept).
 */
export const layer = (options: HetznerClientOptions = {}): Layer.Layer<HetznerClient, never, HttpClient.HttpClient> =>
  Layer.scoped(
    HetznerClient,
    Effect.gen(function* () {
      const http = yield* HttpClient.HttpClient
      return make(http, options, yield* RateLimitBudget.scoped)
    })
  )
