/** An in-process API server on a free loopback port over PGlite, with a stand-in `Control` for route tests. */
import { Deployment, DeploymentRepo, Kubeconfig, Kubeconfigs, Orchestrator, Secrets } from "@sovereign/core"
import { Effect, Either, Layer, ManagedRuntime, Option, Redacted } from "effect"
import * as Auth from "../../src/Auth.js"
import { Control, ControlError, type ControlService } from "../../src/Control.js"
import * as Database from "../../src/Database.js"
import * as HandoverSigner from "../../src/HandoverSigner.js"
import * as HttpGuards from "../../src/HttpGuards.js"
import * as HttpServer from "../../src/HttpServer.js"
import * as SecretBox from "../../src/SecretBox.js"
import * as SqlStore from "../../src/SqlStore.js"
import { testToken } from "./tokens.js"

export const tokens = {
  admin: testToken("admin"),
  alice: testToken("alice"),
  bob: testToken("bob")
}

const authLayer = Auth.layerTokens([
  { token: tokens.admin, principal: { email: "admin@example.com", role: "admin" } },
  { token: tokens.alice, principal: { email: "alice@example.com", role: "operator" } },
  { token: tokens.bob, principal: { email: "bob@example.com", role: "operator" } }
])

/** Accepts and stores deployments; retry/wipe/finalise only move the status, as the runtime would announce. */
const controlLayer = Layer.effect(
  Control,
  Effect.gen(function* () {
    const repo = yield* DeploymentRepo.DeploymentRepo
    const secrets = yield* Secrets.Secrets
    const kubeconfigs = yield* Kubeconfigs.Kubeconfigs
    let counter = 0
    const move = (id: string, status: DeploymentRepo.Status, allowed: ReadonlyArray<DeploymentRepo.Status>) =>
      Effect.gen(function* () {
        const record = Option.getOrThrow(yield* Effect.orDie(repo.get(id)))
        if (record.status === "adopted") return yield* new ControlError({ reason: "Adopted", message: "handed over" })
        if (!allowed.includes(record.status))
          return yield* new ControlError({ reason: "Conflict", message: `cannot from ${record.status}`, status: record.status })
        const { record: next } = yield* Effect.orDie(
          repo.update(
            id,
            record.version,
            { status },
            [{ at: 2, phase: "deployment", level: "info", message: status, type: "status", state: status }],
            2
          )
        )
        return next
      })
    const service: ControlService = {
      submit: (input, owner) =>
        Effect.gen(function* () {
          const validated = Deployment.validate(input)
          if (Either.isLeft(validated))
            return yield* new ControlError({ reason: "Invalid", message: validated.left.message, issues: validated.left.issues })
          const spec = validated.right
          const id = (0xa000000000000000n + BigInt(++counter)).toString(16)
          const sealedCredentials = yield* Effect.orDie(
            Secrets.sealCredentials(spec.credentials).pipe(Effect.provideService(Secrets.Secrets, secrets))
          )
          return yield* repo
            .create(
              {
                id,
                owner,
                status: "pending",
                spec: Deployment.publicSpec(spec),
                sealedCredentials,
                results: { regions: [] },
                createdAt: 1
              },
              { at: 1, phase: "deployment", level: "info", message: "accepted", type: "status", state: "pending" }
            )
            .pipe(
              Effect.mapError(
                (error) => new ControlError({ reason: error.reason === "Conflict" ? "Conflict" : "Unavailable", message: error.message })
              )
            )
        }),
      // Our Schema decides (no CA or server checks here: the orchestrator's door is tested with the runtime).
      kubeconfigArrived: (id, regionKey, document, options) =>
        Effect.gen(function* () {
          const decoded = Kubeconfig.decode(Redacted.value(document))
          if (Either.isLeft(decoded)) {
            return yield* new ControlError({
              reason: "Refused",
              refusal: decoded.left.reason,
              message: decoded.left.message,
              ...(decoded.left.field === undefined ? {} : { field: decoded.left.field })
            })
          }
          const rendered = Kubeconfig.render(decoded.right)
          yield* (
            options.replace
              ? kubeconfigs.replace(id, regionKey ?? "fsn1", rendered, 3)
              : kubeconfigs.put(id, regionKey ?? "fsn1", rendered, 3)
          ).pipe(
            Effect.mapError(
              (error) =>
                new ControlError({
                  reason: error.reason === "AlreadySet" ? "AlreadySet" : error.reason === "Empty" ? "Empty" : "Unavailable",
                  message: error.message
                })
            )
          )
        }),
      retry: (id) => move(id, "provisioning", ["failed", "partial-failure"]),
      wipe: (id) => move(id, "wiping", ["pending", "provisioning", "phase1-watching", "ready", "failed", "partial-failure"]),
      finalise: (id) => move(id, "adopted", ["ready"]),
      inventory: Option.some(
        Effect.succeed([{ kind: "server", name: "t1-fsn1-cp-0", region: "fsn1", labels: { "sovereign.dev/deployment": "x" } }])
      ),
      dnsPlan: () =>
        Effect.fail(new Orchestrator.DnsPlanError({ reason: "Disabled", message: "DNS publishing is switched off (SOVEREIGN_DNS=none)" })),
      ready: Effect.succeed(true)
    }
    return service
  })
)

export const secretKey = Buffer.alloc(32, 3)

/**
 * `guards`: the doors of `HttpGuards`; by default the production ones, except that the brake on failed
 * authentication never engages (route tests send wrong tokens on purpose; `Doors.test.ts` tests the brake).
 */
export const makeServer = (
  options: { readonly flowRetention?: number; readonly guards?: Partial<HttpGuards.GuardOptions>; readonly consoleDir?: string } = {}
) => {
  const base = SqlStore.layer(options).pipe(
    Layer.provideMerge(SecretBox.layerKey(secretKey)),
    Layer.provideMerge(Database.layerPglite(undefined))
  )
  const handover = HandoverSigner.layerHandover.pipe(Layer.provideMerge(HandoverSigner.layerEphemeral))
  const app = HttpServer.layer(
    { host: "127.0.0.1", port: 0 },
    { authFailureLimit: Number.MAX_SAFE_INTEGER, ...options.guards },
    options.consoleDir
  ).pipe(Layer.provideMerge(controlLayer), Layer.provideMerge(handover), Layer.provideMerge(authLayer), Layer.provideMerge(base))
  const runtime = ManagedRuntime.make(app)
  return {
    runtime,
    url: () => runtime.runPromise(HttpServer.baseUrl),
    dispose: () => runtime.dispose()
  }
}
