/**
 * `FlowGraph.compose` is written for speed (parallel arrays, counting sort); the reference in
 * `support/flowGraphReference.ts` states the same rules plainly. They must agree to the byte, on the
 * deployments the orchestrator writes and on arbitrary rows (odd and reserved names, missing, cyclic
 * or leaf parents, undeclared regions, repeated names, foreign rows).
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { FlowGraph, Job } from "../src/index.js"
import { arrive, generate, modelArbitrary, shuffle } from "./support/deployments.js"
import * as Reference from "./support/flowGraphReference.js"

const dep = "0123456789abcdef"

const agree = (input: FlowGraph.ComposeInput) =>
  expect(JSON.stringify(FlowGraph.compose(input))).toBe(JSON.stringify(Reference.compose(input)))

describe("FlowGraph.compose against its plain reference", () => {
  it.prop(
    "random deployments of 1–8 regions from the bootstrap kit, in flight or not",
    [modelArbitrary, fc.integer(), fc.boolean()],
    ([model, order, inFlight]) => {
      const generated = generate(model)
      agree({ deploymentId: generated.deploymentId, regions: generated.regionKeys, jobs: arrive(generated, order), inFlight })
    },
    { fastCheck: { numRuns: 100 } }
  )

  const fragment = fc.constantFrom(
    "a",
    "b",
    "install-a",
    "install-b",
    "fsn1",
    "hel1-1",
    "x-9",
    "apps",
    "cutover",
    "provisioner",
    "bootstrap-kit",
    "constructor",
    ""
  )
  const name = fc.array(fragment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join(":"))
  const row = fc.record({
    jobName: name,
    type: fc.constantFrom<Job.JobType>("install", "install", "group"),
    region: fc.constantFrom("", "fsn1", "hel1-1", "nbg1-7"),
    parent: fc.oneof(name, fc.constant("")),
    parentAsId: fc.boolean(),
    dependsOn: fc.array(name, { maxLength: 3 }),
    status: fc.constantFrom<Job.JobStatus>("pending", "running", "succeeded", "failed"),
    startedAt: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
    finished: fc.boolean(),
    displayName: fc.constantFrom(undefined, "", "  ", "Label"),
    reason: fc.constantFrom(undefined, "", "because"),
    foreign: fc.boolean()
  })
  const chartPhase = fc.constantFrom<ReadonlyArray<Job.Phase> | undefined>(undefined, ["apps"], ["cutover", "bootstrap-kit"])

  it.prop(
    "arbitrary rows, repeated names included",
    [
      fc.array(row, { maxLength: 30 }),
      fc.constantFrom([], ["fsn1"], ["fsn1", "hel1-1"], ["hel1-1", "fsn1", "fsn1"]),
      chartPhase,
      fc.boolean(),
      fc.integer()
    ],
    ([rows, regions, phases, inFlight, permutation]) => {
      const jobs = rows.map((r): Job.Job => ({
        id: Job.jobId(dep, r.jobName),
        deploymentId: r.foreign ? "fedcba9876543210" : dep,
        jobName: r.jobName,
        type: r.type,
        region: r.region,
        parentId: r.parent === "" ? "" : r.parentAsId ? Job.jobId(dep, r.parent) : r.parent,
        dependsOn: r.dependsOn,
        status: r.status,
        ...(r.startedAt === undefined ? {} : { startedAt: r.startedAt, ...(r.finished ? { finishedAt: r.startedAt + 5 } : {}) }),
        ...(r.displayName === undefined ? {} : { displayName: r.displayName }),
        ...(r.reason === undefined ? {} : { reason: r.reason }),
        durationMs: 0
      }))
      const phaseOfChart = phases === undefined ? undefined : (chart: string) => phases[chart.length % phases.length]!
      const input = { deploymentId: dep, regions, inFlight, ...(phaseOfChart === undefined ? {} : { phaseOfChart }) }
      agree({ ...input, jobs })
      agree({ ...input, jobs: shuffle(jobs, permutation) })
    },
    { fastCheck: { numRuns: 500 } }
  )
})
