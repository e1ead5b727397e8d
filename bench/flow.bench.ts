/** Flow-graph benchmarks: compose + serialise at the real size and at 100×, snapshot size, delta size per transition. */
import { FlowGraph, type Job } from "@sovereign/core"
import { random, shuffle, syntheticDeployment } from "../packages/core/test/support/deployments.js"
import type { Metric } from "./run.js"

const median = (samples: ReadonlyArray<number>): number => percentile(samples, 0.5)
const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  const sorted = samples.slice().sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))]!
}

let sink = 0
const keep = (value: unknown) => {
  sink += value === undefined ? 0 : 1
}

/** Wall-clock ms of each of `iterations` runs after `warmup` untimed ones. */
const wallClock = (warmup: number, iterations: number, body: () => unknown): Array<number> => {
  for (let i = 0; i < warmup; i++) keep(body())
  const samples: Array<number> = []
  for (let i = 0; i < iterations; i++) {
    const started = performance.now()
    keep(body())
    samples.push(performance.now() - started)
  }
  return samples
}

/**
 * CPU ms of one run. Long runs on a shared machine are preempted; CPU time is what the code costs.
 * (It includes the collector's helper threads, which count against compose, not against stringify.)
 */
const cpuTime = (body: () => unknown): number => {
  const before = process.cpuUsage()
  keep(body())
  const used = process.cpuUsage(before)
  return (used.user + used.system) / 1000
}

/**
 * Jobs as the job store hands them to the composer: decoded from storage (flat strings) and listed
 * by job name (the `JobRepo.list` contract); Phase-1 install leaves only, so the leaf count is exact.
 */
const storedJobs = (regionCount: number, chartsPerRegion: number) => {
  const { deploymentId, regionKeys, jobs } = syntheticDeployment(regionCount, chartsPerRegion)
  const installs = jobs.filter((job) => job.jobName.startsWith("install-")).sort((a, b) => (a.jobName < b.jobName ? -1 : 1))
  return { deploymentId, regions: regionKeys, jobs: JSON.parse(JSON.stringify(installs)) as ReadonlyArray<Job.Job> }
}

const transitionOf = (job: Job.Job, next: () => number): Job.Job => {
  switch (job.status) {
    case "pending":
      return { ...job, status: "running", startedAt: 1_800_000_000_000 }
    case "running":
      return { ...job, status: next() < 0.8 ? "succeeded" : "failed", finishedAt: 1_800_000_000_000 }
    default:
      // a re-run (an upgrade): back to running
      return { ...job, status: "running" }
  }
}

/** compose + serialise against serialising the same result, alternating so both see the same load. */
const ratioToStringify = (input: FlowGraph.ComposeInput, rounds: number) => {
  const result = FlowGraph.compose(input)
  for (let i = 0; i < 5; i++) {
    keep(JSON.stringify(FlowGraph.compose(input)))
    keep(JSON.stringify(result))
  }
  const composed: Array<number> = []
  const stringified: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    composed.push(cpuTime(() => JSON.stringify(FlowGraph.compose(input))))
    stringified.push(cpuTime(() => JSON.stringify(result)))
  }
  return { composed: median(composed), stringified: median(stringified) }
}

export default async (): Promise<Record<string, Metric>> => {
  const small = storedJobs(3, 45)
  const large = storedJobs(3, 4_500)

  const smallSamples = wallClock(500, 3_000, () => JSON.stringify(FlowGraph.compose(small)))
  const smallComposeOnly = wallClock(200, 2_000, () => FlowGraph.compose(small))
  const snapshot = FlowGraph.compose(small)
  const snapshotBytes = Buffer.byteLength(JSON.stringify(snapshot))

  const largeRatio = ratioToStringify(large, 25)
  const unsorted = ratioToStringify({ ...large, jobs: shuffle(large.jobs, 3) }, 15)

  // One job changing state: the serialised delta, over many different single transitions.
  const next = random(7)
  const deltaBytes: Array<number> = []
  const diffSamples: Array<number> = []
  for (let i = 0; i < 400; i++) {
    const index = Math.floor(next() * small.jobs.length)
    const jobs = small.jobs.slice()
    jobs[index] = transitionOf(jobs[index]!, next)
    const after = FlowGraph.compose({ ...small, jobs })
    const started = performance.now()
    const messages = FlowGraph.diff(snapshot, after)
    diffSamples.push(performance.now() - started)
    deltaBytes.push(Buffer.byteLength(JSON.stringify(messages)))
  }
  const meanDelta = deltaBytes.reduce((sum, bytes) => sum + bytes, 0) / deltaBytes.length
  if (sink < 0) console.log(sink)

  return {
    "flow.compose.135.p50_ms": { value: percentile(smallSamples, 0.5), unit: "ms", goal: "<= 1" },
    "flow.compose.135.p99_ms": { value: percentile(smallSamples, 0.99), unit: "ms" },
    "flow.compose.135.compose_only.p50_ms": { value: percentile(smallComposeOnly, 0.5), unit: "ms" },
    "flow.compose_serialise.13500.cpu_ms": { value: largeRatio.composed, unit: "ms" },
    "flow.stringify.13500.cpu_ms": { value: largeRatio.stringified, unit: "ms" },
    "flow.compose.13500.ratio_to_stringify": { value: largeRatio.composed / largeRatio.stringified, unit: "ratio", goal: "<= 2" },
    "flow.compose.13500.unsorted.ratio_to_stringify": { value: unsorted.composed / unsorted.stringified, unit: "ratio" },
    "flow.snapshot.135.bytes": { value: snapshotBytes, unit: "bytes" },
    "flow.snapshot.135.nodes": { value: snapshot.nodes.length, unit: "nodes" },
    "flow.snapshot.135.relationships": { value: snapshot.relationships.length, unit: "relationships" },
    "flow.delta.bytes_per_transition": { value: Math.round(meanDelta), unit: "bytes", goal: "<= 1024" },
    "flow.delta.bytes_per_transition.max": { value: Math.max(...deltaBytes), unit: "bytes", goal: "<= 1024" },
    "flow.diff.135.p50_ms": { value: percentile(diffSamples, 0.5), unit: "ms" }
  }
}
