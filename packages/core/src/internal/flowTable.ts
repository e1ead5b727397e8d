/**
 * Steps 1 and 2 of `FlowGraph.compose` (see `flowCompose.ts`): the table of entries read from the
 * jobs, and each job's placement (its phase and parent).
 */
import type { ComposeInput } from "../FlowGraph.js"
import * as Job from "../Job.js"

export const phaseCount = Job.phases.length
/** A Map, not an object: names such as `constructor` must not find anything. */
const phaseIndex: ReadonlyMap<string, number> = new Map(Job.phases.map((phase, index) => [phase, index]))
const fallbackPhase = phaseIndex.get("apps")!

const familyOfPhase: Readonly<Record<Job.Phase, string>> = {
  provisioner: "provision",
  "bootstrap-kit": "install",
  cutover: "cutover",
  handover: "handover",
  apps: "install"
}

export type Mutable<T> = { -readonly [K in keyof T]: T[K] }

export const labelOf = (job: Job.Job | undefined, fallback: string): string => {
  const displayName = job?.displayName
  return displayName !== undefined && displayName.trim() !== "" ? displayName : fallback
}

export const statusPending = 0
export const statusRunning = 1
export const statusSucceeded = 2
export const statusFailed = 3
export const statusNames: ReadonlyArray<Job.JobStatus> = ["pending", "running", "succeeded", "failed"]
const statusCode = (status: Job.JobStatus): number =>
  status === "pending" ? statusPending : status === "running" ? statusRunning : status === "succeeded" ? statusSucceeded : statusFailed

export const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** `install-hel1-1:cilium` → `cilium`. */
const chartOfInstall = (jobName: string): string => {
  const rest = jobName.slice("install-".length)
  const colon = rest.indexOf(":")
  return colon >= 0 ? rest.slice(colon + 1) : rest
}

/** Lengths of the phase names: a cheap first test before any slicing. */
const phaseNameLengths = new Set(Job.phases.map((phase) => phase.length))

/**
 * `hel1-1:bootstrap-kit` → the region group of hel1-1 in bootstrap-kit; region group names are
 * reserved. An install job's name (`install-hel1-1:apps`, a chart named `apps`) is never one.
 */
export const parseRegionGroupName = (name: string): { readonly regionKey: string; readonly phase: number } | undefined => {
  const colon = name.indexOf(":")
  if (colon <= 0 || !phaseNameLengths.has(name.length - colon - 1) || name.indexOf(":", colon + 1) !== -1) return undefined
  if (Job.isInstallJobName(name)) return undefined
  const phase = phaseIndex.get(name.slice(colon + 1))
  return phase === undefined ? undefined : { regionKey: name.slice(0, colon), phase }
}

// ---------------------------------------------------------------------------------------------
// 1. The table

/** Every entry's fields by index; the job-only fields by row (`index - jobStart`). */
export interface Table {
  readonly deploymentId: string
  readonly idPrefix: string
  readonly ids: Array<string>
  readonly names: Array<string>
  readonly labels: Array<string>
  /** `group`, `install`, or the family of the phase a job is placed in ("" until placed). */
  readonly families: Array<string>
  /** The region key, "" for region-less entries. */
  readonly regionOf: Array<string>
  /** Job name → entry (phase groups and jobs; not region groups). */
  readonly nameIndex: Map<string, number>
  /** Labels of the rows named like a region group. */
  readonly regionGroupRows: ReadonlyMap<string, Job.Job> | undefined
  /** Region key → the entry of its group per phase (-1: none yet). */
  readonly regionGroups: Map<string, Int32Array>
  /** Jobs are entries jobStart..jobEnd-1; region groups follow. */
  readonly jobStart: number
  readonly jobEnd: number
  // per row
  readonly parentIds: Array<string>
  readonly dependencies: Array<ReadonlyArray<string>>
  readonly reasons: Array<string | undefined>
  readonly status: Uint8Array
  /** NaN: no time. */
  readonly started: Float64Array
  readonly finished: Float64Array
  // per entry, sized for every region group placement can create
  readonly isGroup: Uint8Array
  readonly parent: Int32Array
  readonly phaseOf: Uint8Array
}

export const readJobs = (input: ComposeInput): Table => {
  const { deploymentId } = input
  const idPrefix = deploymentId + ":"
  const primaryKey = input.regions[0] ?? ""
  const rowCapacity = input.jobs.length
  const phaseRows: Array<Job.Job | undefined> = new Array(phaseCount)
  let regionGroupRows: Map<string, Job.Job> | undefined
  const ids: Array<string> = []
  const names: Array<string> = []
  const labels: Array<string> = []
  const families: Array<string> = []
  const regionOf: Array<string> = []
  const parentIds: Array<string> = new Array(rowCapacity)
  const dependencies: Array<ReadonlyArray<string>> = new Array(rowCapacity)
  const reasons: Array<string | undefined> = new Array(rowCapacity)
  const status = new Uint8Array(rowCapacity)
  const started = new Float64Array(rowCapacity)
  const finished = new Float64Array(rowCapacity)
  const rowGroup = new Uint8Array(rowCapacity)
  const nameIndex = new Map<string, number>()
  const regionKeys = new Set<string>()
  for (let p = 0; p < phaseCount; p++) {
    const phase = Job.phases[p]!
    ids.push(idPrefix + phase)
    names.push(phase)
    labels.push("")
    families.push("group")
    regionOf.push("")
    nameIndex.set(phase, p)
  }
  const jobStart = phaseCount
  // One hash operation per job: a name seen before (a repeated row, or a phase group's row) shows
  // as an unchanged map size; from then on names are looked up first.
  let lookUpFirst = false
  for (const job of input.jobs) {
    if (job.deploymentId !== deploymentId) continue
    const jobName = job.jobName
    if (parseRegionGroupName(jobName) !== undefined) {
      ;(regionGroupRows ??= new Map()).set(jobName, job)
      continue
    }
    let index = ids.length
    if (lookUpFirst) {
      const known = nameIndex.get(jobName)
      if (known === undefined) nameIndex.set(jobName, index)
      else index = known
    } else {
      const size = nameIndex.size
      nameIndex.set(jobName, index)
      if (nameIndex.size === size) {
        lookUpFirst = true
        nameIndex.clear()
        for (let at = 0; at < names.length; at++) nameIndex.set(names[at]!, at)
        index = nameIndex.get(jobName)!
      }
    }
    if (index < jobStart) {
      phaseRows[index] = job // phase names are reserved for the phase groups
      continue
    }
    const row = index - jobStart
    const group = job.type === "group"
    const install = !group && jobName.charCodeAt(0) === 105 /* i */ && Job.isInstallJobName(jobName)
    const region = job.region !== "" ? job.region : install ? (Job.regionPrefixOf(jobName) ?? primaryKey) : ""
    ids[index] = job.id
    names[index] = jobName
    labels[index] = labelOf(job, jobName)
    families[index] = group ? "group" : install ? "install" : ""
    regionOf[index] = region
    parentIds[row] = job.parentId
    dependencies[row] = job.dependsOn
    reasons[row] = job.reason
    status[row] = statusCode(job.status)
    started[row] = job.startedAt ?? NaN
    finished[row] = job.finishedAt ?? NaN
    rowGroup[row] = group ? 1 : 0
    if (region !== "") regionKeys.add(region)
  }
  for (let p = 0; p < phaseCount; p++) labels[p] = labelOf(phaseRows[p], Job.phaseLabel[Job.phases[p]!])
  const jobEnd = ids.length
  const rowCount = jobEnd - jobStart
  // at most one region group per (key, phase) of a key some job carries, plus one per job naming one as parent
  const capacity = jobEnd + phaseCount * regionKeys.size + rowCount
  const isGroup = new Uint8Array(capacity)
  const parent = new Int32Array(capacity).fill(-1)
  const phaseOf = new Uint8Array(capacity)
  for (let p = 0; p < phaseCount; p++) {
    isGroup[p] = 1
    phaseOf[p] = p
  }
  for (let row = 0; row < rowCount; row++) isGroup[jobStart + row] = rowGroup[row]!
  return {
    deploymentId,
    idPrefix,
    ids,
    names,
    labels,
    families,
    regionOf,
    nameIndex,
    regionGroupRows,
    regionGroups: new Map(),
    jobStart,
    jobEnd,
    parentIds,
    dependencies,
    reasons,
    status,
    started,
    finished,
    isGroup,
    parent,
    phaseOf
  }
}

/** The region group of `regionKey` in phase `p`, created (under the phase group) on first use. */
export const regionGroup = (table: Table, regionKey: string, p: number): number => {
  let groups = table.regionGroups.get(regionKey)
  if (groups === undefined) table.regionGroups.set(regionKey, (groups = new Int32Array(phaseCount).fill(-1)))
  const known = groups[p]!
  if (known !== -1) return known
  const phase = Job.phases[p]!
  const name = Job.regionGroupJobName(regionKey, phase)
  const index = table.ids.push(table.idPrefix + name) - 1
  table.names.push(name)
  table.labels.push(labelOf(table.regionGroupRows?.get(name), `${Job.phaseLabel[phase]} (${regionKey})`))
  table.families.push("group")
  table.regionOf.push(regionKey)
  table.isGroup[index] = 1
  table.parent[index] = p
  table.phaseOf[index] = p
  groups[p] = index
  return index
}

// ---------------------------------------------------------------------------------------------
// 2. Placement

/**
 * Install leaves by chart; everything else by parentId (a phase group, a region group or a stored
 * group; nested groups pass their phase on). Cycles and unknown parents fall back to `apps`.
 */
export const place = (table: Table, phaseOfChart: (chart: string) => Job.Phase): void => {
  const { idPrefix, names, families, regionOf, nameIndex, jobStart, jobEnd, isGroup, parent, phaseOf } = table
  const state = new Uint8Array(jobEnd) // 0 unresolved, 1 resolving, 2 resolved
  const containerIn = (region: string, p: number): number => (region === "" ? p : regionGroup(table, region, p))
  const resolve = (index: number): void => {
    if (state[index] === 2) return
    const region = regionOf[index]!
    state[index] = 1
    if (families[index] === "install") {
      const p = phaseIndex.get(phaseOfChart(chartOfInstall(names[index]!))) ?? fallbackPhase
      phaseOf[index] = p
      parent[index] = containerIn(region, p)
    } else {
      const parentId = table.parentIds[index - jobStart]!
      const parentName = parentId.startsWith(idPrefix) ? parentId.slice(idPrefix.length) : parentId
      const phaseOfParent = parentName === "" ? undefined : phaseIndex.get(parentName)
      const regionGroupOfParent = phaseOfParent === undefined ? parseRegionGroupName(parentName) : undefined
      const parentIndex = parentName === "" ? undefined : nameIndex.get(parentName)
      if (phaseOfParent !== undefined) {
        phaseOf[index] = phaseOfParent
        parent[index] = containerIn(region, phaseOfParent)
      } else if (regionGroupOfParent !== undefined) {
        phaseOf[index] = regionGroupOfParent.phase
        parent[index] = regionGroup(table, regionGroupOfParent.regionKey, regionGroupOfParent.phase)
      } else if (
        parentIndex !== undefined &&
        parentIndex >= jobStart &&
        parentIndex < jobEnd &&
        isGroup[parentIndex] === 1 &&
        state[parentIndex] !== 1
      ) {
        resolve(parentIndex)
        phaseOf[index] = phaseOf[parentIndex]!
        parent[index] = parentIndex
      } else {
        phaseOf[index] = fallbackPhase
        parent[index] = containerIn(region, fallbackPhase)
      }
      if (families[index] === "") families[index] = familyOfPhase[Job.phases[phaseOf[index]!]!]
    }
    state[index] = 2
  }
  for (let index = jobStart; index < jobEnd; index++) resolve(index)
}
