/** The live view of `sovereign deploy --follow`: counts per phase and region from the flow snapshot. */
import { FlowGraph, Job } from "@sovereign/core"
import { describe, expect, it } from "@effect/vitest"
import * as Progress from "../src/cli/Progress.js"

const id = "0123456789abcdef"
const primary = { key: "fsn1", primary: true }
const secondary = { key: "hel1-1", primary: false }

describe("follow view", () => {
  it("counts done/total per phase and region, lists running jobs and failures with their reason", () => {
    const jobs: Array<Job.Job> = [
      Job.installJob({ deploymentId: id, region: primary, release: "bp-cilium", status: "succeeded" }),
      Job.installJob({ deploymentId: id, region: primary, release: "bp-flux", status: "running" }),
      Job.installJob({ deploymentId: id, region: primary, release: "bp-harbor", status: "pending" }),
      {
        ...Job.installJob({ deploymentId: id, region: secondary, release: "bp-cilium", status: "failed" }),
        reason: "Stalled: RetriesExceeded"
      },
      Job.installJob({ deploymentId: id, region: secondary, release: "bp-flux", status: "succeeded" })
    ]
    const snapshot = FlowGraph.compose({ deploymentId: id, regions: ["fsn1", "hel1-1"], jobs })
    const progress = Progress.progressOf(snapshot, ["fsn1", "hel1-1"])
    expect(progress.map((entry) => [entry.phase, entry.region, entry.done, entry.total])).toEqual([
      ["bootstrap-kit", "fsn1", 1, 3],
      ["bootstrap-kit", "hel1-1", 1, 2]
    ])
    expect(progress[0]!.running).toEqual(["flux"])
    expect(progress[1]!.failed).toEqual([{ label: "cilium", reason: "Stalled: RetriesExceeded" }])
    const lines = Progress.render(
      { id, fqdn: "t1.example.com", status: "phase1-watching", progress, problems: [], handoverURL: undefined, error: undefined },
      Progress.ansi
    )
    expect(lines.join("\n")).toContain("[########----------------]")
    expect(lines.find((line) => line.includes("cilium: Stalled"))).toContain("\x1b[31m")
  })

  it("draws a bar proportional to progress", () => {
    expect(Progress.bar(0, 4, 8)).toBe("[--------]")
    expect(Progress.bar(2, 4, 8)).toBe("[####----]")
    expect(Progress.bar(4, 4, 8)).toBe("[########]")
    expect(Progress.bar(0, 0, 8)).toBe("[--------]")
  })
})
