/** Jobs: the units of work shown to an operator, their names, merge rules and failure cascade (SPEC 2.4). */
import { Schema } from "effect"
import { Millis, UnixMillis } from "./Time.js"

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
  startedAt: Schema.optional(UnixMillis),
  finishedAt: Schema.optional(UnixMillis),
  durationMs: Millis,
  latestExecutionId: Schema.optional(Schema.String),
  /** Why the job has its status when that is not self-evident (`dependency install-cilium failed`). */
  reason: Schema.optional(Schema.String)
})
export type Job = typeof Job.Type

export const LogLevel = Schema.Literal("DEBUG", "INFO", "WARN", "ERROR")
export type LogLevel = typeof LogLevel.Type

export const LogLine = Schema.Struct({
  lineNumber: Schema.Number,
  /** Unix milliseconds. */
  timestamp: UnixMillis,
  level: LogLevel,
  message: Schema.String
})
export type LogLine = typeof LogLine.Type

export const ExecutionStatus = Schema.Literal("running", "succeeded", "failed")
export type ExecutionStatus = typeof ExecutionStatus.Type

export const Execution = Schema.Struct({
  id: Schema.String,
  jobId: Schema.String,
  deploymentId: Schema.String,
  status: ExecutionStatus,
  startedAt: UnixMillis,
  finishedAt: Schema.optional(UnixMillis),
  lineCount: Schema.Number
})
export type Execution = typeof Execution.Type

export const isTerminal = (status: JobStatus | ExecutionStatus): status is "succeeded" | "failed" =>
  status === "succeeded" || status === "failed"

// ---------------------------------------------------------------------------------------------
// Phases and names

/** The five top-level phase groups, in chain order; each is also the job name of its group. */
export const Phase = Schema.Literal("provisioner", "bootstrap-kit", "cutover", "handover", "apps")
export type Phase = typeof Phase.Type
export const phases: ReadonlyArray<Phase> = Phase.literals
const phaseNames: ReadonlySet<string> = new Set(phases)
export const isPhase = (name: string): name is Phase => phaseNames.has(name)

export const phaseLabel: Readonly<Record<Phase, string>> = {
  provisioner: "Provision",
  "bootstrap-kit": "Bootstrap",
  cutover: "Cutover",
  handover: "Handover",
  apps: "Apps"
}

/** The chart whose install is the cutover; every other chart belongs to the bootstrap kit. */
export const cutoverChart = "self-sovereign-cutover"

/** The default chart → phase mapping (a parameter of the flow graph). */
export const defaultPhaseOfChart = (chart: string): Phase => (chart === cutoverChart ? "cutover" : "bootstrap-kit")

/** What a name needs to know of a region: `Deployment.Region` satisfies it. */
export interface RegionRef {
  readonly key: string
  readonly primary: boolean
}

const installPrefix = "install-"
const chartPrefix = "bp-"

/** `bp-cilium` → `cilium`. */
export const chartOf = (helmReleaseName: string): string =>
  helmReleaseName.startsWith(chartPrefix) ? helmReleaseName.slice(chartPrefix.length) : helmReleaseName

const regional = (region: RegionRef, bare: string): string => (region.primary ? bare : `${region.key}:${bare}`)

/** `cilium` or `hel1-1:cilium`. */
export const appId = (region: RegionRef, chart: string): string => regional(region, chart)

/** `install-cilium` (primary) or `install-hel1-1:cilium` (secondary). */
export const installJobName = (region: RegionRef, chart: string): string => installPrefix + regional(region, chart)

/**
 * A Phase-0 leaf: `<step>` (primary) or `<regionKey>:<step>` (secondary). Phase names
 * (`provisioner`, `bootstrap-kit`, `cutover`, `handover`, `apps`) are reserved for the groups and
 * cannot name a step; nor can the lifecycle steps' names (`cutover-dns`, `cutover-mesh`,
 * `handover-token`, `handover-access`, `handover-finalise`: see `Lifecycle`), which use the same shape.
 */
export const stepJobName = (region: RegionRef, step: string): string => regional(region, step)

/** The synthesized group of one region within one phase: `<regionKey>:<phase>`. */
export const regionGroupJobName = (regionKey: string, phase: Phase): string => `${regionKey}:${phase}`

export const jobId = (deploymentId: string, jobName: string): string => `${deploymentId}:${jobName}`

/** The job name of an id, or the input unchanged when it is not an id of this deployment. */
export const jobNameOf = (deploymentId: string, idOrName: string): string =>
  idOrName.length > deploymentId.length && idOrName.charCodeAt(deploymentId.length) === 58 /* ":" */ && idOrName.startsWith(deploymentId)
    ? idOrName.slice(deploymentId.length + 1)
    : idOrName

export const isInstallJobName = (jobName: string): boolean => jobName.startsWith(installPrefix)

/**
 * The secondary-region prefix a job name carries (`install-hel1-1:cilium` → `hel1-1`, `hel1-1:server`
 * → `hel1-1`), or undefined for a primary (or region-less) name. Region keys never contain `:`.
 */
export const regionPrefixOf = (jobName: string): string | undefined => {
  const rest = isInstallJobName(jobName) ? jobName.slice(installPrefix.length) : jobName
  const colon = rest.indexOf(":")
  return colon > 0 ? rest.slice(0, colon) : undefined
}

/** The part of a name after any `<regionKey>:` prefix. */
const bareOf = (name: string): string => {
  const colon = name.lastIndexOf(":")
  return colon >= 0 ? name.slice(colon + 1) : name
}

/**
 * The canonical stored form of one dependency of the job named `jobName`: `install-<chart>` /
 * `install-<regionKey>:<chart>` for an install, `<step>` / `<regionKey>:<step>` for anything else.
 * Accepts every historical shape (`cilium`, `bp-cilium`, `hel1-1:cilium`, `install-hel1-1:cilium`, a
 * full id) and always lands in the job's own region: a dependency never crosses regions.
 */
export const canonicalDependency = (deploymentId: string, jobName: string, dependency: string): string => {
  const name = jobNameOf(deploymentId, dependency.trim())
  const prefix = regionPrefixOf(jobName)
  if (isInstallJobName(jobName)) {
    const withoutInstall = isInstallJobName(name) ? name.slice(installPrefix.length) : name
    const chart = chartOf(bareOf(withoutInstall))
    return installPrefix + (prefix === undefined ? chart : `${prefix}:${chart}`)
  }
  const bare = bareOf(name)
  return prefix === undefined ? bare : `${prefix}:${bare}`
}

/** Canonical, de-duplicated, without empty entries or the job itself; order of first appearance. */
export const canonicalDependsOn = (deploymentId: string, jobName: string, dependsOn: ReadonlyArray<string>): ReadonlyArray<string> => {
  if (alreadyCanonical(jobName, dependsOn)) return dependsOn
  const out: Array<string> = []
  for (const dependency of dependsOn) {
    if (dependency.trim() === "") continue
    const canonical = canonicalDependency(deploymentId, jobName, dependency)
    // nothing named (`install-`, `hel1-1:`), the job itself, or a repeat
    if (canonical === "" || canonical === installPrefix || canonical.endsWith(":")) continue
    if (canonical === jobName || out.includes(canonical)) continue
    out.push(canonical)
  }
  return out
}

/** The stored form is canonical already (the common case, checked without allocating much). */
const alreadyCanonical = (jobName: string, dependsOn: ReadonlyArray<string>): boolean => {
  if (dependsOn.length === 0) return true
  const install = isInstallJobName(jobName)
  const start = install ? installPrefix.length : 0
  const colon = jobName.indexOf(":", start)
  // `install-` / `install-<key>:` / "" / `<key>:`, as regionPrefixOf reads it
  const prefixLength = colon > start ? colon + 1 : start
  const prefix = prefixLength === start ? (install ? installPrefix : "") : jobName.slice(0, prefixLength)
  for (let i = 0; i < dependsOn.length; i++) {
    const dependency = dependsOn[i]!
    if (dependency.length <= prefixLength || dependency === installPrefix || !dependency.startsWith(prefix)) return false
    if (dependency.indexOf(":", prefixLength) !== -1 || dependency === jobName) return false
    if (dependency.charCodeAt(0) <= 32 || dependency.charCodeAt(dependency.length - 1) <= 32) return false
    if (install && dependency.startsWith(chartPrefix, prefixLength)) return false
    for (let j = 0; j < i; j++) if (dependsOn[j] === dependency) return false
  }
  return true
}

// ---------------------------------------------------------------------------------------------
// Constructors

const base = (deploymentId: string, jobName: string) => ({
  id: jobId(deploymentId, jobName),
  deploymentId,
  jobName
})

/** A top-level phase group row. */
export const phaseGroupJob = (deploymentId: string, phase: Phase, displayName?: string): Job => ({
  ...base(deploymentId, phase),
  displayName: displayName ?? phaseLabel[phase],
  type: "group",
  region: "",
  parentId: "",
  dependsOn: [],
  status: "pending",
  durationMs: 0
})

/** A Phase-1 leaf for the chart of a HelmRelease; `dependsOn` takes release names or charts. */
export const installJob = (options: {
  readonly deploymentId: string
  readonly region: RegionRef
  /** HelmRelease name (`bp-cilium`) or chart (`cilium`). */
  readonly release: string
  readonly dependsOn?: ReadonlyArray<string>
  readonly status?: JobStatus
  readonly phaseOfChart?: (chart: string) => Phase
}): Job => {
  const chart = chartOf(options.release)
  const jobName = installJobName(options.region, chart)
  const phase = (options.phaseOfChart ?? defaultPhaseOfChart)(chart)
  return {
    ...base(options.deploymentId, jobName),
    type: "install",
    appId: appId(options.region, chart),
    region: options.region.key,
    parentId: jobId(options.deploymentId, phase),
    dependsOn: canonicalDependsOn(options.deploymentId, jobName, options.dependsOn ?? []),
    status: options.status ?? "pending",
    durationMs: 0
  }
}

/** A Phase-0 leaf for one cloud step (`CloudStep` satisfies `step`). */
export const stepJob = (options: {
  readonly deploymentId: string
  readonly region: RegionRef
  readonly step: { readonly name: string; readonly displayName?: string; readonly dependsOn: ReadonlyArray<string> }
  readonly status?: JobStatus
}): Job => {
  const jobName = stepJobName(options.region, options.step.name)
  return {
    ...base(options.deploymentId, jobName),
    ...(options.step.displayName === undefined ? {} : { displayName: options.step.displayName }),
    type: "install",
    region: options.region.key,
    parentId: jobId(options.deploymentId, "provisioner"),
    dependsOn: canonicalDependsOn(options.deploymentId, jobName, options.step.dependsOn),
    status: options.status ?? "pending",
    durationMs: 0
  }
}

// ---------------------------------------------------------------------------------------------
// Merge rules

/** Started = ran at some point; a job failed only by the cascade never started and may wait again. */
const hasStarted = (job: Job): boolean => job.startedAt !== undefined || job.latestExecutionId !== undefined || job.status === "running"

/**
 * Folds an incoming version of a job into the stored one. The new status wins, except that a job
 * that has started never returns to `pending` (Flux flaps DependencyNotReady ↔ Reconciling); an
 * empty incoming `dependsOn`, `region`, `parentId` or `startedAt` never erases a stored one.
 */
export const merge = (stored: Job | undefined, incoming: Job): Job => {
  if (stored === undefined) return normalise(incoming)
  const status: JobStatus =
    incoming.status === "pending" && hasStarted(stored) ? (stored.status === "pending" ? "running" : stored.status) : incoming.status
  const startedAt = incoming.startedAt ?? stored.startedAt
  const finishedAt = isTerminal(status) ? (incoming.finishedAt ?? (status === stored.status ? stored.finishedAt : undefined)) : undefined
  const displayName = incoming.displayName ?? stored.displayName
  const appIdValue = incoming.appId ?? stored.appId
  const latestExecutionId = incoming.latestExecutionId ?? stored.latestExecutionId
  // A reason explains one status; it survives only while that status does.
  const reason = incoming.reason ?? (status === stored.status ? stored.reason : undefined)
  const merged: Job = {
    id: incoming.id,
    deploymentId: incoming.deploymentId,
    jobName: incoming.jobName,
    ...(displayName === undefined ? {} : { displayName }),
    type: incoming.type,
    ...(appIdValue === undefined ? {} : { appId: appIdValue }),
    region: incoming.region !== "" ? incoming.region : stored.region,
    parentId: incoming.parentId !== "" ? incoming.parentId : stored.parentId,
    dependsOn: incoming.dependsOn.length > 0 ? incoming.dependsOn : stored.dependsOn,
    status,
    ...(startedAt === undefined ? {} : { startedAt }),
    ...(finishedAt === undefined ? {} : { finishedAt }),
    durationMs: incoming.durationMs,
    ...(latestExecutionId === undefined ? {} : { latestExecutionId }),
    ...(reason === undefined ? {} : { reason })
  }
  return normalise(merged)
}

/** Canonical dependencies and a duration recomputed from the timestamps when both are known. */
const normalise = (job: Job): Job => {
  const dependsOn = canonicalDependsOn(job.deploymentId, job.jobName, job.dependsOn)
  const durationMs =
    job.startedAt !== undefined && job.finishedAt !== undefined ? Math.max(0, job.finishedAt - job.startedAt) : job.durationMs
  const sameDependsOn = dependsOn.length === job.dependsOn.length && dependsOn.every((d, i) => d === job.dependsOn[i])
  return sameDependsOn && durationMs === job.durationMs ? job : { ...job, dependsOn, durationMs }
}

/** Merges a batch of incoming versions into a set of stored jobs, keyed by id (stored order kept, new ones appended). */
export const mergeAll = (stored: ReadonlyArray<Job>, incoming: ReadonlyArray<Job>): ReadonlyArray<Job> => {
  const byId = new Map<string, Job>()
  for (const job of stored) byId.set(job.id, job)
  for (const job of incoming) byId.set(job.id, merge(byId.get(job.id), job))
  return Array.from(byId.values())
}

// ---------------------------------------------------------------------------------------------
// Executions

/** What an observation did to the job's executions; the caller persists and logs accordingly. */
export type ExecutionChange =
  | { readonly _tag: "Unchanged" }
  /** A new execution is running. */
  | { readonly _tag: "Started"; readonly execution: Execution }
  /** The running execution ended with a terminal state (also after a restart). */
  | { readonly _tag: "Finished"; readonly execution: Execution }
  /** A terminal state seen without any run observed (e.g. already installed at first sight). */
  | { readonly _tag: "StartedAndFinished"; readonly execution: Execution }

export interface Observed {
  readonly job: Job
  readonly change: ExecutionChange
}

/**
 * Applies one observation of a job (its incoming version) together with the job's latest execution:
 * merges the job, starts an execution on the first non-pending state, and finishes a running
 * execution as soon as a terminal state is observed — whether it was started before a restart or not.
 * `executionId` names the execution to create if one is needed.
 */
export const observe = (options: {
  readonly stored: Job | undefined
  readonly incoming: Job
  /** The stored execution named by `stored.latestExecutionId`, if any. */
  readonly latestExecution: Execution | undefined
  /** Unix ms of the observation. */
  readonly at: number
  readonly executionId: string
}): Observed => {
  const { at, stored, latestExecution } = options
  const merged = merge(stored, options.incoming)
  if (merged.status === "pending") return { job: merged, change: { _tag: "Unchanged" } }
  if (latestExecution !== undefined && latestExecution.status === "running") {
    if (!isTerminal(merged.status)) return { job: merged, change: { _tag: "Unchanged" } }
    const finishedAt = Math.max(at, latestExecution.startedAt)
    const execution: Execution = { ...latestExecution, status: merged.status, finishedAt }
    return { job: finishing(merged, execution, finishedAt), change: { _tag: "Finished", execution } }
  }
  const unchangedTerminal =
    latestExecution !== undefined && stored !== undefined && isTerminal(stored.status) && stored.status === merged.status
  if (unchangedTerminal) return { job: merged, change: { _tag: "Unchanged" } }
  const started: Execution = {
    id: options.executionId,
    jobId: merged.id,
    deploymentId: merged.deploymentId,
    status: "running",
    startedAt: at,
    lineCount: 0
  }
  const startedJob: Job = normalise({
    ...merged,
    startedAt: merged.startedAt ?? at,
    latestExecutionId: started.id
  })
  if (!isTerminal(merged.status)) return { job: startedJob, change: { _tag: "Started", execution: started } }
  const execution: Execution = { ...started, status: merged.status, finishedAt: at }
  return { job: finishing(startedJob, execution, at), change: { _tag: "StartedAndFinished", execution } }
}

const finishing = (job: Job, execution: Execution, at: number): Job =>
  normalise({ ...job, finishedAt: job.finishedAt ?? at, latestExecutionId: execution.id })

/** Finishes an execution that is still running (a terminal state or a sweep); others are returned as they are. */
export const finishExecution = (execution: Execution, status: "succeeded" | "failed", at: number): Execution =>
  execution.status === "running" ? { ...execution, status, finishedAt: Math.max(at, execution.startedAt) } : execution

// ---------------------------------------------------------------------------------------------
// Cascading failure

export const dependencyFailedReason = (dependencyJobName: string): string => `dependency ${dependencyJobName} failed`

/** `bootstrap-kit` → the phase; `hel1-1:bootstrap-kit` → the phase in region `hel1-1`; anything else → undefined. */
export const phaseDependencyOf = (dependency: string): { readonly regionKey: string | undefined; readonly phase: Phase } | undefined => {
  const colon = dependency.indexOf(":")
  const bare = colon < 0 ? dependency : dependency.slice(colon + 1)
  if (!isPhase(bare)) return undefined
  return { regionKey: colon < 0 ? undefined : dependency.slice(0, colon), phase: bare }
}

/** The phase a job belongs to: an install by its chart (default mapping), anything else by the group its parent names. */
const phaseOfJob = (job: Job): Phase | undefined => {
  if (job.type === "group") return undefined
  if (isInstallJobName(job.jobName)) return defaultPhaseOfChart(chartOf(bareOf(job.jobName.slice(installPrefix.length))))
  const parent = jobNameOf(job.deploymentId, job.parentId)
  const bare = bareOf(parent)
  return isPhase(bare) ? bare : undefined
}

/**
 * Fails every non-terminal, non-group job with a failed dependency (transitively, to a fixpoint),
 * with the reason `dependency <job> failed` naming the direct dependency. Jobs of several
 * deployments may be mixed; dependencies resolve within each job's own deployment. A dependency
 * that names a phase (`bootstrap-kit`, `hel1-1:bootstrap-kit`: "after this region's bootstrap kit")
 * stands for every job of that phase in the job's own region (the whole phase for a region-less
 * job) and has failed as soon as one of them has. Unchanged jobs keep their identity; the order of
 * `jobs` is kept.
 */
export const cascadeFailures = (jobs: ReadonlyArray<Job>): ReadonlyArray<Job> => {
  const count = jobs.length
  const byId = new Map<string, number>()
  jobs.forEach((job, index) => byId.set(job.id, index))
  // Indexes 0..count-1 are jobs; from `count` on, the (deployment, region, phase) groups some job depends on.
  const dependencies: Array<ReadonlyArray<number>> = new Array(count)
  const dependencyNames: Array<ReadonlyArray<string>> = new Array(count)
  const dependents: Array<Array<number> | undefined> = []
  const groups = new Map<string, number>()
  const queue: Array<number> = []
  jobs.forEach((job, index) => {
    if (job.status === "failed") queue.push(index)
    const resolved: Array<number> = []
    const resolvedNames: Array<string> = []
    for (const dependency of canonicalDependsOn(job.deploymentId, job.jobName, job.dependsOn)) {
      const phaseDependency = phaseDependencyOf(dependency)
      let target: number | undefined
      if (phaseDependency !== undefined) {
        const region = phaseDependency.regionKey ?? job.region
        const key = `${job.deploymentId}\u0000${region}\u0000${phaseDependency.phase}`
        target = groups.get(key)
        if (target === undefined) groups.set(key, (target = count + groups.size))
      } else {
        target = byId.get(jobId(job.deploymentId, dependency))
        if (target === undefined) continue
      }
      resolved.push(target)
      resolvedNames.push(dependency)
      ;(dependents[target] ??= []).push(index)
    }
    dependencies[index] = resolved
    dependencyNames[index] = resolvedNames
  })
  if (queue.length === 0) return jobs
  // Group members: a failed member fails its group (and the region-less group of its phase).
  if (groups.size > 0) {
    jobs.forEach((job, index) => {
      const phase = phaseOfJob(job)
      if (phase === undefined) return
      const region = job.region !== "" ? job.region : (regionPrefixOf(job.jobName) ?? "")
      for (const key of [`${job.deploymentId}\u0000${region}\u0000${phase}`, `${job.deploymentId}\u0000\u0000${phase}`]) {
        const group = groups.get(key)
        if (group !== undefined) (dependents[index] ??= []).push(group)
      }
    })
  }
  const failed = new Uint8Array(count + groups.size)
  for (const index of queue) failed[index] = 1
  const cascaded: Array<number> = []
  for (let head = 0; head < queue.length; head++) {
    for (const index of dependents[queue[head]!] ?? []) {
      if (failed[index] === 1) continue
      if (index < count) {
        const job = jobs[index]!
        if (job.type === "group" || isTerminal(job.status)) continue
        cascaded.push(index)
      }
      failed[index] = 1
      queue.push(index)
    }
  }
  if (cascaded.length === 0) return jobs
  const result = jobs.slice()
  for (const index of cascaded) {
    // The first failed dependency in the job's own order: independent of the order of `jobs`.
    const position = dependencies[index]!.findIndex((target) => failed[target] === 1)
    const { finishedAt: _finishedAt, ...job } = jobs[index]!
    result[index] = { ...job, status: "failed", reason: dependencyFailedReason(dependencyNames[index]![position]!) }
  }
  return result
}
