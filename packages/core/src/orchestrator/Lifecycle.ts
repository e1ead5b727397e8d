/** The lifecycle jobs in the store: planned at every run's start, executions a stopped process left closed, one step run as one execution. */
import { Effect, Option } from "effect"
import type { DeploymentRecord } from "../DeploymentRepo.js"
import * as Job from "../Job.js"
import { JobWrite } from "../JobRepo.js"
import * as Lifecycle from "../Lifecycle.js"
import { now, regionsOf, type Environment, type FlowPublisher } from "./Environment.js"
import { storeCall } from "./StoreWait.js"

export const capabilitiesOf = (env: Environment): Lifecycle.Capabilities => ({
  dns: Option.isSome(env.dns),
  mesh: Option.isSome(env.mesh),
  access: Option.isSome(env.access)
})

// The lifecycle's store calls go through these two: a store outage is waited out (`storeCall`).
export const record = (env: Environment, id: string, writes: ReadonlyArray<JobWrite>) =>
  writes.length === 0 ? Effect.void : storeCall(env, `recording the jobs of deployment ${id}`, env.jobs.record(id, writes))

export const jobsOf = (env: Environment, id: string) => storeCall(env, `reading the jobs of deployment ${id}`, env.jobs.list(id))

/** What a lifecycle execution left running by a stopped process amounts to, from what the record says was done. */
const outcomeAfterRestart = (record: DeploymentRecord, step: Lifecycle.Step): { status: "succeeded" | "failed"; message: string } => {
  if (step === "cutover-dns" && record.results.dns !== undefined) {
    return { status: "succeeded", message: "DNS was published before the server stopped (the deployment's results say so)" }
  }
  if (step === "handover-token" && record.results.handoverAt !== undefined) {
    return { status: "succeeded", message: "the handover was announced before the server stopped (the deployment's results say so)" }
  }
  return { status: "failed", message: "interrupted: the server stopped before this step finished; it runs again" }
}

/** When the deployment's results say a step was done (DNS published, handover announced). */
const doneBefore = (record: DeploymentRecord, step: Lifecycle.Step): number | undefined =>
  step === "cutover-dns" ? record.results.dns?.at : step === "handover-token" ? record.results.handoverAt : undefined

/**
 * At the start of every run: the planned lifecycle jobs are stored (`pending`; a job the failure
 * cascade failed before it ever ran waits again), and every lifecycle execution still `running` is
 * finished, so nothing a stopped process left behind stays running (the step itself runs again).
 */
export const prepare = (env: Environment, deployment: DeploymentRecord, flow: FlowPublisher, options: { readonly plan: boolean }) =>
  Effect.gen(function* () {
    const stored = yield* jobsOf(env, deployment.id)
    const byName = new Map(stored.map((job) => [job.jobName, job]))
    const at = yield* now
    const writes: Array<JobWrite> = []
    for (const job of stored) {
      const step = Lifecycle.stepOf(job.jobName)
      if (step === undefined || job.status !== "running" || job.latestExecutionId === undefined) continue
      const outcome = outcomeAfterRestart(deployment, step)
      writes.push(
        Lifecycle.logWrite(job.latestExecutionId, at, outcome.status === "failed" ? "WARN" : "INFO", outcome.message),
        ...Lifecycle.finishWrites(
          job,
          job.latestExecutionId,
          outcome.status,
          at,
          outcome.status === "failed" ? "interrupted by a restart of the server" : undefined
        )
      )
    }
    if (options.plan) {
      for (const job of Lifecycle.planned(deployment.id, regionsOf(deployment), capabilitiesOf(env))) {
        const existing = byName.get(job.jobName)
        const neverRan =
          existing !== undefined &&
          existing.status === "failed" &&
          existing.startedAt === undefined &&
          existing.latestExecutionId === undefined
        const doneAt = existing === undefined ? doneBefore(deployment, Lifecycle.stepOf(job.jobName)!) : undefined
        if (doneAt !== undefined) {
          // A deployment from before its steps were jobs: what its results say was done shows as done.
          const executionId = yield* env.ids.executionId
          writes.push(
            ...Lifecycle.startWrites(job, executionId, doneAt),
            Lifecycle.logWrite(
              executionId,
              doneAt,
              "INFO",
              "done before this step was recorded as a job (the deployment's results say so)"
            ),
            ...Lifecycle.finishWrites(job, executionId, "succeeded", doneAt)
          )
        } else if (existing === undefined || neverRan) {
          writes.push(JobWrite.Upsert({ job }))
        }
      }
    }
    if (writes.length === 0) return
    yield* record(env, deployment.id, writes)
    yield* flow.publish
  })

/**
 * When a deployment ends `failed` or `partial-failure`, the lifecycle jobs that never ran will not
 * run either (until a retry, which plans them again): they are failed with the reason, so the flow
 * ends too, instead of waiting for ever.
 */
export const abandon = (env: Environment, deployment: DeploymentRecord, flow: FlowPublisher) =>
  Effect.gen(function* () {
    const stored = yield* jobsOf(env, deployment.id)
    const at = yield* now
    const writes = stored
      .filter((job) => Lifecycle.stepOf(job.jobName) !== undefined && job.status === "pending")
      .map((job) =>
        JobWrite.Upsert({
          job: { ...job, status: "failed", finishedAt: at, reason: `not run: the deployment is ${deployment.status}; a retry runs it` }
        })
      )
    if (writes.length === 0) return
    yield* record(env, deployment.id, writes)
    yield* flow.publish
  })

/** Finishes, `failed` with `message`, every running execution of the lifecycle jobs `which` selects (best effort: on the way out). */
export const closeRunning = (env: Environment, id: string, which: (job: Job.Job) => boolean, message: string) =>
  Effect.gen(function* () {
    const stored = yield* jobsOf(env, id)
    const at = yield* now
    const writes = stored.flatMap((job) =>
      job.status === "running" && job.latestExecutionId !== undefined && Lifecycle.stepOf(job.jobName) !== undefined && which(job)
        ? [
            Lifecycle.logWrite(job.latestExecutionId, at, "WARN", message),
            ...Lifecycle.finishWrites(job, job.latestExecutionId, "failed", at, "interrupted")
          ]
        : []
    )
    yield* record(env, id, writes)
  }).pipe(Effect.catchAllCause(() => Effect.void))

export interface StepLog {
  readonly info: (message: string) => Effect.Effect<void>
  readonly warn: (message: string) => Effect.Effect<void>
  readonly error: (message: string) => Effect.Effect<void>
}

export interface StepOutcome {
  readonly status: "succeeded" | "failed"
  /** Why, when it is not self-evident (a failure; a success with warnings). */
  readonly reason?: string | undefined
}

/**
 * Runs one lifecycle step as a new execution of its job: `running` (published), the step's log
 * lines, then its outcome (published). Interrupted (a wipe, the owner finalising, a shutdown), the
 * execution is finished `failed` on the way out, so no execution of this process stays running.
 */
export const runStep = <R>(
  env: Environment,
  deployment: DeploymentRecord,
  flow: FlowPublisher,
  job: Job.Job,
  body: (log: StepLog) => Effect.Effect<StepOutcome, never, R>
): Effect.Effect<StepOutcome, never, R> =>
  Effect.gen(function* () {
    const executionId = yield* env.ids.executionId
    const startedAt = yield* now
    yield* record(env, deployment.id, Lifecycle.startWrites(job, executionId, startedAt))
    yield* flow.publish
    const line = (level: Job.LogLevel) => (message: string) =>
      Effect.flatMap(now, (at) => record(env, deployment.id, [Lifecycle.logWrite(executionId, at, level, message)]))
    const log: StepLog = { info: line("INFO"), warn: line("WARN"), error: line("ERROR") }
    const interrupted = Effect.flatMap(now, (at) =>
      record(env, deployment.id, [
        Lifecycle.logWrite(
          executionId,
          at,
          "WARN",
          "interrupted before it finished (the deployment changed status or the server is stopping)"
        ),
        ...Lifecycle.finishWrites(job, executionId, "failed", at, "interrupted")
      ])
    ).pipe(Effect.catchAllCause(() => Effect.void))
    const outcome = yield* Effect.onInterrupt(body(log), () => interrupted)
    const finishedAt = yield* now
    yield* record(env, deployment.id, Lifecycle.finishWrites(job, executionId, outcome.status, finishedAt, outcome.reason))
    yield* flow.publish
    return outcome
  })

/** The finalisation as a job, once: recorded by the run that finds the deployment `adopted`. */
export const recordFinalise = (env: Environment, deployment: DeploymentRecord, flow: FlowPublisher) =>
  Effect.gen(function* () {
    const primary = regionsOf(deployment)[0]!
    const job = Lifecycle.job({ deploymentId: deployment.id, region: primary, step: "handover-finalise" })
    const stored = yield* jobsOf(env, deployment.id)
    if (stored.some((found) => found.jobName === job.jobName && found.status === "succeeded")) return
    const executionId = yield* env.ids.executionId
    const at = deployment.adoptedAt ?? (yield* now)
    yield* record(env, deployment.id, [
      ...Lifecycle.startWrites(job, executionId, at),
      Lifecycle.logWrite(
        executionId,
        at,
        "INFO",
        `${deployment.owner} finalised the deployment: it is adopted, and Sovereign changes nothing of it any more`
      ),
      ...Lifecycle.finishWrites(job, executionId, "succeeded", at)
    ])
    yield* flow.publish
  })
