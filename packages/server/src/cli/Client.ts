/**
 * The CLI's way to the server: a client derived from the `HttpApi` definition (`HttpApiClient`), so
 * every request and answer is typed and decoded by the API's own schemas; the two event streams are
 * read over the same HTTP client and each frame decoded by its schema (FlowMessage, DeploymentEvent).
 */
import { FetchHttpClient, HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { DeploymentRepo, FlowMessage } from "@sovereign/core"
import { Context, Data, Effect, Layer, Option, Schema, Stream } from "effect"
import * as Api from "../Api.js"
import { DeploymentState, SovereignApi } from "../Api.js"
import { parseFrames, type SseFrame } from "./Sse.js"

/** Exit codes (documented in the README): 0 ok, 1 failed deployment or server error, 2 usage, 3 not found / unauthorised. */
export const ExitCode = { ok: 0, failed: 1, usage: 2, notFound: 3 } as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/** Why a command stopped, with the exit code it maps to. */
export class CliError extends Data.TaggedError("CliError")<{ readonly message: string; readonly exitCode: ExitCode }> {}

export interface Target {
  readonly baseUrl: string
  readonly token: string
}

export class CliTarget extends Context.Tag("@sovereign/server/cli/CliTarget")<CliTarget, Target>() {}

export const makeClient = Effect.flatMap(CliTarget, (target) =>
  HttpApiClient.make(SovereignApi, {
    baseUrl: target.baseUrl,
    transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(target.token))
  })
)

export type Client = Effect.Effect.Success<typeof makeClient>

export class SovereignClient extends Context.Tag("@sovereign/server/cli/SovereignClient")<SovereignClient, Client>() {}

/** The client over `fetch`, for `target`. */
export const layer = (target: Target): Layer.Layer<SovereignClient | CliTarget | HttpClient.HttpClient> =>
  Layer.effect(SovereignClient, makeClient).pipe(
    Layer.provideMerge(Layer.succeed(CliTarget, target)),
    Layer.provideMerge(FetchHttpClient.layer)
  )

interface ApiErrorBody {
  readonly _tag?: string
  readonly error?: string
  readonly message?: string
  readonly issues?: ReadonlyArray<{ readonly path: string; readonly message: string }>
}

const hasTag = (error: unknown): error is ApiErrorBody & { readonly _tag: string } =>
  typeof error === "object" && error !== null && "_tag" in error && typeof (error as { readonly _tag: unknown })._tag === "string"

/** Maps whatever a request failed with to a message and exit code (never a stack trace). */
export const explain = (error: unknown, baseUrl: string): CliError => {
  if (error instanceof CliError) return error
  // The API's own error answers, decoded by their schemas.
  if (error instanceof Api.NotFound || error instanceof Api.Unauthorized || error instanceof Api.Forbidden) {
    return new CliError({ message: `${error.error}: ${error.message}`, exitCode: ExitCode.notFound })
  }
  if (error instanceof Api.InvalidRequest) {
    return new CliError({
      message: `invalid-request:${error.issues.map((issue) => `\n  ${issue.path === "" ? "(request)" : issue.path}: ${issue.message}`).join("")}`,
      exitCode: ExitCode.failed
    })
  }
  if (
    error instanceof Api.Conflict ||
    error instanceof Api.Unprocessable ||
    error instanceof Api.Unavailable ||
    error instanceof Api.PayloadTooLarge ||
    error instanceof Api.UnsupportedMediaType ||
    error instanceof Api.TooManyRequests ||
    error instanceof Api.KubeconfigRejected
  ) {
    return new CliError({ message: `${error.error}: ${error.message}`, exitCode: ExitCode.failed })
  }
  if (!hasTag(error)) return new CliError({ message: String(error), exitCode: ExitCode.failed })
  switch (error._tag) {
    case "RequestError":
      return new CliError({
        message: `cannot reach the server at ${baseUrl} (is \`npm start\` running?): ${error.message ?? ""}`,
        exitCode: ExitCode.failed
      })
    case "ResponseError":
      return new CliError({ message: `the server at ${baseUrl} answered unexpectedly: ${error.message ?? ""}`, exitCode: ExitCode.failed })
    case "ParseError":
      return new CliError({ message: `the server's answer does not match the API: ${error.message ?? ""}`, exitCode: ExitCode.failed })
    default:
      return new CliError({ message: `${error.error ?? error._tag}: ${error.message ?? ""}`, exitCode: ExitCode.failed })
  }
}

// ---------------------------------------------------------------------------------------------
// Event streams

/** The frames of the event stream at `path`, as they arrive; ends with the stream. */
const frames = (path: string): Stream.Stream<SseFrame, CliError, CliTarget | HttpClient.HttpClient> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const target = yield* CliTarget
      const client = yield* HttpClient.HttpClient
      const response = yield* client
        .execute(
          HttpClientRequest.get(`${target.baseUrl}${path}`).pipe(
            HttpClientRequest.bearerToken(target.token),
            HttpClientRequest.accept("text/event-stream")
          )
        )
        .pipe(Effect.mapError((error) => explain(error, target.baseUrl)))
      if (response.status !== 200) {
        const body = yield* response.text.pipe(Effect.orElseSucceed(() => ""))
        return yield* new CliError({
          message: `${path} answered ${response.status}: ${body}`,
          exitCode: response.status === 404 || response.status === 401 || response.status === 403 ? ExitCode.notFound : ExitCode.failed
        })
      }
      return response.stream.pipe(
        Stream.decodeText(),
        Stream.mapAccum("", (buffer, text) => {
          const parsed = parseFrames(buffer + text)
          return [parsed.rest, parsed.frames] as const
        }),
        Stream.flattenIterables,
        Stream.mapError((error) => explain(error, target.baseUrl))
      )
    })
  )

/** A `handover-ready` frame carries the freshly minted URL besides the event. */
export const EventFrame = Schema.Struct({ ...DeploymentRepo.DeploymentEvent.fields, handoverURL: Schema.optional(Schema.String) })
export type EventFrame = typeof EventFrame.Type

export type DeploymentStreamItem =
  { readonly _tag: "Event"; readonly event: EventFrame } | { readonly _tag: "Done"; readonly state: typeof DeploymentState.Type }

const decodeJson = <A, I>(schema: Schema.Schema<A, I>) => Schema.decodeUnknownOption(Schema.parseJson(schema))

const decodeEvent = decodeJson(EventFrame)
const decodeDone = decodeJson(DeploymentState)

/** The deployment's events, decoded, replayed then live, until `done` (its final state). */
export const deploymentEvents = (id: string): Stream.Stream<DeploymentStreamItem, CliError, CliTarget | HttpClient.HttpClient> =>
  frames(`/api/v1/deployments/${encodeURIComponent(id)}/events`).pipe(
    Stream.filter((frame) => frame.event !== "heartbeat"),
    Stream.filterMap((frame): Option.Option<DeploymentStreamItem> =>
      frame.event === "done"
        ? Option.map(decodeDone(frame.data), (state) => ({ _tag: "Done" as const, state }))
        : Option.map(decodeEvent(frame.data), (event) => ({ _tag: "Event" as const, event }))
    ),
    Stream.takeUntil((item) => item._tag === "Done")
  )

const decodeFlow = decodeJson(FlowMessage.FlowMessage)

/** The deployment's flow graph: a snapshot, then FlowMessage deltas, each decoded by the contract's schema. */
export const flowMessages = (id: string): Stream.Stream<FlowMessage.FlowMessage, CliError, CliTarget | HttpClient.HttpClient> =>
  frames(`/api/v1/flows/${encodeURIComponent(id)}/stream`).pipe(
    Stream.filter((frame) => frame.event !== "heartbeat"),
    Stream.filterMap((frame) => decodeFlow(frame.data))
  )
