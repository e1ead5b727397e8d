/**
 * kubeconfig → a verified Kubernetes client: the API server is always checked against the
 * kubeconfig's CA (with `tls-server-name` for a SAN mismatch), every request has a deadline, and
 * vendor errors become a `KubeError` that never carries kubeconfig contents.
 */
import { X509Certificate } from "node:crypto"
import * as https from "node:https"
import { createInterface } from "node:readline"
import * as k8s from "@kubernetes/client-node"
import { ClusterWatch, Kubeconfig } from "@sovereign/core"
import { Duration, Effect, Either, Redacted, Schedule, Schema, Stream } from "effect"
import * as Yaml from "js-yaml"
import type { Scope } from "effect"
import { Status, WatchEvent } from "./KubernetesSchema.js"

type ClusterError = ClusterWatch.ClusterError
const ClusterError = ClusterWatch.ClusterError

export const KubeErrorReason = Schema.Literal(
  "Untrusted",
  "Unreachable",
  "Timeout",
  "Unauthorized",
  "Forbidden",
  "NotFound",
  "AlreadyExists",
  "Conflict",
  "Gone",
  "Invalid",
  "ServerError",
  "Unknown"
)
export type KubeErrorReason = typeof KubeErrorReason.Type

/** A failed Kubernetes API call, classified; `status` is the HTTP status when there was a response. */
export class KubeError extends Schema.TaggedError<KubeError>()("KubeError", {
  reason: KubeErrorReason,
  message: Schema.String,
  status: Schema.optional(Schema.Number)
}) {
  get isRetryable(): boolean {
    return this.reason === "Unreachable" || this.reason === "Timeout" || this.reason === "ServerError" || this.reason === "Conflict"
  }
}

/** The port error for a client error (what an adapter reports at its edge). */
export const toClusterError = (error: KubeError): ClusterError =>
  new ClusterError({
    reason:
      error.reason === "Untrusted"
        ? "Untrusted"
        : error.reason === "Unreachable" || error.reason === "Timeout" || error.reason === "ServerError"
          ? "Unreachable"
          : error.reason === "Unauthorized" || error.reason === "Forbidden"
            ? "Forbidden"
            : "Unknown",
    message: error.message
  })

export interface KubeClientOptions {
  /** Deadline of every non-watch request (default 30 s). */
  readonly requestTimeout?: Duration.DurationInput
}

export interface ReachabilityOptions {
  /** Give up probing after this long and proceed anyway (default 10 min). */
  readonly budget?: Duration.DurationInput
  /** First pause after a failed probe; doubles per attempt (default 5 s). */
  readonly initialDelay?: Duration.DurationInput
  /** Longest pause between probes (default 60 s). */
  readonly maxDelay?: Duration.DurationInput
  /** Deadline of one probe (default 10 s). */
  readonly attemptTimeout?: Duration.DurationInput
}

export type QueryValue = string | number | boolean | undefined

export interface KubeClient {
  /** The API server URL (an address, not a secret). */
  readonly server: string
  readonly core: k8s.CoreV1Api
  readonly apps: k8s.AppsV1Api
  readonly custom: k8s.CustomObjectsApi
  readonly rbac: k8s.RbacAuthorizationV1Api
  /**
   * Runs one API call with the per-request deadline and the verified transport. Pass the given
   * options to the client method (combine with `k8s.setHeaderOptions(…, options)` for a patch type).
   */
  readonly request: <A>(operation: string, call: (options: k8s.ConfigurationOptions) => Promise<A>) => Effect.Effect<A, KubeError>
  /** `GET /version` within the deadline. */
  readonly probe: Effect.Effect<void, KubeError>
  /**
   * Probes with backoff until the server answers (true), the budget is spent (false), or the
   * server cannot be trusted or refuses our credentials (failure: retrying cannot fix it).
   */
  readonly awaitReachable: (options?: ReachabilityOptions) => Effect.Effect<boolean, KubeError>
  /** A raw watch stream (`?watch=true`) on `path`; ends when the server closes it. */
  readonly watch: (path: string, query: Readonly<Record<string, QueryValue>>) => Stream.Stream<WatchEvent, KubeError>
  /** Follows a container's log (`follow=true`), line by line, from `sinceTime` (RFC 3339) when given. */
  readonly followLog: (namespace: string, pod: string, container: string, sinceTime?: string) => Stream.Stream<string, KubeError>
}

// ---------------------------------------------------------------------------------------------
// kubeconfig validation

const invalid = (message: string) => new ClusterError({ reason: "InvalidKubeconfig", message })

interface Transport {
  readonly config: k8s.KubeConfig
  readonly server: string
  /** The only host and port any connection of this client may reach. */
  readonly origin: { readonly host: string; readonly port: number }
  readonly agentOptions: https.AgentOptions
}

/** The refusal as an adapter error: reason and place, never a value of the document. */
const refusedMessage = (refused: Kubeconfig.KubeconfigRefused): string => {
  const where = refused.path === undefined ? "" : ` (${refused.path})`
  switch (refused.reason) {
    case "ForbiddenField":
    case "UnknownField":
      return refused.message
    default:
      return refused.path?.endsWith("certificate-authority-data") === true
        ? `the kubeconfig has no certificate authority Sovereign can use (certificate-authority-data)${where}; Sovereign cannot verify the API server without it`
        : `the kubeconfig is not one Sovereign accepts${where}: one cluster with an https:// server and certificate-authority-data, one user with a token or client-certificate-data and client-key-data, one context`
  }
}

/**
 * Parses and checks the kubeconfig with core's Schema (never the client's own loader, which reads
 * files named by the document and runs exec plugins), then hands the client a configuration built
 * from inline data only. The contents never reach an error message.
 */
const loadKubeconfig = (kubeconfig: Redacted.Redacted<string>): Effect.Effect<Transport, ClusterError> =>
  Effect.gen(function* () {
    const document = yield* Effect.try({
      try: () => Yaml.load(Redacted.value(kubeconfig), { schema: Yaml.JSON_SCHEMA, json: false }),
      catch: () => invalid("the kubeconfig is not a valid kubeconfig document")
    })
    const decoded = Kubeconfig.decode(document)
    if (Either.isLeft(decoded)) return yield* invalid(refusedMessage(decoded.left))
    const accepted = decoded.right
    const ca = Buffer.from(accepted.cluster.certificateAuthorityData, "base64")
    const authority = yield* Effect.try({
      try: () => new X509Certificate(ca),
      catch: () => invalid("the kubeconfig's certificate authority is not a PEM certificate")
    })
    if (!authority.ca) return yield* invalid("the kubeconfig's certificate authority is not a CA certificate (basicConstraints CA:TRUE)")
    const credential = accepted.user.credential
    const cluster: k8s.Cluster = {
      name: accepted.cluster.name,
      server: accepted.cluster.server,
      caData: accepted.cluster.certificateAuthorityData,
      skipTLSVerify: false,
      ...(accepted.cluster.tlsServerName === undefined ? {} : { tlsServerName: accepted.cluster.tlsServerName })
    }
    const user: k8s.User =
      credential._tag === "Token"
        ? { name: accepted.user.name, token: Redacted.value(credential.token) }
        : { name: accepted.user.name, certData: credential.certificateData, keyData: Redacted.value(credential.keyData) }
    const context: k8s.Context = {
      name: accepted.context.name,
      cluster: cluster.name,
      user: user.name,
      ...(accepted.context.namespace === undefined ? {} : { namespace: accepted.context.namespace })
    }
    const config = new k8s.KubeConfig()
    config.loadFromOptions({ clusters: [cluster], users: [user], contexts: [context], currentContext: context.name })
    const server = new URL(accepted.cluster.server)
    return {
      config,
      server: accepted.cluster.server,
      origin: { host: server.hostname.replace(/^\[|\]$/g, "").toLowerCase(), port: Number(server.port === "" ? 443 : server.port) },
      agentOptions: {
        ca,
        ...(credential._tag === "ClientCertificate"
          ? { cert: Buffer.from(credential.certificateData, "base64"), key: Buffer.from(Redacted.value(credential.keyData), "base64") }
          : {}),
        ...(accepted.cluster.tlsServerName === undefined ? {} : { servername: accepted.cluster.tlsServerName }),
        // Explicit, so that neither the environment nor a library default can turn verification off.
        rejectUnauthorized: true
      }
    }
  })

/**
 * An agent that connects to the kubeconfig's API server and nowhere else: a redirect to another host
 * (which the client's fetch would follow, with our credentials) fails to connect instead.
 */
export class PinnedAgent extends https.Agent {
  constructor(
    options: https.AgentOptions,
    private readonly origin: { readonly host: string; readonly port: number }
  ) {
    super(options)
  }
  override createConnection(options: unknown, callback?: unknown): ReturnType<https.Agent["createConnection"]> {
    const target = options as { host?: string; hostname?: string; port?: number | string }
    const host = String(target.host ?? target.hostname ?? "")
      .replace(/^\[|\]$/g, "")
      .toLowerCase()
    const port = Number(target.port ?? 443)
    if (host !== this.origin.host || port !== this.origin.port) {
      const error = Object.assign(new Error(`refused to connect to ${host}:${port}: only the kubeconfig's API server is reached`), {
        code: "ERR_SOVEREIGN_OTHER_HOST"
      })
      throw error
    }
    return (
      https.Agent.prototype as unknown as { createConnection: (...args: Array<unknown>) => ReturnType<https.Agent["createConnection"]> }
    ).createConnection.call(this, options, callback)
  }
}

// ---------------------------------------------------------------------------------------------
// error mapping

const untrustedCodes = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "INVALID_CA",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "HOSTNAME_MISMATCH"
])

const errorCode = (error: unknown): string | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string") return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

const statusOf = (body: unknown): Status | undefined => {
  const parsed = typeof body === "string" ? safeJson(body) : body
  return Schema.decodeUnknownOption(Status)(parsed).pipe((option) => (option._tag === "Some" ? option.value : undefined))
}

const safeJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** Classifies an HTTP error status (with its `Status` body when there is one). */
export const fromStatus = (operation: string, code: number, status: Status | undefined): KubeError => {
  const reason: KubeErrorReason =
    code === 401
      ? "Unauthorized"
      : code === 403
        ? "Forbidden"
        : code === 404
          ? "NotFound"
          : code === 409
            ? status?.reason === "AlreadyExists"
              ? "AlreadyExists"
              : "Conflict"
            : code === 410
              ? "Gone"
              : code === 400 || code === 415 || code === 422
                ? "Invalid"
                : code === 429 || code >= 500
                  ? "ServerError"
                  : "Unknown"
  const detail = status?.message === undefined ? "" : `: ${status.message}`
  return new KubeError({ reason, status: code, message: `${operation} failed with HTTP ${code}${detail}` })
}

/** Maps anything the client throws to a KubeError; messages are ours, never the client's (they carry URLs and headers). */
export const fromUnknown = (operation: string, error: unknown): KubeError => {
  if (error instanceof KubeError) return error
  if (error instanceof k8s.ApiException) return fromStatus(operation, error.code, statusOf(error.body))
  const code = errorCode(error)
  if (code === "ERR_SOVEREIGN_OTHER_HOST") {
    return new KubeError({
      reason: "Untrusted",
      message: `${operation} refused: the answer redirected to another host; Sovereign only talks to the kubeconfig's API server`
    })
  }
  if (code !== undefined && untrustedCodes.has(code)) {
    return new KubeError({
      reason: "Untrusted",
      message:
        code === "ERR_TLS_CERT_ALTNAME_INVALID" || code === "HOSTNAME_MISMATCH"
          ? `${operation} refused: the API server's certificate does not name the server address; set tls-server-name in the kubeconfig to a name the certificate carries (${code})`
          : `${operation} refused: the API server's certificate is not trusted by the kubeconfig's certificate authority (${code})`
    })
  }
  const statusCode = typeof error === "object" && error !== null ? (error as { statusCode?: unknown }).statusCode : undefined
  if (typeof statusCode === "number") return fromStatus(operation, statusCode, undefined)
  if (error instanceof Error && (error.name === "AbortError" || code === "ABORT_ERR")) {
    return new KubeError({ reason: "Timeout", message: `${operation} was aborted` })
  }
  if (code !== undefined && /^(E[A-Z]+|ERR_SOCKET|ERR_STREAM|ERR_HTTP|ERR_SSL|ERR_TLS)/.test(code)) {
    return new KubeError({ reason: "Unreachable", message: `${operation} failed: the API server could not be reached (${code})` })
  }
  return new KubeError({
    reason: "Unreachable",
    message: `${operation} failed: ${error instanceof Error ? error.name : "unknown error"}${code === undefined ? "" : ` (${code})`}`
  })
}

// ---------------------------------------------------------------------------------------------
// the client

/** The verified transport for every generated-client request, plus an abort signal. */
const transportMiddleware = (agent: https.Agent, signal: AbortSignal): k8s.ObservableMiddleware => ({
  pre: (context) => {
    context.setAgent(agent)
    context.setSignal(signal)
    return new k8s.Observable(Promise.resolve(context))
  },
  post: (response) => new k8s.Observable(Promise.resolve(response))
})

/**
 * The configuration every client of this module is built from: whatever path a request takes (the
 * generated clients' own authentication, the `Watch`'s fetch options), it goes out through our
 * pinned, verifying agent, never through one the library builds from the kubeconfig.
 */
class VerifiedKubeConfig extends k8s.KubeConfig {
  constructor(
    source: k8s.KubeConfig,
    private readonly agent: https.Agent
  ) {
    super()
    this.loadFromOptions({
      clusters: source.clusters,
      users: source.users,
      contexts: source.contexts,
      currentContext: source.currentContext
    })
  }
  override async applyToFetchOptions(options: https.RequestOptions): ReturnType<k8s.KubeConfig["applyToFetchOptions"]> {
    const init = await super.applyToFetchOptions(options)
    return { ...init, agent: this.agent }
  }
  override async applySecurityAuthentication(context: Parameters<k8s.KubeConfig["applySecurityAuthentication"]>[0]): Promise<void> {
    await super.applySecurityAuthentication(context)
    context.setAgent(this.agent)
  }
}

const isFatal = (error: KubeError): boolean =>
  error.reason === "Untrusted" || error.reason === "Unauthorized" || error.reason === "Forbidden"

/** A verified client for the kubeconfig's current context; its connections close with the scope. */
export const make = (
  kubeconfig: Redacted.Redacted<string>,
  options: KubeClientOptions = {}
): Effect.Effect<KubeClient, ClusterError, Scope.Scope> =>
  Effect.gen(function* () {
    const transport = yield* loadKubeconfig(kubeconfig)
    const requestTimeout = Duration.decode(options.requestTimeout ?? Duration.seconds(30))
    const agent = yield* Effect.acquireRelease(
      Effect.sync(() => new PinnedAgent({ ...transport.agentOptions, keepAlive: true }, transport.origin)),
      (agent) => Effect.sync(() => agent.destroy())
    )
    const config = new VerifiedKubeConfig(transport.config, agent)

    const request = <A>(operation: string, call: (options: k8s.ConfigurationOptions) => Promise<A>): Effect.Effect<A, KubeError> =>
      Effect.tryPromise({
        try: (signal) => call({ middleware: [transportMiddleware(agent, signal)], middlewareMergeStrategy: "append" }),
        catch: (error) => fromUnknown(operation, error)
      }).pipe(
        Effect.timeoutFail({
          duration: requestTimeout,
          onTimeout: () =>
            new KubeError({
              reason: "Timeout",
              message: `${operation}: no answer from the API server within ${Duration.format(requestTimeout)}`
            })
        })
      )

    const version = config.makeApiClient(k8s.VersionApi)
    const probe = (timeout: Duration.Duration) =>
      Effect.tryPromise({
        // The object API takes its parameters first and the options second.
        try: (signal) => version.getCode({}, { middleware: [transportMiddleware(agent, signal)], middlewareMergeStrategy: "append" }),
        catch: (error) => fromUnknown("GET /version", error)
      }).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new KubeError({ reason: "Timeout", message: `GET /version: no answer within ${Duration.format(timeout)}` })
        }),
        Effect.asVoid
      )

    const awaitReachable = (reachability: ReachabilityOptions = {}): Effect.Effect<boolean, KubeError> => {
      const budget = Duration.decode(reachability.budget ?? Duration.minutes(10))
      const schedule = Schedule.exponential(reachability.initialDelay ?? Duration.seconds(5)).pipe(
        Schedule.union(Schedule.spaced(reachability.maxDelay ?? Duration.seconds(60))),
        Schedule.upTo(budget)
      )
      let attempt = 0
      return probe(Duration.decode(reachability.attemptTimeout ?? Duration.seconds(10))).pipe(
        Effect.tapError((error) =>
          isFatal(error)
            ? Effect.void
            : Effect.logWarning(`API server not reachable yet (attempt ${++attempt}): ${error.message}; retrying with backoff`)
        ),
        Effect.retry({ schedule, while: (error) => !isFatal(error) }),
        Effect.as(true),
        Effect.tap(() => (attempt > 0 ? Effect.logInfo(`API server reachable on attempt ${attempt + 1}`) : Effect.void)),
        Effect.catchIf(
          (error) => !isFatal(error),
          (error) =>
            Effect.logWarning(`API server still unreachable after ${Duration.format(budget)} (${error.message}); proceeding`).pipe(
              Effect.as(false)
            )
        )
      )
    }

    const watch = (path: string, query: Readonly<Record<string, QueryValue>>): Stream.Stream<WatchEvent, KubeError> =>
      Stream.asyncScoped<WatchEvent, KubeError>(
        (emit) =>
          Effect.gen(function* () {
            // One agent per watch: destroying it is the only way to abort a watch whose response never started.
            const watchAgent = yield* Effect.acquireRelease(
              Effect.sync(() => new PinnedAgent({ ...transport.agentOptions, keepAlive: false }, transport.origin)),
              (watchAgent) => Effect.sync(() => watchAgent.destroy())
            )
            const watcher = new k8s.Watch(new VerifiedKubeConfig(config, watchAgent))
            const decode = Schema.decodeUnknownEither(WatchEvent)
            const controller = yield* Effect.tryPromise({
              try: () =>
                watcher.watch(
                  path,
                  query,
                  (type, object) => {
                    const event = decode({ type, object })
                    if (event._tag === "Right") void emit.single(event.right)
                  },
                  (error: unknown) => {
                    if (error === null || error === undefined) void emit.end()
                    else void emit.fail(fromUnknown(`watch ${path}`, error))
                  }
                ),
              catch: (error) => fromUnknown(`watch ${path}`, error)
            }).pipe(
              // The response must start within the request deadline; after that a watch may stay quiet.
              Effect.timeoutFail({
                duration: requestTimeout,
                onTimeout: () =>
                  new KubeError({ reason: "Timeout", message: `watch ${path}: no response within ${Duration.format(requestTimeout)}` })
              })
            )
            yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
          }),
        "unbounded"
      )

    const followLog = (namespace: string, pod: string, container: string, sinceTime?: string): Stream.Stream<string, KubeError> =>
      Stream.asyncScoped<string, KubeError>(
        (emit) =>
          Effect.gen(function* () {
            const operation = `follow the log of ${namespace}/${pod}`
            const logAgent = yield* Effect.acquireRelease(
              Effect.sync(() => new PinnedAgent({ ...transport.agentOptions, keepAlive: false }, transport.origin)),
              (logAgent) => Effect.sync(() => logAgent.destroy())
            )
            const init = yield* Effect.tryPromise({
              try: () => config.applyToFetchOptions({}),
              catch: (error) => fromUnknown(operation, error)
            })
            const headers: Record<string, string> = {}
            const source = init.headers as unknown as
              { readonly forEach: (visit: (value: string, key: string) => void) => void } | undefined
            source?.forEach((value, key) => void (headers[key] = value))
            const url = new URL(
              `${transport.server.replace(/\/$/, "")}/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log`
            )
            url.searchParams.set("container", container)
            url.searchParams.set("follow", "true")
            if (sinceTime !== undefined) url.searchParams.set("sinceTime", sinceTime)
            const request = https.get(url, { agent: logAgent, headers }, (response) => {
              // A reset mid-stream ends the log; the caller decides whether to follow again.
              response.on("error", () => void emit.end())
              if (response.statusCode !== 200) {
                const chunks: Array<Buffer> = []
                response.on("data", (chunk: Buffer) => chunks.push(chunk))
                response.on(
                  "end",
                  () => void emit.fail(fromStatus(operation, response.statusCode ?? 500, statusOf(Buffer.concat(chunks).toString("utf8"))))
                )
                return
              }
              const lines = createInterface({ input: response, crlfDelay: Infinity })
              lines.on("line", (line) => void emit.single(line))
              // readline re-emits the response's errors; without a listener they would be uncaught.
              lines.on("error", () => void emit.end())
              response.on("close", () => void emit.end())
            })
            request.on("error", (error) => void emit.fail(fromUnknown(operation, error)))
            yield* Effect.addFinalizer(() => Effect.sync(() => request.destroy()))
          }),
        "unbounded"
      )

    return {
      server: transport.server,
      core: config.makeApiClient(k8s.CoreV1Api),
      apps: config.makeApiClient(k8s.AppsV1Api),
      custom: config.makeApiClient(k8s.CustomObjectsApi),
      rbac: config.makeApiClient(k8s.RbacAuthorizationV1Api),
      request,
      probe: probe(requestTimeout),
      awaitReachable,
      watch,
      followLog
    } satisfies KubeClient
  })
