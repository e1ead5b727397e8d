/**
 * The flow as the console holds it: the FlowMessage reducer of SPEC 2.5 (snapshot replaces, upserts
 * set by key, deletes prune), telling apart what changes the graph's structure (new or removed nodes
 * and relationships: a new layout) from what only changes statuses (patch those nodes, no layout).
 */
export interface FlowNode {
  readonly id: string
  readonly flowId: string
  readonly label: string
  readonly status: string
  readonly family?: string
  readonly region?: string
  readonly startedAt?: number
  readonly endedAt?: number
  readonly meta?: Record<string, unknown>
}

export interface Relationship {
  readonly fromId: string
  readonly toId: string
  readonly type: string
}

export interface FlowInstance {
  readonly id: string
  readonly status: string
  readonly startedAt: number
  readonly endedAt?: number
  readonly meta?: Record<string, unknown>
}

export type FlowMessage =
  | {
      readonly type: "snapshot"
      readonly flow: FlowInstance
      readonly nodes?: ReadonlyArray<FlowNode>
      readonly relationships?: ReadonlyArray<Relationship>
    }
  | { readonly type: "upsert-flow"; readonly flow: FlowInstance }
  | { readonly type: "upsert-nodes"; readonly nodes: ReadonlyArray<FlowNode> }
  | { readonly type: "upsert-rels"; readonly relationships: ReadonlyArray<Relationship> }
  | { readonly type: "delete-nodes"; readonly ids: ReadonlyArray<string> }
  | { readonly type: "delete-rels"; readonly pairs: ReadonlyArray<Relationship> }

export const relationshipKey = (r: Relationship) => r.fromId + "\u0000" + r.toId + "\u0000" + r.type

/** What a batch of messages changed. */
export interface Change {
  /** Nodes or relationships came or went: the layout must be computed again. */
  structure: boolean
  /** Nodes whose status (or times, reason) changed and that exist already. */
  readonly changed: Set<string>
  flow: boolean
  /** Status changes of jobs (not groups) received, counted per message (the benchmarks read it). */
  jobStatusChanges: number
}

export const emptyChange = (): Change => ({ structure: false, changed: new Set(), flow: false, jobStatusChanges: 0 })

export class FlowModel {
  flow: FlowInstance | undefined
  readonly nodes = new Map<string, FlowNode>()
  readonly relationships = new Map<string, Relationship>()
  /** Derived structure, rebuilt by `index()` after a structural change. */
  parent = new Map<string, string>()
  children = new Map<string, Array<string>>()
  incoming = new Map<string, Array<string>>()
  outgoing = new Map<string, Array<string>>()

  apply(message: FlowMessage, change: Change): void {
    switch (message.type) {
      case "snapshot": {
        this.flow = message.flow
        this.nodes.clear()
        this.relationships.clear()
        for (const node of message.nodes ?? []) this.nodes.set(node.id, node)
        for (const r of message.relationships ?? []) this.relationships.set(relationshipKey(r), r)
        change.structure = true
        change.flow = true
        return
      }
      case "upsert-flow":
        this.flow = message.flow
        change.flow = true
        return
      case "upsert-nodes":
        for (const node of message.nodes) {
          const before = this.nodes.get(node.id)
          this.nodes.set(node.id, node)
          if (before !== undefined && before.status !== node.status && node.family !== "group") change.jobStatusChanges++
          if (before === undefined || before.label !== node.label || before.family !== node.family || before.region !== node.region)
            change.structure = true
          else change.changed.add(node.id)
        }
        return
      case "upsert-rels":
        for (const r of message.relationships) {
          const key = relationshipKey(r)
          if (!this.relationships.has(key)) change.structure = true
          this.relationships.set(key, r)
        }
        return
      case "delete-nodes": {
        const ids = new Set(message.ids)
        for (const id of ids) this.nodes.delete(id)
        for (const [key, r] of this.relationships) if (ids.has(r.fromId) || ids.has(r.toId)) this.relationships.delete(key)
        change.structure = true
        return
      }
      case "delete-rels":
        for (const pair of message.pairs) this.relationships.delete(relationshipKey(pair))
        change.structure = true
        return
    }
  }

  /** Rebuilds parent/children and the finish-to-start adjacency. */
  index(): void {
    const parent = new Map<string, string>()
    const children = new Map<string, Array<string>>()
    const incoming = new Map<string, Array<string>>()
    const outgoing = new Map<string, Array<string>>()
    const push = (map: Map<string, Array<string>>, key: string, value: string) => {
      const list = map.get(key)
      if (list === undefined) map.set(key, [value])
      else list.push(value)
    }
    for (const r of this.relationships.values()) {
      if (!this.nodes.has(r.fromId) || !this.nodes.has(r.toId)) continue
      if (r.type === "contains") parent.set(r.fromId, r.toId)
      else if (r.type === "finish-to-start") {
        push(incoming, r.toId, r.fromId)
        push(outgoing, r.fromId, r.toId)
      }
    }
    // children in the flow's node order (canonical: phase, region, name)
    for (const id of this.nodes.keys()) {
      const p = parent.get(id)
      if (p !== undefined) push(children, p, id)
    }
    this.parent = parent
    this.children = children
    this.incoming = incoming
    this.outgoing = outgoing
  }

  isGroup(id: string): boolean {
    return this.nodes.get(id)?.family === "group" || this.children.has(id)
  }
}
