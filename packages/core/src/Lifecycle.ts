/**
 * The steps the orchestrator takes after Phase 0 as jobs (SPEC 2.4, 2.5): their names, phases and
 * dependencies, the jobs a deployment plans, and how the level-triggered mesh shows in its jobs.
 */
import { Duration } from "effect"
import type { Region } from "./Deployment.js"
import * as Job from "./Job.js"
import { JobWrite } from "./JobRepo.js"
import type { MeshRegionStatus } from "./MeshPlan.js"

/**
 * The lifecycle steps. Each is a job named like a Phase-0 step: `<step>` in the primary region,
 * `<regionKey>:<step>` in a secondary (only the per-region ones exist there).
 */
export type Step = "cutover-dns" | "cutover-mesh" | "handover-token" | "handover-access" | "handover-finalise"

interface Definition {
  readonly phase: Job.Phase
  readonly displayName: string
  /** One job per region (primary and secondaries alike), or one for the deployment, in the primary region. */
  readonly perRegion: boolean
  /** What the step waits for, in its own region: a phase (that region's group of it) or another step. */
  readonly after: Job.Phase | Step
}

const definitions: Readonly<Record<Step, Definition>> = {
  "cutover-dns": { phase: "cutover", displayName: "Publish DNS", perRegion: false, after: "provisioner" },
  "cutover-mesh": { phase: "cutover", displayName: "ClusterMesh", perRegion: true, after: "bootstrap-kit" },
  "handover-token": { phase: "handover", displayName: "Handover", perRegion: false, after: "bootstrap-kit" },
  "handover-access": { phase: "handover", displayName: "Owner access", perRegion: true, after: "provisioner" },
  "handover-finalise": { phase: "handover", displayName: "Finalise", perRegion: false, after: "handover-token" }
}

export const steps: ReadonlyArray<Step> = ["cutover-dns", "cutover-mesh", "handover-token", "handover-access", "handover-finalise"]

const stepNames: ReadonlySet<string> = new Set(steps)

/** `cutover-mesh` (primary) or `hel1-1:cutover-mesh` (secondary). */
export const jobName = (region: Job.RegionRef, step: Step): string => Job.stepJobName(region, step)

/** The lifecycle step a job name is, if it is one. */
export const stepOf = (name: string): Step | undefined => {
  const colon = name.lastIndexOf(":")
  const bare = colon < 0 ? name : name.slice(colon + 1)
  return stepNames.has(bare) ? steps.find((step) => step === bare) : undefined
}

/**
 * The job of one step in one region, `pending`: parent the phase group, and the one dependency the
 * step waits for in that region (`provisioner` / `hel1-1:bootstrap-kit`: the region's group of
 * that phase, drawn as one edge from the group; or `handover-token`).
 */
export const job = (options: { readonly deploymentId: string; readonly region: Job.RegionRef; readonly step: Step }): Job.Job => {
  const definition = definitions[options.step]
  const name = jobName(options.region, options.step)
  return {
    id: Job.jobId(options.deploymentId, name),
    deploymentId: options.deploymentId,
    jobName: name,
    displayName: definition.displayName,
    type: "install",
    region: options.region.key,
    parentId: Job.jobId(options.deploymentId, definition.phase),
    dependsOn: Job.canonicalDependsOn(options.deploymentId, name, [definition.after]),
    status: "pending",
    durationMs: 0
  }
}

/** Which optional steps the orchestrator can take: the ports it was given. */
export interface Capabilities {
  readonly dns: boolean
  readonly mesh: boolean
  readonly access: boolean
}

/**
 * The lifecycle jobs a deployment plans from the start, all `pending`: DNS (with a DnsProvider),
 * the mesh of every region (2+ regions and a MeshProvider), the handover, and the owner's access
 * in every region (with a ClusterAccess). Finalisation is not planned: it is the owner's decision,
 * and its job appears when the owner finalises.
 */
export const planned = (deploymentId: string, regions: ReadonlyArray<Region>, capabilities: Capabilities): ReadonlyArray<Job.Job> => {
  const primary = regions[0]
  if (primary === undefined) return []
  const jobs: Array<Job.Job> = []
  if (capabilities.dns) jobs.push(job({ deploymentId, region: primary, step: "cutover-dns" }))
  if (capabilities.mesh && regions.length >= 2) for (const region of regions) jobs.push(job({ deploymentId, region, step: "cutover-mesh" }))
  jobs.push(job({ deploymentId, region: primary, step: "handover-token" }))
  if (capabilities.access) for (const region of regions) jobs.push(job({ deploymentId, region, step: "handover-access" }))
  return jobs
}

// ---------------------------------------------------------------------------------------------
// Writes

/** A write list that starts a new execution of `job` (with `reason`, or none). */
export const startWrites = (job: Job.Job, executionId: string, at: number, reason?: string): Array<JobWrite> => {
  const { reason: _reason, finishedAt: _finishedAt, ...rest } = job
  return [
    JobWrite.Upsert({ job: { ...rest, status: "running", ...(reason === undefined ? {} : { reason }) } }),
    JobWrite.Start({ jobName: job.jobName, executionId, at })
  ]
}

/**
 * A write list that finishes the running execution `executionId` of `job`. A reason given explains
 * the outcome; without one, the reason of the running job goes (a merge keeps a reason only while
 * the status it explains lasts).
 */
export const finishWrites = (
  job: Job.Job,
  executionId: string,
  status: "succeeded" | "failed",
  at: number,
  reason?: string
): Array<JobWrite> => {
  const { reason: _reason, ...rest } = job
  return [
    JobWrite.Upsert({ job: { ...rest, status, finishedAt: at, ...(reason === undefined ? {} : { reason }) } }),
    JobWrite.Finish({ executionId, status, at })
  ]
}

export const logWrite = (executionId: string, at: number, level: Job.LogLevel, message: string): JobWrite =>
  JobWrite.Log({ executionId, lines: [{ timestamp: at, level, message }] })

// ---------------------------------------------------------------------------------------------
// The mesh, level-triggered, as jobs

/** What one pass tells about one region's mesh. */
export type MeshObservation =
  /** Every peer configured both ways. `changed`: the region's report differs from the last one stored. */
  | { readonly _tag: "Meshed"; readonly summary: string; readonly changed: boolean }
  /** Not meshed yet; retried with backoff. */
  | { readonly _tag: "Retrying"; readonly reason: string }
  /** Will not be meshed as things stand (its bootstrap kit did not converge; no region to mesh with). */
  | { readonly _tag: "Excluded"; readonly reason: string }

/** What the mesh loop remembers of one region's job during one run. */
export interface MeshMemory {
  /** Failing passes in a row within the current execution. */
  readonly failures: number
}

/**
 * How many failing passes in a row the mesh's execution of a region lasts before it is `failed`:
 * the passes the backoff needs to grow from `base` to `cap` (4 with 15 s and 2 min), so an
 * execution fails once retrying with backoff is over and only the capped re-checks remain.
 */
export const meshAttempts = (base: Duration.Duration, cap: Duration.Duration): number => {
  const ratio = Duration.toMillis(cap) / Math.max(1, Duration.toMillis(base))
  return 1 + Math.max(0, Math.ceil(Math.log2(Math.max(1, ratio))))
}

/**
 * One pass's effect on a region's mesh job. A job shows each run of the mesh that did something:
 *
 * - the first pass that reaches a region starts an execution; a `Meshed` pass finishes it
 *   `succeeded`; `Retrying` passes keep it `running` with the problem as its reason (a log line
 *   each time the problem changes), and after `attempts` of them in a row it is finished `failed`;
 * - after that the loop keeps checking (backoff, then a heal pass every few minutes): a pass that
 *   finds nothing new adds nothing, so an idle heal never grows the job's history; a pass that
 *   finds the region broken again, or meshed again after a failure, or meshed with a changed report
 *   (a peer joined, an address moved) starts a new execution;
 * - `Excluded` fails the job without an execution (it never ran), like a failed dependency.
 *
 * `memory` is undefined for the first pass of a run: a job left failed by an earlier run gets one
 * fresh execution per run, so a restart retries visibly.
 */
export const meshStep = (input: {
  readonly job: Job.Job
  readonly observation: MeshObservation
  readonly memory: MeshMemory | undefined
  readonly attempts: number
  readonly at: number
  /** The id for a new execution, if one starts. */
  readonly executionId: string
}): { readonly writes: ReadonlyArray<JobWrite>; readonly memory: MeshMemory } => {
  const { job: stored, observation, at, executionId } = input
  const open = stored.status === "running" && stored.latestExecutionId !== undefined ? stored.latestExecutionId : undefined
  switch (observation._tag) {
    case "Meshed": {
      const memory = { failures: 0 }
      if (open !== undefined) {
        return { memory, writes: [logWrite(open, at, "INFO", observation.summary), ...finishWrites(stored, open, "succeeded", at)] }
      }
      if (stored.status === "succeeded" && !observation.changed) return { memory, writes: [] }
      const message =
        stored.status === "succeeded"
          ? `Changed: ${observation.summary}`
          : stored.status === "failed" && stored.startedAt !== undefined
            ? `Healed: ${observation.summary}`
            : observation.summary
      return {
        memory,
        writes: [
          ...startWrites(stored, executionId, at),
          logWrite(executionId, at, "INFO", message),
          ...finishWrites(stored, executionId, "succeeded", at)
        ]
      }
    }
    case "Retrying": {
      const failures = (input.memory?.failures ?? 0) + 1
      const giveUp = (execution: string) => [
        logWrite(
          execution,
          at,
          "ERROR",
          `Still not meshed after ${failures} passes: ${observation.reason}. The mesh keeps checking and a new run starts when it changes.`
        ),
        ...finishWrites(stored, execution, "failed", at, observation.reason)
      ]
      if (open !== undefined) {
        const writes: Array<JobWrite> = []
        if (stored.reason !== observation.reason) {
          writes.push(
            JobWrite.Upsert({ job: { ...stored, reason: observation.reason } }),
            logWrite(open, at, "WARN", `Not meshed yet (pass ${failures}), retrying with backoff: ${observation.reason}`)
          )
        }
        if (failures >= input.attempts) writes.push(...giveUp(open))
        return { memory: { failures }, writes }
      }
      if (stored.status === "failed" && input.memory !== undefined) {
        // Still broken: the reason follows the problem; no new execution until something changes.
        return {
          memory: { failures },
          writes: stored.reason === observation.reason ? [] : [JobWrite.Upsert({ job: { ...stored, reason: observation.reason } })]
        }
      }
      const started = [
        ...startWrites(stored, executionId, at, observation.reason),
        logWrite(executionId, at, "WARN", `Not meshed yet (pass 1), retrying with backoff: ${observation.reason}`)
      ]
      return { memory: { failures: 1 }, writes: input.attempts <= 1 ? [...started, ...giveUp(executionId)] : started }
    }
    case "Excluded": {
      const memory = { failures: 0 }
      if (open !== undefined) {
        return {
          memory,
          writes: [logWrite(open, at, "ERROR", observation.reason), ...finishWrites(stored, open, "failed", at, observation.reason)]
        }
      }
      if (stored.status === "failed" && stored.reason === observation.reason) return { memory, writes: [] }
      const { reason: _reason, ...rest } = stored
      return { memory, writes: [JobWrite.Upsert({ job: { ...rest, status: "failed", finishedAt: at, reason: observation.reason } })] }
    }
  }
}

/** The part of a region's mesh report that says whether something changed (not the time of the pass). */
export const meshFingerprint = (status: MeshRegionStatus | undefined): string => {
  if (status === undefined) return ""
  const { readyAt: _readyAt, ...rest } = status
  return JSON.stringify(rest)
}

/** `2/2 peers configured: t1-hel (203.0.113.7), t1-nbg (203.0.113.9)`. */
export const meshSummary = (status: MeshRegionStatus): string => {
  const configured = status.peers.filter((peer) => peer.configured)
  const names = configured.map((peer) => (peer.loadBalancerIP === undefined ? peer.name : `${peer.name} (${peer.loadBalancerIP})`))
  return `${configured.length}/${status.peers.length} peers configured${names.length > 0 ? `: ${names.join(", ")}` : ""}`
}

/** Why a region is not meshed: its own error, else each unconfigured peer with its error (`t1-hel: peer LB IP absent`). */
export const meshReason = (status: MeshRegionStatus): string => {
  if (status.error !== undefined) return status.error
  const missing = status.peers.filter((peer) => !peer.configured)
  if (missing.length === 0) return "no peer region reported"
  return missing.map((peer) => `${peer.name}: ${peer.error ?? "not configured"}`).join("; ")
}

/** A region's report as an observation: meshed when it has no error and every one of `peerCount` peers is configured. */
export const meshObservationOf = (
  status: MeshRegionStatus | undefined,
  peerCount: number,
  previous: MeshRegionStatus | undefined
): MeshObservation => {
  if (status === undefined) return { _tag: "Retrying", reason: "the mesh reported nothing for this region" }
  const meshed = status.error === undefined && status.peers.length === peerCount && status.peers.every((peer) => peer.configured)
  return meshed
    ? { _tag: "Meshed", summary: meshSummary(status), changed: meshFingerprint(status) !== meshFingerprint(previous) }
    : { _tag: "Retrying", reason: meshReason(status) }
}
