/** What one orchestration run needs: the resolved ports, the configuration, and the helpers every phase shares. */
import { Data, Duration, Effect, Either, Option, Redacted, Schedule, Stream } from "effect"
import type { CloudDeployment, CloudProviderService } from "../CloudProvider.js"
import type { ClusterAccessService, ClusterWatchService, WatchOptions } from "../ClusterWatch.js"
import { deriveRegions, type DeploymentId, type DeploymentSpec, type Region } from "../Deployment.js"
import type { DeploymentChanges, DeploymentRecord, DeploymentRepoService, NewDeploymentEvent, RegionResult } from "../DeploymentRepo.js"
import { describeEvent, failureReason, transition, type StatusEvent } from "../DeploymentStatus.js"
import type { DnsProviderService } from "../DnsProvider.js"
import type { FlowEventsService } from "../FlowEvents.js"
import * as FlowGraph from "../FlowGraph.js"
import * as FlowMessage from "../FlowMessage.js"
import type { Snapshot } from "../FlowMessage.js"
import type { HandoverService } from "../Handover.js"
import type { IdsService } from "../Ids.js"
import * as Job from "../Job.js"
import type { JobRepoService } from "../JobRepo.js"
import type { KubeconfigInspectorService } from "../Kubeconfig.js"
import type { KubeconfigsService } from "../Kubeconfigs.js"
import type { MeshProviderService } from "../MeshProvider.js"
import { Secrets, SecretsError, unsealDeploymentSecrets, type SecretsService } from "../Secrets.js"
import { nowMillis } from "../Time.js"
import { storeCall, StoreInvariantBroken, waitOutOutages } from "./StoreWait.js"

export interface OrchestratorSettings {
  /** Base URL the control planes call back to (`SOVEREIGN_PUBLIC_URL`). */
  readonly publicUrl: string
  /** How long a region's kubeconfig may take to arrive after its Phase 0 (15 min). */
  readonly kubeconfigArrivalTimeout: Duration.Duration
  /** Phase-1 gate: soft timeout (120 min), progress window (30 min), hard ceiling (240 min), sentinel. */
  readonly phase1Timeout: Duration.Duration
  readonly phase1ProgressWindow: Duration.Duration
  readonly phase1Ceiling: Duration.Duration
  readonly readySentinel: string | undefined
  readonly watch: WatchOptions
  /** DNS names to publish; undefined = the default list of SPEC 2.7. */
  readonly dnsSubdomains: ReadonlyArray<string> | undefined
  /** Transient cloud errors: first delay, cap, attempts. */
  readonly retryBase: Duration.Duration
  readonly retryCap: Duration.Duration
  readonly retryAttempts: number
  /** A Phase-1 deployment younger than this is not wiped without `force`. */
  readonly wipeGuard: Duration.Duration
  /** Mesh: backoff while regions miss peers, then a heal pass at this interval. */
  readonly meshRetryBase: Duration.Duration
  readonly meshRetryCap: Duration.Duration
  readonly meshHealInterval: Duration.Duration
  /** How often the Phase-1 gate is ticked for its deadlines. */
  readonly gateTick: Duration.Duration
  /** While the store is unavailable a run waits: first delay, cap (jittered exponential backoff, no attempt limit). */
  readonly storeRetryBase: Duration.Duration
  readonly storeRetryCap: Duration.Duration
}

export const defaultSettings: OrchestratorSettings = {
  publicUrl: "http://127.0.0.1:8080",
  kubeconfigArrivalTimeout: Duration.minutes(15),
  phase1Timeout: Duration.minutes(120),
  phase1ProgressWindow: Duration.minutes(30),
  phase1Ceiling: Duration.minutes(240),
  readySentinel: undefined,
  watch: { namespace: "flux-system", namePrefix: "bp-", resyncInterval: Duration.minutes(2) },
  dnsSubdomains: undefined,
  retryBase: Duration.seconds(2),
  retryCap: Duration.minutes(1),
  retryAttempts: 10,
  wipeGuard: Duration.minutes(30),
  meshRetryBase: Duration.seconds(15),
  meshRetryCap: Duration.minutes(2),
  meshHealInterval: Duration.minutes(5),
  gateTick: Duration.seconds(30),
  storeRetryBase: Duration.millis(100),
  storeRetryCap: Duration.seconds(5)
}

export interface Environment {
  readonly settings: OrchestratorSettings
  readonly repo: DeploymentRepoService
  readonly jobs: JobRepoService
  readonly flow: FlowEventsService
  readonly kubeconfigs: KubeconfigsService
  readonly ids: IdsService
  readonly secrets: SecretsService
  readonly cloud: CloudProviderService
  readonly watch: ClusterWatchService
  readonly dns: Option.Option<DnsProviderService>
  readonly mesh: Option.Option<MeshProviderService>
  readonly access: Option.Option<ClusterAccessService>
  readonly handover: Option.Option<HandoverService>
  readonly inspector: KubeconfigInspectorService
}

/** Integer unix milliseconds, whatever clock is installed (`Time.nowMillis`). */
export const now = nowMillis

/** The run noticed that someone else changed the status (a wipe): it stops at this boundary. */
export class Superseded extends Data.TaggedError("Superseded")<{ readonly status: string }> {}

export const regionsOf = (record: DeploymentRecord): ReadonlyArray<Region> => deriveRegions(record.spec, record.id)

/** The record, or a defect: a run only exists for a stored deployment. */
export const load = (env: Environment, id: DeploymentId) =>
  Effect.flatMap(
    storeCall(env, `reading deployment ${id}`, env.repo.get(id)),
    Option.match({ onNone: () => Effect.die(`deployment ${id} vanished`), onSome: Effect.succeed })
  )

export type Mutation = { readonly changes: DeploymentChanges; readonly events: ReadonlyArray<NewDeploymentEvent> } | undefined

/**
 * Read-modify-write with the optimistic version, retried on a concurrent change. `f` sees the
 * latest record and returns the changes and events to persist (undefined: nothing to do).
 */
export const mutate = (env: Environment, id: DeploymentId, f: (record: DeploymentRecord) => Mutation) =>
  Effect.gen(function* () {
    for (let attempt = 0; ; attempt++) {
      const record = yield* load(env, id)
      const mutation = f(record)
      if (mutation === undefined) return record
      const at = yield* now
      const result = yield* Effect.either(
        env.repo
          .update(id, record.version, mutation.changes, mutation.events, at)
          .pipe(waitOutOutages(env.settings, `updating deployment ${id}`))
      )
      if (Either.isRight(result)) return result.right.record
      if (result.left.reason !== "VersionConflict" || attempt > 20)
        return yield* Effect.die(new StoreInvariantBroken(`updating deployment ${id}`, result.left))
    }
  })

const statusMessages: Partial<Record<string, string>> = {
  provisioning: "Phase 0: provisioning the cloud resources of every region",
  "phase1-watching": "Phase 1: the primary control plane is up; watching the bootstrap kit converge",
  ready: "The Sovereign is ready",
  wiping: "Wipe requested: stopping work and removing every resource of the deployment",
  wiped: "Wiped: nothing of the deployment is left",
  adopted: "Handed over to its owner (adopted)"
}

/**
 * Applies a status event through the pure state machine and persists the new status together with
 * its event (and any extra changes) before anyone hears of it. An illegal transition (e.g. a wipe
 * got there first) changes nothing and returns None.
 */
export const applyStatus = (
  env: Environment,
  id: DeploymentId,
  event: StatusEvent,
  extra: (record: DeploymentRecord, at: number) => DeploymentChanges = () => ({}),
  extraEvents: ReadonlyArray<NewDeploymentEvent> = []
) =>
  Effect.gen(function* () {
    const at = yield* now
    let applied = false
    const record = yield* mutate(env, id, (current) => {
      const next = transition(current.status, event)
      if (Either.isLeft(next)) return undefined
      applied = true
      const reason = failureReason(event)
      const status = next.right
      const terminal = status === "ready" || status === "failed" || status === "partial-failure" || status === "wiped"
      const changes: DeploymentChanges = {
        ...extra(current, at),
        status,
        ...(reason === undefined ? {} : { error: reason }),
        ...(terminal ? { finishedAt: at } : {}),
        ...(status === "adopted" ? { adoptedAt: at } : {}),
        clear: [
          ...(reason === undefined && status !== "adopted" ? (["error"] as const) : []),
          ...(terminal || status === "adopted" ? [] : (["finishedAt"] as const))
        ]
      }
      const level = reason === undefined ? "info" : "error"
      return {
        changes,
        events: [
          ...extraEvents,
          {
            at,
            phase: status === "wiping" || status === "wiped" ? "wipe" : "deployment",
            level,
            type: "status",
            state: status,
            message:
              reason ??
              (event._tag === "Resumed"
                ? `Resumed after a server restart: continuing ${event.phase === "phase0" ? "Phase 0 from its step journal" : event.phase === "phase1" ? "Phase 1 (watches re-attached)" : "the wipe"}`
                : (statusMessages[status] ?? `${describeEvent(event)}: ${status}`))
          }
        ]
      }
    })
    return applied ? Option.some(record) : Option.none()
  })

export const announce = (env: Environment, id: DeploymentId, events: ReadonlyArray<Omit<NewDeploymentEvent, "at">>) =>
  Effect.flatMap(now, (at) =>
    storeCall(
      env,
      `appending events of deployment ${id}`,
      env.repo.appendEvents(
        id,
        events.map((event) => ({ ...event, at }))
      )
    )
  )

/** Updates one region's result (persisted without an event). */
export const patchRegion = (env: Environment, id: DeploymentId, regionKey: string, patch: (region: RegionResult) => RegionResult) =>
  mutate(env, id, (record) => {
    const regions = record.results.regions.map((region) => (region.regionKey === regionKey ? patch(region) : region))
    const changed = regions.some((region, index) => JSON.stringify(region) !== JSON.stringify(record.results.regions[index]))
    return changed ? { changes: { results: { ...record.results, regions } }, events: [] } : undefined
  })

/** The spec with its credentials unsealed, for the adapters only (never stored or logged). */
export const cloudDeployment = (env: Environment, record: DeploymentRecord) =>
  Effect.gen(function* () {
    const sealed = yield* unsealDeploymentSecrets(record.sealedCredentials).pipe(Effect.provideService(Secrets, env.secrets))
    const spec: DeploymentSpec = { ...record.spec, credentials: sealed.credentials }
    const regions = deriveRegions(spec, record.id)
    const missing = regions.filter((region) => sealed.clusterJoinSecrets[region.key] === undefined).map((region) => region.key)
    if (missing.length > 0) {
      return yield* new SecretsError({
        reason: "Corrupt",
        message: `no cluster join secret is sealed for ${missing.join(", ")} (the deployment was created by an older server)`
      })
    }
    const tokens: Record<string, Redacted.Redacted<string>> = {}
    for (const region of regions) tokens[region.key] = yield* env.secrets.postbackToken(record.id, region.key)
    const deployment: CloudDeployment = {
      id: record.id,
      spec,
      regions,
      postback: { baseUrl: env.settings.publicUrl, tokens },
      clusterJoinSecrets: sealed.clusterJoinSecrets
    }
    return deployment
  })

/** Exponential backoff capped at `cap`, for errors that say they are retryable. */
export const retrySchedule = (settings: OrchestratorSettings) =>
  Schedule.exponential(settings.retryBase).pipe(
    Schedule.union(Schedule.spaced(settings.retryCap)),
    Schedule.intersect(Schedule.recurs(settings.retryAttempts))
  )

/** Keeps the flow graph's subscribers in step with the jobs: compose, diff against the last published snapshot, publish. */
export interface FlowPublisher {
  readonly publish: Effect.Effect<void>
}

export const makeFlowPublisher = (env: Environment, record: DeploymentRecord) =>
  Effect.gen(function* () {
    const regions = regionsOf(record).map((region) => region.key)
    const lock = yield* Effect.makeSemaphore(1)
    const compose = (jobs: ReadonlyArray<Job.Job>, inFlight: boolean): Snapshot =>
      FlowGraph.compose({ deploymentId: record.id, regions, jobs, inFlight })
    // What subscribers were last sent: the published deltas replayed (a process that stopped between a
    // job write and its publish left them behind the store); the store's jobs when the log was trimmed.
    const published = yield* storeCall(env, `reading the flow of deployment ${record.id}`, env.flow.since(record.id, 0))
    const replayed = Option.flatMap(published, (events) => {
      const messages = events.map((event) => FlowMessage.decode(event.message))
      return messages.every(Either.isRight)
        ? Option.some(
            FlowGraph.applyAll(
              compose([], true),
              messages.map((message) => message.right)
            )
          )
        : Option.none()
    })
    let previous = Option.isSome(replayed)
      ? replayed.value
      : compose(yield* storeCall(env, `reading the jobs of deployment ${record.id}`, env.jobs.list(record.id)), true)
    const publish = lock.withPermits(1)(
      Effect.gen(function* () {
        const stored = yield* storeCall(env, `reading the jobs of deployment ${record.id}`, env.jobs.list(record.id))
        // A job whose dependency failed can never run: fail it now, with the reason (SPEC 2.4).
        const cascaded = Job.cascadeFailures(stored)
        const changed = cascaded.filter((job, index) => job !== stored[index])
        if (changed.length > 0)
          yield* storeCall(env, `failing the jobs behind a failed dependency of deployment ${record.id}`, env.jobs.upsertMany(changed))
        const current = yield* storeCall(env, `reading deployment ${record.id}`, env.repo.get(record.id))
        const inFlight = Option.match(current, {
          onNone: () => false,
          onSome: (r) => r.status === "pending" || r.status === "provisioning" || r.status === "phase1-watching" || r.status === "wiping"
        })
        const next = compose(cascaded, inFlight)
        const messages = FlowGraph.diff(previous, next)
        if (messages.length > 0) {
          const at = yield* now
          yield* storeCall(env, `publishing the flow of deployment ${record.id}`, env.flow.publish(record.id, messages, at))
          previous = next
        }
      })
    )
    const publisher: FlowPublisher = { publish }
    return publisher
  })

/** Completes when the deployment's status is no longer one of `statuses` (e.g. a wipe was requested). */
export const statusLeaves = (env: Environment, id: DeploymentId, statuses: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const record = yield* load(env, id)
    if (!statuses.includes(record.status)) return record.status
    const events = yield* storeCall(env, `reading the events of deployment ${id}`, env.repo.events(id, 0))
    const lastSeq = events.length > 0 ? events[events.length - 1]!.seq : 0
    const again = yield* load(env, id)
    if (!statuses.includes(again.status)) return again.status
    const changed = yield* storeCall(
      env,
      `following the status of deployment ${id}`,
      env.repo.tail(id, lastSeq).pipe(
        Stream.filter((event) => event.type === "status" && event.state !== undefined && !statuses.includes(event.state)),
        Stream.runHead
      )
    )
    return Option.getOrElse(
      Option.flatMapNullable(changed, (event) => event.state),
      () => "unknown"
    )
  })
