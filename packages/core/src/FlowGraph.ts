/** A deployment's jobs as a flow graph: deterministic composition, minimal diffs and the consumer's reducer (SPEC 2.5). */
import type { FlowInstance, FlowMessage, FlowNode, Relationship, Snapshot } from "./FlowMessage.js"
import * as Job from "./Job.js"

export interface ComposeInput {
  readonly deploymentId: string
  /** Region keys in `regions[]` order; the first is the primary. */
  readonly regions: ReadonlyArray<string>
  /** The deployment's jobs, merged (one per job name; of repeated names the last counts), in any order. */
  readonly jobs: ReadonlyArray<Job.Job>
  /** Which phase a chart's install belongs to; `self-sovereign-cutover` → cutover, the rest → bootstrap-kit by default. */
  readonly phaseOfChart?: (chart: string) => Job.Phase
  /**
   * The deployment is still in flight: the flow stays `running` even when every leaf seen so far is
   * terminal (e.g. between Phase 0 and the first Phase-1 job). Unset, the flow status is decided by
   * the leaves alone.
   */
  readonly inFlight?: boolean
}

/** What the flow's `meta` reports. */
export interface FlowMeta {
  /** Dependencies not drawn because their job does not exist (yet). */
  readonly omittedDependencies: number
  /** Dependencies not drawn because they would cross regions (never stored canonically; a data error). */
  readonly crossRegionDependencies: number
}

const phaseCount = Job.phases.length
/** A Map, not an object: names such as `constructor` must not find anything. */
const phaseIndex: ReadonlyMap<string, number> = new Map(Job.phases.map((phase, index) => [phase, index]))
const fallbackPhase: Job.Phase = "apps"

const familyOfPhase: Readonly<Record<Job.Phase, string>> = {
  provisioner: "provision",
  "bootstrap-kit": "install",
  cutover: "cutover",
  handover: "handover",
  apps: "install"
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const labelOf = (job: Job.Job | undefined, fallback: string): string => {
  const displayName = job?.displayName
  return displayName !== undefined && displayName.trim() !== "" ? displayName : fallback
}

const regionGroupLabel = (phase: Job.Phase, regionKey: string) => `${Job.phaseLabel[phase]} (${regionKey})`

const statusPending = 0
const statusRunning = 1
const statusSucceeded = 2
const statusFailed = 3
const statusNames: ReadonlyArray<Job.JobStatus> = ["pending", "running", "succeeded", "failed"]
const statusCode = (status: Job.JobStatus): number =>
  status === "pending" ? statusPending : status === "running" ? statusRunning : status === "succeeded" ? statusSucceeded : statusFailed

/**
 * Composes the snapshot of a deployment from its jobs: five phase groups chained finish-to-start,
 * a region group per (region, phase) with children, every job as a node contained in its group,
 * in-region finish-to-start edges from `dependsOn` (a dependency naming a phase is an edge from the
 * job's own region's group of that phase), group statuses rolled up from descendants, and
 * `meta.empty = true` on a group with no children.
 * Pure and deterministic to the byte: the order of `jobs` does not matter (one row per job name;
 * when a name repeats, the last row wins).
 *
 * Written for speed (it runs on every job event): one pass per concern over parallel arrays indexed
 * by entry (0..4 the phase groups, then the jobs, then the region groups), no quadratic work.
 */
export const compose = (input: ComposeInput): Snapshot => {
  const { deploymentId, regions } = input
  const phaseOfChart = input.phaseOfChart ?? Job.defaultPhaseOfChart
  const idPrefix = deploymentId + ":"
  const primaryKey = regions[0] ?? ""

  // Entries as parallel arrays: 0..4 the phase groups, then the jobs, then the region groups (at
  // most one per (key, phase) of a key some job carries, plus one per job naming one as parent).
  // Every field of a job is read once, here: jobs come in many shapes, and arrays keep the rest fast.
  // One entry per job name (the last row wins); phase-group and region-group rows only lend their label.
  const phaseRows: Array<Job.Job | undefined> = [undefined, undefined, undefined, undefined, undefined]
  let regionGroupRows: Map<string, Job.Job> | undefined
  const ids: Array<string> = []
  const names: Array<string> = []
  const labels: Array<string> = []
  const families: Array<string> = []
  const regionOf: Array<string> = []
  const parentNames: Array<string> = new Array(input.jobs.length)
  const dependencies: Array<ReadonlyArray<string>> = new Array(input.jobs.length)
  const reasons: Array<string | undefined> = new Array(input.jobs.length)
  const rowStatus = new Uint8Array(input.jobs.length)
  const rowStarted = new Float64Array(input.jobs.length)
  const rowFinished = new Float64Array(input.jobs.length)
  const rowGroup = new Uint8Array(input.jobs.length)
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
    const group = job.type === "group"
    // `<regionKey>:<phase>` names the region groups (and phase names the phase groups): such a row
    // lends its label, and never becomes a second node with the group's id
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
    const install = !group && jobName.charCodeAt(0) === 105 /* i */ && Job.isInstallJobName(jobName)
    const storedRegion = job.region
    const region = storedRegion !== "" ? storedRegion : install ? Job.regionPrefixOf(jobName) ?? primaryKey : ""
    const startedAt = job.startedAt
    const finishedAt = job.finishedAt
    const displayName = job.displayName
    ids[index] = job.id
    names[index] = jobName
    labels[index] = displayName !== undefined && displayName.trim() !== "" ? displayName : jobName
    families[index] = group ? "group" : install ? "install" : ""
    regionOf[index] = region
    parentNames[row] = job.parentId
    dependencies[row] = job.dependsOn
    reasons[row] = job.reason
    rowStatus[row] = statusCode(job.status)
    rowStarted[row] = startedAt === undefined ? NaN : startedAt
    rowFinished[row] = finishedAt === undefined ? NaN : finishedAt
    rowGroup[row] = group ? 1 : 0
    if (region !== "") regionKeys.add(region)
  }
  for (let p = 0; p < phaseCount; p++) labels[p] = labelOf(phaseRows[p], Job.phaseLabel[Job.phases[p]!])
  const jobEnd = ids.length
  const rowCount = jobEnd - jobStart
  const capacity = jobEnd + phaseCount * regionKeys.size + rowCount
  const isGroup = new Uint8Array(capacity)
  const parent = new Int32Array(capacity).fill(-1)
  const phaseOf = new Uint8Array(capacity)
  const slot = new Int32Array(capacity)
  for (let p = 0; p < phaseCount; p++) {
    isGroup[p] = 1
    phaseOf[p] = p
  }
  for (let row = 0; row < rowCount; row++) isGroup[jobStart + row] = rowGroup[row]!

  const regionGroups = new Map<string, Int32Array>()
  const regionGroup = (regionKey: string, p: number): number => {
    let groups = regionGroups.get(regionKey)
    if (groups === undefined) regionGroups.set(regionKey, (groups = new Int32Array(phaseCount).fill(-1)))
    const known = groups[p]!
    if (known !== -1) return known
    const phase = Job.phases[p]!
    const name = Job.regionGroupJobName(regionKey, phase)
    const index = ids.push(idPrefix + name) - 1
    names.push(name)
    labels.push(labelOf(regionGroupRows?.get(name), regionGroupLabel(phase, regionKey)))
    families.push("group")
    regionOf.push(regionKey)
    isGroup[index] = 1
    parent[index] = p
    phaseOf[index] = p
    groups[p] = index
    return index
  }

  // Placement: install leaves by chart; everything else by parentId (a phase group, a region group
  // or a stored group; nested groups pass their phase on). Cycles and unknown parents fall back to
  // the `apps` phase.
  const state = new Uint8Array(jobEnd) // 0 unresolved, 1 resolving, 2 resolved
  const fallback = phaseIndex.get(fallbackPhase)!
  const containerIn = (region: string, p: number): number => (region === "" ? p : regionGroup(region, p))
  const resolve = (index: number): void => {
    if (state[index] === 2) return
    const region = regionOf[index]!
    state[index] = 1
    if (families[index] === "install") {
      const p = phaseIndex.get(phaseOfChart(chartOfInstall(names[index]!))) ?? fallback
      phaseOf[index] = p
      parent[index] = containerIn(region, p)
    } else {
      const parentId = parentNames[index - jobStart]!
      const parentName = parentId.startsWith(idPrefix) ? parentId.slice(idPrefix.length) : parentId
      const phaseOfParent = parentName === "" ? undefined : phaseIndex.get(parentName)
      const regionGroupOfParent = phaseOfParent === undefined ? parseRegionGroupName(parentName) : undefined
      const parentIndex = parentName === "" ? undefined : nameIndex.get(parentName)
      if (phaseOfParent !== undefined) {
        phaseOf[index] = phaseOfParent
        parent[index] = containerIn(region, phaseOfParent)
      } else if (regionGroupOfParent !== undefined) {
        phaseOf[index] = regionGroupOfParent.phase
        parent[index] = regionGroup(regionGroupOfParent.regionKey, regionGroupOfParent.phase)
      } else if (
        parentIndex !== undefined && parentIndex >= jobStart && parentIndex < jobEnd &&
        isGroup[parentIndex] === 1 && state[parentIndex] !== 1
      ) {
        resolve(parentIndex)
        phaseOf[index] = phaseOf[parentIndex]!
        parent[index] = parentIndex
      } else {
        phaseOf[index] = fallback
        parent[index] = containerIn(region, fallback)
      }
      if (families[index] === "") families[index] = familyOfPhase[Job.phases[phaseOf[index]!]!]
    }
    state[index] = 2
  }
  for (let index = jobStart; index < jobEnd; index++) resolve(index)
  const count = ids.length

  // Region slots: regions[] order first, then keys only jobs know, in key order. An entry takes the
  // slot of its ancestor just below the phase group (a region group, or 0 for region-less rows).
  const slotOf = new Map<string, number>()
  regions.forEach((key, index) => slotOf.has(key) || slotOf.set(key, index + 1))
  const unknownKeys: Array<string> = []
  for (const key of regionGroups.keys()) if (!slotOf.has(key)) unknownKeys.push(key)
  unknownKeys.sort(compareStrings).forEach((key, offset) => slotOf.set(key, regions.length + 1 + offset))
  const slotCount = regions.length + unknownKeys.length + 1
  for (let index = jobEnd; index < count; index++) slot[index] = slotOf.get(regionOf[index]!)!
  for (let index = jobStart; index < jobEnd; index++) {
    let at = index
    while (parent[at]! >= phaseCount) at = parent[at]!
    slot[index] = at >= jobEnd ? slot[at]! : 0
  }

  // Deterministic order: phase, then region slot, then the bucket's group, then job name.
  // Buckets by counting sort; only the jobs within one bucket are sorted, by name.
  const bucketOf = (index: number): number =>
    (phaseOf[index]! * slotCount + slot[index]!) * 2 + (index < jobStart || index >= jobEnd ? 0 : 1)
  const bucketCount = phaseCount * slotCount * 2
  const bucketStart = new Int32Array(bucketCount + 1)
  for (let index = 0; index < count; index++) bucketStart[bucketOf(index) + 1]!++
  for (let bucket = 0; bucket < bucketCount; bucket++) bucketStart[bucket + 1]! += bucketStart[bucket]!
  const fill = bucketStart.slice(0, bucketCount)
  const order = new Int32Array(count)
  for (let index = 0; index < count; index++) order[fill[bucketOf(index)]!++] = index
  for (let bucket = 1; bucket < bucketCount; bucket += 2) {
    const from = bucketStart[bucket]!
    const to = bucketStart[bucket + 1]!
    if (to - from < 2) continue
    // jobs usually arrive by name (as the job store lists them): then there is nothing to sort
    let sorted = true
    for (let at = from + 1; at < to && sorted; at++) sorted = names[order[at - 1]!]! < names[order[at]!]!
    if (sorted) continue
    // job names are unique: the built-in sort of strings (UTF-16 code units, as `<`) needs no
    // callback per comparison, and the name finds its entry again
    const bucketNames: Array<string> = new Array(to - from)
    for (let at = from; at < to; at++) bucketNames[at - from] = names[order[at]!]!
    bucketNames.sort()
    for (let at = from; at < to; at++) order[at] = nameIndex.get(bucketNames[at - from]!)!
  }
  const position = new Int32Array(count)
  for (let at = 0; at < count; at++) position[order[at]!] = at

  // Roll-up: every tree leaf (a job leaf, or a group without children) counts for itself and its ancestors.
  const hasChildren = new Uint8Array(count)
  for (let index = phaseCount; index < count; index++) hasChildren[parent[index]!] = 1
  const total = new Int32Array(count)
  const failed = new Int32Array(count)
  const succeeded = new Int32Array(count)
  const pending = new Int32Array(count)
  const terminal = new Int32Array(count)
  const startedAt = new Float64Array(count).fill(Infinity)
  const endedAt = new Float64Array(count).fill(-Infinity)
  let leafTotal = 0
  let leafTerminal = 0
  let leafFailed = 0
  let flowStartedAt = Infinity
  let flowEndedAt = -Infinity
  for (let index = phaseCount; index < count; index++) {
    if (hasChildren[index] === 1) continue
    const jobLeaf = isGroup[index] === 0
    const row = index - jobStart
    const status = jobLeaf ? rowStatus[row]! : statusPending
    const done = status >= statusSucceeded
    // NaN (no time) never wins a comparison
    const started = jobLeaf && status !== statusPending ? rowStarted[row]! : NaN
    const ended = jobLeaf && done ? rowFinished[row]! : NaN
    if (jobLeaf) {
      leafTotal++
      if (done) leafTerminal++
      if (status === statusFailed) leafFailed++
      if (started < flowStartedAt) flowStartedAt = started
      if (ended > flowEndedAt) flowEndedAt = ended
    }
    for (let at = index; at !== -1; at = parent[at]!) {
      total[at]!++
      if (status === statusFailed) failed[at]!++
      else if (status === statusSucceeded) succeeded[at]!++
      else if (status === statusPending) pending[at]!++
      if (done) terminal[at]!++
      if (started < startedAt[at]!) startedAt[at] = started
      if (ended > endedAt[at]!) endedAt[at] = ended
    }
  }

  // Nodes, in order.
  const nodes: Array<FlowNode> = new Array(count)
  for (let at = 0; at < count; at++) {
    const index = order[at]!
    const family = families[index]!
    const region = regionOf[index]!
    let node: Mutable<FlowNode>
    if (isGroup[index] === 1) {
      const all = total[index]!
      const status =
        all === 0 ? "pending"
        : failed[index]! > 0 ? "failed"
        : succeeded[index] === all ? "succeeded"
        : pending[index] === all ? "pending"
        : "running"
      node = { id: ids[index]!, flowId: deploymentId, label: labels[index]!, status }
      if (family !== "") node.family = family
      if (region !== "") node.region = region
      if (startedAt[index] !== Infinity) node.startedAt = startedAt[index]!
      if (all > 0 && terminal[index] === all && endedAt[index] !== -Infinity) node.endedAt = endedAt[index]!
      // `pending` because nothing is in it, not because it waits: a canvas draws it as empty.
      if (hasChildren[index] === 0) node.meta = { empty: true }
    } else {
      const row = index - jobStart
      const status = rowStatus[row]!
      node = { id: ids[index]!, flowId: deploymentId, label: labels[index]!, status: statusNames[status]! }
      if (family !== "") node.family = family
      if (region !== "") node.region = region
      if (status !== statusPending && rowStarted[row] === rowStarted[row]) node.startedAt = rowStarted[row]!
      if (status >= statusSucceeded && rowFinished[row] === rowFinished[row]) node.endedAt = rowFinished[row]!
      const reason = reasons[row]
      if (reason !== undefined && reason !== "") node.meta = { reason }
    }
    nodes[at] = node
  }

  // Relationships: the phase chain, then `contains` (child → parent) in node order, then in-region
  // finish-to-start edges between job leaves, ordered by their target, then their source.
  const relationships: Array<Relationship> = []
  for (let p = 1; p < phaseCount; p++) relationships.push({ fromId: ids[p - 1]!, toId: ids[p]!, type: "finish-to-start" })
  for (let at = 0; at < count; at++) {
    const index = order[at]!
    if (index >= phaseCount) relationships.push({ fromId: ids[index]!, toId: ids[parent[index]!]!, type: "contains" })
  }
  let omittedDependencies = 0
  let crossRegionDependencies = 0
  const sources: Array<number> = []
  for (let at = 0; at < count; at++) {
    const index = order[at]!
    if (isGroup[index] === 1) continue
    const dependsOn = dependencies[index - jobStart]!
    if (dependsOn.length === 0) continue
    sources.length = 0
    for (const dependency of Job.canonicalDependsOn(deploymentId, names[index]!, dependsOn)) {
      let source = nameIndex.get(dependency)
      if (source === undefined || source < phaseCount) {
        // A phase (`bootstrap-kit`, `hel1-1:bootstrap-kit`) names the job's own region's group of it
        // ("after this region's bootstrap kit"): one edge from that group; the phase group for a region-less job.
        const group = source !== undefined ? { regionKey: undefined, phase: source } : parseRegionGroupName(dependency)
        if (group === undefined) {
          omittedDependencies++
          continue
        }
        const region = regionOf[index]!
        if (group.regionKey !== undefined && group.regionKey !== region) {
          crossRegionDependencies++
          continue
        }
        source = region === "" ? group.phase : regionGroups.get(region)?.[group.phase]
        if (source === undefined || source === -1) {
          omittedDependencies++
          continue
        }
        // a group the job is in cannot finish before it
        let ancestor = false
        for (let at = parent[index]!; at !== -1 && !ancestor; at = parent[at]!) ancestor = at === source
        if (ancestor) continue
      } else {
        if (isGroup[source] === 1 || source === index) continue
        if (regionOf[source] !== regionOf[index]) {
          crossRegionDependencies++
          continue
        }
      }
      if (!sources.includes(source)) sources.push(source)
    }
    // insertion sort: a job has few dependencies
    for (let i = 1; i < sources.length; i++) {
      const source = sources[i]!
      let j = i - 1
      for (; j >= 0 && position[sources[j]!]! > position[source]!; j--) sources[j + 1] = sources[j]!
      sources[j + 1] = source
    }
    const toId = ids[index]!
    for (const source of sources) relationships.push({ fromId: ids[source]!, toId, type: "finish-to-start" })
  }

  // The flow.
  const flowStatus =
    leafTotal === 0
      ? "pending"
      : leafTerminal < leafTotal || input.inFlight === true
        ? "running"
        : leafFailed > 0 ? "failed" : "succeeded"
  const flow: Mutable<FlowInstance> = {
    id: deploymentId,
    status: flowStatus,
    startedAt: flowStartedAt === Infinity ? 0 : flowStartedAt
  }
  if ((flowStatus === "failed" || flowStatus === "succeeded") && flowEndedAt !== -Infinity) flow.endedAt = flowEndedAt
  flow.meta = { omittedDependencies, crossRegionDependencies } satisfies FlowMeta

  return { type: "snapshot", flow, nodes, relationships }
}

const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

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
const parseRegionGroupName = (name: string): { readonly regionKey: string; readonly phase: number } | undefined => {
  const colon = name.indexOf(":")
  if (colon <= 0 || !phaseNameLengths.has(name.length - colon - 1) || name.indexOf(":", colon + 1) !== -1) return undefined
  if (Job.isInstallJobName(name)) return undefined
  const phase = phaseIndex.get(name.slice(colon + 1))
  return phase === undefined ? undefined : { regionKey: name.slice(0, colon), phase }
}

// ---------------------------------------------------------------------------------------------
// Diff and apply

const relationshipKey = (relationship: { readonly fromId: string; readonly toId: string; readonly type: string }) =>
  relationship.fromId + "\u0000" + relationship.toId + "\u0000" + relationship.type

const sameValue = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const aKeys = Object.keys(a)
  const bKeys = Object.keys(b)
  if (aKeys.length !== bKeys.length) return false
  for (const key of aKeys) {
    if (!Object.prototype.hasOwnProperty.call(b, key)) return false
    if (!sameValue((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])) return false
  }
  return true
}

const sameNode = (a: FlowNode, b: FlowNode): boolean =>
  a.status === b.status &&
  a.label === b.label &&
  a.startedAt === b.startedAt &&
  a.endedAt === b.endedAt &&
  a.family === b.family &&
  a.region === b.region &&
  a.flowId === b.flowId &&
  sameValue(a.meta, b.meta) &&
  // the same set of present keys (a present-but-undefined field is not on the wire)
  Object.keys(a).length === Object.keys(b).length

const sameRelationship = (a: Relationship, b: Relationship): boolean =>
  a.condition === b.condition &&
  a.lag === b.lag &&
  a.fromFlowId === b.fromFlowId &&
  a.toFlowId === b.toFlowId &&
  Object.keys(a).length === Object.keys(b).length

/**
 * The messages that turn `previous` into `next`: only what changed (deletes first, then the flow,
 * nodes, and relationships that are new or different). Relationships that disappear with a deleted
 * node are not listed: the consumer prunes them. A different flow id yields `next` itself.
 *
 * Folding the messages over `previous` with `apply` gives `next`: the same flow, nodes and
 * relationships. Their order is `next`'s too, except that what is new is appended (a consumer keeps
 * insertion order); a fresh snapshot, as every subscriber gets on connect, has the canonical order.
 */
export const diff = (previous: Snapshot, next: Snapshot): ReadonlyArray<FlowMessage> => {
  if (previous.flow.id !== next.flow.id) return [next]
  const messages: Array<FlowMessage> = []
  const upsertNodes: Array<FlowNode> = []
  const deletedIds: Array<string> = []
  const upsertRelationships: Array<Relationship> = []
  const deletedPairs: Array<{ fromId: string; toId: string; type: string }> = []

  // The common case (statuses changed, nothing added or removed) compares position by position.
  if (sameNodeIds(previous.nodes, next.nodes)) {
    for (let i = 0; i < next.nodes.length; i++) if (!sameNode(previous.nodes[i]!, next.nodes[i]!)) upsertNodes.push(next.nodes[i]!)
  } else {
    const previousNodes = new Map<string, FlowNode>()
    for (const node of previous.nodes) previousNodes.set(node.id, node)
    const nextIds = new Set<string>()
    for (const node of next.nodes) {
      nextIds.add(node.id)
      const before = previousNodes.get(node.id)
      if (before === undefined || !sameNode(before, node)) upsertNodes.push(node)
    }
    for (const node of previous.nodes) if (!nextIds.has(node.id)) deletedIds.push(node.id)
  }

  if (sameRelationshipKeys(previous.relationships, next.relationships)) {
    for (let i = 0; i < next.relationships.length; i++) {
      if (!sameRelationship(previous.relationships[i]!, next.relationships[i]!)) upsertRelationships.push(next.relationships[i]!)
    }
  } else {
    const deleted = new Set(deletedIds)
    const previousRelationships = new Map<string, Relationship>()
    for (const relationship of previous.relationships) previousRelationships.set(relationshipKey(relationship), relationship)
    const nextKeys = new Set<string>()
    for (const relationship of next.relationships) {
      const key = relationshipKey(relationship)
      nextKeys.add(key)
      const before = previousRelationships.get(key)
      if (before === undefined || !sameRelationship(before, relationship)) upsertRelationships.push(relationship)
    }
    for (const [key, relationship] of previousRelationships) {
      if (nextKeys.has(key) || deleted.has(relationship.fromId) || deleted.has(relationship.toId)) continue
      deletedPairs.push({ fromId: relationship.fromId, toId: relationship.toId, type: relationship.type })
    }
  }

  if (deletedIds.length > 0) messages.push({ type: "delete-nodes", ids: deletedIds })
  if (deletedPairs.length > 0) messages.push({ type: "delete-rels", pairs: deletedPairs })
  if (!sameValue(previous.flow, next.flow)) messages.push({ type: "upsert-flow", flow: next.flow })
  if (upsertNodes.length > 0) messages.push({ type: "upsert-nodes", nodes: upsertNodes })
  if (upsertRelationships.length > 0) messages.push({ type: "upsert-rels", relationships: upsertRelationships })
  return messages
}

const sameNodeIds = (a: ReadonlyArray<FlowNode>, b: ReadonlyArray<FlowNode>): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i]!.id !== b[i]!.id) return false
  return true
}

const sameRelationshipKeys = (a: ReadonlyArray<Relationship>, b: ReadonlyArray<Relationship>): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!
    const y = b[i]!
    if (x.fromId !== y.fromId || x.toId !== y.toId || x.type !== y.type) return false
  }
  return true
}

/**
 * The consumer's reducer. `snapshot` replaces everything; upserts set by key, keeping the position of
 * what exists and appending what is new; `delete-nodes` also removes every relationship touching a
 * removed node; `delete-rels` removes by natural key.
 */
export const apply = (snapshot: Snapshot, message: FlowMessage): Snapshot => {
  switch (message.type) {
    case "snapshot":
      return message
    case "upsert-flow":
      return { ...snapshot, flow: message.flow }
    case "upsert-nodes":
      return { ...snapshot, nodes: upsertBy(snapshot.nodes, message.nodes, (node) => node.id) }
    case "upsert-rels":
      return { ...snapshot, relationships: upsertBy(snapshot.relationships, message.relationships, relationshipKey) }
    case "delete-nodes": {
      const ids = new Set(message.ids)
      return {
        ...snapshot,
        nodes: snapshot.nodes.filter((node) => !ids.has(node.id)),
        relationships: snapshot.relationships.filter(
          (relationship) => !ids.has(relationship.fromId) && !ids.has(relationship.toId)
        )
      }
    }
    case "delete-rels": {
      const keys = new Set(message.pairs.map(relationshipKey))
      return { ...snapshot, relationships: snapshot.relationships.filter((relationship) => !keys.has(relationshipKey(relationship))) }
    }
  }
}

/** Folds messages over a snapshot. */
export const applyAll = (snapshot: Snapshot, messages: ReadonlyArray<FlowMessage>): Snapshot =>
  messages.reduce(apply, snapshot)

const upsertBy = <A>(current: ReadonlyArray<A>, incoming: ReadonlyArray<A>, keyOf: (a: A) => string): ReadonlyArray<A> => {
  const result = current.slice()
  const positions = new Map<string, number>()
  current.forEach((item, index) => positions.set(keyOf(item), index))
  for (const item of incoming) {
    const key = keyOf(item)
    const position = positions.get(key)
    if (position === undefined) positions.set(key, result.push(item) - 1)
    else result[position] = item
  }
  return result
}

/** The flow's `meta` as composed (zeros when absent). */
export const metaOf = (snapshot: Snapshot): FlowMeta => {
  const meta = snapshot.flow.meta
  const count = (key: string) => (typeof meta?.[key] === "number" ? (meta[key] as number) : 0)
  return { omittedDependencies: count("omittedDependencies"), crossRegionDependencies: count("crossRegionDependencies") }
}
