/** The job store port: jobs merged by the rules of SPEC 2.4, their executions and log lines (SPEC §6). */
import { Context, Data, Either, Schema } from "effect"
import type { Effect, Option } from "effect"
import type { DeploymentId } from "./Deployment.js"
import { Execution, finishExecution, Job, jobId, jobNameOf, LogLevel, LogLine, merge } from "./Job.js"
import { UnixMillis } from "./Time.js"

/** `Fenced`: made under a stale lease epoch (`Leases`); nothing was written. */
export const JobRepoErrorReason = Schema.Literal("NotFound", "Invalid", "Conflict", "Unavailable", "Unknown", "Fenced")

export class JobRepoError extends Schema.TaggedError<JobRepoError>()("JobRepoError", {
  reason: JobRepoErrorReason,
  message: Schema.String,
  /** What the driver said (an SQL error with its SQLSTATE, a decode error): kept for the log, never shown to API clients. */
  cause: Schema.optional(Schema.Defect)
}) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

export const JobWithExecutions = Schema.Struct({
  job: Job,
  /** Newest start first. */
  executions: Schema.Array(Execution)
})
export type JobWithExecutions = typeof JobWithExecutions.Type

export const NewLogLine = Schema.Struct({ timestamp: UnixMillis, level: LogLevel, message: Schema.String })
export type NewLogLine = typeof NewLogLine.Type

export const LogPage = Schema.Struct({
  lines: Schema.Array(LogLine),
  total: Schema.Number,
  executionFinished: Schema.Boolean
})
export type LogPage = typeof LogPage.Type

/**
 * One change to a deployment's jobs, with exactly the meaning of the single-call methods below
 * (`upsert`, `startExecution`, `appendLog`, `finishExecution`). `record` applies a list of them in
 * order, atomically: Phase 1 turns a whole chunk of release events into one such list.
 */
export type JobWrite = Data.TaggedEnum<{
  Upsert: { readonly job: Job }
  Start: { readonly jobName: string; readonly executionId: string; readonly at: number }
  Log: { readonly executionId: string; readonly lines: ReadonlyArray<NewLogLine> }
  Finish: { readonly executionId: string; readonly status: "succeeded" | "failed"; readonly at: number }
}>
export const JobWrite = Data.taggedEnum<JobWrite>()

/** The stored jobs (by job name) and executions (by id) a list of writes reads; `applyWrites` updates it in place. */
export interface JobWriteState {
  readonly jobs: Map<string, Job>
  readonly executions: Map<string, Execution>
}

/** What applying writes changed: the jobs and executions to store, and the log lines to append. */
export interface JobWriteResult {
  readonly jobs: ReadonlyArray<Job>
  readonly executions: ReadonlyArray<Execution>
  readonly lines: ReadonlyArray<{ readonly executionId: string; readonly line: LogLine }>
}

/** The executions a list of writes refers to without starting them itself: a store reads these (and their jobs) first. */
export const executionsReadBy = (writes: ReadonlyArray<JobWrite>): ReadonlyArray<string> => {
  const started = new Set<string>()
  const read = new Set<string>()
  for (const write of writes) {
    if (write._tag === "Start") started.add(write.executionId)
    else if ((write._tag === "Log" || write._tag === "Finish") && !started.has(write.executionId)) read.add(write.executionId)
  }
  return [...read]
}

/** The job names a list of writes refers to, given the executions it reads (their jobs are touched too). */
export const jobNamesReadBy = (
  deploymentId: DeploymentId,
  writes: ReadonlyArray<JobWrite>,
  executions: Iterable<Execution>
): ReadonlyArray<string> => {
  const names = new Set<string>()
  for (const write of writes) {
    if (write._tag === "Upsert") names.add(write.job.jobName)
    else if (write._tag === "Start") names.add(write.jobName)
  }
  for (const execution of executions) names.add(jobNameOf(deploymentId, execution.jobId))
  return [...names]
}

const notFound = (deploymentId: string, what: string) =>
  new JobRepoError({ reason: "NotFound", message: `${what} not found in deployment ${deploymentId}` })

/**
 * The one definition of what each write does, for every store: folds `writes` over `state` (which
 * must hold every job and execution they touch, as read from the store) and returns what to persist.
 * A write naming a job or execution that does not exist fails the whole list with `NotFound`.
 */
export const applyWrites = (
  deploymentId: DeploymentId,
  state: JobWriteState,
  writes: ReadonlyArray<JobWrite>
): Either.Either<JobWriteResult, JobRepoError> => {
  const jobs = new Map<string, Job>()
  const executions = new Map<string, Execution>()
  const lines: Array<{ readonly executionId: string; readonly line: LogLine }> = []
  const setJob = (job: Job) => {
    state.jobs.set(job.jobName, job)
    jobs.set(job.jobName, job)
  }
  const setExecution = (execution: Execution) => {
    state.executions.set(execution.id, execution)
    executions.set(execution.id, execution)
  }
  const executionOf = (id: string) => {
    const execution = state.executions.get(id)
    return execution !== undefined && execution.deploymentId === deploymentId ? execution : undefined
  }
  for (const write of writes) {
    switch (write._tag) {
      case "Upsert": {
        const incoming = write.job
        setJob(
          merge(state.jobs.get(incoming.jobName), {
            ...incoming,
            id: jobId(incoming.deploymentId, incoming.jobName),
            dependsOn: incoming.dependsOn ?? []
          })
        )
        break
      }
      case "Start": {
        const job = state.jobs.get(write.jobName)
        if (job === undefined) return Either.left(notFound(deploymentId, `job ${write.jobName}`))
        setExecution({ id: write.executionId, jobId: job.id, deploymentId, status: "running", startedAt: write.at, lineCount: 0 })
        const { finishedAt: _finishedAt, ...rest } = job
        setJob({ ...rest, status: "running", startedAt: job.startedAt ?? write.at, durationMs: 0, latestExecutionId: write.executionId })
        break
      }
      case "Log": {
        const execution = executionOf(write.executionId)
        if (execution === undefined) return Either.left(notFound(deploymentId, `execution ${write.executionId}`))
        write.lines.forEach((line, index) =>
          lines.push({ executionId: execution.id, line: { ...line, lineNumber: execution.lineCount + index + 1 } })
        )
        if (write.lines.length > 0) setExecution({ ...execution, lineCount: execution.lineCount + write.lines.length })
        break
      }
      case "Finish": {
        const execution = executionOf(write.executionId)
        if (execution === undefined) return Either.left(notFound(deploymentId, `execution ${write.executionId}`))
        if (execution.status !== "running") break
        setExecution(finishExecution(execution, write.status, write.at))
        const jobName = jobNameOf(deploymentId, execution.jobId)
        const job = state.jobs.get(jobName)
        if (job !== undefined) {
          setJob({
            ...job,
            status: write.status,
            finishedAt: write.at,
            durationMs: job.startedAt === undefined ? 0 : Math.max(0, write.at - job.startedAt)
          })
        }
        break
      }
    }
  }
  return Either.right({ jobs: [...jobs.values()], executions: [...executions.values()], lines })
}

export interface JobRepoService {
  /**
   * Inserts the job or merges it into the stored one with `Job.merge` (SPEC 2.4: the new status
   * wins; empty dependsOn/region/startedAt never erase stored ones; a started job never returns to
   * `pending`). Read-merge-write is atomic per job. Returns the stored result.
   */
  readonly upsert: (job: Job) => Effect.Effect<Job, JobRepoError>
  /** Several upserts in one transaction (e.g. Phase-0 jobs seeded up front). */
  readonly upsertMany: (jobs: ReadonlyArray<Job>) => Effect.Effect<ReadonlyArray<Job>, JobRepoError>
  /** Every stored job of the deployment, ordered by jobName (the flow graph orders them itself). */
  readonly list: (deploymentId: DeploymentId) => Effect.Effect<ReadonlyArray<Job>, JobRepoError>
  /** By full id (`<dep>:<jobName>`) or bare job name. */
  readonly get: (deploymentId: DeploymentId, jobNameOrId: string) => Effect.Effect<Option.Option<JobWithExecutions>, JobRepoError>
  /**
   * Appends a `running` execution with the given id and, on the job, sets `status = running`,
   * `startedAt` (when unset) and `latestExecutionId`, atomically. The job must exist (`NotFound`).
   */
  readonly startExecution: (
    deploymentId: DeploymentId,
    jobName: string,
    executionId: string,
    at: number
  ) => Effect.Effect<Execution, JobRepoError>
  /**
   * Finishes an execution (`succeeded`/`failed`) and sets the job's status, `finishedAt` and
   * `durationMs`, atomically. Finishing an already finished execution is a no-op (idempotent).
   */
  readonly finishExecution: (
    deploymentId: DeploymentId,
    executionId: string,
    status: "succeeded" | "failed",
    at: number
  ) => Effect.Effect<void, JobRepoError>
  /** Appends lines numbered `lineCount + 1 …`; unknown execution → `NotFound`. */
  readonly appendLog: (
    deploymentId: DeploymentId,
    executionId: string,
    lines: ReadonlyArray<NewLogLine>
  ) => Effect.Effect<void, JobRepoError>
  /** `fromLine` ≤ 0 → 1; `limit` ≤ 0 → 500, capped at 5000. */
  readonly logs: (deploymentId: DeploymentId, executionId: string, fromLine: number, limit: number) => Effect.Effect<LogPage, JobRepoError>
  /**
   * Applies the writes in order, all or nothing (`applyWrites` defines each). A write naming a job or
   * execution that does not exist fails the whole list with `NotFound`, and nothing is stored.
   */
  readonly record: (deploymentId: DeploymentId, writes: ReadonlyArray<JobWrite>) => Effect.Effect<void, JobRepoError>
  /** Removes every job, execution and log line of a deployment. Idempotent. */
  readonly remove: (deploymentId: DeploymentId) => Effect.Effect<void, JobRepoError>
}

export class JobRepo extends Context.Tag("@sovereign/core/JobRepo")<JobRepo, JobRepoService>() {}
