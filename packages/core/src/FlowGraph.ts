/** A deployment's jobs as a flow graph: deterministic composition, minimal diffs and the consumer's reducer (SPEC 2.5). */
import type { FlowInstance, FlowMessage, FlowNode, Relationship, Snapshot } from "./FlowMessage.js"
import * as Job from "./Job.js"

export interface ComposeInput {
  readonly deploymentId: string
  /** Region keys in `regions[]` order; the first is the primary. */
  readonly regions: ReadonlyArray<string>
  /** The deployment's jobs, one per id (merged), in any order. */
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
const phaseIndex: Readonly<Record<string, number>> = Object.fromEntries(Job.phases.map((phase, index) => [phase, index]))
const fallbackPhase: Job.Phase = "apps"

const familyOfPhase: Readonly<Record<Job.Phase, string>> = {
  provisioner: "provision",
  "bootstrap-kit": "install",
  cutover: "cutover",
  handover: "handover",
  apps: "install"
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** One node being composed: a phase group, a region group, or a job. */
interface Entry {
  readonly id: string
  /** Sort key within its bucket; groups of the bucket itself sort first. */
  readonly sortName: string
  readonly job: Job.Job | undefined
  readonly isGroup: boolean
  /** 0 for the phase and region groups (first in their bucket), 1 for jobs. */
  readonly head: number
  readonly label: string
  family: string
  readonly region: string
  /** Index of the container entry; -1 for a phase group. */
  parent: number
  phase: number
  /** Region slot for ordering: 0 none, 1.. the regions in order, then unknown keys. */
  slot: number
  /** Position in the final node order. */
  order: number
  // roll-up over the tree leaves below (or at) this entry
  total: number
  failed: number
  succeeded: number
  pending: number
  terminal: number
  startedAt: number
  endedAt: number
}

const newEntry = (
  id: string,
  sortName: string,
  job: Job.Job | undefined,
  isGroup: boolean,
  head: number,
  label: string,
  family: string,
  region: string
): Entry => ({
  id,
  sortName,
  job,
  isGroup,
  head,
  label,
  family,
  region,
  parent: -1,
  phase: 0,
  slot: 0,
  order: 0,
  total: 0,
  failed: 0,
  succeeded: 0,
  pending: 0,
  terminal: 0,
  startedAt: Infinity,
  endedAt: -Infinity
})

const labelOf = (job: Job.Job | undefined, fallback: string): string => {
  const displayName = job?.displayName
  return displayName !== undefined && displayName.trim() !== "" ? displayName : fallback
}

const regionGroupLabel = (phase: Job.Phase, regionKey: string) => `${Job.phaseLabel[phase]} (${regionKey})`

/**
 * Composes the snapshot of a deployment from its jobs: five phase groups chained finish-to-start,
 * a region group per (region, phase) with children, every job as a node contained in its group,
 * in-region finish-to-start edges from `dependsOn`, group statuses rolled up from descendants.
 * Pure and deterministic to the byte: the order of `jobs` does not matter.
 */
export const compose = (input: ComposeInput): Snapshot => {
  const { deploymentId, regions } = input
  const phaseOfChart = input.phaseOfChart ?? Job.defaultPhaseOfChart
  const idPrefix = deploymentId + ":"
  const primaryKey = regions[0] ?? ""

  const entries: Array<Entry> = []
  const indexById = new Map<string, number>()

  // Phase groups: always five, possibly backed by a stored group row.
  const storedById = new Map<string, Job.Job>()
  for (const job of input.jobs) if (job.deploymentId === deploymentId) storedById.set(job.id, job)
  for (let p = 0; p < phaseCount; p++) {
    const phase = Job.phases[p]!
    const id = idPrefix + phase
    const stored = storedById.get(id)
    const entry = newEntry(id, "", stored, true, 0, labelOf(stored, Job.phaseLabel[phase]), "group", "")
    entry.phase = p
    indexById.set(id, entries.push(entry) - 1)
  }

  const regionGroupIndex = new Map<string, number>()
  const regionGroup = (regionKey: string, p: number): number => {
    const phase = Job.phases[p]!
    const id = idPrefix + Job.regionGroupJobName(regionKey, phase)
    const known = regionGroupIndex.get(id)
    if (known !== undefined) return known
    const stored = storedById.get(id)
    const entry = newEntry(id, "", stored, true, 0, labelOf(stored, regionGroupLabel(phase, regionKey)), "group", regionKey)
    entry.parent = p
    entry.phase = p
    const index = entries.push(entry) - 1
    regionGroupIndex.set(id, index)
    indexById.set(id, index)
    return index
  }

  // Jobs (region-group rows are reserved ids: they only lend their label to the synthesized group).
  const jobStart = entries.length
  for (const job of storedById.values()) {
    if (indexById.has(job.id) || (job.type === "group" && parseRegionGroupName(job.jobName) !== undefined)) continue
    const isGroup = job.type === "group"
    const install = !isGroup && Job.isInstallJobName(job.jobName)
    const region = job.region !== ""
      ? job.region
      : install ? Job.regionPrefixOf(job.jobName) ?? primaryKey : ""
    const family = isGroup ? "group" : install ? "install" : ""
    const entry = newEntry(job.id, job.jobName, job, isGroup, 1, labelOf(job, job.jobName), family, region)
    indexById.set(job.id, entries.push(entry) - 1)
  }
  const jobEnd = entries.length

  // Placement: install leaves by chart; everything else by parentId (a phase group, a region group
  // or a stored group; nested groups pass their phase on). Cycles and unknown parents fall back to
  // the `apps` phase.
  const state = new Uint8Array(jobEnd) // 0 unresolved, 1 resolving, 2 resolved
  const containerIn = (region: string, p: number): number => (region === "" ? p : regionGroup(region, p))
  const resolve = (index: number): void => {
    if (state[index] === 2) return
    const entry = entries[index]!
    const job = entry.job!
    state[index] = 1
    if (entry.family === "install") {
      entry.phase = phaseIndex[phaseOfChart(chartOfInstall(job.jobName))] ?? phaseIndex[fallbackPhase]!
      entry.parent = containerIn(entry.region, entry.phase)
    } else {
      const parentName = job.parentId.startsWith(idPrefix) ? job.parentId.slice(idPrefix.length) : job.parentId
      const phaseOfParent = parentName === "" ? undefined : phaseIndex[parentName]
      const regionGroupOfParent = phaseOfParent === undefined ? parseRegionGroupName(parentName) : undefined
      const parentIndex = parentName === "" ? undefined : indexById.get(idPrefix + parentName)
      if (phaseOfParent !== undefined) {
        entry.phase = phaseOfParent
        entry.parent = containerIn(entry.region, entry.phase)
      } else if (regionGroupOfParent !== undefined) {
        entry.phase = regionGroupOfParent.phase
        entry.parent = regionGroup(regionGroupOfParent.regionKey, entry.phase)
      } else if (
        parentIndex !== undefined && parentIndex >= jobStart && parentIndex < jobEnd &&
        entries[parentIndex]!.isGroup && state[parentIndex] !== 1
      ) {
        resolve(parentIndex)
        entry.phase = entries[parentIndex]!.phase
        entry.parent = parentIndex
      } else {
        entry.phase = phaseIndex[fallbackPhase]!
        entry.parent = containerIn(entry.region, entry.phase)
      }
      if (entry.family === "") entry.family = familyOfPhase[Job.phases[entry.phase]!]
    }
    state[index] = 2
  }
  for (let index = jobStart; index < jobEnd; index++) resolve(index)

  // Region slots: regions[] order first, then keys only jobs know, in key order. An entry takes the
  // slot of its ancestor just below the phase group (a region group, or 0 for region-less rows).
  const slotOf = new Map<string, number>()
  regions.forEach((key, index) => slotOf.has(key) || slotOf.set(key, index + 1))
  const unknownKeys: Array<string> = []
  for (const index of regionGroupIndex.values()) {
    const key = entries[index]!.region
    if (!slotOf.has(key)) {
      slotOf.set(key, -1)
      unknownKeys.push(key)
    }
  }
  unknownKeys.sort(compareStrings).forEach((key, offset) => slotOf.set(key, regions.length + 1 + offset))
  for (let index = phaseCount; index < entries.length; index++) {
    let at = index
    while (entries[at]!.parent >= phaseCount) at = entries[at]!.parent
    const top = entries[at]!
    entries[index]!.slot = top.head === 0 ? slotOf.get(top.region)! : 0
  }

  // Deterministic order: phase, then region slot, then (groups of the bucket first) job name.
  const order = entries.map((_, index) => index)
  order.sort((a, b) => {
    const x = entries[a]!
    const y = entries[b]!
    if (x.phase !== y.phase) return x.phase - y.phase
    if (x.slot !== y.slot) return x.slot - y.slot
    if (x.head !== y.head) return x.head - y.head
    return compareStrings(x.sortName, y.sortName)
  })
  order.forEach((index, position) => (entries[index]!.order = position))

  // Roll-up: every tree leaf (a job leaf, or a group without children) counts for itself and its ancestors.
  const hasChildren = new Uint8Array(entries.length)
  for (let index = phaseCount; index < entries.length; index++) hasChildren[entries[index]!.parent] = 1
  let leafTotal = 0
  let leafTerminal = 0
  let leafFailed = 0
  let flowStartedAt = Infinity
  let flowEndedAt = -Infinity
  for (let index = phaseCount; index < entries.length; index++) {
    if (hasChildren[index] === 1) continue
    const entry = entries[index]!
    const jobLeaf = !entry.isGroup
    const status: Job.JobStatus = jobLeaf ? entry.job!.status : "pending"
    const startedAt = jobLeaf && status !== "pending" ? entry.job!.startedAt : undefined
    const endedAt = jobLeaf && Job.isTerminal(status) ? entry.job!.finishedAt : undefined
    const terminal = Job.isTerminal(status)
    if (jobLeaf) {
      leafTotal++
      if (terminal) leafTerminal++
      if (status === "failed") leafFailed++
      if (startedAt !== undefined && startedAt < flowStartedAt) flowStartedAt = startedAt
      if (endedAt !== undefined && endedAt > flowEndedAt) flowEndedAt = endedAt
    }
    for (let at = index; at !== -1; at = entries[at]!.parent) {
      const target = entries[at]!
      target.total++
      if (status === "failed") target.failed++
      else if (status === "succeeded") target.succeeded++
      else if (status === "pending") target.pending++
      if (terminal) target.terminal++
      if (startedAt !== undefined && startedAt < target.startedAt) target.startedAt = startedAt
      if (endedAt !== undefined && endedAt > target.endedAt) target.endedAt = endedAt
    }
  }

  // Nodes.
  const nodes: Array<FlowNode> = new Array(entries.length)
  for (const index of order) {
    const entry = entries[index]!
    const node: Mutable<FlowNode> = {
      id: entry.id,
      flowId: deploymentId,
      label: entry.label,
      status: entry.isGroup ? rolledUp(entry) : entry.job!.status
    }
    if (entry.family !== "") node.family = entry.family
    if (entry.region !== "") node.region = entry.region
    if (entry.isGroup) {
      if (entry.startedAt !== Infinity) node.startedAt = entry.startedAt
      if (entry.total > 0 && entry.terminal === entry.total && entry.endedAt !== -Infinity) node.endedAt = entry.endedAt
    } else {
      const job = entry.job!
      if (job.status !== "pending" && job.startedAt !== undefined) node.startedAt = job.startedAt
      if (Job.isTerminal(job.status) && job.finishedAt !== undefined) node.endedAt = job.finishedAt
      if (job.reason !== undefined && job.reason !== "") node.meta = { reason: job.reason }
    }
    nodes[entry.order] = node
  }

  // Relationships: the phase chain, then `contains` (child → parent) in node order, then in-region
  // finish-to-start edges between job leaves, ordered by their target, then their source.
  const relationships: Array<Relationship> = []
  for (let p = 1; p < phaseCount; p++) {
    relationships.push({ fromId: entries[p - 1]!.id, toId: entries[p]!.id, type: "finish-to-start" })
  }
  for (const index of order) {
    const entry = entries[index]!
    if (entry.parent !== -1) relationships.push({ fromId: entry.id, toId: entries[entry.parent]!.id, type: "contains" })
  }
  let omittedDependencies = 0
  let crossRegionDependencies = 0
  const sources: Array<number> = []
  for (const index of order) {
    const entry = entries[index]!
    if (entry.isGroup || entry.job === undefined) continue
    const job = entry.job
    if (job.dependsOn.length === 0) continue
    sources.length = 0
    for (const dependency of Job.canonicalDependsOn(deploymentId, job.jobName, job.dependsOn)) {
      const source = indexById.get(idPrefix + dependency)
      if (source === undefined) {
        omittedDependencies++
        continue
      }
      const from = entries[source]!
      if (from.isGroup || source === index) continue
      if (from.region !== entry.region) {
        crossRegionDependencies++
        continue
      }
      if (!sources.includes(source)) sources.push(source)
    }
    if (sources.length > 1) sources.sort((a, b) => entries[a]!.order - entries[b]!.order)
    for (const source of sources) relationships.push({ fromId: entries[source]!.id, toId: entry.id, type: "finish-to-start" })
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

/** Roll-up: none → pending; any failed → failed; all succeeded → succeeded; all pending → pending; else running. */
const rolledUp = (entry: Entry): Job.JobStatus =>
  entry.total === 0
    ? "pending"
    : entry.failed > 0
      ? "failed"
      : entry.succeeded === entry.total
        ? "succeeded"
        : entry.pending === entry.total ? "pending" : "running"

/** `install-hel1-1:cilium` → `cilium`. */
const chartOfInstall = (jobName: string): string => {
  const rest = jobName.slice("install-".length)
  const colon = rest.indexOf(":")
  return colon >= 0 ? rest.slice(colon + 1) : rest
}

/** `hel1-1:bootstrap-kit` → the region group of hel1-1 in bootstrap-kit; region group names are reserved. */
const parseRegionGroupName = (name: string): { readonly regionKey: string; readonly phase: number } | undefined => {
  const colon = name.indexOf(":")
  if (colon <= 0 || name.indexOf(":", colon + 1) !== -1) return undefined
  const phase = phaseIndex[name.slice(colon + 1)]
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
 */
export const diff = (previous: Snapshot, next: Snapshot): ReadonlyArray<FlowMessage> => {
  if (previous.flow.id !== next.flow.id) return [next]
  const messages: Array<FlowMessage> = []

  const previousNodes = new Map<string, FlowNode>()
  for (const node of previous.nodes) previousNodes.set(node.id, node)
  const nextIds = new Set<string>()
  const upsertNodes: Array<FlowNode> = []
  for (const node of next.nodes) {
    nextIds.add(node.id)
    const before = previousNodes.get(node.id)
    if (before === undefined || !sameNode(before, node)) upsertNodes.push(node)
  }
  const deletedIds: Array<string> = []
  for (const node of previous.nodes) if (!nextIds.has(node.id)) deletedIds.push(node.id)
  const deleted = new Set(deletedIds)

  const previousRelationships = new Map<string, Relationship>()
  for (const relationship of previous.relationships) previousRelationships.set(relationshipKey(relationship), relationship)
  const nextKeys = new Set<string>()
  const upsertRelationships: Array<Relationship> = []
  for (const relationship of next.relationships) {
    const key = relationshipKey(relationship)
    nextKeys.add(key)
    const before = previousRelationships.get(key)
    if (before === undefined || !sameRelationship(before, relationship)) upsertRelationships.push(relationship)
  }
  const deletedPairs: Array<{ fromId: string; toId: string; type: string }> = []
  for (const [key, relationship] of previousRelationships) {
    if (nextKeys.has(key) || deleted.has(relationship.fromId) || deleted.has(relationship.toId)) continue
    deletedPairs.push({ fromId: relationship.fromId, toId: relationship.toId, type: relationship.type })
  }

  if (deletedIds.length > 0) messages.push({ type: "delete-nodes", ids: deletedIds })
  if (deletedPairs.length > 0) messages.push({ type: "delete-rels", pairs: deletedPairs })
  if (!sameValue(previous.flow, next.flow)) messages.push({ type: "upsert-flow", flow: next.flow })
  if (upsertNodes.length > 0) messages.push({ type: "upsert-nodes", nodes: upsertNodes })
  if (upsertRelationships.length > 0) messages.push({ type: "upsert-rels", relationships: upsertRelationships })
  return messages
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
