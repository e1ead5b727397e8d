/**
 * Synthetic deployments as the server would compose them (core's `FlowGraph.compose`): Phase-0 steps
 * per region, the bootstrap kit's 35 releases (the testkit's fixture) repeated with suffixed names up
 * to the wanted number of charts per region, so the graph keeps the kit's shape at any size.
 * Deterministic: `seed` decides the statuses.
 */
import { FlowGraph, Job } from "@sovereign/core"
import { releases as kit } from "@sovereign/testkit/BootstrapKit"

const cloudSteps: ReadonlyArray<{ name: string; displayName: string; dependsOn: ReadonlyArray<string> }> = [
  { name: "network", displayName: "Network", dependsOn: [] },
  { name: "firewall", displayName: "Firewall", dependsOn: ["network"] },
  { name: "load-balancer", displayName: "Load balancer", dependsOn: ["network"] },
  { name: "control-plane", displayName: "Control plane", dependsOn: ["firewall", "load-balancer"] },
  { name: "workers", displayName: "Workers", dependsOn: ["control-plane"] }
]
const cloudRegions = ["fsn1", "nbg1", "hel1", "ash", "hil", "sin", "me-east-215-b", "eu-central"]

const random = (seed: number) => {
  let state = seed >>> 0
  return (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface Synthetic {
  readonly deploymentId: string
  readonly regionKeys: ReadonlyArray<string>
  readonly jobs: ReadonlyArray<Job.Job>
}

export const syntheticDeployment = (
  regionCount: number,
  chartsPerRegion: number,
  options: { readonly seed?: number; readonly status?: (name: string) => Job.JobStatus | undefined; readonly deploymentId?: string } = {}
): Synthetic => {
  const next = random(options.seed ?? 1)
  const deploymentId = options.deploymentId ?? "00c0ffee00c0ffee"
  const regions: ReadonlyArray<Job.RegionRef> = Array.from({ length: regionCount }, (_, index) => ({
    key: index === 0 ? cloudRegions[0]! : `${cloudRegions[index % cloudRegions.length]}-${index}`,
    primary: index === 0
  }))
  const charts: Array<{ name: string; dependsOn: ReadonlyArray<string> }> = []
  for (let n = 0; charts.length < chartsPerRegion; n++) {
    for (const release of kit) {
      if (charts.length === chartsPerRegion) break
      const suffix = n === 0 ? "" : `-${n}`
      charts.push({ name: release.name + suffix, dependsOn: release.dependsOn.map((dependency) => dependency + suffix) })
    }
  }
  const statuses: ReadonlyArray<Job.JobStatus> = ["pending", "running", "succeeded", "failed"]
  const jobs: Array<Job.Job> = [Job.phaseGroupJob(deploymentId, "provisioner")]
  let clock = 1_700_000_000_000
  const timed = (job: Job.Job, status: Job.JobStatus): Job.Job => {
    const startedAt = (clock += 500)
    if (status === "pending") return { ...job, status }
    if (status === "running") return { ...job, status, startedAt }
    return { ...job, status, startedAt, finishedAt: startedAt + 20_000, durationMs: 20_000 }
  }
  for (const region of regions) {
    for (const step of cloudSteps) {
      const job = Job.stepJob({ deploymentId, region, step })
      jobs.push(timed(job, options.status?.(job.jobName) ?? "succeeded"))
    }
    for (const chart of charts) {
      const job = Job.installJob({ deploymentId, region, release: chart.name, dependsOn: chart.dependsOn })
      jobs.push(timed(job, options.status?.(job.jobName) ?? statuses[Math.floor(next() * statuses.length)]!))
    }
  }
  return { deploymentId, regionKeys: regions.map((region) => region.key), jobs }
}

export const compose = (synthetic: Synthetic) =>
  FlowGraph.compose({ deploymentId: synthetic.deploymentId, regions: synthetic.regionKeys, jobs: synthetic.jobs })
