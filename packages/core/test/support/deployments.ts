/** Random deployments built from the real bootstrap kit, for property tests and benchmarks. */
import * as fs from "node:fs"
import * as fc from "fast-check"
import { Deployment, Job } from "../../src/index.js"
import * as Lifecycle from "../../src/Lifecycle.js"

export interface KitRelease {
  readonly name: string
  readonly dependsOn: ReadonlyArray<string>
}

// The project's own copy of the kit (testkit/fixtures): core's tests cannot import the testkit, which depends on core.
const fixtureUrl = new URL("../../../testkit/fixtures/bootstrap-kit.json", import.meta.url)

/** The 35 HelmReleases of the bootstrap kit and their dependencies. */
export const bootstrapKit: ReadonlyArray<KitRelease> = (
  JSON.parse(fs.readFileSync(fixtureUrl, "utf8")) as ReadonlyArray<{ name: string; dependsOn: ReadonlyArray<string> }>
).map(({ name, dependsOn }) => ({ name, dependsOn }))

/** The cutover chart is not part of the kit; it waits for the platform's identity, git and registry. */
export const cutoverRelease: KitRelease = {
  name: "bp-self-sovereign-cutover",
  dependsOn: ["bp-keycloak", "bp-gitea", "bp-harbor"]
}

/** A plausible Phase-0 plan per region: bare step names and their in-region dependencies. */
export const cloudSteps: ReadonlyArray<{ name: string; displayName: string; dependsOn: ReadonlyArray<string> }> = [
  { name: "network", displayName: "Network", dependsOn: [] },
  { name: "firewall", displayName: "Firewall", dependsOn: ["network"] },
  { name: "load-balancer", displayName: "Load balancer", dependsOn: ["network"] },
  { name: "control-plane", displayName: "Control plane", dependsOn: ["firewall", "load-balancer"] },
  { name: "workers", displayName: "Workers", dependsOn: ["control-plane"] },
  { name: "kubeconfig", displayName: "Kubeconfig", dependsOn: ["control-plane"] }
]

const cloudRegions = ["fsn1", "nbg1", "hel1", "ash", "hil", "sin", "me-east-215-b", "eu-central"]

/** Deterministic pseudo-random numbers (mulberry32), so one fast-check integer drives many choices. */
export const random = (seed: number) => {
  let state = seed >>> 0
  return (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const shuffle = <A>(items: ReadonlyArray<A>, seed: number): Array<A> => {
  const next = random(seed)
  const result = items.slice()
  for (let i = result.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1))
    const swap = result[i]!
    result[i] = result[j]!
    result[j] = swap
  }
  return result
}

/** Interleaves per-job update sequences at random, keeping each job's own order. */
export const interleave = <A>(sequences: ReadonlyArray<ReadonlyArray<A>>, seed: number): Array<A> => {
  const next = random(seed)
  const cursors = sequences.map(() => 0)
  const open = sequences.map((_, index) => index).filter((index) => sequences[index]!.length > 0)
  const result: Array<A> = []
  while (open.length > 0) {
    const pick = Math.floor(next() * open.length)
    const index = open[pick]!
    result.push(sequences[index]![cursors[index]!]!)
    cursors[index]!++
    if (cursors[index] === sequences[index]!.length) open.splice(pick, 1)
  }
  return result
}

const statuses: ReadonlyArray<Job.JobStatus> = ["pending", "running", "succeeded", "failed"]

/** The shape of one generated deployment; `seed` drives every individual choice. */
export interface Model {
  readonly regionCount: number
  readonly seed: number
  /** Probability that a chart or step has a job yet (missing ones make dependencies dangle). */
  readonly presence: number
  readonly withCutover: boolean
  readonly withPhaseRows: boolean
  readonly withHandoverStep: boolean
  /** The steps after Phase 0 as the orchestrator plans them (DNS, mesh and owner access per region, handover, finalisation). */
  readonly withLifecycle: boolean
  /** Every job has run to its end (succeeded or failed): the deployment is finished. */
  readonly finished: boolean
}

export const modelArbitrary: fc.Arbitrary<Model> = fc.record({
  regionCount: fc.integer({ min: 1, max: 8 }),
  seed: fc.integer({ min: 0, max: 0x7fffffff }),
  presence: fc.constantFrom(1, 1, 0.9, 0.6),
  withCutover: fc.boolean(),
  withPhaseRows: fc.boolean(),
  withHandoverStep: fc.boolean(),
  withLifecycle: fc.boolean(),
  finished: fc.boolean()
})

export interface Generated {
  readonly deploymentId: string
  readonly regions: ReadonlyArray<Deployment.Region>
  readonly regionKeys: ReadonlyArray<string>
  /** Per job, the versions in the order they arrive (seed first, then state changes). */
  readonly updates: ReadonlyArray<ReadonlyArray<Job.Job>>
}

const dependencyShape = (region: Job.RegionRef, release: string, choice: number): string => {
  const chart = Job.chartOf(release)
  switch (choice % 4) {
    case 0:
      return release // `bp-cilium`, as Flux reports it
    case 1:
      return chart
    case 2:
      return region.primary ? `install-${chart}` : `${region.key}:${chart}`
    default:
      return Job.installJobName(region, chart)
  }
}

/** Builds a deployment's job updates from a model: every region symmetric, statuses and arrival random. */
export const generate = (model: Model): Generated => {
  const next = random(model.seed)
  const deploymentId = Array.from({ length: 16 }, () => Math.floor(next() * 16).toString(16)).join("")
  const regions = Deployment.deriveRegions(
    {
      sovereignFQDN: "t1.example.com",
      regions: Array.from({ length: model.regionCount }, (_, index) => ({
        provider: "hetzner",
        cloudRegion: cloudRegions[index]!,
        controlPlaneSize: "cpx32",
        workerCount: 0
      }))
    },
    deploymentId
  )
  const updates: Array<ReadonlyArray<Job.Job>> = []
  let clock = 1_700_000_000_000
  const lifecycle = (seeded: Job.Job): ReadonlyArray<Job.Job> => {
    const status = model.finished ? (next() < 0.8 ? "succeeded" : "failed") : statuses[Math.floor(next() * statuses.length)]!
    const versions: Array<Job.Job> = [seeded]
    if (status === "pending") return versions
    const startedAt = (clock += Math.floor(next() * 5_000))
    // state events carry neither dependencies nor region: the merge must keep the seeded ones
    const bare = { ...seeded, dependsOn: [], region: "", parentId: "" }
    versions.push({ ...bare, status: "running", startedAt })
    if (status === "running") return versions
    versions.push({ ...bare, status, finishedAt: startedAt + Math.floor(next() * 60_000) })
    return versions
  }
  if (model.withPhaseRows) {
    updates.push([Job.phaseGroupJob(deploymentId, "provisioner", "Provision Hetzner")])
    updates.push([Job.phaseGroupJob(deploymentId, "bootstrap-kit")])
  }
  const releases = model.withCutover ? [...bootstrapKit, cutoverRelease] : bootstrapKit
  for (const region of regions) {
    for (const step of cloudSteps) {
      if (next() > model.presence) continue
      updates.push(lifecycle(Job.stepJob({ deploymentId, region, step })))
    }
    for (const release of releases) {
      if (next() > model.presence) continue
      const dependsOn = release.dependsOn.map((dependency) => dependencyShape(region, dependency, Math.floor(next() * 4)))
      updates.push(lifecycle(Job.installJob({ deploymentId, region, release: release.name, dependsOn })))
    }
  }
  if (model.withHandoverStep) {
    const publish: Job.Job = {
      id: Job.jobId(deploymentId, "dns-publish"),
      deploymentId,
      jobName: "dns-publish",
      displayName: "Publish DNS",
      type: "install",
      region: "",
      parentId: Job.jobId(deploymentId, "handover"),
      dependsOn: [],
      status: "pending",
      durationMs: 0
    }
    updates.push(lifecycle(publish))
    // deployment-wide steps (no region) may depend on each other
    updates.push(
      lifecycle({
        ...publish,
        id: Job.jobId(deploymentId, "handover-owner"),
        jobName: "handover-owner",
        displayName: "Hand over",
        dependsOn: ["dns-publish"]
      })
    )
  }
  if (model.withLifecycle) {
    const capabilities = { dns: next() < 0.8, mesh: next() < 0.8, access: next() < 0.8 }
    for (const job of Lifecycle.planned(deploymentId, regions, capabilities)) {
      if (next() > model.presence) continue
      updates.push(lifecycle(job))
    }
    if (next() < 0.5) updates.push(lifecycle(Lifecycle.job({ deploymentId, region: regions[0]!, step: "handover-finalise" })))
  }
  return { deploymentId, regions, regionKeys: regions.map((region) => region.key), updates }
}

/** The stored jobs after every update arrived in the interleaving chosen by `seed`. */
export const arrive = (generated: Generated, seed: number): ReadonlyArray<Job.Job> => Job.mergeAll([], interleave(generated.updates, seed))

/**
 * A synthetic kit of `chartsPerRegion` charts for `regionCount` regions: the 35 real releases, then
 * copies (`<name>-<n>`) whose dependencies point at the same copy, so the graph keeps the kit's shape.
 */
export const syntheticDeployment = (regionCount: number, chartsPerRegion: number, seed = 1) => {
  const next = random(seed)
  const deploymentId = "00c0ffee00c0ffee"
  const regionRefs: ReadonlyArray<Job.RegionRef> = Array.from({ length: regionCount }, (_, index) => ({
    key: index === 0 ? cloudRegions[0]! : `${cloudRegions[index % cloudRegions.length]}-${index}`,
    primary: index === 0
  }))
  const kit = [...bootstrapKit, cutoverRelease]
  const releases: Array<KitRelease> = []
  for (let n = 0; releases.length < chartsPerRegion; n++) {
    for (const release of kit) {
      if (releases.length === chartsPerRegion) break
      const suffix = n === 0 ? "" : `-${n}`
      releases.push({ name: release.name + suffix, dependsOn: release.dependsOn.map((dependency) => dependency + suffix) })
    }
  }
  const jobs: Array<Job.Job> = [Job.phaseGroupJob(deploymentId, "provisioner", "Provision Hetzner")]
  let clock = 1_700_000_000_000
  for (const region of regionRefs) {
    for (const step of cloudSteps) {
      const startedAt = (clock += 1_000)
      jobs.push({
        ...Job.stepJob({ deploymentId, region, step, status: "succeeded" }),
        startedAt,
        finishedAt: startedAt + 30_000,
        durationMs: 30_000
      })
    }
    for (const release of releases) {
      const status = statuses[Math.floor(next() * statuses.length)]!
      const job = Job.installJob({ deploymentId, region, release: release.name, dependsOn: release.dependsOn, status })
      const startedAt = (clock += 500)
      jobs.push(
        status === "pending"
          ? job
          : status === "running"
            ? { ...job, startedAt }
            : { ...job, startedAt, finishedAt: startedAt + 20_000, durationMs: 20_000 }
      )
    }
  }
  return { deploymentId, regionKeys: regionRefs.map((region) => region.key), jobs }
}
