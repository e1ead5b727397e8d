/**
 * `FlowGraph.compose`, step by step. It runs on every job event, so it works over a table of
 * parallel arrays indexed by entry (0..4 the phase groups, then one entry per job name, then the
 * region groups as placement creates them) and does no quadratic work. The steps:
 *
 * 1. `readJobs`: one entry per job name (the last row counts); rows named like a phase group or a
 *    region group only lend their label.
 * 2. `place`: every job's phase and parent (installs by chart, the rest by `parentId`).
 * 3. `order`: phase, region slot, the group before its jobs, jobs by name.
 * 4. `rollUp`: each tree leaf counts for itself and its ancestors.
 * 5. `nodes`, `relationships`, `flow`: the snapshot.
 *
 * The same rules written plainly are in `test/support/flowGraphReference.ts`, the property tests'
 * oracle for this one.
 */
import type { ComposeInput, FlowMeta } from "../FlowGraph.js"
import type { FlowInstance, FlowNode, Relationship, Snapshot } from "../FlowMessage.js"
import * as Job from "../Job.js"
import {
  compareStrings,
  type Mutable,
  parseRegionGroupName,
  phaseCount,
  place,
  readJobs,
  statusNames,
  statusPending,
  statusSucceeded,
  statusFailed,
  type Table
} from "./flowTable.js"

// ---------------------------------------------------------------------------------------------
// 3. Order

/**
 * Phase, then region slot (regions[] order first, then keys only jobs know, in key order; an entry
 * takes the slot of its ancestor just below the phase group, 0 for region-less ones), then the
 * bucket's group, then job name. Buckets by counting sort; only the jobs within one bucket are
 * sorted, by name. `order[at]` is the entry at position `at`; `position` the inverse.
 */
const order = (table: Table, regions: ReadonlyArray<string>): { readonly order: Int32Array; readonly position: Int32Array } => {
  const { names, regionOf, nameIndex, jobStart, jobEnd, parent, phaseOf } = table
  const count = table.ids.length
  const slotOf = new Map<string, number>()
  regions.forEach((key, index) => slotOf.has(key) || slotOf.set(key, index + 1))
  const unknownKeys: Array<string> = []
  for (const key of table.regionGroups.keys()) if (!slotOf.has(key)) unknownKeys.push(key)
  unknownKeys.sort(compareStrings).forEach((key, offset) => slotOf.set(key, regions.length + 1 + offset))
  const slotCount = regions.length + unknownKeys.length + 1
  const slot = new Int32Array(count)
  for (let index = jobEnd; index < count; index++) slot[index] = slotOf.get(regionOf[index]!)!
  for (let index = jobStart; index < jobEnd; index++) {
    let at = index
    while (parent[at]! >= phaseCount) at = parent[at]!
    slot[index] = at >= jobEnd ? slot[at]! : 0
  }

  const bucketOf = (index: number): number =>
    (phaseOf[index]! * slotCount + slot[index]!) * 2 + (index < jobStart || index >= jobEnd ? 0 : 1)
  const bucketCount = phaseCount * slotCount * 2
  const bucketStart = new Int32Array(bucketCount + 1)
  for (let index = 0; index < count; index++) bucketStart[bucketOf(index) + 1]!++
  for (let bucket = 0; bucket < bucketCount; bucket++) bucketStart[bucket + 1]! += bucketStart[bucket]!
  const fill = bucketStart.slice(0, bucketCount)
  const ordered = new Int32Array(count)
  for (let index = 0; index < count; index++) ordered[fill[bucketOf(index)]!++] = index
  for (let bucket = 1; bucket < bucketCount; bucket += 2) {
    const from = bucketStart[bucket]!
    const to = bucketStart[bucket + 1]!
    if (to - from < 2) continue
    // jobs usually arrive by name (as the job store lists them): then there is nothing to sort
    let sorted = true
    for (let at = from + 1; at < to && sorted; at++) sorted = names[ordered[at - 1]!]! < names[ordered[at]!]!
    if (sorted) continue
    // job names are unique: the built-in sort of strings (UTF-16 code units, as `<`) needs no
    // callback per comparison, and the name finds its entry again
    const bucketNames: Array<string> = new Array(to - from)
    for (let at = from; at < to; at++) bucketNames[at - from] = names[ordered[at]!]!
    bucketNames.sort()
    for (let at = from; at < to; at++) ordered[at] = nameIndex.get(bucketNames[at - from]!)!
  }
  const position = new Int32Array(count)
  for (let at = 0; at < count; at++) position[ordered[at]!] = at
  return { order: ordered, position }
}

// ---------------------------------------------------------------------------------------------
// 4. Roll-up

interface Totals {
  readonly hasChildren: Uint8Array
  /** Per entry: leaves below it, and how many of them failed, succeeded, are pending, are done. */
  readonly total: Int32Array
  readonly failed: Int32Array
  readonly succeeded: Int32Array
  readonly pending: Int32Array
  readonly terminal: Int32Array
  readonly startedAt: Float64Array
  readonly endedAt: Float64Array
  /** The flow's: job leaves only. */
  readonly leafTotal: number
  readonly leafTerminal: number
  readonly leafFailed: number
  readonly flowStartedAt: number
  readonly flowEndedAt: number
}

/** Every tree leaf (a job leaf, or a group without children) counts for itself and its ancestors. */
const rollUp = (table: Table): Totals => {
  const { jobStart, isGroup, parent } = table
  const count = table.ids.length
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
    const status = jobLeaf ? table.status[row]! : statusPending
    const done = status >= statusSucceeded
    // NaN (no time) never wins a comparison
    const started = jobLeaf && status !== statusPending ? table.started[row]! : NaN
    const ended = jobLeaf && done ? table.finished[row]! : NaN
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
  return {
    hasChildren,
    total,
    failed,
    succeeded,
    pending,
    terminal,
    startedAt,
    endedAt,
    leafTotal,
    leafTerminal,
    leafFailed,
    flowStartedAt,
    flowEndedAt
  }
}

// ---------------------------------------------------------------------------------------------
// 5. The snapshot

const nodes = (table: Table, ordered: Int32Array, totals: Totals): Array<FlowNode> => {
  const { deploymentId, ids, labels, families, regionOf, jobStart, isGroup } = table
  const result: Array<FlowNode> = new Array(ordered.length)
  for (let at = 0; at < ordered.length; at++) {
    const index = ordered[at]!
    const family = families[index]!
    const region = regionOf[index]!
    let node: Mutable<FlowNode>
    if (isGroup[index] === 1) {
      const all = totals.total[index]!
      const status =
        all === 0
          ? "pending"
          : totals.failed[index]! > 0
            ? "failed"
            : totals.succeeded[index] === all
              ? "succeeded"
              : totals.pending[index] === all
                ? "pending"
                : "running"
      node = { id: ids[index]!, flowId: deploymentId, label: labels[index]!, status }
      if (family !== "") node.family = family
      if (region !== "") node.region = region
      if (totals.startedAt[index] !== Infinity) node.startedAt = totals.startedAt[index]!
      if (all > 0 && totals.terminal[index] === all && totals.endedAt[index] !== -Infinity) node.endedAt = totals.endedAt[index]!
      // `pending` because nothing is in it, not because it waits: a canvas draws it as empty.
      if (totals.hasChildren[index] === 0) node.meta = { empty: true }
    } else {
      const row = index - jobStart
      const status = table.status[row]!
      node = { id: ids[index]!, flowId: deploymentId, label: labels[index]!, status: statusNames[status]! }
      if (family !== "") node.family = family
      if (region !== "") node.region = region
      if (status !== statusPending && !Number.isNaN(table.started[row]!)) node.startedAt = table.started[row]!
      if (status >= statusSucceeded && !Number.isNaN(table.finished[row]!)) node.endedAt = table.finished[row]!
      const reason = table.reasons[row]
      if (reason !== undefined && reason !== "") node.meta = { reason }
    }
    result[at] = node
  }
  return result
}

/**
 * The phase chain, then `contains` (child → parent) in node order, then in-region finish-to-start
 * edges between job leaves, ordered by their target, then their source. A dependency naming a phase
 * (`bootstrap-kit`, `hel1-1:bootstrap-kit`) is an edge from the job's own region's group of it (the
 * phase group for a region-less job), unless the job is inside that group.
 */
const relationships = (
  table: Table,
  ordered: Int32Array,
  position: Int32Array
): { readonly relationships: Array<Relationship>; readonly omittedDependencies: number; readonly crossRegionDependencies: number } => {
  const { deploymentId, ids, names, regionOf, nameIndex, jobStart, isGroup, parent } = table
  const result: Array<Relationship> = []
  for (let p = 1; p < phaseCount; p++) result.push({ fromId: ids[p - 1]!, toId: ids[p]!, type: "finish-to-start" })
  for (let at = 0; at < ordered.length; at++) {
    const index = ordered[at]!
    if (index >= phaseCount) result.push({ fromId: ids[index]!, toId: ids[parent[index]!]!, type: "contains" })
  }
  let omittedDependencies = 0
  let crossRegionDependencies = 0
  const sources: Array<number> = []
  for (let at = 0; at < ordered.length; at++) {
    const index = ordered[at]!
    if (isGroup[index] === 1) continue
    const dependsOn = table.dependencies[index - jobStart]!
    if (dependsOn.length === 0) continue
    sources.length = 0
    for (const dependency of Job.canonicalDependsOn(deploymentId, names[index]!, dependsOn)) {
      let source = nameIndex.get(dependency)
      if (source === undefined || source < phaseCount) {
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
        source = region === "" ? group.phase : table.regionGroups.get(region)?.[group.phase]
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
    // insertion sort by node position: a job has few dependencies
    for (let i = 1; i < sources.length; i++) {
      const source = sources[i]!
      let j = i - 1
      for (; j >= 0 && position[sources[j]!]! > position[source]!; j--) sources[j + 1] = sources[j]!
      sources[j + 1] = source
    }
    const toId = ids[index]!
    for (const source of sources) result.push({ fromId: ids[source]!, toId, type: "finish-to-start" })
  }
  return { relationships: result, omittedDependencies, crossRegionDependencies }
}

/** Decided by the job leaves; `running` while the deployment is in flight. */
const flow = (deploymentId: string, totals: Totals, inFlight: boolean, meta: FlowMeta): FlowInstance => {
  const status =
    totals.leafTotal === 0
      ? "pending"
      : totals.leafTerminal < totals.leafTotal || inFlight
        ? "running"
        : totals.leafFailed > 0
          ? "failed"
          : "succeeded"
  const result: Mutable<FlowInstance> = {
    id: deploymentId,
    status,
    startedAt: totals.flowStartedAt === Infinity ? 0 : totals.flowStartedAt
  }
  if ((status === "failed" || status === "succeeded") && totals.flowEndedAt !== -Infinity) result.endedAt = totals.flowEndedAt
  result.meta = { omittedDependencies: meta.omittedDependencies, crossRegionDependencies: meta.crossRegionDependencies }
  return result
}

export const compose = (input: ComposeInput): Snapshot => {
  const table = readJobs(input)
  place(table, input.phaseOfChart ?? Job.defaultPhaseOfChart)
  const { order: ordered, position } = order(table, input.regions)
  const totals = rollUp(table)
  const drawn = relationships(table, ordered, position)
  return {
    type: "snapshot",
    flow: flow(input.deploymentId, totals, input.inFlight === true, {
      omittedDependencies: drawn.omittedDependencies,
      crossRegionDependencies: drawn.crossRegionDependencies
    }),
    nodes: nodes(table, ordered, totals),
    relationships: drawn.relationships
  }
}
