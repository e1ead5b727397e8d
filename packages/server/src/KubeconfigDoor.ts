/**
 * The kubeconfig call-back door (`PUT /api/v1/deployments/{id}/kubeconfig[?region=k]`, issue 16): the
 * region's own postback token (or the owner's operator token, to repair a region), a capped body,
 * YAML parsed into a plain value, then core's rules. Every refusal is answered by its typed reason;
 * nothing refused is stored and the region's single use is never spent by one.
 */
import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Deployment, DeploymentRepo, Kubeconfig, Secrets } from "@sovereign/core"
import { Effect, Either, Option, Redacted } from "effect"
import * as Yaml from "js-yaml"
import { Conflict, Forbidden, KubeconfigRejected, NotFound, SovereignApi, Unauthorized, Unavailable, Unprocessable } from "./Api.js"
import * as Auth from "./Auth.js"
import { Control, type ControlError } from "./Control.js"
import { bearerOf, readBody } from "./HttpInput.js"

const rejectedCodes: Record<Kubeconfig.KubeconfigRefusalReason, KubeconfigRejected["error"]> = {
  Malformed: "invalid-kubeconfig",
  ForbiddenField: "forbidden-field",
  UnknownField: "unknown-field",
  ServerNotAllowed: "server-not-allowed",
  UntrustedAuthority: "untrusted-authority"
}

/**
 * YAML → a plain value, with the JSON schema only (strings, numbers, booleans, null: no timestamps,
 * binaries or merge keys), one document, duplicate keys refused. Nothing in it is interpreted here.
 */
export const parseYaml = (text: string): Either.Either<unknown, KubeconfigRejected> => {
  try {
    return Either.right(Yaml.load(text, { schema: Yaml.JSON_SCHEMA, json: false }))
  } catch (error) {
    // A parse error's text quotes the document (it may hold a key): only its position is repeated.
    const mark = typeof error === "object" && error !== null ? (error as { mark?: { line?: number; column?: number } }).mark : undefined
    const where = mark?.line === undefined ? "" : ` (line ${mark.line + 1}, column ${(mark.column ?? 0) + 1})`
    return Either.left(
      new KubeconfigRejected({ error: "invalid-kubeconfig", message: `the kubeconfig is not a single YAML document${where}` })
    )
  }
}

const unavailable = (message: string): Effect.Effect<never, Unavailable> =>
  Effect.zipRight(
    Effect.logError("the kubeconfig call-back failed", message),
    Effect.fail(new Unavailable({ error: "unavailable", message: "the store is unavailable; try again" }))
  )

type DoorAnswer = Conflict | Forbidden | KubeconfigRejected | NotFound | Unavailable | Unprocessable

/** Core's reasons → answers; never decided by message text. */
export const fromControl = (regionKey: string, error: ControlError): Effect.Effect<never, DoorAnswer> => {
  switch (error.reason) {
    case "Refused":
      return Effect.fail(
        new KubeconfigRejected({
          error: rejectedCodes[error.refusal ?? "Malformed"],
          message: error.message,
          ...(error.field === undefined ? {} : { field: error.field }),
          ...(error.path === undefined ? {} : { path: error.path }),
          ...(error.allowed === undefined ? {} : { allowed: error.allowed })
        })
      )
    case "AlreadySet":
      return Effect.fail(new Forbidden({ error: "already-set", message: `region ${regionKey} already delivered its kubeconfig` }))
    case "Closed":
      return Effect.fail(new Forbidden({ error: "closed", message: error.message }))
    case "NotOpen":
      return Effect.fail(new Conflict({ error: "not-open", message: error.message }))
    case "Empty":
      return Effect.fail(new Unprocessable({ error: "empty-body", message: "the kubeconfig is empty" }))
    case "NotFound":
      return Effect.fail(NotFound.of("the deployment has no such region"))
    default:
      return unavailable(error.message)
  }
}

export const PostbackLive = HttpApiBuilder.group(SovereignApi, "postback", (handlers) =>
  handlers.handleRaw("putKubeconfig", ({ path, urlParams, request }) =>
    Effect.gen(function* () {
      const repo = yield* DeploymentRepo.DeploymentRepo
      const secrets = yield* Secrets.Secrets
      const authenticator = yield* Auth.Authenticator
      if (!/^[0-9a-f]{16}$/.test(path.id)) return yield* Effect.fail(NotFound.deployment())
      const found = yield* repo.get(path.id).pipe(Effect.catchAll((error) => unavailable(error.message)))
      if (Option.isNone(found)) return yield* Effect.fail(NotFound.deployment())
      const record = found.value
      const regions = Deployment.deriveRegions(record.spec, record.id)
      const regionKey = urlParams.region ?? regions[0]!.key
      // Only a region of the deployment is looked at further (a NUL or any other key never reaches the store).
      if (!regions.some((region) => region.key === regionKey)) return yield* Effect.fail(NotFound.of("the deployment has no such region"))
      const token = bearerOf(request)
      if (Option.isNone(token)) return yield* Effect.fail(Unauthorized.of("the postback token is missing"))
      const presented = Redacted.make(token.value)
      // The region's own postback token; else the owner (or an admin) repairing the region with an operator token.
      const postback = yield* secrets.verifyPostbackToken(record.id, regionKey, presented)
      const owner = !postback && Option.exists(authenticator.authenticate(presented), (principal) => Auth.canSee(principal, record.owner))
      if (!postback && !owner) {
        return yield* Effect.fail(new Forbidden({ error: "invalid-bearer", message: "the token does not open this region's call-back" }))
      }
      const body = yield* readBody(request)
      if (body.trim() === "") return yield* Effect.fail(new Unprocessable({ error: "empty-body", message: "the kubeconfig is empty" }))
      const document = yield* Either.match(parseYaml(body), { onLeft: Effect.fail, onRight: Effect.succeed })
      const control = yield* Control
      yield* control
        .kubeconfigArrived(record.id, regionKey, Redacted.make(document), { replace: owner })
        .pipe(Effect.catchAll((error) => fromControl(regionKey, error)))
      return HttpServerResponse.empty({ status: 204 })
    })
  )
)
