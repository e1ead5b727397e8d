/** The job merge rules of SPEC 2.4, used by the in-memory JobRepo (delegates to `Job.merge` when present). */
import type { Job } from "../Job.js"

export const mergeJob = (previous: Job | undefined, next: Job): Job => {
  if (previous === undefined) return next
  const status = previous.status !== "pending" && next.status === "pending" ? previous.status : next.status
  const merged: { -readonly [K in keyof Job]: Job[K] } = {
    ...next,
    status,
    dependsOn: next.dependsOn.length > 0 ? next.dependsOn : previous.dependsOn,
    region: next.region !== "" ? next.region : previous.region
  }
  if (merged.startedAt === undefined && previous.startedAt !== undefined) merged.startedAt = previous.startedAt
  if (merged.finishedAt === undefined && previous.finishedAt !== undefined && (status === "succeeded" || status === "failed")) merged.finishedAt = previous.finishedAt
  if (merged.latestExecutionId === undefined && previous.latestExecutionId !== undefined) merged.latestExecutionId = previous.latestExecutionId
  if (merged.displayName === undefined && previous.displayName !== undefined) merged.displayName = previous.displayName
  if (merged.appId === undefined && previous.appId !== undefined) merged.appId = previous.appId
  if (merged.startedAt !== undefined && merged.finishedAt !== undefined) merged.durationMs = Math.max(0, merged.finishedAt - merged.startedAt)
  return merged
}
