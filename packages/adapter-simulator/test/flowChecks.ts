/** The Core property checks of a flow snapshot (SPEC 2.5), applied to what the orchestrator published. */
import * as FlowGraph from "@sovereign/core/FlowGraph"
import type { FlowMessage, Snapshot } from "@sovereign/core/FlowMessage"
import type * as Job from "@sovereign/core/Job"
import { expect } from "@effect/vitest"

const phaseGroups = ["provisioner", "bootstrap-kit", "cutover", "handover", "apps"]

export const checkSnapshot = (snapshot: Snapshot, deploymentId: string) => {
  const ids = new Set(snapshot.nodes.map((node) => node.id))
  const byId = new Map(snapshot.nodes.map((node) => [node.id, node]))
  // Every relationship points at existing nodes.
  for (const relationship of snapshot.relationships) {
    expect(ids.has(relationship.fromId), `dangling from ${relationship.fromId}`).toBe(true)
    expect(ids.has(relationship.toId), `dangling to ${relationship.toId}`).toBe(true)
  }
  // `contains` edges form a tree under the five phase groups.
  const parent = new Map<string, string>()
  for (const relationship of snapshot.relationships.filter((r) => r.type === "contains")) {
    expect(parent.has(relationship.fromId), `${relationship.fromId} has two parents`).toBe(false)
    parent.set(relationship.fromId, relationship.toId)
  }
  const roots = phaseGroups.map((phase) => `${deploymentId}:${phase}`)
  for (const root of roots) expect(ids.has(root)).toBe(true)
  for (const node of snapshot.nodes) {
    let current = node.id
    for (let depth = 0; parent.has(current); depth++) {
      expect(depth).toBeLessThan(10)
      current = parent.get(current)!
    }
    expect(roots, `${node.id} does not hang under a phase group`).toContain(current)
  }
  // No finish-to-start edge crosses regions.
  for (const relationship of snapshot.relationships.filter((r) => r.type === "finish-to-start")) {
    const from = byId.get(relationship.fromId)!
    const to = byId.get(relationship.toId)!
    if (roots.includes(from.id) && roots.includes(to.id)) continue
    expect(from.region, `${from.id} → ${to.id} crosses regions`).toBe(to.region)
  }
  // Groups roll up from their leaves.
  const children = new Map<string, Array<string>>()
  for (const [child, container] of parent) children.set(container, [...(children.get(container) ?? []), child])
  const leaves = (id: string): Array<string> => {
    const direct = children.get(id) ?? []
    return direct.length === 0 ? [id] : direct.flatMap(leaves)
  }
  for (const [container, direct] of children) {
    if (direct.length === 0) continue
    const statuses = leaves(container).map((leaf) => byId.get(leaf)!.status)
    const expected = statuses.includes("failed")
      ? "failed"
      : statuses.every((s) => s === "succeeded")
        ? "succeeded"
        : statuses.every((s) => s === "pending")
          ? "pending"
          : "running"
    expect(byId.get(container)!.status, `group ${container}`).toBe(expected)
  }
}

/** A finished deployment's graph: no group with children is `pending`; a group without children says it is empty. */
export const checkFinished = (snapshot: Snapshot, deploymentId: string) => {
  const containers = new Set(snapshot.relationships.filter((r) => r.type === "contains").map((r) => r.toId))
  const groups = snapshot.nodes.filter((node) => node.family === "group" || containers.has(node.id))
  expect(groups.length).toBeGreaterThanOrEqual(phaseGroups.length)
  for (const group of groups) {
    if (containers.has(group.id)) {
      expect(group.status, `${group.id} has children`).not.toBe("pending")
      expect(group.meta?.empty, `${group.id} has children`).toBeUndefined()
    } else {
      expect(group.meta?.empty, `${group.id} has no children`).toBe(true)
    }
  }
  expect(snapshot.nodes.some((node) => node.id === `${deploymentId}:apps`)).toBe(true)
}

/** Replays the published deltas onto the empty graph; the result must equal a fresh composition of the stored jobs. */
export const checkReplay = (
  deploymentId: string,
  regions: ReadonlyArray<string>,
  published: ReadonlyArray<unknown>,
  jobs: ReadonlyArray<Job.Job>,
  inFlight: boolean
) => {
  const initial = FlowGraph.compose({ deploymentId, regions, jobs: [], inFlight: true })
  const replayed = FlowGraph.applyAll(initial, published as ReadonlyArray<FlowMessage>)
  const fresh = FlowGraph.compose({ deploymentId, regions, jobs, inFlight })
  const normal = (snapshot: Snapshot) => ({
    flow: snapshot.flow,
    nodes: [...snapshot.nodes].sort((a, b) => a.id.localeCompare(b.id)),
    relationships: [...snapshot.relationships].map((r) => `${r.type} ${r.fromId} ${r.toId}`).sort()
  })
  const a = normal(replayed)
  const b = normal(fresh)
  expect(a.flow).toEqual(b.flow)
  expect(a.relationships).toEqual(b.relationships)
  const differing = a.nodes.filter((node, index) => JSON.stringify(node) !== JSON.stringify(b.nodes[index]))
  expect(differing.slice(0, 3)).toEqual(b.nodes.filter((node) => differing.slice(0, 3).some((d) => d.id === node.id)))
  expect(a.nodes.length).toBe(b.nodes.length)
  // Composition is deterministic to the byte.
  expect(JSON.stringify(FlowGraph.compose({ deploymentId, regions, jobs: [...jobs].reverse(), inFlight }))).toBe(JSON.stringify(fresh))
  return fresh
}
