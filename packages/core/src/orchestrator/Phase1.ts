/** Phase 1 (SPEC 2.4–2.6, §4.3): every region's HelmReleases through its ClusterWatch into jobs, flow deltas and the gate. */
import { Chunk, Duration, Effect, Option, Ref, Schedule, Stream } from "effect"
import type { Redacted } from "effect"
import { ReleaseEvent } from "../ClusterWatch.js"
import type { Region } from "../Deployment.js"
import type { DeploymentRecord, EventLevel, RegionHealth } from "../DeploymentRepo.js"
import { phase1Event, StatusEvent } from "../DeploymentStatus.js"
import * as HelmRelease from "../HelmRelease.js"
import * as Job from "../Job.js"
import { publishDns } from "./Dns.js"
import { announce, applyStatus, load, now, patchRegion, regionsOf, type Environment, type FlowPublisher } from "./Environment.js"

export type RegionVerdict =
  | { readonly _tag: "Outcome"; readonly outcome: HelmRelease.Phase1Outcome }
  | { readonly _tag: "NoKubeconfig"; readonly message: string }
  | { readonly _tag: "WatchFailed"; readonly message: string }

const levelOf = (state: HelmRelease.ComponentState): EventLevel => (state === "failed" ? "error" : state === "retrying" ? "warn" : "info")
const logLevelOf = (state: HelmRelease.ComponentState) => (state === "failed" ? "ERROR" as const : state === "retrying" ? "WARN" as const : "INFO" as const)

const healthOf = (gate: HelmRelease.Phase1Gate): RegionHealth => {
  const summary = HelmRelease.summarise(gate)
  const state = gate.outcome === undefined
    ? "watching"
    : gate.outcome._tag === "Ready" ? "ready" : gate.outcome._tag === "Failed" ? "failed" : "degraded"
  return { installed: summary.installed, total: summary.total, failed: summary.failed.length, state }
}

/** Projects one reported release into its job, execution and log (SPEC 2.4 merge and execution rules). */
const project = (
  env: Environment,
  record: DeploymentRecord,
  region: Region,
  notice: Extract<HelmRelease.GateNotice, { _tag: "ReleaseReported" }>
) =>
  Effect.gen(function*() {
    const at = yield* now
    const incoming = Job.installJob({
      deploymentId: record.id,
      region,
      release: notice.name,
      dependsOn: notice.dependsOn,
      status: HelmRelease.jobStatusOf(notice.status.state)
    })
    const stored = yield* Effect.orDie(env.jobs.get(record.id, incoming.jobName))
    const storedJob = Option.map(stored, (s) => s.job)
    const latestExecution = Option.flatMap(stored, (s) => Option.fromNullable(s.executions.find((e) => e.id === s.job.latestExecutionId)))
    const executionId = yield* env.ids.executionId
    const observed = Job.observe({
      stored: Option.getOrUndefined(storedJob),
      incoming: { ...incoming, displayName: Job.chartOf(notice.name) },
      latestExecution: Option.getOrUndefined(latestExecution),
      at,
      executionId
    })
    yield* Effect.orDie(env.jobs.upsert(observed.job))
    const change = observed.change
    if (change._tag === "Started" || change._tag === "StartedAndFinished") {
      yield* Effect.orDie(env.jobs.startExecution(record.id, incoming.jobName, change.execution.id, change.execution.startedAt))
    }
    const executionOf = change._tag === "Unchanged" ? observed.job.latestExecutionId : change.execution.id
    const running = change._tag !== "Unchanged" || Option.exists(latestExecution, (e) => e.status === "running")
    if (executionOf !== undefined && running && notice.status.state !== "pending") {
      const prefix = notice.first ? "[observed] " : ""
      yield* Effect.orDie(env.jobs.appendLog(record.id, executionOf, [{
        timestamp: at, level: logLevelOf(notice.status.state), message: `${prefix}[${notice.status.state}] ${notice.status.message || notice.name}`
      }]))
    }
    if (change._tag === "Finished" || change._tag === "StartedAndFinished") {
      yield* Effect.orDie(env.jobs.finishExecution(record.id, change.execution.id, change.execution.status === "failed" ? "failed" : "succeeded", change.execution.finishedAt ?? at))
    }
    const component = Job.appId(region, Job.chartOf(notice.name))
    yield* announce(env, record.id, [{
      phase: "phase1",
      level: levelOf(notice.status.state),
      type: "component",
      component,
      state: notice.status.state,
      region: region.key,
      message: `${component}: ${notice.status.state}${notice.status.message === "" ? "" : ` — ${notice.status.message}`}`
    }])
  })

/** A helm-controller log line goes to the running execution of its release's job, if there is one. */
const logLine = (env: Environment, record: DeploymentRecord, region: Region, event: Extract<ReleaseEvent, { _tag: "Log" }>) =>
  Effect.gen(function*() {
    if (event.release === undefined || event.message.trim() === "") return
    const jobName = Job.installJobName(region, Job.chartOf(event.release))
    const stored = yield* Effect.orDie(env.jobs.get(record.id, jobName))
    if (Option.isNone(stored)) return
    const execution = stored.value.executions.find((e) => e.id === stored.value.job.latestExecutionId)
    if (execution === undefined || execution.status !== "running") return
    yield* Effect.orDie(env.jobs.appendLog(record.id, execution.id, [{ timestamp: event.timestamp, level: event.level, message: event.message.trimEnd() }]))
  })

const gateOptions = (env: Environment): HelmRelease.GateOptions => ({
  sentinel: env.settings.readySentinel,
  namePrefix: env.settings.watch.namePrefix,
  softTimeout: env.settings.phase1Timeout,
  progressWindow: env.settings.phase1ProgressWindow,
  hardCeiling: env.settings.phase1Ceiling
})

/**
 * Watches one region until its gate decides: waits for the kubeconfig (bounded), attaches the
 * watch (re-attaching on retryable errors), feeds the gate and projects every report into jobs.
 */
export const watchRegion = (
  env: Environment,
  record: DeploymentRecord,
  region: Region,
  flow: FlowPublisher,
  kubeconfigWait: Duration.Duration
) =>
  Effect.gen(function*() {
    const kubeconfig = yield* env.kubeconfigs.await(record.id, region.key).pipe(Effect.orDie, Effect.timeoutOption(kubeconfigWait))
    if (Option.isNone(kubeconfig)) {
      const minutes = Math.round(Duration.toMinutes(env.settings.kubeconfigArrivalTimeout))
      return {
        _tag: "NoKubeconfig",
        message: `The control plane of region ${region.key} never called back with its kubeconfig within ${minutes} min ` +
          `(PUT ${env.settings.publicUrl}/api/v1/deployments/${record.id}/kubeconfig?region=${region.key}); ` +
          `check that the URL is reachable from ${region.cloudRegion}. A late call-back re-attaches the region.`
      } satisfies RegionVerdict
    }
    const arrivals = yield* Effect.orDie(env.kubeconfigs.arrivals(record.id))
    const arrivedAt = arrivals.find((a) => a.regionKey === region.key)?.receivedAt
    yield* patchRegion(env, record.id, region.key, (r) => ({ ...r, ...(arrivedAt === undefined ? {} : { kubeconfigAt: arrivedAt }) }))
    return yield* attach(env, record, region, flow, kubeconfig.value)
  })

const attach = (env: Environment, record: DeploymentRecord, region: Region, flow: FlowPublisher, kubeconfig: Redacted.Redacted<string>) =>
  Effect.gen(function*() {
    const gate = yield* Ref.make(HelmRelease.makeGate(gateOptions(env), yield* now))
    const lastHealth = yield* Ref.make("")
    const feed = (input: HelmRelease.GateInput) =>
      Effect.gen(function*() {
        const { gate: next, notices } = HelmRelease.step(yield* Ref.get(gate), input)
        yield* Ref.set(gate, next)
        for (const notice of notices) {
          if (notice._tag === "ReleaseReported") yield* project(env, record, region, notice)
          if (notice._tag === "DeadlineDeferred") {
            yield* announce(env, record.id, [{
              phase: "phase1", level: "info", type: "deadline-deferred", region: region.key,
              message: `Region ${region.key}: still installing (${notice.installed}/${notice.total}); the Phase-1 deadline is deferred`
            }])
          }
        }
        return next.outcome !== undefined
      })
    const afterChunk = Effect.gen(function*() {
      yield* flow.publish
      const health = healthOf(yield* Ref.get(gate))
      const key = JSON.stringify(health)
      if (key !== (yield* Ref.get(lastHealth))) {
        yield* Ref.set(lastHealth, key)
        yield* patchRegion(env, record.id, region.key, (r) => ({ ...r, phase1: health }))
      }
    })
    const processChunk = (events: Chunk.Chunk<ReleaseEvent | "tick">) =>
      Effect.gen(function*() {
        let done = false
        const at = yield* now
        for (const event of events) {
          if (done) break
          if (event === "tick") {
            done = yield* feed(HelmRelease.GateInput.Tick({ now: at }))
          } else if (event._tag === "Log") {
            yield* logLine(env, record, region, event)
          } else {
            const input = HelmRelease.gateInputOf(event, at)
            if (input !== undefined) done = yield* feed(input)
          }
        }
        yield* afterChunk
        return Chunk.of(done)
      })
    const events = env.watch.watch(kubeconfig, env.settings.watch).pipe(
      Stream.retry(Schedule.exponential(Duration.seconds(2)).pipe(Schedule.union(Schedule.spaced(Duration.minutes(1))), Schedule.whileInput((error: { isRetryable: boolean }) => error.isRetryable)))
    )
    const ticks = Stream.tick(env.settings.gateTick).pipe(Stream.map(() => "tick" as const))
    const watched = yield* Stream.merge(events, ticks).pipe(
      Stream.mapChunksEffect(processChunk),
      Stream.takeUntil((done) => done),
      Stream.runDrain,
      Effect.either
    )
    if (watched._tag === "Left") {
      return {
        _tag: "WatchFailed",
        message: `Region ${region.key}: the cluster cannot be watched (${watched.left.reason}: ${watched.left.message}); check the kubeconfig and the API server's certificate, then retry.`
      } satisfies RegionVerdict
    }
    const outcome = (yield* Ref.get(gate)).outcome
    if (outcome === undefined) return { _tag: "WatchFailed", message: `Region ${region.key}: the watch ended without an outcome; retry.` } satisfies RegionVerdict
    return { _tag: "Outcome", outcome } satisfies RegionVerdict
  })

const nextSteps = (record: DeploymentRecord) =>
  ` Fix the cause, then POST /api/v1/deployments/${record.id}/retry to watch again, or wipe the deployment.`

/** Records a secondary region's verdict as its health, with an event that says what happened and what to do. */
export const reportSecondary = (env: Environment, record: DeploymentRecord, region: Region, verdict: RegionVerdict) =>
  Effect.gen(function*() {
    if (verdict._tag === "Outcome" && verdict.outcome._tag === "Ready") {
      yield* announce(env, record.id, [{ phase: "phase1", level: "info", type: "region-ready", region: region.key, message: `Region ${region.key} is ready` }])
      return
    }
    const message = verdict._tag !== "Outcome"
      ? verdict.message
      : `Region ${region.key}: ${"message" in verdict.outcome ? verdict.outcome.message : "not ready"}`
    yield* patchRegion(env, record.id, region.key, (r) => ({
      ...r,
      phase1: { installed: r.phase1?.installed ?? 0, total: r.phase1?.total ?? 0, failed: r.phase1?.failed ?? 0, state: verdict._tag === "Outcome" && verdict.outcome._tag === "TimedOut" ? "degraded" : "failed" },
      error: message
    }))
    yield* announce(env, record.id, [{
      phase: "phase1", level: "error", type: "region-degraded", region: region.key,
      message: `${message}. The primary decides the deployment; this region is reported degraded.${nextSteps(record)}`
    }])
  })

/** Secondary regions whose Phase 1 has not concluded (no ready/failed/degraded health yet). */
export const unfinishedSecondaries = (record: DeploymentRecord): ReadonlyArray<Region> =>
  regionsOf(record).filter((region) => {
    if (region.primary) return false
    const result = record.results.regions.find((r) => r.regionKey === region.key)
    const state = result?.phase1?.state
    return result?.phase0 === "succeeded" && (state === undefined || state === "waiting" || state === "watching")
  })

/** Watches the secondaries in the background of `self`: each reports its health as it concludes. */
export const watchSecondaries = (env: Environment, record: DeploymentRecord, flow: FlowPublisher) =>
  Effect.forEach(
    unfinishedSecondaries(record),
    (region) =>
      Effect.flatMap(watchRegion(env, record, region, flow, env.settings.kubeconfigArrivalTimeout), (verdict) =>
        reportSecondary(env, record, region, verdict)),
    { concurrency: "unbounded", discard: true }
  )

/**
 * Runs Phase 1 until the primary decides. Secondaries are watched alongside and keep being watched
 * after a ready outcome (by the ready phase); their health never changes the deployment's status.
 */
export const phase1 = (env: Environment, initial: DeploymentRecord, flow: FlowPublisher) =>
  Effect.gen(function*() {
    const record = yield* load(env, initial.id)
    const primary = regionsOf(record)[0]!
    // A process that died between Phase 0 and its DNS publication publishes now (best effort, in the background of the watch).
    const dns = record.results.dns === undefined ? publishDns(env, record.id) : Effect.void
    const verdict = yield* Effect.raceFirst(
      watchRegion(env, record, primary, flow, env.settings.kubeconfigArrivalTimeout),
      Effect.zipRight(Effect.all([watchSecondaries(env, record, flow), dns], { concurrency: "unbounded", discard: true }), Effect.never)
    )
    const at = yield* now
    const outcomeName = verdict._tag === "Outcome"
      ? verdict.outcome._tag === "Ready" ? "ready" : verdict.outcome._tag === "Failed" ? "failed" : "timeout"
      : verdict._tag === "NoKubeconfig" ? "kubeconfig-missing" : "watcher-start-failed"
    const event = verdict._tag === "Outcome"
      ? phase1Event(verdict.outcome, primary.key)
      : StatusEvent.Phase1Failed({ reason: verdict.message })
    const withAdvice = event._tag === "Phase1Failed"
      ? StatusEvent.Phase1Failed({ reason: `${event.reason}.${nextSteps(record)}` })
      : event._tag === "Phase1TimedOut"
      ? StatusEvent.Phase1TimedOut({ reason: `${event.reason}.${nextSteps(record)}` })
      : event
    yield* applyStatus(env, record.id, withAdvice, (r) => ({ results: { ...r.results, phase1Outcome: outcomeName } }), [{
      at, phase: "phase1", level: outcomeName === "ready" ? "info" : "error", type: "phase1-outcome", region: primary.key, state: outcomeName,
      message: `Phase 1 of the primary region ${primary.key}: ${outcomeName}`
    }])
  })
