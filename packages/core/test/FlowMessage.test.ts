import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { FlowGraph, FlowMessage } from "../src/index.js"
import { syntheticDeployment } from "./support/deployments.js"

describe("FlowMessage (wire contract, schema version 1)", () => {
  it("is version 1", () => {
    expect(FlowMessage.schemaVersion).toBe(1)
  })

  it("decodes the contract's own examples", () => {
    expect(
      FlowMessage.decodeSync({ type: "snapshot", flow: { id: "dep1", status: "running", startedAt: 0 }, nodes: [], relationships: [] })
    ).toEqual({ type: "snapshot", flow: { id: "dep1", status: "running", startedAt: 0 }, nodes: [], relationships: [] })
    expect(FlowMessage.decodeSync({ type: "delete-rels", pairs: [{ fromId: "a", toId: "b", type: "finish-to-start" }] })).toEqual({
      type: "delete-rels",
      pairs: [{ fromId: "a", toId: "b", type: "finish-to-start" }]
    })
    const node = {
      id: "dep1:install-cilium",
      flowId: "dep1",
      label: "install-cilium",
      status: "running",
      family: "install",
      region: "fsn1",
      startedAt: 1747000000000
    }
    expect(FlowMessage.decodeSync({ type: "upsert-nodes", nodes: [node] })).toEqual({ type: "upsert-nodes", nodes: [node] })
  })

  it("treats missing arrays of a snapshot as empty (a Go producer omits empty slices)", () => {
    expect(FlowMessage.decodeSync({ type: "snapshot", flow: { id: "dep1", status: "pending", startedAt: 0 } })).toEqual({
      type: "snapshot",
      flow: { id: "dep1", status: "pending", startedAt: 0 },
      nodes: [],
      relationships: []
    })
  })

  it.each([
    ["an unknown type", { type: "upsert-everything", nodes: [] }],
    ["a snapshot without flow", { type: "snapshot", nodes: [] }],
    ["an empty upsert-nodes", { type: "upsert-nodes", nodes: [] }],
    ["an empty upsert-rels", { type: "upsert-rels", relationships: [] }],
    ["an empty delete-nodes", { type: "delete-nodes", ids: [] }],
    ["an empty delete-rels", { type: "delete-rels", pairs: [] }],
    ["a negative lag", { type: "upsert-rels", relationships: [{ fromId: "a", toId: "b", type: "finish-to-start", lag: -1 }] }],
    [
      "an unknown condition",
      { type: "upsert-rels", relationships: [{ fromId: "a", toId: "b", type: "finish-to-start", condition: "maybe" }] }
    ]
  ])("rejects %s", (_, message) => {
    expect(Either.isLeft(FlowMessage.decode(message))).toBe(true)
  })

  it("round-trips a composed snapshot through JSON unchanged", () => {
    const { deploymentId, regionKeys, jobs } = syntheticDeployment(3, 45)
    const snapshot = FlowGraph.compose({ deploymentId, regions: regionKeys, jobs })
    const wire = JSON.parse(JSON.stringify(snapshot))
    expect(FlowMessage.decodeSync(wire)).toEqual(snapshot)
    expect(FlowMessage.encodeSync(snapshot)).toEqual(wire)
  })
})
