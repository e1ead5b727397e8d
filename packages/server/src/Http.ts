/** The handlers of the HTTP API: authorisation, decoding and encoding around the ports and `Control`; no business rules. */
import { HttpApiBuilder, HttpApiError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Deployment, DeploymentRepo, FlowEvents, FlowGraph, Handover, JobRepo, Kubeconfigs } from "@sovereign/core"
import { Cause, Chunk, Effect, Predicate, Layer, Option, PubSub, Queue, Redacted } from "effect"
import type { Readable } from "node:stream"
import {
  Conflict,
  CurrentPrincipal,
  Forbidden,
  InvalidRequest,
  NotFound,
  OperatorAuth,
  SovereignApi,
  Unauthorized,
  Unavailable,
  Unprocessable,
  UnsupportedMediaType,
  openApi
} from "./Api.js"
import * as Auth from "./Auth.js"
import { Control, type ControlError } from "./Control.js"
import { HandoverKeys } from "./HandoverSigner.js"
import * as HttpDns from "./HttpDns.js"
import { isKey, jsonDepthExceeds, maxBodyBytes, maxJsonDepth, readBody } from "./HttpInput.js"
import { PostbackLive } from "./KubeconfigDoor.js"
import * as SqlStore from "./SqlStore.js"
import * as SseFanout from "./SseFanout.js"
import * as Probes from "./Probes.js"
import * as Telemetry from "./Telemetry.js"

export { maxBodyBytes, readBody }

// ---------------------------------------------------------------------------------------------
// Request bodies

const isJsonContentType = (value: string | undefined) =>
  value === undefined || value.trim() === "" || /^application\/([a-z0-9.+-]*\+)?json\s*(;.*)?$/i.test(value.trim())

const readJson = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function* () {
    if (!isJsonContentType(request.headers["content-type"])) {
      return yield* Effect.fail(
        new UnsupportedMediaType({ error: "unsupported-media-type", message: "send the request as application/json" })
      )
    }
    const text = yield* readBody(request)
    // Refused before parsing: a deep enough document overflows any recursive formatter of the value.
    if (jsonDepthExceeds(text)) {
      return yield* Effect.fail(InvalidRequest.of([{ path: "", message: `the body nests deeper than ${maxJsonDepth} levels` }]))
    }
    const value = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: () => InvalidRequest.of([{ path: "", message: "the body is not valid JSON" }])
    })
    // NUL cannot be stored as text (Postgres) and has no place in a request.
    if (text.includes("\\u0000") || text.includes("\u0000")) {
      return yield* Effect.fail(InvalidRequest.of([{ path: "", message: "the body must not contain NUL characters" }]))
    }
    return value
  })

// ---------------------------------------------------------------------------------------------
// Views

const linksOf = (id: string) => ({
  self: `/api/v1/deployments/${id}`,
  events: `/api/v1/deployments/${id}/events`,
  jobs: `/api/v1/deployments/${id}/jobs`,
  flow: `/api/v1/flows/${id}/stream`
})

const summaryOf = (record: DeploymentRepo.DeploymentRecord) => ({
  id: record.id,
  status: record.status,
  sovereignFQDN: record.spec.sovereignFQDN,
  owner: record.owner,
  regions: record.spec.regions.map((region) => region.cloudRegion),
  createdAt: record.createdAt,
  updatedAt: record.updatedAt,
  ...(record.finishedAt === undefined ? {} : { finishedAt: record.finishedAt }),
  ...(record.error === undefined ? {} : { error: record.error })
})

const handoverStatuses: ReadonlyArray<DeploymentRepo.Status> = ["ready"]

const stateOf = (record: DeploymentRepo.DeploymentRecord) => Effect.flatMap(Handover.Handover, (handover) => stateWith(handover, record))

const stateWith = (handover: Handover.HandoverService, record: DeploymentRepo.DeploymentRecord) =>
  Effect.gen(function* () {
    const handoverURL = handoverStatuses.includes(record.status)
      ? yield* handover.url(record).pipe(Effect.option, Effect.map(Option.getOrUndefined))
      : undefined
    return {
      id: record.id,
      status: record.status,
      owner: record.owner,
      request: record.spec,
      results: record.results,
      ...(record.error === undefined ? {} : { error: record.error }),
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      ...(record.phase1StartedAt === undefined ? {} : { phase1StartedAt: record.phase1StartedAt }),
      ...(record.finishedAt === undefined ? {} : { finishedAt: record.finishedAt }),
      ...(record.adoptedAt === undefined ? {} : { adoptedAt: record.adoptedAt }),
      ...(handoverURL === undefined ? {} : { handoverURL }),
      links: linksOf(record.id)
    }
  })

// ---------------------------------------------------------------------------------------------
// Errors from the ports → answers

const unavailable = (error: { readonly message: string }): Effect.Effect<never, Unavailable> =>
  Effect.zipRight(
    Effect.logError("storage failed", error.message),
    Effect.fail(new Unavailable({ error: "unavailable", message: "the store is unavailable; try again" }))
  )

type ControlAnswer = NotFound | InvalidRequest | Conflict | Unprocessable | Unavailable

const fromControl = (error: ControlError): Effect.Effect<never, ControlAnswer> => {
  switch (error.reason) {
    case "NotFound":
      return Effect.fail(NotFound.deployment())
    case "Invalid":
      return Effect.fail(InvalidRequest.of(error.issues ?? [{ path: "", message: error.message }]))
    case "Conflict":
      return Effect.fail(
        new Conflict({ error: "conflict", message: error.message, ...(error.status === undefined ? {} : { status: error.status }) })
      )
    case "TooYoung":
      return Effect.fail(
        new Conflict({
          error: "min-life",
          message: error.message,
          ...(error.status === undefined ? {} : { status: error.status }),
          ...(error.retryAfterSec === undefined ? {} : { retryAfterSec: error.retryAfterSec })
        })
      )
    case "Adopted":
      return Effect.fail(new Unprocessable({ error: "adopted", message: error.message }))
    case "AlreadySet":
    case "Empty":
      return Effect.fail(new Conflict({ error: "conflict", message: error.message }))
    case "NotOpen":
    case "Closed":
    case "Refused":
      return Effect.fail(new Conflict({ error: "conflict", message: error.message }))
    case "Unavailable":
      return unavailable(error)
  }
}

export const isDeploymentId = (id: string) => /^[0-9a-f]{16}$/.test(id)

/** The record, if it exists and the caller may see it; else the one 404 body for both cases. */

const owned = (id: string) =>
  Effect.gen(function* () {
    if (!isDeploymentId(id)) return yield* Effect.fail(NotFound.deployment())
    const principal = yield* CurrentPrincipal
    const repo = yield* DeploymentRepo.DeploymentRepo
    const found = yield* repo.get(id).pipe(Effect.catchAll(unavailable))
    if (Option.isNone(found) || !Auth.canSee(principal, found.value.owner)) return yield* Effect.fail(NotFound.deployment())
    return found.value
  })

// ---------------------------------------------------------------------------------------------
// Server-sent events (written by `SseFanout`: each change encoded once, the same bytes to every client)

export const heartbeatInterval = SseFanout.defaultHeartbeatInterval

export const sseFrame = SseFanout.frame

const sseHeaders = {
  "cache-control": "no-cache, no-transform",
  connection: "keep-alive",
  "x-accel-buffering": "no"
}

const sseResponse = (body: Readable) => HttpServerResponse.raw(body, { contentType: "text/event-stream", headers: sseHeaders })

const lastEventId = (request: HttpServerRequest.HttpServerRequest): Option.Option<number> => {
  const raw = request.headers["last-event-id"]
  if (raw === undefined || !/^\d{1,15}$/.test(raw.trim())) return Option.none()
  return Option.some(Number(raw.trim()))
}

const isDone = (status: DeploymentRepo.Status) => !DeploymentRepo.inFlight.includes(status)

/** The event that ends a deployment's event stream: `handover-ready`, or a move to a finished status other than `ready` (which `handover-ready` follows). */
const endsEventStream = (event: DeploymentRepo.DeploymentEvent) =>
  event.type === "handover-ready" ||
  (event.type === "status" && event.state !== undefined && event.state !== "ready" && isDone(event.state as DeploymentRepo.Status))

/** The frames of the deployment event stream; `handover-ready` carries a freshly minted handover URL, `done` the deployment's state. */
const eventFrames = Effect.gen(function* () {
  const repo = yield* DeploymentRepo.DeploymentRepo
  const handover = yield* Handover.Handover
  const reread = (record: DeploymentRepo.DeploymentRecord) =>
    Effect.map(
      repo.get(record.id),
      Option.getOrElse(() => record)
    )
  const frameOf = (record: DeploymentRepo.DeploymentRecord, event: DeploymentRepo.DeploymentEvent) =>
    event.type === "handover-ready"
      ? Effect.map(
          Effect.flatMap(reread(record), (current) => handover.url(current).pipe(Effect.orElseSucceed(() => undefined))),
          (handoverURL) => sseFrame({ event: "handover-ready", id: event.seq, data: { ...event, handoverURL } })
        )
      : Effect.succeed(sseFrame({ id: event.seq, data: event }))
  const doneFrame = (record: DeploymentRepo.DeploymentRecord) =>
    Effect.flatMap(reread(record), (current) =>
      Effect.map(stateWith(handover, current), (state) => sseFrame({ event: "done", data: state }))
    )
  return { repo, frameOf, doneFrame }
})

/**
 * The first frames of a deployment's event stream: the events after Last-Event-ID; for a finished
 * deployment all of them and `done` (the stream ends), else up to the first event that ends the stream
 * (then that event and `done`), the fan-out writing the later ones.
 */
const eventsStart = (record: DeploymentRepo.DeploymentRecord, afterSeq: number) =>
  Effect.gen(function* () {
    const { repo, frameOf, doneFrame } = yield* eventFrames
    const events = yield* repo.events(record.id, afterSeq)
    const frames: Array<Uint8Array> = []
    for (const event of events) {
      frames.push(yield* frameOf(record, event))
      if (!isDone(record.status) && endsEventStream(event)) {
        frames.push(yield* doneFrame(record))
        return { frames, last: event.seq, ended: true }
      }
    }
    const last = events.length > 0 ? events[events.length - 1]!.seq : afterSeq
    if (isDone(record.status)) frames.push(yield* doneFrame(record))
    return { frames, last, ended: isDone(record.status) }
  })

const flowFrame = (event: FlowEvents.FlowEvent): Uint8Array => {
  const message = event.message as { readonly type?: unknown }
  return sseFrame({ event: typeof message?.type === "string" ? message.type : "message", id: event.seq, data: event.message })
}

/**
 * The first frames of a flow stream: `snapshot` (id = latest sequence), or, for a resumable
 * Last-Event-ID, the deltas after it; the fan-out then writes the later deltas.
 */
const flowStart = (record: DeploymentRepo.DeploymentRecord, resumeFrom: Option.Option<number>) =>
  Effect.gen(function* () {
    const flow = yield* FlowEvents.FlowEvents
    const jobs = yield* JobRepo.JobRepo
    if (Option.isSome(resumeFrom)) {
      const seq = resumeFrom.value
      const [latest, since] = yield* Effect.all([flow.latestSeq(record.id), flow.since(record.id, seq)])
      if (seq <= latest && Option.isSome(since)) {
        const replayed = since.value
        return { frames: replayed.map(flowFrame), last: replayed.length > 0 ? replayed[replayed.length - 1]!.seq : seq, ended: false }
      }
    }
    const latest = yield* flow.latestSeq(record.id)
    const current = yield* jobs
      .list(record.id)
      .pipe(Effect.mapError((error) => new FlowEvents.FlowEventsError({ reason: "Unavailable", message: error.message })))
    const message = FlowGraph.compose({
      deploymentId: record.id,
      regions: Deployment.deriveRegions(record.spec, record.id).map((region) => region.key),
      jobs: current,
      inFlight: DeploymentRepo.inFlight.includes(record.status)
    })
    return { frames: [sseFrame({ event: "snapshot", id: latest, data: message })], last: latest, ended: false }
  })

/**
 * Feeds the fan-out from the store's announcements of committed changes: one subscription per stream
 * for the whole process, taken before any client registers (so a client's start read and the live
 * changes leave no gap), each change encoded once and only when its deployment has clients. The
 * frames that end an event stream (`handover-ready`, `done`) read the record once for all clients.
 */
const followAnnouncements = (fanout: SseFanout.SseFanoutService) =>
  Effect.gen(function* () {
    const announcements = yield* SqlStore.Announcements
    const { frameOf, doneFrame } = yield* eventFrames
    const flowChanges = yield* PubSub.subscribe(announcements.flowEvents)
    const eventChanges = yield* PubSub.subscribe(announcements.deploymentEvents)
    yield* Queue.takeBetween(flowChanges, 1, Number.MAX_SAFE_INTEGER).pipe(
      Effect.map((changes) => {
        for (const event of changes) {
          if (fanout.flow.has(event.deploymentId))
            fanout.flow.publish(event.deploymentId, { seq: event.seq, frames: [flowFrame(event)], end: false })
        }
      }),
      Effect.forever,
      Effect.forkScoped
    )
    const ending = (event: DeploymentRepo.DeploymentEvent) =>
      Effect.flatMap(DeploymentRepo.DeploymentRepo, (repo) => repo.get(event.deploymentId)).pipe(
        Effect.flatMap(
          Option.match({
            onNone: () => Effect.succeed([sseFrame({ id: event.seq, data: event })]),
            onSome: (record) => Effect.all([frameOf(record, event), doneFrame(record)])
          })
        ),
        Effect.timeout("5 seconds"),
        // Without its frames the stream still ends: the client reconnects and its replay ends it properly.
        Effect.catchAllCause((cause) => Effect.as(Effect.logWarning("the frames that end an event stream could not be read", cause), []))
      )
    yield* Queue.takeBetween(eventChanges, 1, Number.MAX_SAFE_INTEGER).pipe(
      Effect.flatMap((changes) =>
        Effect.forEach(
          changes,
          (event) => {
            if (!fanout.events.has(event.deploymentId)) return Effect.void
            if (!endsEventStream(event)) {
              fanout.events.publish(event.deploymentId, { seq: event.seq, frames: [sseFrame({ id: event.seq, data: event })], end: false })
              return Effect.void
            }
            return Effect.map(ending(event), (frames) => fanout.events.publish(event.deploymentId, { seq: event.seq, frames, end: true }))
          },
          { discard: true }
        )
      ),
      Effect.forever,
      Effect.provideService(DeploymentRepo.DeploymentRepo, yield* DeploymentRepo.DeploymentRepo),
      Effect.forkScoped
    )
  })

const nodeResponseOf = (request: HttpServerRequest.HttpServerRequest) =>
  Option.liftThrowable(() => NodeHttpServerRequest.toServerResponse(request))().pipe(
    Option.filter((response) => typeof response?.once === "function")
  )

// ---------------------------------------------------------------------------------------------
// Groups

const probe = (name: Probes.ProbeName, urlParams: { readonly verbose?: string | undefined }) =>
  Effect.gen(function* () {
    const results = yield* Probes.run(name)
    const failed = results.filter((result) => !result.ok)
    if (urlParams.verbose !== undefined) {
      return HttpServerResponse.text(Probes.renderVerbose(name, results), { status: failed.length === 0 ? 200 : 503 })
    }
    if (failed.length > 0) {
      return yield* Effect.fail(
        new Unavailable({ error: "not-ready", message: failed.map((result) => `${result.name}: ${result.reason ?? "failed"}`).join("; ") })
      )
    }
    return HttpServerResponse.unsafeJson({ status: "ok" as const })
  })

const HealthLive = HttpApiBuilder.group(SovereignApi, "health", (handlers) =>
  handlers
    .handle("livez", ({ urlParams }) => probe("livez", urlParams))
    .handle("readyz", ({ urlParams }) => probe("readyz", urlParams))
    .handle("healthz", ({ urlParams }) => probe("livez", urlParams))
)

const PublicLive = HttpApiBuilder.group(SovereignApi, "public", (handlers) =>
  handlers
    .handle("inFlightCount", () =>
      Effect.gen(function* () {
        const repo = yield* DeploymentRepo.DeploymentRepo
        const records = yield* repo.list({ statuses: DeploymentRepo.phase0InFlight }).pipe(Effect.catchAll(unavailable))
        const ids = records.map((record) => record.id).sort()
        return HttpServerResponse.unsafeJson({ count: ids.length, ids }, { headers: { "cache-control": "no-store" } })
      })
    )
    .handle("jwks", () => Effect.map(HandoverKeys, (keys) => keys.jwks))
)

const DeploymentsLive = HttpApiBuilder.group(SovereignApi, "deployments", (handlers) =>
  Effect.gen(function* () {
    const fanout = yield* SseFanout.SseFanout
    yield* followAnnouncements(fanout)
    return handlers
      .handleRaw("create", ({ request }) =>
        Effect.gen(function* () {
          const principal = yield* CurrentPrincipal
          const control = yield* Control
          const body = yield* readJson(request)
          const record = yield* control.submit(body, principal.email).pipe(Effect.catchAll(fromControl))
          return HttpServerResponse.unsafeJson({ id: record.id, status: record.status, links: linksOf(record.id) }, { status: 201 })
        })
      )
      .handle("list", () =>
        Effect.gen(function* () {
          const principal = yield* CurrentPrincipal
          const repo = yield* DeploymentRepo.DeploymentRepo
          const records = yield* repo.list(principal.role === "admin" ? {} : { owner: principal.email }).pipe(Effect.catchAll(unavailable))
          return { deployments: records.filter((record) => record.status !== "adopted").map(summaryOf) }
        })
      )
      .handle("get", ({ path }) => Effect.flatMap(owned(path.id), stateOf))
      .handle("remove", ({ path }) =>
        Effect.gen(function* () {
          const record = yield* owned(path.id)
          if (record.status === "adopted")
            return yield* Effect.fail(new Unprocessable({ error: "adopted", message: "the deployment was handed over" }))
          if (DeploymentRepo.inFlight.includes(record.status)) {
            return yield* Effect.fail(
              new Conflict({ error: "in-flight", message: `the deployment is ${record.status}; wipe it or wait`, status: record.status })
            )
          }
          const repo = yield* DeploymentRepo.DeploymentRepo
          const jobs = yield* JobRepo.JobRepo
          const flow = yield* FlowEvents.FlowEvents
          const kubeconfigs = yield* Kubeconfigs.Kubeconfigs
          yield* Effect.all([jobs.remove(record.id), flow.remove(record.id), kubeconfigs.remove(record.id), repo.remove(record.id)], {
            discard: true
          }).pipe(Effect.catchAll(unavailable))
          return { id: record.id, deleted: true, mode: "record-only" as const }
        })
      )
      .handle("retry", ({ path }) =>
        Effect.gen(function* () {
          yield* owned(path.id)
          const control = yield* Control
          const record = yield* control.retry(path.id).pipe(Effect.catchAll(fromControl))
          return { id: record.id, status: record.status, message: "retrying from the first unfinished step" }
        })
      )
      .handle("wipe", ({ path, urlParams }) =>
        Effect.gen(function* () {
          yield* owned(path.id)
          const control = yield* Control
          const force = urlParams.force === "true" || urlParams.force === "1"
          const record = yield* control.wipe(path.id, { force }).pipe(Effect.catchAll(fromControl))
          return { id: record.id, status: record.status, message: "wiping: cloud resources and DNS records are being removed" }
        })
      )
      .handle("finalise", ({ path }) =>
        Effect.gen(function* () {
          yield* owned(path.id)
          const control = yield* Control
          const record = yield* control.finalise(path.id).pipe(Effect.catchAll(fromControl))
          return yield* stateOf(record)
        })
      )
      .handleRaw("events", ({ path, request }) =>
        Effect.gen(function* () {
          const record = yield* owned(path.id)
          const start = eventsStart(
            record,
            Option.getOrElse(lastEventId(request), () => 0)
          ).pipe(
            Effect.provideService(DeploymentRepo.DeploymentRepo, yield* DeploymentRepo.DeploymentRepo),
            Effect.provideService(Handover.Handover, yield* Handover.Handover)
          )
          const response = nodeResponseOf(request)
          const body = yield* fanout.events.open(record.id, start, response).pipe(Effect.catchAll(unavailable))
          yield* Telemetry.countSseUntilClosed("events", response)
          return sseResponse(body)
        })
      )
      .handle("jobs", ({ path }) =>
        Effect.gen(function* () {
          const record = yield* owned(path.id)
          const jobs = yield* JobRepo.JobRepo
          return { jobs: yield* jobs.list(record.id).pipe(Effect.catchAll(unavailable)) }
        })
      )
      .handle("job", ({ path }) =>
        Effect.gen(function* () {
          const record = yield* owned(path.id)
          const jobs = yield* JobRepo.JobRepo
          if (!isKey(path.jobName)) return yield* Effect.fail(NotFound.of("job not found"))
          const found = yield* jobs.get(record.id, path.jobName).pipe(Effect.catchAll(unavailable))
          return yield* Option.match(found, { onNone: () => Effect.fail(NotFound.of("job not found")), onSome: Effect.succeed })
        })
      )
      .handle("logs", ({ path, urlParams }) =>
        Effect.gen(function* () {
          const record = yield* owned(path.id)
          const jobs = yield* JobRepo.JobRepo
          if (!isKey(path.execId)) return yield* Effect.fail(NotFound.of("execution not found"))
          return yield* jobs
            .logs(record.id, path.execId, urlParams.fromLine ?? 1, urlParams.limit ?? 500)
            .pipe(
              Effect.catchAll((error): Effect.Effect<never, NotFound | Unavailable> =>
                error.reason === "NotFound" ? Effect.fail(NotFound.of("execution not found")) : unavailable(error)
              )
            )
        })
      )
      .handleRaw("getKubeconfig", ({ path, urlParams }) =>
        Effect.gen(function* () {
          const record = yield* owned(path.id)
          const kubeconfigs = yield* Kubeconfigs.Kubeconfigs
          const regions = Deployment.deriveRegions(record.spec, record.id)
          const regionKey = urlParams.region ?? regions[0]!.key
          // Only a region of the deployment names anything stored (a NUL or any other key never reaches the store).
          if (!regions.some((region) => region.key === regionKey))
            return yield* Effect.fail(NotFound.of("the deployment has no such region"))
          const found = yield* kubeconfigs.get(record.id, regionKey).pipe(Effect.catchAll(unavailable))
          if (Option.isNone(found)) return yield* Effect.fail(NotFound.of(`no kubeconfig for region ${regionKey} yet`))
          const name = `${Deployment.firstLabel(record.spec.sovereignFQDN)}${regionKey === regions[0]!.key ? "" : `-${regionKey}`}.yaml`
          return HttpServerResponse.text(Redacted.value(found.value), {
            contentType: "application/yaml",
            headers: { "content-disposition": `attachment; filename="${name}"`, "cache-control": "no-store" }
          })
        })
      )
      .handle("dnsPlan", ({ path }) => Effect.flatMap(owned(path.id), HttpDns.dnsPlan))
      .handle("flowSnapshot", ({ path }) =>
        Effect.gen(function* () {
          const record = yield* owned(path.id)
          const jobs = yield* JobRepo.JobRepo
          const current = yield* jobs.list(record.id).pipe(Effect.catchAll(unavailable))
          return FlowGraph.compose({
            deploymentId: record.id,
            regions: Deployment.deriveRegions(record.spec, record.id).map((region) => region.key),
            jobs: current,
            inFlight: DeploymentRepo.inFlight.includes(record.status)
          })
        })
      )
      .handleRaw("flowStream", ({ path, request }) =>
        Effect.gen(function* () {
          const record = yield* owned(path.id)
          const start = flowStart(record, lastEventId(request)).pipe(
            Effect.provideService(FlowEvents.FlowEvents, yield* FlowEvents.FlowEvents),
            Effect.provideService(JobRepo.JobRepo, yield* JobRepo.JobRepo)
          )
          const response = nodeResponseOf(request)
          const body = yield* fanout.flow.open(record.id, start, response).pipe(Effect.catchAll(unavailable))
          yield* Telemetry.countSseUntilClosed("flow", response)
          return sseResponse(body)
        })
      )
      .handle("inventory", () =>
        Effect.gen(function* () {
          const principal = yield* CurrentPrincipal
          if (principal.role !== "admin") return yield* Effect.fail(new Forbidden({ error: "forbidden", message: "admins only" }))
          const control = yield* Control
          if (Option.isNone(control.inventory)) return yield* Effect.fail(NotFound.of("the simulator is not running"))
          const resources = yield* control.inventory.value.pipe(Effect.catchAll(fromControl))
          return { resources: [...resources] }
        })
      )
  })
)

export const OperatorAuthLive = Layer.effect(
  OperatorAuth,
  Effect.map(Auth.Authenticator, (authenticator) => ({
    bearer: (token: Redacted.Redacted<string>) =>
      Option.match(authenticator.authenticate(token), {
        onNone: () =>
          Effect.fail(
            Unauthorized.of(Redacted.value(token).trim() === "" ? "a bearer token is required" : "the bearer token is not known")
          ),
        onSome: (principal) => Effect.succeed(principal)
      })
  }))
)

const notFoundRoute = HttpServerResponse.unsafeJson({ error: "not-found", message: "no such route" }, { status: 404 })
const internal = HttpServerResponse.unsafeJson({ error: "internal", message: "the server failed; see its log" }, { status: 500 })

/**
 * The shape of every answer the handlers did not produce: decode failures of paths and query strings
 * are the usual 400, unknown routes a JSON 404, and a defect is logged and answered with a bare 500.
 */
const ErrorShapeLive = HttpApiBuilder.middleware(SovereignApi, (app) =>
  Effect.catchAllCause(app, (cause) => {
    const failures = Chunk.toReadonlyArray(Cause.failures(cause)) as ReadonlyArray<unknown>
    const decode = failures.find(
      (failure): failure is HttpApiError.HttpApiDecodeError => failure instanceof HttpApiError.HttpApiDecodeError
    )
    if (decode !== undefined) {
      return Effect.fail(
        InvalidRequest.of(decode.issues.map((issue) => ({ path: issue.path.map(String).join("."), message: issue.message })))
      )
    }
    if (failures.some((failure) => Predicate.isTagged(failure, "RouteNotFound"))) return Effect.succeed(notFoundRoute)
    if (failures.length > 0 || Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
    return Effect.as(Effect.logError("a request failed", Cause.pretty(cause)), internal)
  })
)

export const ApiLive = HttpApiBuilder.api(SovereignApi).pipe(
  Layer.provide([HealthLive, PublicLive, PostbackLive, DeploymentsLive, ErrorShapeLive]),
  Layer.provide(OperatorAuthLive)
)

export const openApiJson = openApi
