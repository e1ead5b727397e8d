/**
 * The orchestration program (SPEC §4): create, run, resume, retry, wipe and finalise deployments,
 * written against the ports only, so the same program runs on the simulator, in tests and in production.
 */
import {
  Cause,
  Clock,
  Context,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  FiberMap,
  FiberRef,
  Layer,
  Option,
  Queue,
  Redacted,
  Schema,
  Stream
} from "effect"
import { CloudProvider } from "./CloudProvider.js"
import { ClusterAccess, ClusterWatch } from "./ClusterWatch.js"
import { deriveRegions, InvalidRequest, publicSpec, validate, type DeploymentId } from "./Deployment.js"
import { DeploymentRepo, resumable, type DeploymentRecord } from "./DeploymentRepo.js"
import { resumeDecision, StatusEvent } from "./DeploymentStatus.js"
import { DnsProvider } from "./DnsProvider.js"
import { FlowEvents } from "./FlowEvents.js"
import { Handover } from "./Handover.js"
import { Ids } from "./Ids.js"
import { JobRepo } from "./JobRepo.js"
import { Kubeconfigs } from "./Kubeconfigs.js"
import { currentFence, isFenced, Leases, LeaseLost, type Lease, type LeaseHealth, type LeasesService } from "./Leases.js"
import { KubeconfigInspector, type KubeconfigRefused } from "./Kubeconfig.js"
import { arrive } from "./orchestrator/Callback.js"
import { MeshProvider } from "./MeshProvider.js"
import {
  applyStatus,
  defaultSettings,
  load,
  makeFlowPublisher,
  now,
  regionsOf,
  statusLeaves,
  Superseded,
  type Environment,
  type OrchestratorSettings
} from "./orchestrator/Environment.js"
import { phase0 } from "./orchestrator/Phase0.js"
import { phase1 } from "./orchestrator/Phase1.js"
import { abandon as abandonLifecycle, prepare as prepareLifecycle, recordFinalise } from "./orchestrator/Lifecycle.js"
import { needsWork, whileReady } from "./orchestrator/Ready.js"
import { wipe as runWipe } from "./orchestrator/Wipe.js"
import { planDns, type DnsPlanError } from "./orchestrator/Dns.js"
import type { PublishResult } from "./DnsPublish.js"
import { sealDeploymentSecrets, Secrets } from "./Secrets.js"
import { outageSchedule, storeCall } from "./orchestrator/StoreWait.js"

export { defaultSettings, type OrchestratorSettings } from "./orchestrator/Environment.js"
export { DnsPlanError, publishInputOf } from "./orchestrator/Dns.js"

export const OrchestratorErrorReason = Schema.Literal(
  "NotFound",
  "Conflict",
  "Adopted",
  "AlreadySet",
  "Invalid",
  "Unavailable",
  /** A region's call-back is not open: its control plane does not exist yet, or its Phase 0 ended (a retry re-opens it). */
  "NotOpen",
  /** The deployment is wiping, wiped or handed over: no call-back opens it. */
  "Closed"
)
export type OrchestratorErrorReason = typeof OrchestratorErrorReason.Type

/**
 * Why an operation was refused. HTTP mapping: NotFound 404, Conflict 409, Adopted 422,
 * AlreadySet 403 (a second kubeconfig for a region), Invalid 422, Unavailable 503, NotOpen 409,
 * Closed 403. A refused kubeconfig document is a `Kubeconfig.KubeconfigRefused` (422) instead.
 */
export class OrchestratorError extends Schema.TaggedError<OrchestratorError>()("OrchestratorError", {
  reason: OrchestratorErrorReason,
  message: Schema.String
}) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

export class OrchestratorConfig extends Context.Tag("@sovereign/core/OrchestratorConfig")<OrchestratorConfig, OrchestratorSettings>() {}

export interface OrchestratorService {
  /**
   * Validates (schema, then the cloud adapter: 400 issues), stores the deployment as `pending`
   * (409 `Conflict` when its FQDN is in flight) and starts its run.
   */
  readonly create: (input: unknown, owner: string) => Effect.Effect<DeploymentRecord, InvalidRequest | OrchestratorError>
  /** Re-runs a `failed`/`partial-failure` deployment from its first unfinished step. */
  readonly retry: (id: DeploymentId) => Effect.Effect<DeploymentRecord, OrchestratorError>
  /** `wiping`, then the run purges. 409 for a Phase-1 deployment younger than 30 min unless `force`. */
  readonly wipe: (id: DeploymentId, options?: { readonly force?: boolean }) => Effect.Effect<DeploymentRecord, OrchestratorError>
  /** `ready` → `adopted` (sticky). */
  readonly finalise: (id: DeploymentId) => Effect.Effect<DeploymentRecord, OrchestratorError>
  /**
   * Takes a region's kubeconfig call-back (`orchestrator/Callback.ts`): `document` is the parsed YAML
   * value, checked by `Kubeconfig.admit` (refusals name the field or the allowed addresses) and stored
   * normalised. Single use (`AlreadySet`) while the region's window is open (`NotOpen`, `Closed`). The
   * region is `undefined` for the primary. `replace` is the owner's repair: it replaces a stored
   * kubeconfig through the same checks, and revives a deployment that failed for lack of the primary's.
   */
  readonly kubeconfigArrived: (
    id: DeploymentId,
    regionKey: string | undefined,
    document: Redacted.Redacted<unknown>,
    options?: { readonly replace?: boolean }
  ) => Effect.Effect<void, OrchestratorError | KubeconfigRefused>
  /** Ensures one supervised fiber runs `run(id)` (a no-op when one runs). */
  readonly start: (id: DeploymentId) => Effect.Effect<void>
  /** At start-up: resumes every non-terminal deployment (SPEC 2.3) and ready ones that still mesh; returns their ids. */
  readonly resumeAll: Effect.Effect<ReadonlyArray<DeploymentId>>
  /** Does whatever the deployment's status calls for until nothing is left to do. Never fails. */
  readonly run: (id: DeploymentId) => Effect.Effect<void>
  /** Waits for the supervised fiber of a deployment (if any) to end. */
  readonly join: (id: DeploymentId) => Effect.Effect<void>
  /** The DNS dry run (SPEC 2.7): what publishing the deployment's names would change now, per zone; changes nothing. */
  readonly dnsPlan: (id: DeploymentId) => Effect.Effect<PublishResult, DnsPlanError>
  /** With a `Leases` service: the leases this replica holds and whether they renew (metrics, readiness). */
  readonly leaseHealth: Effect.Effect<Option.Option<LeaseHealth>>
}

export class Orchestrator extends Context.Tag("@sovereign/core/Orchestrator")<Orchestrator, OrchestratorService>() {}

const notFound = (id: string) => new OrchestratorError({ reason: "NotFound", message: `deployment ${id} not found` })
const unavailable = (error: { readonly message: string }) => new OrchestratorError({ reason: "Unavailable", message: error.message })

export const make = Effect.gen(function* () {
  const leases = yield* Effect.serviceOption(Leases)
  /** Leases this replica holds, with the time (Clock ms) the last successful renewal of each was sent. */
  const held = new Map<string, { readonly lease: Lease; renewedAt: number }>()
  const ttlMs = Option.match(leases, { onNone: () => Infinity, onSome: (l) => Duration.toMillis(l.ttl) })
  /**
   * Before every call to the outside world from a run: the run's lease must be held, and renewed
   * less than a lease time ago (a frozen process that wakes up finds it stale here, before its next
   * heartbeat says so). Otherwise the run dies with `LeaseLost` and ends quietly.
   */
  const guard = Effect.flatMap(FiberRef.get(currentFence), (fence) => {
    if (Option.isNone(fence)) return Effect.void
    const lease = fence.value
    return Effect.flatMap(Clock.currentTimeMillis, (at) => {
      const entry = held.get(lease.deploymentId)
      if (entry !== undefined && entry.lease.epoch === lease.epoch && at - entry.renewedAt < ttlMs) return Effect.void
      return Effect.die(
        new LeaseLost({
          deploymentId: lease.deploymentId,
          epoch: lease.epoch,
          message: `the lease of deployment ${lease.deploymentId} (epoch ${lease.epoch}) is no longer held by this replica`
        })
      )
    })
  })
  const env: Environment = {
    settings: yield* OrchestratorConfig,
    repo: yield* DeploymentRepo,
    jobs: yield* JobRepo,
    flow: yield* FlowEvents,
    kubeconfigs: yield* Kubeconfigs,
    ids: yield* Ids,
    secrets: yield* Secrets,
    cloud: guarded(yield* CloudProvider, guard),
    watch: yield* ClusterWatch,
    dns: Option.map(yield* Effect.serviceOption(DnsProvider), (dns) => guarded(dns, guard)),
    mesh: Option.map(yield* Effect.serviceOption(MeshProvider), (mesh) => guarded(mesh, guard)),
    access: Option.map(yield* Effect.serviceOption(ClusterAccess), (access) => guarded(access, guard)),
    handover: yield* Effect.serviceOption(Handover),
    inspector: yield* KubeconfigInspector
  }
  const fibers = yield* FiberMap.make<string>()

  const get = (id: DeploymentId) =>
    Effect.flatMap(
      Effect.mapError(env.repo.get(id), unavailable),
      Option.match({ onNone: () => Effect.fail(notFound(id)), onSome: Effect.succeed })
    )

  /** One pass of a deployment's run through one status, as a trace span: its steps and adapter calls nest in it. */
  const traced = <A, E, R>(record: DeploymentRecord, effect: Effect.Effect<A, E, R>) =>
    Effect.withSpan(effect, "deployment.run", { attributes: { "deployment.id": record.id, "deployment.status": record.status } })

  const run = (id: DeploymentId): Effect.Effect<void> =>
    Effect.gen(function* () {
      const found = yield* storeCall(env, `reading the deployment of deployment ${id}`, env.repo.get(id))
      if (Option.isNone(found)) return
      const flow = yield* makeFlowPublisher(env, found.value)
      // The steps after Phase 0 are jobs from the start; whatever a stopped process left running is finished first.
      yield* prepareLifecycle(env, found.value, flow, { plan: runningStatuses.includes(found.value.status) })
      for (let rounds = 0; rounds < 1000; rounds++) {
        const record = yield* load(env, id)
        switch (record.status) {
          case "pending":
          case "provisioning": {
            const exit = yield* Effect.exit(traced(record, phase0(env, record, flow)))
            if (Exit.isFailure(exit) && !isSupersededExit(exit)) return yield* Effect.failCause(exit.cause)
            break
          }
          case "phase1-watching": {
            // Phase 1 ends with its outcome, or early when someone else changed the status (a wipe).
            yield* traced(record, Effect.raceFirst(phase1(env, record, flow), Effect.asVoid(statusLeaves(env, id, ["phase1-watching"]))))
            break
          }
          case "wiping":
            yield* traced(record, runWipe(env, record))
            break
          case "ready": {
            const leaves = yield* Effect.raceFirst(
              Effect.as(whileReady(env, record, flow), "finished" as const),
              Effect.as(statusLeaves(env, id, ["ready"]), "superseded" as const)
            )
            if (leaves === "finished") return
            break
          }
          case "adopted":
            // The owner finalised: the step shows as the last job of the handover.
            yield* recordFinalise(env, record, flow)
            return
          case "failed":
          case "partial-failure":
            yield* abandonLifecycle(env, record, flow)
            return
          default:
            return
        }
        yield* flow.publish
      }
    }).pipe(
      // An interruption (shutdown, a supervisor stopping the fiber) is not a failure: the next start resumes.
      // A run that lost its lease stops without a word more: another replica runs the deployment now.
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.interrupt
          : isFenced(cause)
            ? Effect.logInfo(`the run of deployment ${id} lost its lease and stops; another replica continues it`)
            : Effect.zipRight(
                Effect.logError(`orchestration of deployment ${id} stopped on a defect`, cause),
                // Never stranded: the failure names the cause, and its write is tried again (with the store's
                // backoff) for as long as the store refuses it, each refusal logged.
                applyStatus(
                  env,
                  id,
                  StatusEvent.Failed({
                    reason: `The orchestration stopped on an internal error (${describeDefect(cause)}); retry the deployment, or wipe it.`
                  })
                ).pipe(
                  Effect.catchAllDefect(Effect.fail),
                  Effect.tapError((failure) => Effect.logError(`deployment ${id} could not be marked failed yet; trying again`, failure)),
                  Effect.retry(outageSchedule(env.settings)),
                  // The schedule never ends; this only satisfies the type.
                  Effect.catchAll(() => Effect.void),
                  Effect.asVoid
                )
              )
      ),
      Effect.annotateLogs({ deploymentId: id })
    )

  /** Starts and claims one at a time: a claim and the fiber it starts are never split by another start of the same deployment. */
  const startLock = yield* Effect.makeSemaphore(1)

  /** Runs `program` for the deployment under `lease` (in its fence); gives the lease up when it ends. */
  const launch = (lease: Lease, program: Effect.Effect<void>) =>
    Effect.gen(function* () {
      held.set(lease.deploymentId, { lease, renewedAt: yield* Clock.currentTimeMillis })
      const release = Effect.suspend(() => {
        const entry = held.get(lease.deploymentId)
        if (entry === undefined || entry.lease.epoch !== lease.epoch) return Effect.void
        held.delete(lease.deploymentId)
        return Option.match(leases, {
          onNone: () => Effect.void,
          onSome: (service) =>
            service
              .release(lease)
              .pipe(
                Effect.catchAll((error) =>
                  Effect.logWarning(`releasing the lease of ${lease.deploymentId} failed; it expires by itself`, error)
                )
              )
        })
      })
      yield* FiberMap.run(
        fibers,
        lease.deploymentId,
        program.pipe(Effect.locally(currentFence, Option.some(lease)), Effect.ensuring(release))
      )
    })

  /** Claims the deployment's lease (when leases are in use) and runs `program` under it; a no-op when a run exists here or elsewhere. */
  const claimAndRun = (id: DeploymentId, program: Effect.Effect<void>): Effect.Effect<boolean> =>
    Option.match(leases, {
      onNone: () =>
        Effect.map(FiberMap.has(fibers, id), (running) => running).pipe(
          Effect.flatMap((running) =>
            running ? Effect.succeed(false) : Effect.as(FiberMap.run(fibers, id, program, { onlyIfMissing: true }), true)
          )
        ),
      onSome: (service) =>
        startLock.withPermits(1)(
          Effect.gen(function* () {
            if (yield* FiberMap.has(fibers, id)) return false
            const claimed = yield* service
              .claim(id)
              .pipe(
                Effect.catchAll((error) =>
                  Effect.as(Effect.logWarning(`claiming the lease of ${id} failed; a later scan tries again`, error), Option.none<Lease>())
                )
              )
            if (Option.isNone(claimed)) return false
            yield* launch(claimed.value, program)
            return true
          })
        )
    })

  const start = (id: DeploymentId) => Effect.asVoid(claimAndRun(id, run(id)))
  const join = (id: DeploymentId) =>
    Effect.flatMap(
      Effect.option(FiberMap.get(fibers, id)),
      Option.match({ onNone: () => Effect.void, onSome: (fiber) => Effect.asVoid(Fiber.await(fiber)) })
    )

  const service: OrchestratorService = {
    create: (input, owner) =>
      Effect.gen(function* () {
        const spec = yield* Either.match(validate(input), { onLeft: Effect.fail, onRight: Effect.succeed })
        const issues = yield* Effect.mapError(env.cloud.validate(spec), unavailable)
        if (issues.length > 0) return yield* new InvalidRequest({ issues })
        const id = yield* env.ids.deploymentId
        const clusterJoinSecrets: Record<string, Redacted.Redacted<string>> = {}
        for (const region of deriveRegions(spec, id)) clusterJoinSecrets[region.key] = yield* env.secrets.generateSecret
        const sealedCredentials = yield* Effect.mapError(
          sealDeploymentSecrets({ credentials: spec.credentials, clusterJoinSecrets }).pipe(Effect.provideService(Secrets, env.secrets)),
          unavailable
        )
        const at = yield* now
        const record = yield* env.repo
          .create(
            {
              id,
              owner,
              status: "pending",
              spec: publicSpec(spec),
              sealedCredentials,
              results: {
                regions: deriveRegions(spec, id).map((region) => ({
                  regionKey: region.key,
                  cloudRegion: region.cloudRegion,
                  provider: region.provider,
                  primary: region.primary,
                  phase0: "pending" as const
                }))
              },
              createdAt: at
            },
            {
              at,
              phase: "deployment",
              level: "info",
              type: "status",
              state: "pending",
              message: `Accepted ${spec.sovereignFQDN}: ${spec.regions.length} region(s), ${spec.topology}`
            }
          )
          .pipe(
            Effect.mapError((error) =>
              error.reason === "Conflict" ? new OrchestratorError({ reason: "Conflict", message: error.message }) : unavailable(error)
            )
          )
        yield* start(id)
        return record
      }),
    retry: (id) =>
      Effect.gen(function* () {
        const record = yield* get(id)
        if (record.status === "adopted")
          return yield* new OrchestratorError({ reason: "Adopted", message: "the deployment has been handed over; it never changes" })
        if (record.status !== "failed" && record.status !== "partial-failure") {
          return yield* new OrchestratorError({
            reason: "Conflict",
            message: `only a failed or partial-failure deployment can be retried; this one is ${record.status}`
          })
        }
        if (record.results.wipeFailedAt !== undefined) {
          return yield* new OrchestratorError({
            reason: "Conflict",
            message: "the wipe of this deployment did not finish; wipe it again instead of retrying"
          })
        }
        const journal = yield* Effect.mapError(env.repo.journal(id), unavailable)
        const phase0Done =
          record.status === "failed" && record.phase1StartedAt !== undefined && journal.every((entry) => entry.status === "succeeded")
        const updated = yield* applyStatus(env, id, StatusEvent.Retry({ from: phase0Done ? "phase1" : "phase0" }), (r, at) => {
          const { phase1Outcome: _outcome, ...results } = r.results
          return {
            results: {
              ...results,
              regions: results.regions.map((region) => {
                const { error: _error, phase1: _phase1, ...rest } = region
                return phase0Done
                  ? { ...rest }
                  : { ...rest, phase0: region.phase0 === "succeeded" ? ("succeeded" as const) : ("pending" as const) }
              })
            },
            ...(phase0Done ? { phase1StartedAt: at } : {})
          }
        })
        if (Option.isNone(updated))
          return yield* new OrchestratorError({ reason: "Conflict", message: "the deployment changed meanwhile; try again" })
        yield* start(id)
        return updated.value
      }),
    wipe: (id, options = {}) =>
      Effect.gen(function* () {
        const record = yield* get(id)
        if (record.status === "adopted")
          return yield* new OrchestratorError({
            reason: "Adopted",
            message: "the deployment has been handed over; it is the owner's to remove"
          })
        const at = yield* now
        const guard = Duration.toMillis(env.settings.wipeGuard)
        if (
          record.status === "phase1-watching" &&
          options.force !== true &&
          record.phase1StartedAt !== undefined &&
          at - record.phase1StartedAt < guard
        ) {
          const minutes = Math.floor((at - record.phase1StartedAt) / 60_000)
          return yield* new OrchestratorError({
            reason: "Conflict",
            message: `Phase 1 started ${minutes} min ago; a wipe is refused for the first ${Math.round(guard / 60_000)} min of Phase 1 unless ?force=true`
          })
        }
        const updated = record.status === "wiping" ? Option.some(record) : yield* applyStatus(env, id, StatusEvent.WipeRequested())
        if (Option.isNone(updated))
          return yield* new OrchestratorError({ reason: "Conflict", message: `a ${record.status} deployment cannot be wiped now` })
        yield* start(id)
        return updated.value
      }),
    finalise: (id) =>
      Effect.gen(function* () {
        const record = yield* get(id)
        if (record.status === "adopted") {
          // A process that stopped right after the adoption never recorded its job: the run does it now.
          yield* start(id)
          return yield* new OrchestratorError({ reason: "Adopted", message: "already handed over (adopted)" })
        }
        if (record.status !== "ready")
          return yield* new OrchestratorError({
            reason: "Conflict",
            message: `only a ready deployment can be finalised; this one is ${record.status}`
          })
        const updated = yield* applyStatus(env, id, StatusEvent.Finalised())
        if (Option.isNone(updated))
          return yield* new OrchestratorError({ reason: "Conflict", message: "the deployment changed meanwhile; try again" })
        // The run of the ready deployment (if any) stops; a run then records the finalisation as a job.
        yield* join(id)
        yield* start(id)
        yield* join(id)
        return updated.value
      }),
    kubeconfigArrived: (id, regionKey, document, options = {}) =>
      Effect.gen(function* () {
        const record = yield* get(id)
        const regions = regionsOf(record)
        const region = regionKey === undefined ? regions[0]! : regions.find((r) => r.key === regionKey)
        if (region === undefined)
          return yield* new OrchestratorError({ reason: "NotFound", message: `deployment ${id} has no region ${regionKey}` })
        yield* arrive(env, record, region, document, { replace: options.replace === true }).pipe(
          Effect.mapError((refusal) =>
            refusal._tag === "Refused" ? refusal.refused : new OrchestratorError({ reason: refusal._tag, message: refusal.message })
          )
        )
        // The owner's repair of a primary that never called back continues the deployment at once.
        const current = yield* get(id)
        if (region.primary && current.status === "failed" && current.results.phase1Outcome === "kubeconfig-missing") {
          yield* applyStatus(env, id, StatusEvent.Retry({ from: "phase0" }))
          yield* start(id)
        }
      }),
    start,
    resumeAll: Option.match(leases, {
      onNone: () =>
        Effect.gen(function* () {
          const records = yield* storeCall(env, "listing the deployments to resume", env.repo.list({ statuses: [...resumable, "ready"] }))
          const started: Array<DeploymentId> = []
          for (const record of records) {
            if (record.status === "ready") {
              if (needsWork(env, record)) {
                yield* start(record.id)
                started.push(record.id)
              }
              continue
            }
            if (yield* resumeOrFail(record)) {
              yield* start(record.id)
              started.push(record.id)
            }
          }
          return started
        }),
      // With leases, start-up is the first scan of the supervisor, which then keeps taking over whatever
      // another replica stops running (killed, frozen, shut down) for as long as this replica lives.
      onSome: (service) => Effect.zipLeft(scan(service), supervise(service))
    }),
    run,
    join,
    dnsPlan: (id) => planDns(env, id),
    leaseHealth: Option.match(leases, {
      onNone: () => Effect.succeedNone,
      onSome: (service) =>
        Effect.map(Clock.currentTimeMillis, (at) =>
          Option.some({
            held: held.size,
            lastRenewalAt: renewal.lastOkAt,
            renewing: renewal.ok && at - renewal.lastOkAt < (Duration.toMillis(service.ttl) / 3) * 2 + 1_000
          })
        )
    })
  }

  /** Decides what a deployment found unfinished needs (SPEC 2.3): `true` to run it; a `MarkFailed` is written here. */
  function resumeOrFail(record: DeploymentRecord): Effect.Effect<boolean> {
    return Effect.gen(function* () {
      const journal = yield* storeCall(env, `reading the step journal of deployment ${record.id}`, env.repo.journal(record.id))
      const decision = resumeDecision({ id: record.id, status: record.status, journal }, env.cloud.capabilities)
      if (decision._tag === "MarkFailed") {
        yield* applyStatus(env, record.id, StatusEvent.Failed({ reason: decision.message }))
        return false
      }
      if (decision._tag === "Resume") {
        yield* applyStatus(env, record.id, StatusEvent.Resumed({ phase: decision.phase }), () => ({}), [])
        return true
      }
      return false
    })
  }

  /** A take-over under a fresh lease: the same decision as at start-up, then the run. */
  const takeOver = (id: DeploymentId) =>
    Effect.gen(function* () {
      const found = yield* storeCall(env, `reading deployment ${id}`, env.repo.get(id))
      if (Option.isNone(found)) return
      const record = found.value
      if (record.status === "ready" ? needsWork(env, record) : resumable.includes(record.status) && (yield* resumeOrFail(record))) {
        yield* run(id)
      }
    }).pipe(
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.interrupt
          : isFenced(cause)
            ? Effect.void
            : Effect.logError(`taking over deployment ${id} failed`, cause)
      ),
      Effect.annotateLogs({ deploymentId: id })
    )

  const renewal = { ok: true, lastOkAt: yield* Clock.currentTimeMillis }

  /** Claims every deployment that needs a run and has no live lease; returns those it started. */
  function scan(service: LeasesService): Effect.Effect<ReadonlyArray<DeploymentId>> {
    return Effect.gen(function* () {
      const ids = yield* service.unheld([...resumable, "ready"])
      const started: Array<DeploymentId> = []
      for (const id of ids) {
        if (yield* FiberMap.has(fibers, id)) continue
        // A ready deployment with nothing left to do is not claimed (no lease churn every scan).
        const record = yield* storeCall(env, `reading deployment ${id}`, env.repo.get(id))
        if (Option.isNone(record) || (record.value.status === "ready" && !needsWork(env, record.value))) continue
        if (yield* claimAndRun(id, takeOver(id))) started.push(id)
      }
      return started
    }).pipe(
      Effect.catchAllCause((cause) =>
        Effect.as(
          Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logWarning("a lease scan failed; the next one tries again", cause),
          []
        )
      )
    )
  }

  /**
   * The replica's supervisor: a scan every second and at every wake-up (another replica released a
   * lease), and the heartbeat every third of the lease time; a lease found taken stops its run here.
   */
  function supervise(service: LeasesService): Effect.Effect<void> {
    return Effect.gen(function* () {
      if (supervising) return
      supervising = true
      const wake = yield* Queue.sliding<void>(1)
      yield* service.wakeups.pipe(
        Stream.runForEach(() => Queue.offer(wake, undefined)),
        Effect.forkIn(scope)
      )
      yield* Effect.raceFirst(Effect.sleep(Duration.seconds(1)), Queue.take(wake)).pipe(
        Effect.zipRight(scan(service)),
        Effect.forever,
        Effect.forkIn(scope)
      )
    })
  }
  let supervising = false
  const scope = yield* Effect.scope

  // The heartbeat: runs from the start, so a lease claimed by `create` before the supervisor starts is renewed too.
  if (Option.isSome(leases)) {
    const service = leases.value
    yield* Effect.gen(function* () {
      const round = [...held.values()].map((entry) => entry.lease)
      const sentAt = yield* Clock.currentTimeMillis
      const renewed = yield* Effect.either(service.renew(round))
      if (Either.isLeft(renewed)) {
        renewal.ok = false
        return yield* Effect.logWarning(
          "renewing the leases failed; runs pause their outside calls once a lease time has passed",
          renewed.left
        )
      }
      renewal.ok = true
      renewal.lastOkAt = sentAt
      const kept = new Set(renewed.right.map((lease) => `${lease.deploymentId}@${lease.epoch}`))
      for (const lease of round) {
        const entry = held.get(lease.deploymentId)
        if (entry === undefined || entry.lease.epoch !== lease.epoch) continue
        if (kept.has(`${lease.deploymentId}@${lease.epoch}`)) {
          entry.renewedAt = sentAt
        } else {
          held.delete(lease.deploymentId)
          yield* Effect.logWarning(
            `the lease of deployment ${lease.deploymentId} (epoch ${lease.epoch}) was taken over; its run here stops`
          )
          yield* FiberMap.remove(fibers, lease.deploymentId)
        }
      }
    }).pipe(Effect.zipRight(Effect.sleep(Duration.millis(Duration.toMillis(service.ttl) / 3))), Effect.forever, Effect.forkIn(scope))
  }
  return service
})

/** The first line of what stopped a run (a defect's message, a store's refusal and its cause), for the deployment's error. */
const describeDefect = (cause: Cause.Cause<unknown>): string => {
  const defect = Cause.dieOption(cause)
  const value: unknown = defect._tag === "Some" ? defect.value : Option.getOrUndefined(Cause.failureOption(cause))
  const text =
    value instanceof Error
      ? value.message
      : typeof value === "object" && value !== null && "message" in value
        ? String(value.message)
        : value === undefined
          ? Cause.pretty(cause)
          : String(value)
  const line = text.split("\n")[0] ?? "unknown"
  return line.length > 300 ? `${line.slice(0, 300)}…` : line
}

/** The service with `before` run ahead of every method that returns an Effect (a lease guard). */
const guarded = <S extends object>(service: S, before: Effect.Effect<void>): S => {
  const wrapped: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(service)) {
    wrapped[key] =
      typeof value === "function"
        ? (...args: Array<unknown>) => {
            const result: unknown = (value as (...a: Array<unknown>) => unknown).apply(service, args)
            return Effect.isEffect(result) ? Effect.zipRight(before, result as Effect.Effect<unknown, unknown, never>) : result
          }
        : value
  }
  return wrapped as S
}

/** The statuses whose run takes (or will take) the steps after Phase 0: their lifecycle jobs are planned. */
const runningStatuses: ReadonlyArray<string> = ["pending", "provisioning", "phase1-watching", "ready"]

const isSupersededExit = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error instanceof Superseded

/** The orchestrator; its deployment fibers live as long as the layer (the server's lifetime). */
export const layer: Layer.Layer<
  Orchestrator,
  never,
  | OrchestratorConfig
  | DeploymentRepo
  | JobRepo
  | FlowEvents
  | Kubeconfigs
  | Ids
  | Secrets
  | CloudProvider
  | ClusterWatch
  | KubeconfigInspector
> = Layer.scoped(Orchestrator, make)

/** Settings with overrides. */
export const layerSettings = (overrides: Partial<OrchestratorSettings> = {}): Layer.Layer<OrchestratorConfig> =>
  Layer.succeed(OrchestratorConfig, { ...defaultSettings, ...overrides })
