import { describe, expect, it } from "@effect/vitest"
import { Duration } from "effect"
import { Deployment, Job, JobRepo } from "../src/index.js"
import * as Lifecycle from "../src/Lifecycle.js"
import type { MeshRegionStatus } from "../src/MeshPlan.js"

const dep = "0123456789abcdef"
const regions = Deployment.deriveRegions(
  {
    sovereignFQDN: "t1.omani.works",
    regions: ["fsn1", "hel1", "nbg1"].map((cloudRegion) => ({
      provider: "hetzner",
      cloudRegion,
      controlPlaneSize: "cpx32",
      workerCount: 0
    }))
  },
  dep
)
const [fsn1, hel1] = [regions[0]!, regions[1]!]
const all = { dns: true, mesh: true, access: true }

describe("Lifecycle jobs: names, phases and dependencies", () => {
  it("names each step like a Phase-0 step: bare in the primary region, region-keyed in a secondary", () => {
    expect(
      Lifecycle.planned(dep, regions, all).map((job) => [
        job.jobName,
        job.region,
        job.parentId.slice(dep.length + 1),
        job.dependsOn.join(",")
      ])
    ).toEqual([
      ["cutover-dns", "fsn1", "cutover", "provisioner"],
      ["cutover-mesh", "fsn1", "cutover", "bootstrap-kit"],
      ["hel1-1:cutover-mesh", "hel1-1", "cutover", "hel1-1:bootstrap-kit"],
      ["nbg1-2:cutover-mesh", "nbg1-2", "cutover", "nbg1-2:bootstrap-kit"],
      ["handover-token", "fsn1", "handover", "bootstrap-kit"],
      ["handover-access", "fsn1", "handover", "provisioner"],
      ["hel1-1:handover-access", "hel1-1", "handover", "hel1-1:provisioner"],
      ["nbg1-2:handover-access", "nbg1-2", "handover", "nbg1-2:provisioner"]
    ])
    for (const job of Lifecycle.planned(dep, regions, all)) {
      expect(job).toMatchObject({ id: `${dep}:${job.jobName}`, type: "install", status: "pending" })
      expect(Lifecycle.stepOf(job.jobName)).toBeDefined()
    }
    expect(Lifecycle.job({ deploymentId: dep, region: fsn1, step: "handover-finalise" }).dependsOn).toEqual(["handover-token"])
    expect(Lifecycle.stepOf("install-cutover-mesh")).toBeUndefined()
    expect(Lifecycle.stepOf("hel1-1:network")).toBeUndefined()
  })

  it("plans only the steps the orchestrator can take: no DNS, mesh or access without their port; no mesh for one region", () => {
    expect(Lifecycle.planned(dep, regions, { dns: false, mesh: false, access: false }).map((job) => job.jobName)).toEqual([
      "handover-token"
    ])
    expect(Lifecycle.planned(dep, [fsn1], all).map((job) => job.jobName)).toEqual(["cutover-dns", "handover-token", "handover-access"])
  })
})

const status = (
  peers: ReadonlyArray<{ name: string; configured: boolean; error?: string; ip?: string }>,
  extra: Partial<MeshRegionStatus> = {}
): MeshRegionStatus => ({
  regionKey: "hel1-1",
  clusterName: "t1-hel",
  clusterId: 23,
  loadBalancerIP: "203.0.113.2",
  peers: peers.map((peer) => ({
    name: peer.name,
    configured: peer.configured,
    ...(peer.ip === undefined ? { loadBalancerIP: "203.0.113.1" } : { loadBalancerIP: peer.ip }),
    ...(peer.error === undefined ? {} : { error: peer.error })
  })),
  ...extra
})

describe("Lifecycle: a mesh report as an observation of the region", () => {
  it("is meshed when every peer is configured and the region has no error; else it names what is missing", () => {
    const ok = status([
      { name: "t1-mesh", configured: true },
      { name: "t1-nbg", configured: true, ip: "203.0.113.3" }
    ])
    expect(Lifecycle.meshObservationOf(ok, 2, undefined)).toEqual({
      _tag: "Meshed",
      summary: "2/2 peers configured: t1-mesh (203.0.113.1), t1-nbg (203.0.113.3)",
      changed: true
    })
    // the time of the pass is not a change; an address is
    expect(Lifecycle.meshObservationOf({ ...ok, readyAt: 9 }, 2, { ...ok, readyAt: 5 })).toMatchObject({ changed: false })
    const moved = status([
      { name: "t1-mesh", configured: true, ip: "203.0.113.9" },
      { name: "t1-nbg", configured: true, ip: "203.0.113.3" }
    ])
    expect(Lifecycle.meshObservationOf(moved, 2, ok)).toMatchObject({ changed: true })
    expect(Lifecycle.meshObservationOf(ok, 3, undefined)._tag).toBe("Retrying")
    expect(
      Lifecycle.meshObservationOf(
        status([
          { name: "t1-mesh", configured: true },
          { name: "t1-nbg", configured: false, error: "peer LB IP absent" }
        ]),
        2,
        undefined
      )
    ).toEqual({ _tag: "Retrying", reason: "t1-nbg: peer LB IP absent" })
    expect(
      Lifecycle.meshObservationOf(
        status([{ name: "t1-mesh", configured: false, error: "local region failed: x" }], { error: "cluster unreachable: x" }),
        1,
        undefined
      )
    ).toEqual({ _tag: "Retrying", reason: "cluster unreachable: x" })
  })

  it("retries with backoff for as many passes as the backoff needs to reach its cap", () => {
    expect(Lifecycle.meshAttempts(Duration.seconds(15), Duration.minutes(2))).toBe(4)
    expect(Lifecycle.meshAttempts(Duration.seconds(15), Duration.seconds(15))).toBe(1)
    expect(Lifecycle.meshAttempts(Duration.seconds(10), Duration.seconds(25))).toBe(3)
  })
})

/** Applies the writes of each pass to an in-memory job store, as a JobRepo would. */
const store = () => {
  const state: JobRepo.JobWriteState = { jobs: new Map(), executions: new Map() }
  const planned = Lifecycle.job({ deploymentId: dep, region: hel1, step: "cutover-mesh" })
  state.jobs.set(planned.jobName, planned)
  let memory: Lifecycle.MeshMemory | undefined
  let next = 0
  let at = 1000
  const lines: Array<string> = []
  const pass = (observation: Lifecycle.MeshObservation, options: { readonly restart?: boolean } = {}) => {
    if (options.restart === true) memory = undefined
    at += 60_000
    const step = Lifecycle.meshStep({
      job: state.jobs.get(planned.jobName)!,
      observation,
      memory,
      attempts: 3,
      at,
      executionId: `e${++next}`
    })
    memory = step.memory
    const result = JobRepo.applyWrites(dep, state, step.writes)
    if (result._tag === "Left") throw result.left
    for (const { line } of result.right.lines) lines.push(`${line.level} ${line.message}`)
    return step.writes.length
  }
  const job = () => state.jobs.get(planned.jobName)!
  const executions = () => [...state.executions.values()].map((execution) => execution.status)
  return { pass, job, executions, lines }
}

const meshed = (changed = false): Lifecycle.MeshObservation => ({ _tag: "Meshed", summary: "2/2 peers configured", changed })
const retrying = (reason: string): Lifecycle.MeshObservation => ({ _tag: "Retrying", reason })

describe("Lifecycle.meshStep: how level-triggered passes show in a region's mesh job", () => {
  it("one execution from the first pass to the meshed one, the problem as the reason meanwhile; idle heal passes add nothing", () => {
    const s = store()
    s.pass(retrying("t1-mesh: peer LB IP absent"))
    expect(s.job()).toMatchObject({ status: "running", reason: "t1-mesh: peer LB IP absent" })
    s.pass(retrying("t1-mesh: peer LB IP absent"))
    expect(s.lines).toHaveLength(1) // a line when the problem changes, not every pass
    s.pass(meshed())
    expect(s.job().status).toBe("succeeded")
    expect(s.job().reason).toBeUndefined()
    expect(s.executions()).toEqual(["succeeded"])
    for (let i = 0; i < 50; i++) expect(s.pass(meshed())).toBe(0)
    expect(s.executions()).toEqual(["succeeded"])
    expect(s.lines).toEqual([
      "WARN Not meshed yet (pass 1), retrying with backoff: t1-mesh: peer LB IP absent",
      "INFO 2/2 peers configured"
    ])
  })

  it("fails the execution once the backoff is spent, keeps quiet while nothing changes, and heals in a new execution", () => {
    const s = store()
    for (let i = 0; i < 3; i++) s.pass(retrying("cluster unreachable: timeout"))
    expect(s.job()).toMatchObject({ status: "failed", reason: "cluster unreachable: timeout" })
    expect(s.executions()).toEqual(["failed"])
    for (let i = 0; i < 20; i++) expect(s.pass(retrying("cluster unreachable: timeout"))).toBe(0)
    // a different problem updates the reason, without a new execution
    s.pass(retrying("cluster unreachable: refused"))
    expect(s.job()).toMatchObject({ status: "failed", reason: "cluster unreachable: refused" })
    expect(s.executions()).toEqual(["failed"])
    s.pass(meshed())
    expect(s.job().status).toBe("succeeded")
    expect(s.job().reason).toBeUndefined()
    expect(s.executions()).toEqual(["failed", "succeeded"])
    expect(s.lines.at(-1)).toBe("INFO Healed: 2/2 peers configured")
  })

  it("a heal pass that finds the region broken, or changed, starts a new execution", () => {
    const s = store()
    s.pass(meshed())
    s.pass(retrying("t1-nbg: peer region nbg1-2 failed: cluster unreachable"))
    expect(s.job()).toMatchObject({ status: "running", reason: "t1-nbg: peer region nbg1-2 failed: cluster unreachable" })
    s.pass(meshed())
    s.pass(meshed(true))
    expect(s.executions()).toEqual(["succeeded", "succeeded", "succeeded"])
    expect(s.lines.at(-1)).toBe("INFO Changed: 2/2 peers configured")
  })

  it("a restarted run retries a failed region visibly, once", () => {
    const s = store()
    for (let i = 0; i < 3; i++) s.pass(retrying("cluster unreachable"))
    s.pass(retrying("cluster unreachable"), { restart: true })
    expect(s.job().status).toBe("running")
    for (let i = 0; i < 5; i++) s.pass(retrying("cluster unreachable"))
    expect(s.executions()).toEqual(["failed", "failed"])
  })

  it("a region that will not be meshed is failed without an execution, its reason says why", () => {
    const s = store()
    s.pass({ _tag: "Excluded", reason: "not meshed: the bootstrap kit of hel1-1 did not converge (failed)" })
    expect(s.job()).toMatchObject({ status: "failed", reason: "not meshed: the bootstrap kit of hel1-1 did not converge (failed)" })
    expect(s.executions()).toEqual([])
    expect(s.pass({ _tag: "Excluded", reason: "not meshed: the bootstrap kit of hel1-1 did not converge (failed)" })).toBe(0)
  })

  it("keeps the job's identity: id, parent, region and dependency survive every write", () => {
    const s = store()
    s.pass(retrying("x"))
    s.pass(meshed())
    expect(s.job()).toMatchObject({
      id: `${dep}:hel1-1:cutover-mesh`,
      parentId: `${dep}:cutover`,
      region: "hel1-1",
      dependsOn: ["hel1-1:bootstrap-kit"],
      displayName: "ClusterMesh"
    })
    expect(Job.isTerminal(s.job().status)).toBe(true)
  })
})
