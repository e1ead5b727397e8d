/**
 * "Why is this not done?": the chain of unmet finish-to-start dependencies that holds a job, down to
 * its root causes; and the critical path of what is still running.
 *
 * A job waits for its own dependencies and for those of every group that contains it (a phase
 * depends on the one before; a region group on another phase's region group). A dependency that is
 * a group stands for its unfinished jobs.
 */
import type { FlowModel } from "./model.js"

export interface ChainStep {
  readonly id: string
  readonly depth: number
  readonly text: string
}

const reasonOf = (model: FlowModel, id: string): string | undefined => {
  const reason = model.nodes.get(id)?.meta?.reason
  return typeof reason === "string" && reason !== "" ? reason : undefined
}

const labelOf = (model: FlowModel, id: string) => model.nodes.get(id)?.label ?? id

const done = (model: FlowModel, id: string) => model.nodes.get(id)?.status === "succeeded"

/** Dependencies of `id` and of its containers that have not succeeded. */
export const unmetDependencies = (model: FlowModel, id: string): Array<string> => {
  const result: Array<string> = []
  const seen = new Set<string>()
  for (let at: string | undefined = id; at !== undefined; at = model.parent.get(at)) {
    for (const from of model.incoming.get(at) ?? []) {
      if (seen.has(from) || done(model, from)) continue
      seen.add(from)
      result.push(from)
    }
  }
  return result
}

/** The unfinished jobs of a group that are not themselves waiting inside it: where its work stands. */
const frontier = (model: FlowModel, group: string): Array<string> => {
  const leaves: Array<string> = []
  const walk = (at: string) => {
    for (const kid of model.children.get(at) ?? []) {
      if (model.children.has(kid)) walk(kid)
      else if (!done(model, kid)) leaves.push(kid)
    }
  }
  walk(group)
  const failedOrRunning = leaves.filter((leaf) => {
    const status = model.nodes.get(leaf)?.status
    return status === "failed" || status === "running"
  })
  if (failedOrRunning.length > 0) return failedOrRunning.slice(0, 8)
  return leaves.filter((leaf) => unmetDependencies(model, leaf).length === 0).slice(0, 8)
}

const describe = (model: FlowModel, id: string): string => {
  const status = model.nodes.get(id)?.status ?? "unknown"
  const reason = reasonOf(model, id)
  const what = model.children.has(id) ? `${labelOf(model, id)} (group)` : labelOf(model, id)
  const state =
    status === "failed"
      ? `failed${reason === undefined ? "" : `: ${reason}`}`
      : status === "running"
        ? `running${reason === undefined ? "" : ` (${reason})`}`
        : status === "pending"
          ? `pending${reason === undefined ? "" : ` (${reason})`}`
          : status
  return `${what} — ${state}`
}

/**
 * The chain that holds `id`: each step one unmet dependency, indented by depth, down to root causes
 * (a failed or running job, or a pending one with nothing left to wait for).
 */
export const blockingChain = (
  model: FlowModel,
  id: string
): { readonly steps: ReadonlyArray<ChainStep>; readonly ids: ReadonlySet<string>; readonly summary: string } => {
  const steps: Array<ChainStep> = []
  const ids = new Set<string>([id])
  const roots: Array<string> = []
  const visit = (at: string, depth: number) => {
    if (steps.length > 200) return
    const unmet = unmetDependencies(model, at)
    if (unmet.length === 0 && at !== id) roots.push(at)
    for (const dependency of unmet) {
      if (ids.has(dependency)) continue
      ids.add(dependency)
      steps.push({ id: dependency, depth, text: `waiting for ${describe(model, dependency)}` })
      if (model.children.has(dependency)) {
        for (const leaf of frontier(model, dependency)) {
          if (ids.has(leaf)) continue
          ids.add(leaf)
          steps.push({ id: leaf, depth: depth + 1, text: `in it: ${describe(model, leaf)}` })
          visit(leaf, depth + 2)
        }
      } else visit(dependency, depth + 1)
    }
  }
  visit(id, 0)
  const status = model.nodes.get(id)?.status
  const rootText = roots
    .filter((root) => !model.children.has(root))
    .slice(0, 3)
    .map((root) => {
      const status = model.nodes.get(root)?.status
      const reason = reasonOf(model, root)
      return `${labelOf(model, root)} (${status === "failed" ? "failed" : status === "running" ? "running" : "pending"}${reason === undefined ? "" : `: ${reason}`})`
    })
  const summary =
    status === "succeeded"
      ? `${labelOf(model, id)} is done.`
      : steps.length === 0
        ? status === "failed"
          ? `${labelOf(model, id)} failed${reasonOf(model, id) === undefined ? "" : `: ${reasonOf(model, id)}`}`
          : status === "running"
            ? `${labelOf(model, id)} is running; nothing holds it.`
            : `${labelOf(model, id)} waits for nothing; it is queued.`
        : `${labelOf(model, id)} is ${status}: waiting for ${rootText.length > 0 ? rootText.join(", ") : describe(model, steps[0]!.id)}`
  return { steps, ids, summary }
}

/**
 * The critical path of what is still running: the longest chain of unfinished jobs linked by
 * finish-to-start edges (group edges stand for all their jobs), ending at the job that will finish
 * last if everything takes as long. Linear in nodes and edges.
 */
export const criticalPath = (model: FlowModel): ReadonlySet<string> => {
  const unfinished: Array<string> = []
  for (const [id, node] of model.nodes)
    if (!model.children.has(id) && node.status !== "succeeded" && node.family !== "group") unfinished.push(id)
  if (unfinished.length === 0) return new Set()
  const index = new Map(unfinished.map((id, i) => [id, i]))
  const preds: Array<Array<number>> = unfinished.map(() => [])
  const succs: Array<Array<number>> = unfinished.map(() => [])
  unfinished.forEach((id, i) => {
    for (const dependency of unmetDependencies(model, id)) {
      const j = index.get(dependency)
      if (j !== undefined) {
        preds[i]!.push(j)
        succs[j]!.push(i)
      } else if (model.children.has(dependency)) {
        // a group dependency: its unfinished jobs
        for (const leaf of frontier(model, dependency)) {
          const k = index.get(leaf)
          if (k !== undefined && k !== i) {
            preds[i]!.push(k)
            succs[k]!.push(i)
          }
        }
      }
    }
  })
  const missing = preds.map((p) => p.length)
  const length = new Int32Array(unfinished.length).fill(1)
  const via = new Int32Array(unfinished.length).fill(-1)
  const queue: Array<number> = []
  missing.forEach((m, i) => m === 0 && queue.push(i))
  for (let head = 0; head < queue.length; head++) {
    const u = queue[head]!
    for (const v of succs[u]!) {
      if (length[v]! < length[u]! + 1) {
        length[v] = length[u]! + 1
        via[v] = u
      }
      if (--missing[v]! === 0) queue.push(v)
    }
  }
  let end = 0
  for (let i = 1; i < unfinished.length; i++) if (length[i]! > length[end]!) end = i
  const path = new Set<string>()
  for (let at = end; at !== -1 && path.size < unfinished.length; at = via[at]!) path.add(unfinished[at]!)
  return path
}
