/**
 * The HTTP API of SPEC §5 as one `HttpApi` definition: the same value serves requests and generates
 * `/api/v1/openapi.json`. Errors are JSON `{"error": "<code>", ...}`.
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity, OpenApi } from "@effect/platform"
import { Deployment, DeploymentRepo, DnsPublish, FlowMessage, Job, JobRepo, Time } from "@sovereign/core"
import { Context, JSONSchema, Schema } from "effect"

// ---------------------------------------------------------------------------------------------
// Errors: one class per status, each with a stable `error` code

export const Issue = Schema.Struct({ path: Schema.String, message: Schema.String })

export class InvalidRequest extends Schema.Class<InvalidRequest>("InvalidRequest")(
  { error: Schema.Literal("invalid-request"), issues: Schema.Array(Issue) },
  HttpApiSchema.annotations({ status: 400, description: "The request is malformed or fails validation" })
) {
  static of(issues: ReadonlyArray<{ readonly path: string; readonly message: string }>) {
    return new InvalidRequest({ error: "invalid-request", issues })
  }
}

export class Unauthorized extends Schema.Class<Unauthorized>("Unauthorized")(
  { error: Schema.Literal("unauthorized"), message: Schema.String },
  HttpApiSchema.annotations({ status: 401, description: "No or an unknown bearer token" })
) {
  static of(message: string) {
    return new Unauthorized({ error: "unauthorized", message })
  }
}

// Each class has its own set of codes: error bodies are matched to their status by shape.
export class Forbidden extends Schema.Class<Forbidden>("Forbidden")(
  { error: Schema.Literal("forbidden", "invalid-bearer", "already-set", "closed"), message: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

export class NotFound extends Schema.Class<NotFound>("NotFound")(
  { error: Schema.Literal("not-found"), message: Schema.String },
  HttpApiSchema.annotations({ status: 404, description: "Unknown, or not yours: the same answer either way" })
) {
  static readonly deployment = () => new NotFound({ error: "not-found", message: "deployment not found" })
  static of(message: string) {
    return new NotFound({ error: "not-found", message })
  }
}

export class Conflict extends Schema.Class<Conflict>("Conflict")(
  {
    error: Schema.Literal("conflict", "in-flight", "min-life", "dns-disabled", "no-load-balancer", "not-open"),
    message: Schema.String,
    deploymentId: Schema.optional(Schema.String),
    status: Schema.optional(Schema.String),
    retryAfterSec: Schema.optional(Schema.Number)
  },
  HttpApiSchema.annotations({ status: 409 })
) {}

export class PayloadTooLarge extends Schema.Class<PayloadTooLarge>("PayloadTooLarge")(
  { error: Schema.Literal("payload-too-large"), message: Schema.String },
  HttpApiSchema.annotations({ status: 413 })
) {}

export class UnsupportedMediaType extends Schema.Class<UnsupportedMediaType>("UnsupportedMediaType")(
  { error: Schema.Literal("unsupported-media-type"), message: Schema.String },
  HttpApiSchema.annotations({ status: 415 })
) {}

export class Unprocessable extends Schema.Class<Unprocessable>("Unprocessable")(
  { error: Schema.Literal("adopted", "empty-body"), message: Schema.String },
  HttpApiSchema.annotations({ status: 422 })
) {}

/** A kubeconfig call-back refused by the door (issue 16): nothing was stored, the region's single use is not spent. */
export class KubeconfigRejected extends Schema.Class<KubeconfigRejected>("KubeconfigRejected")(
  {
    error: Schema.Literal("invalid-kubeconfig", "forbidden-field", "unknown-field", "server-not-allowed", "untrusted-authority"),
    message: Schema.String,
    /** The offending field's own name (`token-file`, `server`). */
    field: Schema.optional(Schema.String),
    /** Where it is in the document (`users[0].user.token-file`). */
    path: Schema.optional(Schema.String),
    /** `server-not-allowed`: the addresses the region's API server may have. */
    allowed: Schema.optional(Schema.Array(Schema.String))
  },
  HttpApiSchema.annotations({
    status: 422,
    description:
      "The kubeconfig is refused: `forbidden-field` (a file reference, exec, auth-provider, proxy-url, insecure-skip-tls-verify, username/password or impersonation; `field` names it), `unknown-field`, `invalid-kubeconfig` (not one cluster, one user and one context of inline material), `untrusted-authority` (the CA is not an X.509 CA certificate) or `server-not-allowed` (`allowed` lists the region's control-plane and load-balancer addresses)"
  })
) {}

export class TooManyRequests extends Schema.Class<TooManyRequests>("TooManyRequests")(
  { error: Schema.Literal("too-many-failures", "too-many-uploads"), message: Schema.String, retryAfterSec: Schema.optional(Schema.Number) },
  HttpApiSchema.annotations({
    status: 429,
    description:
      "Too many failed authentications from this client (wait `retryAfterSec`, also in Retry-After), or too many request bodies in flight from it"
  })
) {}

export class Unavailable extends Schema.Class<Unavailable>("Unavailable")(
  { error: Schema.Literal("unavailable", "not-ready"), message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

// ---------------------------------------------------------------------------------------------
// Security

export const Role = Schema.Literal("admin", "operator")

export class CurrentPrincipal extends Context.Tag("@sovereign/server/CurrentPrincipal")<
  CurrentPrincipal,
  { readonly email: string; readonly role: typeof Role.Type }
>() {}

export class OperatorAuth extends HttpApiMiddleware.Tag<OperatorAuth>()("OperatorAuth", {
  failure: Unauthorized,
  provides: CurrentPrincipal,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

// ---------------------------------------------------------------------------------------------
// Payloads and answers

const Id = Schema.Struct({ id: Schema.String })

/** The wire request, documented from core's schema; decoded by the handler so unknown fields are a 400. */
export const DeploymentRequestBody = Schema.Unknown.annotations({
  identifier: "DeploymentRequest",
  jsonSchema: JSONSchema.make(Schema.encodedSchema(Deployment.DeploymentRequest))
})

export const Links = Schema.Struct({
  self: Schema.String,
  events: Schema.String,
  jobs: Schema.String,
  flow: Schema.String
})

export const Created = Schema.Struct({ id: Schema.String, status: DeploymentRepo.Status, links: Links })

export const DeploymentSummary = Schema.Struct({
  id: Schema.String,
  status: DeploymentRepo.Status,
  sovereignFQDN: Schema.String,
  owner: Schema.String,
  regions: Schema.Array(Schema.String),
  createdAt: Time.UnixMillis,
  updatedAt: Time.UnixMillis,
  finishedAt: Schema.optional(Time.UnixMillis),
  error: Schema.optional(Schema.String)
})

export const DeploymentState = Schema.Struct({
  id: Schema.String,
  status: DeploymentRepo.Status,
  owner: Schema.String,
  request: Deployment.PublicSpec,
  results: DeploymentRepo.DeploymentResults,
  error: Schema.optional(Schema.String),
  createdAt: Time.UnixMillis,
  updatedAt: Time.UnixMillis,
  phase1StartedAt: Schema.optional(Time.UnixMillis),
  finishedAt: Schema.optional(Time.UnixMillis),
  adoptedAt: Schema.optional(Time.UnixMillis),
  /** Minted afresh on every read while the deployment is ready (the token lives 5 minutes). */
  handoverURL: Schema.optional(Schema.String),
  links: Links
})

export const Accepted = Schema.Struct({ id: Schema.String, status: DeploymentRepo.Status, message: Schema.String })

export const Deleted = Schema.Struct({ id: Schema.String, deleted: Schema.Boolean, mode: Schema.Literal("record-only") })

export const InFlightCount = Schema.Struct({ count: Schema.Number, ids: Schema.Array(Schema.String) })

export const Jwks = Schema.Struct({
  keys: Schema.Array(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})

export const Health = Schema.Struct({ status: Schema.Literal("ok") })

export const Inventory = Schema.Struct({
  resources: Schema.Array(
    Schema.Struct({
      kind: Schema.String,
      name: Schema.String,
      region: Schema.String,
      labels: Schema.Record({ key: Schema.String, value: Schema.String })
    })
  )
})

const sse = HttpApiSchema.withEncoding(Schema.String, { kind: "Text", contentType: "text/event-stream" })
const yaml = HttpApiSchema.withEncoding(Schema.String, { kind: "Text", contentType: "application/yaml" })

// ---------------------------------------------------------------------------------------------
// Groups

/** `?verbose` (any value, or none) answers in Kubernetes' text form instead of JSON. */
const ProbeParams = Schema.Struct({ verbose: Schema.optional(Schema.String) })

const probeDescription = (what: string) =>
  `${what} 200 \`{"status":"ok"}\`, or 503 \`not-ready\` naming the failing checks. With \`?verbose\`: text/plain, one line per check (\`[+]store ok\`, \`[-]store failed: <reason>\`) and \`<probe> check passed|failed\`, as Kubernetes' own endpoints answer.`

export class HealthGroup extends HttpApiGroup.make("health", { topLevel: true })
  .annotate(OpenApi.Description, "Probes for Kubernetes and load balancers; no token.")
  .add(
    HttpApiEndpoint.get("livez", "/livez")
      .setUrlParams(ProbeParams)
      .addSuccess(Health)
      .addError(Unavailable)
      .annotate(OpenApi.Summary, "Liveness probe")
      .annotate(OpenApi.Description, probeDescription("The process serves requests."))
  )
  .add(
    HttpApiEndpoint.get("readyz", "/readyz")
      .setUrlParams(ProbeParams)
      .addSuccess(Health)
      .addError(Unavailable)
      .annotate(OpenApi.Summary, "Readiness probe")
      .annotate(
        OpenApi.Description,
        probeDescription(
          "The store answers, its migrations are applied, unfinished deployments are resumed (and, with replicas, leases renew)."
        )
      )
  )
  .add(
    HttpApiEndpoint.get("healthz", "/healthz")
      .setUrlParams(ProbeParams)
      .addSuccess(Health)
      .addError(Unavailable)
      .annotate(OpenApi.Summary, "Liveness probe (alias of /livez)")
      .annotate(OpenApi.Description, probeDescription("Kept for existing probes: the same checks as /livez."))
  ) {}

export class PublicGroup extends HttpApiGroup.make("public")
  .annotate(OpenApi.Description, "Public answers: the Phase-0 load and the handover token keys; no token.")
  .add(
    HttpApiEndpoint.get("inFlightCount", "/deployments/in-flight-count")
      .annotate(OpenApi.Summary, "Count deployments in Phase 0 (public)")
      .addSuccess(InFlightCount)
  )
  .add(
    HttpApiEndpoint.get("jwks", "/handover/jwks.json").annotate(OpenApi.Summary, "Public keys of handover tokens (JWKS)").addSuccess(Jwks)
  )
  .addError(Unavailable)
  .prefix("/api/v1") {}

export class PostbackGroup extends HttpApiGroup.make("postback")
  .annotate(OpenApi.Description, "Call-backs from the control planes a deployment creates; the region's postback token.")
  .add(
    HttpApiEndpoint.put("putKubeconfig", "/deployments/:id/kubeconfig")
      .annotate(OpenApi.Summary, "Deliver a region's kubeconfig (call-back)")
      // The region's postback token (or the owner's operator token) is checked by the door itself, as a bearer token.
      .annotate(OpenApi.Override, { security: [{ bearer: [] }] })
      .setPath(Id)
      .setUrlParams(Schema.Struct({ region: Schema.optional(Schema.String) }))
      .setPayload(HttpApiSchema.withEncoding(Schema.String, { kind: "Text", contentType: "application/yaml" }))
      .addSuccess(HttpApiSchema.NoContent)
      .addError(Unauthorized)
      .addError(Forbidden)
      .addError(NotFound)
      .addError(Conflict)
      .addError(PayloadTooLarge)
      .addError(Unprocessable)
      .addError(KubeconfigRejected)
      .addError(Unavailable)
      .annotate(
        OpenApi.Description,
        "Cloud-init of a region's control plane delivers its kubeconfig with the region's postback token (Bearer); the deployment's owner (an operator token) may replace it through the same checks. " +
          "The body is YAML: one cluster, one user, one context, inline material only; the server must be one of the region's control-plane or load-balancer addresses. " +
          "204 stored (normalised); 401 no token; 403 wrong token, already delivered, or the deployment is wiping, wiped or adopted; 404 unknown deployment or region; " +
          "409 `not-open` (the region's control plane does not exist yet, or its Phase 0 ended: a retry re-opens it); 413 over 1 MiB; 422 empty (`empty-body`) or refused (see KubeconfigRejected); nothing refused is stored."
      )
  )
  .prefix("/api/v1") {}

export class DeploymentsGroup extends HttpApiGroup.make("deployments")
  .annotate(OpenApi.Description, "Deployments, their jobs, events, flow graph and DNS plan; an operator's bearer token.")
  .add(
    HttpApiEndpoint.post("create", "/deployments")
      .annotate(OpenApi.Summary, "Submit a deployment")
      .setPayload(DeploymentRequestBody)
      .addSuccess(Created, { status: 201 })
      .addError(InvalidRequest)
      .addError(Conflict)
      .addError(PayloadTooLarge)
      .addError(UnsupportedMediaType)
  )
  .add(
    HttpApiEndpoint.get("list", "/deployments")
      .annotate(OpenApi.Summary, "List deployments")
      .addSuccess(Schema.Struct({ deployments: Schema.Array(DeploymentSummary) }))
  )
  .add(
    HttpApiEndpoint.get("get", "/deployments/:id")
      .annotate(OpenApi.Summary, "Show a deployment")
      .setPath(Id)
      .addSuccess(DeploymentState)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.del("remove", "/deployments/:id")
      .annotate(OpenApi.Summary, "Delete a deployment's record")
      .setPath(Id)
      .addSuccess(Deleted)
      .addError(NotFound)
      .addError(Conflict)
      .addError(Unprocessable)
  )
  .add(
    HttpApiEndpoint.post("retry", "/deployments/:id/retry")
      .annotate(OpenApi.Summary, "Retry a failed deployment")
      .setPath(Id)
      .addSuccess(Accepted, { status: 202 })
      .addError(NotFound)
      .addError(Conflict)
  )
  .add(
    HttpApiEndpoint.post("wipe", "/deployments/:id/wipe")
      .annotate(OpenApi.Summary, "Wipe a deployment")
      .setPath(Id)
      .setUrlParams(Schema.Struct({ force: Schema.optional(Schema.Literal("true", "false", "1", "0")) }))
      .addSuccess(Accepted, { status: 202 })
      .addError(NotFound)
      .addError(Conflict)
      .addError(Unprocessable)
  )
  .add(
    HttpApiEndpoint.post("finalise", "/deployments/:id/finalise")
      .annotate(OpenApi.Summary, "Finalise a handed-over deployment")
      .setPath(Id)
      .addSuccess(DeploymentState)
      .addError(NotFound)
      .addError(Conflict)
  )
  .add(
    HttpApiEndpoint.get("events", "/deployments/:id/events")
      .annotate(OpenApi.Summary, "Follow a deployment's events (SSE)")
      .setPath(Id)
      .addSuccess(sse)
      .addError(NotFound)
      .annotate(OpenApi.Description, "Server-sent events: replay after Last-Event-ID, then live; `handover-ready`; ends with `done`.")
  )
  .add(
    HttpApiEndpoint.get("jobs", "/deployments/:id/jobs")
      .annotate(OpenApi.Summary, "List a deployment's jobs")
      .setPath(Id)
      .addSuccess(Schema.Struct({ jobs: Schema.Array(Job.Job) }))
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.get("job", "/deployments/:id/jobs/:jobName")
      .annotate(OpenApi.Summary, "Show a job with its executions")
      .setPath(Schema.Struct({ id: Schema.String, jobName: Schema.String }))
      .addSuccess(JobRepo.JobWithExecutions)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.get("logs", "/deployments/:id/executions/:execId/logs")
      .annotate(OpenApi.Summary, "Read an execution's log lines")
      .setPath(Schema.Struct({ id: Schema.String, execId: Schema.String }))
      .setUrlParams(
        Schema.Struct({
          fromLine: Schema.optional(Schema.NumberFromString.pipe(Schema.int())),
          limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int()))
        })
      )
      .addSuccess(JobRepo.LogPage)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.get("getKubeconfig", "/deployments/:id/kubeconfig")
      .annotate(OpenApi.Summary, "Download a region's kubeconfig")
      .setPath(Id)
      .setUrlParams(Schema.Struct({ region: Schema.optional(Schema.String) }))
      .addSuccess(yaml)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.get("dnsPlan", "/deployments/:id/dns/plan")
      .annotate(OpenApi.Summary, "Show the DNS dry run")
      .setPath(Id)
      .addSuccess(DnsPublish.PublishResult)
      .addError(NotFound)
      .addError(Conflict)
      .addError(Unavailable)
      .annotate(
        OpenApi.Description,
        "The DNS dry run (SPEC 2.7): per zone, the record sets publishing would create, update and delete now, and the warnings (records of others, conflicts, wildcards, missing zones). Changes nothing. 409 `no-load-balancer` before Phase 0 has finished, `dns-disabled` with SOVEREIGN_DNS=none."
      )
  )
  .add(
    HttpApiEndpoint.get("flowSnapshot", "/flows/:id/snapshot")
      .annotate(OpenApi.Summary, "Read the flow graph snapshot")
      .setPath(Id)
      .addSuccess(FlowMessage.Snapshot)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.get("flowStream", "/flows/:id/stream")
      .annotate(OpenApi.Summary, "Follow the flow graph (SSE)")
      .setPath(Id)
      .addSuccess(sse)
      .addError(NotFound)
      .annotate(
        OpenApi.Description,
        "Server-sent events: `snapshot` on connect, then FlowMessage deltas with increasing ids; Last-Event-ID resumes; `heartbeat` every 15 s."
      )
  )
  .add(
    HttpApiEndpoint.get("inventory", "/simulator/inventory")
      .annotate(OpenApi.Summary, "List simulated cloud resources (admin)")
      .addSuccess(Inventory)
      .addError(Forbidden)
      .addError(NotFound)
      .annotate(OpenApi.Description, "Admin, simulator mode only: every simulated cloud resource.")
  )
  .addError(InvalidRequest)
  .addError(NotFound)
  .addError(Conflict)
  .addError(Unprocessable)
  .addError(Unavailable)
  .middleware(OperatorAuth)
  .prefix("/api/v1") {}

/**
 * Effect's JSON Schema gives every `Schema.Unknown` the same `$id` ("/schemas/unknown"); inlined at
 * several places of one document (the flow snapshot's `meta` values) that is a duplicate `$id`, which
 * a strict OpenAPI 3.1 validator refuses. The `$id`s of such built-in schemas name nothing: drop them.
 */
export const withoutDuplicateIds = (spec: Record<string, any>): Record<string, any> => {
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip)
    if (value === null || typeof value !== "object") return value
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key, inner]) => !(key === "$id" && typeof inner === "string" && inner.startsWith("/schemas/")))
        .map(([key, inner]) => [key, strip(inner)])
    )
  }
  return strip(spec) as Record<string, any>
}

export class SovereignApi extends HttpApi.make("sovereign")
  .add(HealthGroup)
  .add(PublicGroup)
  .add(PostbackGroup)
  .add(DeploymentsGroup)
  .addError(InvalidRequest)
  .addError(TooManyRequests)
  .annotate(OpenApi.Title, "Sovereign")
  .annotate(OpenApi.Version, "1")
  .annotate(OpenApi.Description, "Builds sovereign multi-region Kubernetes platforms, follows them to ready and hands them over (SPEC §5).")
  .annotate(OpenApi.License, { name: "Apache-2.0", url: "https://www.apache.org/licenses/LICENSE-2.0" })
  .annotate(OpenApi.Servers, [
    {
      url: "{scheme}://{authority}",
      description: "A Sovereign server (SOVEREIGN_PUBLIC_URL); `npm start` listens on http://127.0.0.1:8080",
      variables: {
        scheme: { default: "http", enum: ["http", "https"], description: "https behind a TLS-terminating proxy" },
        authority: { default: "127.0.0.1:8080", description: "host and port" }
      }
    }
  ])
  .annotate(OpenApi.Transform, withoutDuplicateIds) {}

export const openApi = OpenApi.fromApi(SovereignApi)
