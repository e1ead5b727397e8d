/** The job store port: jobs merged by the rules of SPEC 2.4, their executions and log lines (SPEC §6). */
import { Context, Schema } from "effect"
import type { Effect, Option } from "effect"
import type { DeploymentId } from "./Deployment.js"
import { Execution, Job, LogLevel, LogLine } from "./Job.js"

export const JobRepoErrorReason = Schema.Literal("NotFound", "Invalid", "Unavailable", "Unknown")

export class JobRepoError extends Schema.TaggedError<JobRepoError>()("JobRepoError", {
  reason: JobRepoErrorReason,
  message: Schema.String
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

export const NewLogLine = Schema.Struct({ timestamp: Schema.Number, level: LogLevel, message: Schema.String })
export type NewLogLine = typeof NewLogLine.Type

export const LogPage = Schema.Struct({
  lines: Schema.Array(LogLine),
  total: Schema.Number,
  executionFinished: Schema.Boolean
})
export type LogPage = typeof LogPage.Type

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
  readonly appendLog: (deploymentId: DeploymentId, executionId: string, lines: ReadonlyArray<NewLogLine>) => Effect.Effect<void, JobRepoError>
  /** `fromLine` ≤ 0 → 1; `limit` ≤ 0 → 500, capped at 5000. */
  readonly logs: (deploymentId: DeploymentId, executionId: string, fromLine: number, limit: number) => Effect.Effect<LogPage, JobRepoError>
  /** Removes every job, execution and log line of a deployment. Idempotent. */
  readonly remove: (deploymentId: DeploymentId) => Effect.Effect<void, JobRepoError>
}

export class JobRepo extends Context.Tag("@sovereign/core/JobRepo")<JobRepo, JobRepoService>() {}
