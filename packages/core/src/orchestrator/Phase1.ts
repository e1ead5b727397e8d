/** Phase 1 (SPEC 2.4–2.6, §4.3): every region's HelmReleases through its ClusterWatch into jobs, flow deltas and the gate. */
import { Chunk, Duration, Effect, Either, Option, Schedule, Stream } from "effect"
import type { Redacted } from "effect"
import { ReleaseEvent } from "../ClusterWatch.js"
import type { Region } from "../Deployment.js"
import type { DeploymentRecord, EventLevel, RegionHealth } from "../DeploymentRepo.js"
import { phase1Event, StatusEvent } from "../DeploymentStatus.js"
import * as HelmRelease from "../HelmRelease.js"
import * as Job from "../Job.js"
import * as JobRepo from "../JobRepo.js"
import { publishDns } from "./Dns.js"
import { announce, applyStatus, load, now, patchRegion, regionsOf, type Environment, type FlowPublisher } from "./Environment.js"
import { storeCall } from "./StoreWait.js"

export type RegionVerdict =
  | { readonly _tag: "Outcome"; readonly outcome: HelmRelease.Phase1Outcome }
  | { readonly _tag: "NoKubeconfig"; readonly message: string }
  | { readonly _tag: "WatchFailed"; readonly message: string }

const levelOf = (state: HelmRelease.ComponentState): EventLevel => (state === "failed" ? "error" : state === "retrying" ? "warn" : "info")
const logLevelOf = (state: HelmRelease.ComponentState) =>
  state === "failed" ? ("ERROR" as const) : state === "retrying" ? ("WARN" as const) : ("INFO" as const)

const healthOf = (gate: HelmRelease.Phase1Gate): RegionHealth => {
  const summary = HelmRelease.summarise(gate)
  const state =
    gate.outcome === undefined
      ? "watching"
      : gate.outcome._tag === "Ready"
        ? "ready"
        : gate.outcome._tag === "Failed"
          ? "failed"
          : "degraded"
  return { installed: summary.installed, total: summary.total, failed: summary.failed.length, state }
}

type Announcement = Parameters<typeof announce>[2][number]

/**
 * What one watch has written of its region's install jobs. Each job (and its latest execution) is
 * read from the store the first time the watch touches it, then kept in step in memory with the very
 * fold the store applies (`JobRepo.applyWrites`), so the store is read once per job instead of once
 * per event. Only this watch starts and finishes these jobs' executions; the flow publisher's failure
 * cascade may also fail a job, but the store merges each write into what it holds and the cascade
 * runs again after every batch.
 */
interface Projection {
  readonly state: JobRepo.JobWriteState
  readonly loaded: Set<string>
}

/** What a batch of watch events adds up to: one list of job writes and one of deployment events, stored once each. */
interface Batch {
  readonly writes: Array<JobRepo.JobWrite>
  readonly events: Array<Announcement>
}

/** Reads, once per watch, the stored install jobs (and latest executions) that the next events will touch. */
const preload = (env: Environment, record: DeploymentRecord, projection: Projection, jobNames: Iterable<string>) =>
  Effect.forEach(
    [...new Set(jobNames)].filter((jobName) => !projection.loaded.has(jobName)),
    (jobName) =>
      Effect.map(storeCall(env, `reading a job of deployment ${record.id}`, env.jobs.get(record.id, jobName)), (stored) => {
        if (Option.isSome(stored)) {
          const { job, executions } = stored.value
          projection.state.jobs.set(jobName, job)
          const latest = executions.find((e) => e.id === job.latestExecutionId)
          if (latest !== undefined) projection.state.executions.set(latest.id, latest)
        }
        projection.loaded.add(jobName)
      }),
    { discard: true }
  )

const cachedJob = (projection: Projection, jobName: string) => {
  const job = projection.state.jobs.get(jobName)
  const latestExecution = job?.latestExecutionId === undefined ? undefined : projection.state.executions.get(job.latestExecutionId)
  return { job, latestExecution }
}

/** Adds writes to the batch and applies them to the projection at once, so the next event sees them. */
const write = (record: DeploymentRecord, projection: Projection, batch: Batch, writes: ReadonlyArray<JobRepo.JobWrite>) => {
  const applied = JobRepo.applyWrites(record.id, projection.state, writes)
  // The projection holds every job these writes name (preloaded); a refusal is a bug, not an input.
  if (Either.isLeft(applied)) throw applied.left
  batch.writes.push(...writes)
}

/**
 * Projects one reported release into its job, execution and log (SPEC 2.4 merge and execution rules).
 * Synchronous: what it reads was preloaded, what it writes goes to the batch.
 */
const project = (
  record: DeploymentRecord,
  region: Region,
  projection: Projection,
  batch: Batch,
  notice: Extract<HelmRelease.GateNotice, { _tag: "ReleaseReported" }>,
  at: number,
  executionId: string
) => {
  const incoming = Job.installJob({
    deploymentId: record.id,
    region,
    release: notice.name,
    dependsOn: notice.dependsOn,
    status: HelmRelease.jobStatusOf(notice.status.state)
  })
  const stored = cachedJob(projection, incoming.jobName)
  const observed = Job.observe({
    stored: stored.job,
    incoming: { ...incoming, displayName: Job.chartOf(notice.name) },
    latestExecution: stored.latestExecution,
    at,
    executionId
  })
  const writes: Array<JobRepo.JobWrite> = [JobRepo.JobWrite.Upsert({ job: observed.job })]
  const change = observed.change
  if (change._tag === "Started" || change._tag === "StartedAndFinished") {
    writes.push(JobRepo.JobWrite.Start({ jobName: incoming.jobName, executionId: change.execution.id, at: change.execution.startedAt }))
  }
  const executionOf = change._tag === "Unchanged" ? observed.job.latestExecutionId : change.execution.id
  const running = change._tag !== "Unchanged" || stored.latestExecution?.status === "running"
  if (executionOf !== undefined && running && notice.status.state !== "pending") {
    const prefix = notice.first ? "[observed] " : ""
    writes.push(
      JobRepo.JobWrite.Log({
        executionId: executionOf,
        lines: [
          {
            timestamp: at,
            level: logLevelOf(notice.status.state),
            message: `${prefix}[${notice.status.state}] ${notice.status.message || notice.name}`
          }
        ]
      })
    )
  }
  if (change._tag === "Finished" || change._tag === "StartedAndFinished") {
    writes.push(
      JobRepo.JobWrite.Finish({
        executionId: change.execution.id,
        status: change.execution.status === "failed" ? "failed" : "succeeded",
        at: change.execution.finishedAt ?? at
      })
    )
  }
  write(record, projection, batch, writes)
  const component = Job.appId(region, Job.chartOf(notice.name))
  batch.events.push({
    phase: "phase1",
    level: levelOf(notice.status.state),
    type: "component",
    component,
    state: notice.status.state,
    region: region.key,
    message: `${component}: ${notice.status.state}${notice.status.message === "" ? "" : ` — ${notice.status.message}`}`
  })
}

/** The install job a release event or log line is about. */
const jobNameOfRelease = (region: Region, release: string) => Job.installJobName(region, Job.chartOf(release))

/** A helm-controller log line goes to the running execution of its release's job, if there is one. */
const logLine = (
  record: DeploymentRecord,
  region: Region,
  projection: Projection,
  batch: Batch,
  event: Extract<ReleaseEvent, { _tag: "Log" }>
) => {
  if (event.release === undefined || event.message.trim() === "") return
  const { latestExecution } = cachedJob(projection, jobNameOfRelease(region, event.release))
  if (latestExecution === undefined || latestExecution.status !== "running") return
  write(record, projection, batch, [
    JobRepo.JobWrite.Log({
      executionId: latestExecution.id,
      lines: [{ timestamp: event.timestamp, level: event.level, message: event.message.trimEnd() }]
    })
  ])
}

/** Executions no job points at any more are never read again by this watch. */
const forgetFinishedExecutions = (projection: Projection) => {
  const latest = new Set<string>()
  for (const job of projection.state.jobs.values()) if (job.latestExecutionId !== undefined) latest.add(job.latestExecutionId)
  for (const id of projection.state.executions.keys()) if (!latest.has(id)) projection.state.executions.delete(id)
}

/** The most watch events stored as one batch. */
const maxBatch = 2000

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
  Effect.gen(function* () {
    const kubeconfig = yield* env.kubeconfigs
      .await(record.id, region.key)
      .pipe(
        (effect) => storeCall(env, `awaiting the kubeconfig of ${record.id}/${region.key}`, effect),
        Effect.timeoutOption(kubeconfigWait)
      )
    if (Option.isNone(kubeconfig)) {
      const minutes = Math.round(Duration.toMinutes(env.settings.kubeconfigArrivalTimeout))
      return {
        _tag: "NoKubeconfig",
        message:
          `The control plane of region ${region.key} never called back with its kubeconfig within ${minutes} min ` +
          `(PUT ${env.settings.publicUrl}/api/v1/deployments/${record.id}/kubeconfig?region=${region.key}); ` +
          `check that the URL is reachable from ${region.cloudRegion}. A late call-back re-attaches the region.`
      } satisfies RegionVerdict
    }
    const arrivals = yield* storeCall(
      env,
      `reading the kubeconfig arrivals of deployment ${record.id}`,
      env.kubeconfigs.arrivals(record.id)
    )
    const arrivedAt = arrivals.find((a) => a.regionKey === region.key)?.receivedAt
    yield* patchRegion(env, record.id, region.key, (r) => ({ ...r, ...(arrivedAt === undefined ? {} : { kubeconfigAt: arrivedAt }) }))
    return yield* attach(env, record, region, flow, kubeconfig.value)
  })

const attach = (env: Environment, record: DeploymentRecord, region: Region, flow: FlowPublisher, kubeconfig: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    // The gate and the projection belong to this watch's one fiber: plain state, read and written
    // synchronously for every event; only the end of a batch touches the store.
    let gate = HelmRelease.makeGate(gateOptions(env), yield* now)
    let lastHealth = ""
    const projection: Projection = { state: { jobs: new Map(), executions: new Map() }, loaded: new Set() }
    type Work = HelmRelease.GateNotice | Extract<ReleaseEvent, { _tag: "Log" }>
    /** Steps the gate; what it reports (and log lines) is projected afterwards, in the same order. */
    const feed = (work: Array<Work>, input: HelmRelease.GateInput) => {
      const { gate: next, notices } = HelmRelease.step(gate, input)
      gate = next
      work.push(...notices)
      return next.outcome !== undefined
    }
    const afterBatch = Effect.gen(function* () {
      yield* flow.publish
      const health = healthOf(gate)
      const key = JSON.stringify(health)
      if (key !== lastHealth) {
        lastHealth = key
        yield* patchRegion(env, record.id, region.key, (r) => ({ ...r, phase1: health }))
      }
    })
    // A batch of events is derived and projected in memory, then stored as one list of job writes
    // (one transaction) and one append of deployment events, however many events it held.
    const processBatch = (events: Chunk.Chunk<ReleaseEvent | "tick">) =>
      Effect.gen(function* () {
        const at = yield* now
        // First the gate, for every event (most of a busy watch's events change nothing and stop here).
        const work: Array<Work> = []
        let done = false
        for (const event of events) {
          if (done) break
          if (event === "tick") done = feed(work, HelmRelease.GateInput.Tick({ now: at }))
          else if (event._tag === "Log") work.push(event)
          else {
            const input = HelmRelease.gateInputOf(event, at)
            if (input !== undefined) done = feed(work, input)
          }
        }
        // Then the projection of what changed: the jobs it touches are read once per watch, and an
        // execution id is drawn for each reported release (each starts at most one execution).
        const reported = work.filter(
          (item): item is Extract<HelmRelease.GateNotice, { _tag: "ReleaseReported" }> => item._tag === "ReleaseReported"
        )
        const named = work.flatMap((item) =>
          item._tag === "ReleaseReported" ? [item.name] : item._tag === "Log" && item.release !== undefined ? [item.release] : []
        )
        yield* preload(
          env,
          record,
          projection,
          named.map((release) => jobNameOfRelease(region, release))
        )
        const ids = yield* Effect.all(reported.map(() => env.ids.executionId))
        let used = 0
        const batch: Batch = { writes: [], events: [] }
        for (const item of work) {
          if (item._tag === "ReleaseReported") project(record, region, projection, batch, item, at, ids[used++]!)
          else if (item._tag === "Log") logLine(record, region, projection, batch, item)
          else if (item._tag === "DeadlineDeferred") {
            batch.events.push({
              phase: "phase1",
              level: "info",
              type: "deadline-deferred",
              region: region.key,
              message: `Region ${region.key}: still installing (${item.installed}/${item.total}); the Phase-1 deadline is deferred`
            })
          }
        }
        if (batch.writes.length > 0)
          yield* storeCall(env, `recording the jobs of deployment ${record.id}`, env.jobs.record(record.id, batch.writes))
        if (batch.events.length > 0) yield* announce(env, record.id, batch.events)
        forgetFinishedExecutions(projection)
        yield* afterBatch
        return Chunk.of(done)
      })
    const events = env.watch.watch(kubeconfig, env.settings.watch).pipe(
      Stream.retry(
        Schedule.exponential(Duration.seconds(2)).pipe(
          Schedule.union(Schedule.spaced(Duration.minutes(1))),
          Schedule.whileInput((error: { isRetryable: boolean }) => error.isRetryable)
        )
      )
    )
    const ticks = Stream.tick(env.settings.gateTick).pipe(Stream.map(() => "tick" as const))
    // Whatever the watch delivered while the previous batch was being stored is taken as the next
    // batch (up to `maxBatch` events): under a burst the per-batch costs (a transaction, the flow
    // delta, the health patch) are paid once per batch, and an idle watch waits for nothing.
    const watched = yield* Effect.scoped(
      Effect.flatMap(Stream.toQueueOfElements(Stream.merge(events, ticks), { capacity: 2 * maxBatch }), (queue) =>
        Stream.fromQueue(queue, { maxChunkSize: maxBatch }).pipe(
          Stream.flattenExitOption,
          Stream.mapChunksEffect(processBatch),
          Stream.takeUntil((done) => done),
          Stream.runDrain
        )
      )
    ).pipe(Effect.either)
    if (watched._tag === "Left") {
      return {
        _tag: "WatchFailed",
        message: `Region ${region.key}: the cluster cannot be watched (${watched.left.reason}: ${watched.left.message}); check the kubeconfig and the API server's certificate, then retry.`
      } satisfies RegionVerdict
    }
    const outcome = gate.outcome
    if (outcome === undefined)
      return { _tag: "WatchFailed", message: `Region ${region.key}: the watch ended without an outcome; retry.` } satisfies RegionVerdict
    return { _tag: "Outcome", outcome } satisfies RegionVerdict
  })

const nextSteps = (record: DeploymentRecord) =>
  ` Fix the cause, then POST /api/v1/deployments/${record.id}/retry to watch again, or wipe the deployment.`

/** Records a secondary region's verdict as its health, with an event that says what happened and what to do. */
export const reportSecondary = (env: Environment, record: DeploymentRecord, region: Region, verdict: RegionVerdict) =>
  Effect.gen(function* () {
    if (verdict._tag === "Outcome" && verdict.outcome._tag === "Ready") {
      yield* announce(env, record.id, [
        { phase: "phase1", level: "info", type: "region-ready", region: region.key, message: `Region ${region.key} is ready` }
      ])
      return
    }
    const message =
      verdict._tag !== "Outcome"
        ? verdict.message
        : `Region ${region.key}: ${"message" in verdict.outcome ? verdict.outcome.message : "not ready"}`
    yield* patchRegion(env, record.id, region.key, (r) => ({
      ...r,
      phase1: {
        installed: r.phase1?.installed ?? 0,
        total: r.phase1?.total ?? 0,
        failed: r.phase1?.failed ?? 0,
        state: verdict._tag === "Outcome" && verdict.outcome._tag === "TimedOut" ? "degraded" : "failed"
      },
      error: message
    }))
    yield* announce(env, record.id, [
      {
        phase: "phase1",
        level: "error",
        type: "region-degraded",
        region: region.key,
        message: `${message}. The primary decides the deployment; this region is reported degraded.${nextSteps(record)}`
      }
    ])
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
        reportSecondary(env, record, region, verdict)
      ),
    { concurrency: "unbounded", discard: true }
  )

/**
 * Runs Phase 1 until the primary decides. Secondaries are watched alongside and keep being watched
 * after a ready outcome (by the ready phase); their health never changes the deployment's status.
 */
export const phase1 = (env: Environment, initial: DeploymentRecord, flow: FlowPublisher) =>
  Effect.gen(function* () {
    const record = yield* load(env, initial.id)
    const primary = regionsOf(record)[0]!
    // A process that died between Phase 0 and its DNS publication publishes now (best effort, in the background of the watch).
    const dns = record.results.dns === undefined ? publishDns(env, record.id, flow) : Effect.void
    const verdict = yield* Effect.raceFirst(
      watchRegion(env, record, primary, flow, env.settings.kubeconfigArrivalTimeout),
      Effect.zipRight(Effect.all([watchSecondaries(env, record, flow), dns], { concurrency: "unbounded", discard: true }), Effect.never)
    )
    const at = yield* now
    const outcomeName =
      verdict._tag === "Outcome"
        ? verdict.outcome._tag === "Ready"
          ? "ready"
          : verdict.outcome._tag === "Failed"
            ? "failed"
            : "timeout"
        : verdict._tag === "NoKubeconfig"
          ? "kubeconfig-missing"
          : "watcher-start-failed"
    const event =
      verdict._tag === "Outcome" ? phase1Event(verdict.outcome, primary.key) : StatusEvent.Phase1Failed({ reason: verdict.message })
    const withAdvice =
      event._tag === "Phase1Failed"
        ? StatusEvent.Phase1Failed({ reason: `${event.reason}.${nextSteps(record)}` })
        : event._tag === "Phase1TimedOut"
          ? StatusEvent.Phase1TimedOut({ reason: `${event.reason}.${nextSteps(record)}` })
          : event
    yield* applyStatus(env, record.id, withAdvice, (r) => ({ results: { ...r.results, phase1Outcome: outcomeName } }), [
      {
        at,
        phase: "phase1",
        level: outcomeName === "ready" ? "info" : "error",
        type: "phase1-outcome",
        region: primary.key,
        state: outcomeName,
        message: `Phase 1 of the primary region ${primary.key}: ${outcomeName}`
      }
    ])
  })
