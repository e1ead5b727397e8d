/** A deployment's jobs as a flow graph: deterministic composition, minimal diffs and the consumer's reducer (SPEC 2.5). */
import type { FlowMessage, FlowNode, Relationship, Snapshot } from "./FlowMessage.js"
import * as Internal from "./internal/flowCompose.js"
import type * as Job from "./Job.js"

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

/**
 * Composes the snapshot of a deployment from its jobs: five phase groups chained finish-to-start,
 * a region group per (region, phase) with children, every job as a node contained in its group,
 * in-region finish-to-start edges from `dependsOn` (a dependency naming a phase is an edge from the
 * job's own region's group of that phase), group statuses rolled up from descendants, and
 * `meta.empty = true` on a group with no children.
 * Pure and deterministic to the byte: the order of `jobs` does not matter (one row per job name;
 * when a name repeats, the last row wins).
 *
 * Written for speed (it runs on every job event): `internal/flowCompose.ts` does it in named steps
 * over parallel arrays, with no quadratic work; `test/support/flowGraphReference.ts` states the same
 * rules plainly and the property tests hold the two equal.
 */
export const compose = (input: ComposeInput): Snapshot => Internal.compose(input)

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
        relationships: snapshot.relationships.filter((relationship) => !ids.has(relationship.fromId) && !ids.has(relationship.toId))
      }
    }
    case "delete-rels": {
      const keys = new Set(message.pairs.map(relationshipKey))
      return { ...snapshot, relationships: snapshot.relationships.filter((relationship) => !keys.has(relationshipKey(relationship))) }
    }
  }
}

/** Folds messages over a snapshot. */
export const applyAll = (snapshot: Snapshot, messages: ReadonlyArray<FlowMessage>): Snapshot => messages.reduce(apply, snapshot)

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
