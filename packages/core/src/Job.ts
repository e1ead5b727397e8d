/** Jobs: the units of work shown to an operator (SPEC 2.4). */
import { Schema } from "effect"

export const JobStatus = Schema.Literal("pending", "running", "succeeded", "failed")
export type JobStatus = typeof JobStatus.Type

export const JobType = Schema.Literal("install", "group")
export type JobType = typeof JobType.Type

export const Job = Schema.Struct({
  /** `<deploymentId>:<jobName>` */
  id: Schema.String,
  deploymentId: Schema.String,
  jobName: Schema.String,
  displayName: Schema.optional(Schema.String),
  type: JobType,
  appId: Schema.optional(Schema.String),
  /** Region key; every job of a region carries it, groups of no region carry "". */
  region: Schema.String,
  /** A job id or "". */
  parentId: Schema.String,
  /** Canonical job names, within the job's own region; never null. */
  dependsOn: Schema.Array(Schema.String),
  status: JobStatus,
  /** Unix milliseconds. */
  startedAt: Schema.optional(Schema.Number),
  finishedAt: Schema.optional(Schema.Number),
  durationMs: Schema.Number,
  latestExecutionId: Schema.optional(Schema.String)
})
export type Job = typeof Job.Type

export const LogLevel = Schema.Literal("DEBUG", "INFO", "WARN", "ERROR")
export type LogLevel = typeof LogLevel.Type

export const LogLine = Schema.Struct({
  lineNumber: Schema.Number,
  /** Unix milliseconds. */
  timestamp: Schema.Number,
  level: LogLevel,
  message: Schema.String
})
export type LogLine = typeof LogLine.Type

export const Execution = Schema.Struct({
  id: Schema.String,
  jobId: Schema.String,
  deploymentId: Schema.String,
  status: Schema.Literal("running", "succeeded", "failed"),
  startedAt: Schema.Number,
  finishedAt: Schema.optional(Schema.Number),
  lineCount: Schema.Number
})
export type Execution = typeof Execution.Type
