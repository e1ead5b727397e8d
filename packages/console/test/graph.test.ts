/**
 * The console's graph logic without a browser: the reducer, the layout (one band per region, group
 * edges drawn once, longest-path layers not clipped, folding), the blocking chain and the critical
 * path, on flows composed by core's `FlowGraph.compose` from synthetic deployments.
 */
import { FlowGraph, Job } from "@sovereign/core"
import { describe, expect, it } from "vitest"
import { blockingChain, criticalPath } from "../src/graph/analysis.js"
import { layout } from "../src/graph/layout.js"
import { emptyChange, FlowModel, type FlowMessage } from "../src/graph/model.js"
import { backoff, maxBackoffMs } from "../src/stream.js"
import { syntheticDeployment } from "./support/flows.js"

const modelOf = (messages: ReadonlyArray<FlowMessage>) => {
  const model = new FlowModel()
  const change = emptyChange()
  for (const message of messages) model.apply(message, change)
  model.index()
  return { model, change }
}

const composed = (regions: number, charts: number, overrides: (job: Job.Job) => Job.Job = (job) => job) => {
  const synthetic = syntheticDeployment(regions, charts)
  return FlowGraph.compose({ deploymentId: synthetic.deploymentId, regions: synthetic.regionKeys, jobs: synthetic.jobs.map(overrides) })
}
const regionKeys = (regions: number) => syntheticDeployment(regions, 1).regionKeys
const chart = (job: Job.Job) => (Job.isInstallJobName(job.jobName) ? job.jobName : undefined)

describe("the reducer", () => {
  it("tells status changes (patch) from structural changes (new layout)", () => {
    const snapshot = composed(2, 10)
    const { model, change } = modelOf([snapshot as unknown as FlowMessage])
    expect(change.structure).toBe(true)
    const node = snapshot.nodes.find((candidate) => candidate.family === "install")!
    const status = emptyChange()
    model.apply({ type: "upsert-nodes", nodes: [{ ...node, status: "failed" }] } as unknown as FlowMessage, status)
    expect(status.structure).toBe(false)
    expect([...status.changed]).toEqual([node.id])
    const added = emptyChange()
    model.apply({ type: "upsert-nodes", nodes: [{ ...node, id: "new-node" }] } as unknown as FlowMessage, added)
    expect(added.structure).toBe(true)
    const removed = emptyChange()
    model.apply({ type: "delete-nodes", ids: [node.id] }, removed)
    expect(removed.structure).toBe(true)
    expect([...model.relationships.values()].some((r) => r.fromId === node.id || r.toId === node.id)).toBe(false)
  })
})

describe("the layout", () => {
  it("draws the provisioner → bootstrap-kit group edge once, never as leaf edges, with one band per region", () => {
    const snapshot = composed(3, 35)
    const { model } = modelOf([snapshot as unknown as FlowMessage])
    const result = layout(model, () => false)
    const provisioner = `${snapshot.flow.id}:provisioner`
    const bootstrap = `${snapshot.flow.id}:bootstrap-kit`
    expect(result.edges.filter((edge) => edge.from === provisioner && edge.to === bootstrap)).toHaveLength(1)
    // every drawn edge is a relationship of the flow (none is invented by multiplying a group edge)
    const finishToStart = new Set(snapshot.relationships.filter((r) => r.type === "finish-to-start").map((r) => `${r.fromId}>${r.toId}`))
    for (const edge of result.edges) expect(finishToStart.has(`${edge.from}>${edge.to}`)).toBe(true)
    expect(result.edges.length).toBe(finishToStart.size)
    expect(result.bands.map((band) => band.key)).toEqual(regionKeys(3))
    // every job is a box in its region's band
    for (const node of snapshot.nodes.filter((candidate) => candidate.family === "install")) {
      const box = result.boxes.find((candidate) => candidate.id === node.id)!
      const band = result.bands.find((candidate) => candidate.key === node.region)!
      expect(box.y).toBeGreaterThanOrEqual(band.y)
      expect(box.y + box.h).toBeLessThanOrEqual(band.y + band.h)
    }
  })

  it("keeps the kit's whole dependency chain in layers (no clipping at depth 8)", () => {
    const snapshot = composed(1, 35)
    const { model } = modelOf([snapshot as unknown as FlowMessage])
    const result = layout(model, () => false)
    // the longest dependsOn chain of the kit: each step of it strictly to the right of the one before
    const byId = new Map(result.boxes.map((box) => [box.id, box]))
    const installs = snapshot.nodes.filter((node) => node.family === "install")
    const depth = new Map<string, number>()
    const depthOf = (id: string): number => {
      const known = depth.get(id)
      if (known !== undefined) return known
      const preds = model.incoming.get(id)?.filter((from) => installs.some((node) => node.id === from)) ?? []
      const value = preds.length === 0 ? 1 : 1 + Math.max(...preds.map(depthOf))
      depth.set(id, value)
      return value
    }
    const longest = Math.max(...installs.map((node) => depthOf(node.id)))
    expect(longest).toBeGreaterThan(4)
    // as many layers as the longest chain (a tall layer wraps into sub-columns: at least that many columns)
    const columns = new Set(installs.map((node) => byId.get(node.id)!.x))
    expect(columns.size).toBeGreaterThanOrEqual(longest)
    for (const [to, froms] of model.incoming) {
      for (const from of froms) {
        if (!installs.some((node) => node.id === to) || !installs.some((node) => node.id === from)) continue
        expect(byId.get(from)!.x).toBeLessThan(byId.get(to)!.x)
      }
    }
  })

  it("draws a folded group as one box: its jobs stay in the model, edges end at the group once", () => {
    const snapshot = composed(3, 35)
    const { model } = modelOf([snapshot as unknown as FlowMessage])
    const folded = `${snapshot.flow.id}:${regionKeys(3)[1]}:bootstrap-kit`
    const result = layout(model, (id) => id === folded)
    const hidden = result.boxes.filter((box) => box.hidden)
    expect(hidden.length).toBe(35)
    for (const box of hidden) expect(result.visibleOf.get(box.id)).toBe(folded)
    const keys = result.edges.map((edge) => `${edge.from}>${edge.to}`)
    expect(new Set(keys).size).toBe(keys.length)
    expect(result.edges.every((edge) => !hidden.some((box) => box.id === edge.from || box.id === edge.to))).toBe(true)
  })

  it("lays out 1,500 jobs", () => {
    const snapshot = composed(6, 250)
    const { model } = modelOf([snapshot as unknown as FlowMessage])
    const result = layout(model, () => false)
    expect(result.boxes.filter((box) => box.kind === "job").length).toBeGreaterThanOrEqual(1500)
    for (const box of result.boxes) expect(Number.isFinite(box.x) && Number.isFinite(box.y)).toBe(true)
  })
})

describe("why is this not done?", () => {
  it("follows a failed chart's chain: a job waiting on cert-manager names it and its reason", () => {
    const snapshot = composed(1, 35, (job) => {
      if (chart(job) === undefined) return job
      if (job.jobName === "install-cilium") return { ...job, status: "succeeded", startedAt: 1, finishedAt: 2 }
      if (job.jobName === "install-cert-manager")
        return { ...job, status: "failed", startedAt: 1, finishedAt: 2, reason: "retrying: chart pull failed" }
      return { ...job, status: "pending", startedAt: undefined, finishedAt: undefined } as Job.Job
    })
    const { model } = modelOf([snapshot as unknown as FlowMessage])
    const crossplane = `${snapshot.flow.id}:install-crossplane` // crossplane → flux → cert-manager
    const chain = blockingChain(model, crossplane)
    expect(chain.steps.map((step) => step.id)).toEqual([`${snapshot.flow.id}:install-flux`, `${snapshot.flow.id}:install-cert-manager`])
    expect(chain.steps[1]!.text).toContain("cert-manager")
    expect(chain.summary).toContain("cert-manager (failed: retrying: chart pull failed)")
    expect(chain.ids.has(`${snapshot.flow.id}:install-cert-manager`)).toBe(true)
  })

  it("the critical path runs through unfinished jobs along dependencies", () => {
    const snapshot = composed(1, 35, (job) =>
      chart(job) !== undefined ? ({ ...job, status: "pending", startedAt: undefined, finishedAt: undefined } as Job.Job) : job
    )
    const { model } = modelOf([snapshot as unknown as FlowMessage])
    const path = [...criticalPath(model)]
    expect(path.length).toBeGreaterThan(4)
    for (let i = 0; i + 1 < path.length; i++) expect(model.incoming.get(path[i]!)).toContain(path[i + 1])
  })
})

describe("reconnecting", () => {
  it("backs off exponentially with jitter, capped at 30 s", () => {
    expect(backoff(1, () => 1)).toBe(1000)
    expect(backoff(1, () => 0)).toBe(500)
    expect(backoff(4, () => 1)).toBe(8000)
    for (let attempt = 1; attempt < 40; attempt++) expect(backoff(attempt)).toBeLessThanOrEqual(maxBackoffMs)
    expect(backoff(30, () => 1)).toBe(maxBackoffMs)
  })
})
