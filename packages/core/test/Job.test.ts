import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Job } from "../src/index.js"
import { arrive, generate, modelArbitrary, shuffle } from "./support/deployments.js"

const dep = "0123456789abcdef"
const primary = { key: "fsn1", primary: true }
const secondary = { key: "hel1-1", primary: false }

const install = (region: Job.RegionRef, release: string, dependsOn: ReadonlyArray<string> = [], status: Job.JobStatus = "pending") =>
  Job.installJob({ deploymentId: dep, region, release, dependsOn, status })

describe("Job names", () => {
  it("names install leaves, app ids and ids with ':' only, bp- stripped", () => {
    expect(Job.chartOf("bp-cilium")).toBe("cilium")
    expect(Job.installJobName(primary, "cilium")).toBe("install-cilium")
    expect(Job.installJobName(secondary, "cilium")).toBe("install-hel1-1:cilium")
    expect(Job.appId(primary, "cilium")).toBe("cilium")
    expect(Job.appId(secondary, "cilium")).toBe("hel1-1:cilium")
    expect(Job.jobId(dep, "install-hel1-1:cilium")).toBe(`${dep}:install-hel1-1:cilium`)
    const job = install(secondary, "bp-gitea", ["bp-keycloak"])
    expect(job).toMatchObject({
      id: `${dep}:install-hel1-1:gitea`,
      jobName: "install-hel1-1:gitea",
      appId: "hel1-1:gitea",
      region: "hel1-1",
      parentId: `${dep}:bootstrap-kit`,
      dependsOn: ["install-hel1-1:keycloak"],
      type: "install"
    })
    expect(install(primary, "bp-self-sovereign-cutover").parentId).toBe(`${dep}:cutover`)
  })

  it("names Phase-0 leaves <step> for the primary and <regionKey>:<step> for a secondary", () => {
    const step = { name: "server", displayName: "Create server", dependsOn: ["network"] }
    expect(Job.stepJob({ deploymentId: dep, region: primary, step })).toMatchObject({
      jobName: "server",
      region: "fsn1",
      parentId: `${dep}:provisioner`,
      dependsOn: ["network"],
      displayName: "Create server"
    })
    expect(Job.stepJob({ deploymentId: dep, region: secondary, step })).toMatchObject({
      jobName: "hel1-1:server",
      region: "hel1-1",
      dependsOn: ["hel1-1:network"]
    })
  })

  it("reads the region prefix of a name without mistaking an install name for an id", () => {
    expect(Job.regionPrefixOf("install-hel1-2:cilium")).toBe("hel1-2")
    expect(Job.regionPrefixOf("install-cilium")).toBeUndefined()
    expect(Job.regionPrefixOf("me-east-215-b-1:server")).toBe("me-east-215-b-1")
    expect(Job.jobNameOf(dep, `${dep}:install-hel1-2:cilium`)).toBe("install-hel1-2:cilium")
    expect(Job.jobNameOf(dep, "install-hel1-2:cilium")).toBe("install-hel1-2:cilium")
  })
})

describe("Job dependency canonicalisation", () => {
  it.each([
    ["install-cilium", "cilium", "install-cilium"],
    ["install-cilium", "bp-cilium", "install-cilium"],
    ["install-cilium", "install-cilium", "install-cilium"],
    ["install-cilium", `${dep}:install-cilium`, "install-cilium"],
    ["install-hel1-2:gitea", "keycloak", "install-hel1-2:keycloak"],
    ["install-hel1-2:gitea", "hel1-2:keycloak", "install-hel1-2:keycloak"],
    ["install-hel1-2:gitea", "install-hel1-2:keycloak", "install-hel1-2:keycloak"],
    ["install-hel1-2:gitea", "install-keycloak", "install-hel1-2:keycloak"],
    // never across regions: another region's name lands in the job's own region
    ["install-hel1-2:gitea", "install-nbg1-1:keycloak", "install-hel1-2:keycloak"],
    ["install-gitea", "install-hel1-2:keycloak", "install-keycloak"],
    ["hel1-1:server", "network", "hel1-1:network"],
    ["hel1-1:server", `${dep}:hel1-1:network`, "hel1-1:network"],
    ["server", `${dep}:network`, "network"],
    ["server", "fsn1-9:network", "network"]
  ])("%s depends on %s → %s", (jobName, dependency, expected) => {
    expect(Job.canonicalDependency(dep, jobName, dependency)).toBe(expected)
  })

  const dependencyText = fc.oneof(
    fc.constantFrom("cilium", "bp-cilium", "install-cilium", "hel1-1:cilium", "install-hel1-1:cilium", "nbg1-2:cilium", "", " ", "network"),
    fc
      .constantFrom("install-", "bp-", "hel1-1:", `${dep}:`, " ")
      .chain((prefix) => fc.stringMatching(/^[a-z0-9:-]{0,12}$/).map((rest) => prefix + rest))
  )
  it.prop(
    "canonical dependencies are stable, in-region, and the same whether or not they were canonical already",
    [fc.constantFrom("install-gitea", "install-hel1-1:gitea", "server", "hel1-1:server"), fc.array(dependencyText, { maxLength: 6 })],
    ([jobName, dependsOn]) => {
      const once = Job.canonicalDependsOn(dep, jobName, dependsOn)
      expect(Job.canonicalDependsOn(dep, jobName, once)).toEqual(once)
      // the slow path, entry by entry, agrees with whatever path the array took
      const bySlowPath = Job.canonicalDependsOn(dep, jobName, [...dependsOn, "\u0000-forces-slow-path"]).slice(0, -1)
      expect(once).toEqual(bySlowPath.filter((name) => !name.includes("\u0000")))
      for (const name of once) expect(Job.regionPrefixOf(name)).toBe(Job.regionPrefixOf(jobName))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("drops empty entries, duplicates and the job itself", () => {
    expect(Job.canonicalDependsOn(dep, "install-gitea", ["", "keycloak", "install-keycloak", "gitea", " "])).toEqual(["install-keycloak"])
  })
})

describe("Job.merge", () => {
  const seeded = install(secondary, "bp-gitea", ["bp-keycloak"])

  it("keeps stored dependencies, region and parent when an event carries none", () => {
    const event: Job.Job = { ...seeded, region: "", parentId: "", dependsOn: [], status: "running", startedAt: 1_000 }
    const merged = Job.merge(seeded, event)
    expect(merged.dependsOn).toEqual(["install-hel1-1:keycloak"])
    expect(merged.region).toBe("hel1-1")
    expect(merged.parentId).toBe(`${dep}:bootstrap-kit`)
    expect(merged.status).toBe("running")
  })

  it("lets the new status win, keeps startedAt and recomputes the duration", () => {
    const running = Job.merge(seeded, { ...seeded, status: "running", startedAt: 1_000 })
    const done = Job.merge(running, { ...seeded, status: "succeeded", finishedAt: 4_500 })
    expect(done).toMatchObject({ status: "succeeded", startedAt: 1_000, finishedAt: 4_500, durationMs: 3_500 })
    const failedLater = Job.merge(done, { ...seeded, status: "failed", finishedAt: 9_000 })
    expect(failedLater).toMatchObject({ status: "failed", durationMs: 8_000 })
  })

  it("never returns a started job to pending", () => {
    const running = Job.merge(seeded, { ...seeded, status: "running", startedAt: 1_000 })
    expect(Job.merge(running, seeded).status).toBe("running")
    const done = Job.merge(running, { ...seeded, status: "succeeded", finishedAt: 2_000 })
    expect(Job.merge(done, seeded).status).toBe("succeeded")
    // a job that never started may go back to pending (e.g. after a dependency was retried)
    const cascaded = { ...seeded, status: "failed" as const, reason: "dependency install-hel1-1:keycloak failed" }
    const retried = Job.merge(cascaded, seeded)
    expect(retried.status).toBe("pending")
    expect(retried.reason).toBeUndefined()
  })

  it("drops a finish time when the job runs again", () => {
    const done = Job.merge(seeded, { ...seeded, status: "succeeded", startedAt: 1_000, finishedAt: 2_000 })
    const again = Job.merge(done, { ...seeded, status: "running" })
    expect(again.finishedAt).toBeUndefined()
    expect(again.startedAt).toBe(1_000)
  })

  it("canonicalises dependencies on write", () => {
    const raw: Job.Job = { ...seeded, dependsOn: ["hel1-1:keycloak", "cert-manager"] }
    expect(Job.merge(undefined, raw).dependsOn).toEqual(["install-hel1-1:keycloak", "install-hel1-1:cert-manager"])
  })
})

describe("Job.observe (executions)", () => {
  const seeded = install(primary, "bp-cilium")

  it("starts an execution on the first non-pending state and finishes it on a terminal one", () => {
    const first = Job.observe({
      stored: seeded,
      incoming: { ...seeded, status: "running" },
      latestExecution: undefined,
      at: 1_000,
      executionId: "e1"
    })
    expect(first.change._tag).toBe("Started")
    expect(first.job).toMatchObject({ status: "running", startedAt: 1_000, latestExecutionId: "e1" })
    if (first.change._tag !== "Started") return
    const again = Job.observe({
      stored: first.job,
      incoming: { ...seeded, status: "pending" },
      latestExecution: first.change.execution,
      at: 1_500,
      executionId: "e2"
    })
    expect(again.change._tag).toBe("Unchanged")
    expect(again.job.status).toBe("running")
    const done = Job.observe({
      stored: again.job,
      incoming: { ...seeded, status: "succeeded" },
      latestExecution: first.change.execution,
      at: 3_000,
      executionId: "e3"
    })
    expect(done.change).toMatchObject({ _tag: "Finished", execution: { id: "e1", status: "succeeded", finishedAt: 3_000 } })
    expect(done.job).toMatchObject({ status: "succeeded", finishedAt: 3_000, durationMs: 2_000, latestExecutionId: "e1" })
  })

  it("finishes an execution left running by a previous process when a terminal state is seen after restart", () => {
    const stored: Job.Job = { ...seeded, status: "running", startedAt: 1_000, latestExecutionId: "e1" }
    const orphan: Job.Execution = { id: "e1", jobId: seeded.id, deploymentId: dep, status: "running", startedAt: 1_000, lineCount: 3 }
    const seen = Job.observe({
      stored,
      incoming: { ...seeded, status: "succeeded" },
      latestExecution: orphan,
      at: 9_000,
      executionId: "e2"
    })
    expect(seen.change).toMatchObject({ _tag: "Finished", execution: { id: "e1", status: "succeeded", lineCount: 3 } })
  })

  it("records a release already installed at first sight as one finished execution, once", () => {
    const seen = Job.observe({
      stored: seeded,
      incoming: { ...seeded, status: "succeeded" },
      latestExecution: undefined,
      at: 5_000,
      executionId: "e1"
    })
    expect(seen.change).toMatchObject({
      _tag: "StartedAndFinished",
      execution: { status: "succeeded", startedAt: 5_000, finishedAt: 5_000 }
    })
    if (seen.change._tag !== "StartedAndFinished") return
    const repeat = Job.observe({
      stored: seen.job,
      incoming: { ...seeded, status: "succeeded" },
      latestExecution: seen.change.execution,
      at: 6_000,
      executionId: "e2"
    })
    expect(repeat.change._tag).toBe("Unchanged")
  })

  it("leaves a pending job without executions", () => {
    const seen = Job.observe({ stored: undefined, incoming: seeded, latestExecution: undefined, at: 1, executionId: "e1" })
    expect(seen.change._tag).toBe("Unchanged")
    expect(seen.job.latestExecutionId).toBeUndefined()
  })
})

describe("Job.cascadeFailures", () => {
  it("fails every non-terminal dependent transitively, naming the direct dependency", () => {
    const jobs = [
      install(primary, "bp-catalyst-platform", ["bp-gitea"]),
      install(primary, "bp-gitea", ["bp-keycloak"], "running"),
      install(primary, "bp-keycloak", ["bp-cert-manager"], "failed"),
      install(primary, "bp-cert-manager", [], "succeeded"),
      install(primary, "bp-harbor", ["bp-keycloak"], "succeeded"),
      install(secondary, "bp-gitea", ["bp-keycloak"])
    ]
    const result = Job.cascadeFailures(jobs)
    expect(result.map((job) => [job.jobName, job.status, job.reason])).toEqual([
      ["install-catalyst-platform", "failed", "dependency install-gitea failed"],
      ["install-gitea", "failed", "dependency install-keycloak failed"],
      ["install-keycloak", "failed", undefined],
      ["install-cert-manager", "succeeded", undefined],
      ["install-harbor", "succeeded", undefined],
      // the other region's keycloak did not fail
      ["install-hel1-1:gitea", "pending", undefined]
    ])
  })

  it("returns the same array when nothing fails", () => {
    const jobs = [install(primary, "bp-gitea", ["bp-keycloak"]), install(primary, "bp-keycloak", [], "running")]
    expect(Job.cascadeFailures(jobs)).toBe(jobs)
  })

  it.prop(
    "reaches a fixpoint: no waiting job keeps a failed dependency, whatever the order of the jobs",
    [modelArbitrary, fc.integer(), fc.integer()],
    ([model, order, permutation]) => {
      const jobs = arrive(generate(model), order)
      const cascaded = Job.cascadeFailures(jobs)
      const byName = new Map(cascaded.map((job) => [job.jobName, job]))
      // A dependency on a phase (`bootstrap-kit`, `hel1-1:bootstrap-kit`) has failed when a job of that phase in the job's region has.
      const phaseOf = (job: Job.Job) =>
        Job.isInstallJobName(job.jobName)
          ? Job.defaultPhaseOfChart(job.jobName.slice("install-".length).split(":").pop()!)
          : job.parentId.split(":").pop()
      const failed = (dependent: Job.Job, name: string) => {
        const group = Job.phaseDependencyOf(name)
        if (group === undefined) return byName.get(name)?.status === "failed"
        return cascaded.some(
          (job) => job.type !== "group" && job.status === "failed" && phaseOf(job) === group.phase && job.region === dependent.region
        )
      }
      for (const job of cascaded) {
        if (job.type === "group" || Job.isTerminal(job.status)) continue
        const failedDependency = job.dependsOn.find((name) => failed(job, name))
        expect(failedDependency, `${job.jobName} waits on a failed dependency`).toBeUndefined()
      }
      // every job it failed names a failed dependency of its own
      cascaded.forEach((job, index) => {
        if (job === jobs[index]) return
        expect(job.status).toBe("failed")
        expect(job.reason).toMatch(/^dependency .+ failed$/)
        expect(failed(job, job.reason!.slice("dependency ".length, -" failed".length))).toBe(true)
      })
      expect(Job.cascadeFailures(cascaded)).toBe(cascaded)
      const sorted = (list: ReadonlyArray<Job.Job>) => [...list].sort((a, b) => (a.id < b.id ? -1 : 1))
      expect(sorted(Job.cascadeFailures(shuffle(jobs, permutation)))).toEqual(sorted(cascaded))
    },
    { fastCheck: { numRuns: 40 } }
  )
})
