import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { FlowGraph, FlowMessage, Job } from "../src/index.js"
import * as Lifecycle from "../src/Lifecycle.js"
import { arrive, generate, modelArbitrary, random, shuffle, syntheticDeployment } from "./support/deployments.js"

type Snapshot = FlowMessage.Snapshot

const dep = "0123456789abcdef"
const fsn1 = { key: "fsn1", primary: true }
const hel1 = { key: "hel1-1", primary: false }
const phaseIds = Job.phases.map((phase) => `${dep}:${phase}`)

const install = (
  region: Job.RegionRef,
  release: string,
  dependsOn: ReadonlyArray<string> = [],
  status: Job.JobStatus = "pending",
  times: { startedAt?: number; finishedAt?: number } = {}
): Job.Job => ({ ...Job.installJob({ deploymentId: dep, region, release, dependsOn, status }), ...times })

const compose = (
  jobs: ReadonlyArray<Job.Job>,
  regions: ReadonlyArray<string> = ["fsn1", "hel1-1"],
  extra: Partial<FlowGraph.ComposeInput> = {}
) => FlowGraph.compose({ deploymentId: dep, regions, jobs, ...extra })

const nodeOf = (snapshot: Snapshot, id: string) => snapshot.nodes.find((node) => node.id === id)
const relsOf = (snapshot: Snapshot, type: string) => snapshot.relationships.filter((rel) => rel.type === type)
const parentOf = (snapshot: Snapshot, id: string) => relsOf(snapshot, "contains").find((rel) => rel.fromId === id)?.toId

// ---------------------------------------------------------------------------------------------
// Independent checks of the graph's invariants (used by the property tests)

/** Every structural invariant; returns the problems found (none expected) and the containment. */
const checkStructure = (snapshot: Snapshot, deploymentId: string) => {
  const problems: Array<string> = []
  const phases = Job.phases.map((phase) => `${deploymentId}:${phase}`)
  const phaseSet = new Set(phases)
  const nodes = new Map(snapshot.nodes.map((node) => [node.id, node]))
  if (nodes.size !== snapshot.nodes.length) problems.push("node ids are not unique")
  for (const id of phases) if (!nodes.has(id)) problems.push(`phase group ${id} is missing`)
  for (const node of snapshot.nodes) {
    if (node.id.includes("/")) problems.push(`'/' in ${node.id}`)
    if (node.flowId !== deploymentId) problems.push(`${node.id} in flow ${node.flowId}`)
  }
  for (const rel of snapshot.relationships) {
    if (!nodes.has(rel.fromId) || !nodes.has(rel.toId)) problems.push(`dangling ${rel.type} ${rel.fromId} -> ${rel.toId}`)
  }
  // contains: exactly one parent per non-phase node, none for a phase group, every chain ends at a phase group
  const parent = new Map<string, string>()
  for (const rel of relsOf(snapshot, "contains")) {
    if (parent.has(rel.fromId)) problems.push(`${rel.fromId} has two parents`)
    parent.set(rel.fromId, rel.toId)
  }
  for (const id of phases) if (parent.has(id)) problems.push(`phase group ${id} is contained`)
  for (const node of snapshot.nodes) {
    if (phaseSet.has(node.id)) continue
    const seen = new Set<string>()
    for (let at: string | undefined = node.id; at === undefined || !phaseSet.has(at); at = parent.get(at)) {
      if (at === undefined) {
        problems.push(`${node.id} is not under a phase group`)
        break
      }
      if (seen.has(at)) {
        problems.push(`cycle through ${at}`)
        break
      }
      seen.add(at)
    }
  }
  // finish-to-start: the phase chain is the only group-to-group edge; every other edge stays in its region
  const groups = new Set([...phases, ...parent.values()])
  const chain = phases.slice(1).map((to, index) => `${phases[index]}>${to}`)
  const fs = relsOf(snapshot, "finish-to-start")
  const groupEdges = fs.filter((rel) => groups.has(rel.fromId) && groups.has(rel.toId)).map((rel) => `${rel.fromId}>${rel.toId}`)
  if (JSON.stringify(groupEdges) !== JSON.stringify(chain)) problems.push(`group-to-group edges ${groupEdges.join(", ")}`)
  for (const rel of fs) {
    if (groups.has(rel.fromId) && groups.has(rel.toId)) continue
    const from = nodes.get(rel.fromId)
    const to = nodes.get(rel.toId)
    if (from === undefined || to === undefined || from.region !== to.region) problems.push(`${rel.fromId} -> ${rel.toId} crosses regions`)
  }
  return { problems, parent, groups }
}

const expectedRollUp = (statuses: ReadonlyArray<string>): string =>
  statuses.length === 0
    ? "pending"
    : statuses.includes("failed")
      ? "failed"
      : statuses.every((status) => status === "succeeded")
        ? "succeeded"
        : statuses.every((status) => status === "pending")
          ? "pending"
          : "running"

const checkRollUp = (snapshot: Snapshot, parent: ReadonlyMap<string, string>, groups: ReadonlySet<string>) => {
  const problems: Array<string> = []
  const descendants = new Map<string, Array<string>>()
  const containers = new Set(parent.values())
  for (const node of snapshot.nodes) {
    if (containers.has(node.id)) continue // not a tree leaf
    for (let at = parent.get(node.id); at !== undefined; at = parent.get(at)) {
      const list = descendants.get(at) ?? []
      list.push(node.status)
      descendants.set(at, list)
    }
  }
  for (const node of snapshot.nodes) {
    if (!groups.has(node.id)) continue
    const expected = expectedRollUp(descendants.get(node.id) ?? [])
    if (node.status !== expected) problems.push(`${node.id} is ${node.status}, its descendants say ${expected}`)
  }
  return problems
}

/** Groups: those with children are never marked empty; those without say so (`meta.empty`). A finished deployment's groups with children are never `pending`. */
const checkGroups = (snapshot: Snapshot, parent: ReadonlyMap<string, string>, groups: ReadonlySet<string>, finished: boolean) => {
  const problems: Array<string> = []
  const containers = new Set(parent.values())
  for (const node of snapshot.nodes) {
    const isGroup = groups.has(node.id) || node.family === "group"
    if (!isGroup) {
      if (node.meta?.empty !== undefined) problems.push(`leaf ${node.id} is marked empty`)
      continue
    }
    if (containers.has(node.id)) {
      if (node.meta?.empty !== undefined) problems.push(`${node.id} has children but is marked empty`)
      if (finished && node.status === "pending") problems.push(`${node.id} has children and is still pending in a finished deployment`)
    } else if (node.meta?.empty !== true) {
      problems.push(`${node.id} has no children but is not marked empty`)
    }
  }
  return problems
}

const byKey = (snapshot: Snapshot) => ({
  flow: snapshot.flow,
  nodes: new Map(snapshot.nodes.map((node) => [node.id, node])),
  relationships: new Map(snapshot.relationships.map((rel) => [`${rel.fromId}|${rel.toId}|${rel.type}`, rel]))
})

const sameKeys = (a: Snapshot, b: Snapshot) =>
  JSON.stringify(a.nodes.map((node) => node.id)) === JSON.stringify(b.nodes.map((node) => node.id)) &&
  JSON.stringify(a.relationships.map((rel) => [rel.fromId, rel.toId, rel.type])) ===
    JSON.stringify(b.relationships.map((rel) => [rel.fromId, rel.toId, rel.type]))

// ---------------------------------------------------------------------------------------------

describe("FlowGraph.compose: the rules of SPEC 2.5", () => {
  it("always has the five phase groups chained by four finish-to-start edges, even without jobs", () => {
    const snapshot = compose([])
    expect(snapshot.nodes.map((node) => [node.id, node.label, node.status, node.family])).toEqual([
      [`${dep}:provisioner`, "Provision", "pending", "group"],
      [`${dep}:bootstrap-kit`, "Bootstrap", "pending", "group"],
      [`${dep}:cutover`, "Cutover", "pending", "group"],
      [`${dep}:handover`, "Handover", "pending", "group"],
      [`${dep}:apps`, "Apps", "pending", "group"]
    ])
    expect(snapshot.relationships).toEqual(
      phaseIds.slice(1).map((toId, index) => ({ fromId: phaseIds[index], toId, type: "finish-to-start" }))
    )
    expect(snapshot.flow).toEqual({
      id: dep,
      status: "pending",
      startedAt: 0,
      meta: { omittedDependencies: 0, crossRegionDependencies: 0 }
    })
  })

  it("uses the job id as node id and the display name, else the job name, as label", () => {
    const snapshot = compose([
      Job.phaseGroupJob(dep, "provisioner", "Provision Hetzner"),
      Job.stepJob({ deploymentId: dep, region: fsn1, step: { name: "network", displayName: "Network", dependsOn: [] } }),
      install(hel1, "bp-cilium")
    ])
    expect(nodeOf(snapshot, `${dep}:provisioner`)?.label).toBe("Provision Hetzner")
    expect(nodeOf(snapshot, `${dep}:network`)).toMatchObject({ label: "Network", family: "provision", region: "fsn1" })
    expect(nodeOf(snapshot, `${dep}:install-hel1-1:cilium`)).toMatchObject({
      label: "install-hel1-1:cilium",
      family: "install",
      region: "hel1-1",
      status: "pending"
    })
  })

  it("wraps every region's leaves in a region group per phase, the primary too", () => {
    const snapshot = compose([
      install(fsn1, "bp-cilium"),
      install(hel1, "bp-cilium"),
      install(hel1, "bp-self-sovereign-cutover"),
      Job.stepJob({ deploymentId: dep, region: hel1, step: { name: "network", dependsOn: [] } })
    ])
    expect(parentOf(snapshot, `${dep}:install-cilium`)).toBe(`${dep}:fsn1:bootstrap-kit`)
    expect(parentOf(snapshot, `${dep}:install-hel1-1:cilium`)).toBe(`${dep}:hel1-1:bootstrap-kit`)
    expect(parentOf(snapshot, `${dep}:install-hel1-1:self-sovereign-cutover`)).toBe(`${dep}:hel1-1:cutover`)
    expect(parentOf(snapshot, `${dep}:hel1-1:network`)).toBe(`${dep}:hel1-1:provisioner`)
    expect(parentOf(snapshot, `${dep}:fsn1:bootstrap-kit`)).toBe(`${dep}:bootstrap-kit`)
    expect(nodeOf(snapshot, `${dep}:fsn1:bootstrap-kit`)).toMatchObject({ label: "Bootstrap (fsn1)", family: "group", region: "fsn1" })
    expect(nodeOf(snapshot, `${dep}:hel1-1:cutover`)?.label).toBe("Cutover (hel1-1)")
    // only (region, phase) pairs with children
    expect(nodeOf(snapshot, `${dep}:fsn1:cutover`)).toBeUndefined()
    expect(nodeOf(snapshot, `${dep}:fsn1:handover`)).toBeUndefined()
    expect(snapshot.nodes.map((node) => node.id)).toEqual([
      `${dep}:provisioner`,
      `${dep}:hel1-1:provisioner`,
      `${dep}:hel1-1:network`,
      `${dep}:bootstrap-kit`,
      `${dep}:fsn1:bootstrap-kit`,
      `${dep}:install-cilium`,
      `${dep}:hel1-1:bootstrap-kit`,
      `${dep}:install-hel1-1:cilium`,
      `${dep}:cutover`,
      `${dep}:hel1-1:cutover`,
      `${dep}:install-hel1-1:self-sovereign-cutover`,
      `${dep}:handover`,
      `${dep}:apps`
    ])
  })

  it("takes the chart → phase mapping as a parameter", () => {
    const snapshot = compose([install(fsn1, "bp-harbor")], ["fsn1"], {
      phaseOfChart: (chart) => (chart === "harbor" ? "apps" : "bootstrap-kit")
    })
    expect(parentOf(snapshot, `${dep}:install-harbor`)).toBe(`${dep}:fsn1:apps`)
    expect(nodeOf(snapshot, `${dep}:fsn1:apps`)?.label).toBe("Apps (fsn1)")
  })

  it("draws in-region dependency edges and counts the ones whose job does not exist yet", () => {
    const snapshot = compose([
      install(fsn1, "bp-cert-manager", ["bp-cilium"]),
      install(fsn1, "bp-cilium"),
      install(hel1, "bp-cert-manager", ["bp-cilium"]),
      install(hel1, "bp-gitea", ["bp-keycloak"])
    ])
    expect(relsOf(snapshot, "finish-to-start").slice(4)).toEqual([
      { fromId: `${dep}:install-cilium`, toId: `${dep}:install-cert-manager`, type: "finish-to-start" }
    ])
    expect(FlowGraph.metaOf(snapshot)).toEqual({ omittedDependencies: 2, crossRegionDependencies: 0 })
  })

  it("never draws an edge across regions, even from a dependency stored wrongly", () => {
    const wrong: Job.Job = { ...install(hel1, "bp-cert-manager"), dependsOn: ["install-cilium"] }
    const snapshot = compose([install(fsn1, "bp-cilium"), install(hel1, "bp-cilium"), wrong])
    // canonicalised on read into hel1-1's own cilium
    expect(relsOf(snapshot, "finish-to-start").slice(4)).toEqual([
      { fromId: `${dep}:install-hel1-1:cilium`, toId: `${dep}:install-hel1-1:cert-manager`, type: "finish-to-start" }
    ])
    const mislabelled: Job.Job = {
      ...install(fsn1, "bp-cilium"),
      id: `${dep}:install-hel1-1:flux`,
      jobName: "install-hel1-1:flux",
      region: "fsn1"
    }
    const other = compose([mislabelled, { ...install(hel1, "bp-cert-manager"), dependsOn: ["install-hel1-1:flux"] }])
    expect(relsOf(other, "finish-to-start")).toHaveLength(4)
    expect(FlowGraph.metaOf(other).crossRegionDependencies).toBe(1)
  })

  it("rolls group statuses up from descendants", () => {
    const at = 1_700_000_000_000
    const snapshot = compose([
      install(fsn1, "bp-cilium", [], "succeeded", { startedAt: at, finishedAt: at + 10 }),
      install(fsn1, "bp-flux", [], "pending"),
      install(hel1, "bp-cilium", [], "succeeded", { startedAt: at + 5, finishedAt: at + 20 }),
      install(hel1, "bp-flux", [], "failed", { startedAt: at + 6, finishedAt: at + 30 }),
      Job.phaseGroupJob(dep, "apps")
    ])
    expect(nodeOf(snapshot, `${dep}:fsn1:bootstrap-kit`)).toMatchObject({ status: "running", startedAt: at })
    expect(nodeOf(snapshot, `${dep}:fsn1:bootstrap-kit`)?.endedAt).toBeUndefined()
    expect(nodeOf(snapshot, `${dep}:hel1-1:bootstrap-kit`)).toMatchObject({ status: "failed", startedAt: at + 5, endedAt: at + 30 })
    expect(nodeOf(snapshot, `${dep}:bootstrap-kit`)?.status).toBe("failed")
    // a stored group row never keeps a status of its own
    expect(nodeOf(snapshot, `${dep}:apps`)?.status).toBe("pending")
    expect(nodeOf(snapshot, `${dep}:provisioner`)?.status).toBe("pending")
  })

  it("decides group-ness by type, so a leaf named like a bootstrap step still shows its own status", () => {
    const leaf = Job.stepJob({ deploymentId: dep, region: fsn1, step: { name: "cluster-bootstrap", dependsOn: [] }, status: "succeeded" })
    const snapshot = compose([leaf])
    expect(nodeOf(snapshot, `${dep}:cluster-bootstrap`)?.status).toBe("succeeded")
    expect(nodeOf(snapshot, `${dep}:provisioner`)?.status).toBe("succeeded")
  })

  it("reports the flow running until every leaf is terminal, then failed or succeeded with its times", () => {
    const at = 1_700_000_000_000
    const running = compose([
      install(fsn1, "bp-cilium", [], "succeeded", { startedAt: at + 1, finishedAt: at + 9 }),
      install(fsn1, "bp-flux", [], "running", { startedAt: at })
    ])
    expect(running.flow).toMatchObject({ status: "running", startedAt: at })
    expect(running.flow.endedAt).toBeUndefined()
    const failed = compose([
      install(fsn1, "bp-cilium", [], "succeeded", { startedAt: at + 1, finishedAt: at + 9 }),
      install(fsn1, "bp-flux", [], "failed", { startedAt: at, finishedAt: at + 50 })
    ])
    expect(failed.flow).toMatchObject({ status: "failed", startedAt: at, endedAt: at + 50 })
    const done = compose([install(fsn1, "bp-cilium", [], "succeeded", { startedAt: at, finishedAt: at + 9 })])
    expect(done.flow).toMatchObject({ status: "succeeded", endedAt: at + 9 })
    const between = compose([install(fsn1, "bp-cilium", [], "succeeded", { startedAt: at, finishedAt: at + 9 })], ["fsn1"], {
      inFlight: true
    })
    expect(between.flow.status).toBe("running")
  })

  it("shows timestamps by status: none while queued, only the start while running", () => {
    const queued: Job.Job = { ...install(fsn1, "bp-cilium"), startedAt: 5 }
    const running: Job.Job = { ...install(fsn1, "bp-flux", [], "running"), startedAt: 5, finishedAt: 9 }
    const snapshot = compose([queued, running])
    expect(nodeOf(snapshot, `${dep}:install-cilium`)?.startedAt).toBeUndefined()
    expect(nodeOf(snapshot, `${dep}:install-flux`)).toMatchObject({ startedAt: 5 })
    expect(nodeOf(snapshot, `${dep}:install-flux`)?.endedAt).toBeUndefined()
  })

  it("says why a job failed by cascade", () => {
    const jobs = Job.cascadeFailures([install(fsn1, "bp-cilium", [], "failed"), install(fsn1, "bp-flux", ["bp-cilium"])])
    expect(nodeOf(compose(jobs), `${dep}:install-flux`)).toMatchObject({
      status: "failed",
      meta: { reason: "dependency install-cilium failed" }
    })
  })

  it("keeps one node per job name, the last row winning, and lets phase rows only lend their label", () => {
    const first = install(fsn1, "bp-cilium")
    const later: Job.Job = { ...first, status: "running", startedAt: 4 }
    const phaseRow: Job.Job = { ...Job.phaseGroupJob(dep, "handover", "Hand over"), status: "failed" }
    const snapshot = compose([first, install(fsn1, "bp-flux"), phaseRow, later])
    expect(snapshot.nodes.filter((node) => node.id === `${dep}:install-cilium`)).toEqual([
      expect.objectContaining({ status: "running", startedAt: 4 })
    ])
    expect(nodeOf(snapshot, `${dep}:handover`)).toMatchObject({ label: "Hand over", status: "pending" })
    expect(JSON.stringify(compose([later, install(fsn1, "bp-flux"), phaseRow]))).toBe(JSON.stringify(snapshot))
  })

  it("draws edges between deployment-wide steps, which sit directly in their phase group", () => {
    const step = (jobName: string, dependsOn: ReadonlyArray<string>): Job.Job => ({
      id: Job.jobId(dep, jobName),
      deploymentId: dep,
      jobName,
      type: "install",
      region: "",
      parentId: Job.jobId(dep, "handover"),
      dependsOn,
      status: "pending",
      durationMs: 0
    })
    const snapshot = compose([step("dns-publish", []), step("handover-owner", ["dns-publish"])])
    expect(parentOf(snapshot, `${dep}:dns-publish`)).toBe(`${dep}:handover`)
    expect(nodeOf(snapshot, `${dep}:dns-publish`)).toMatchObject({ family: "handover" })
    expect(nodeOf(snapshot, `${dep}:dns-publish`)?.region).toBeUndefined()
    expect(relsOf(snapshot, "finish-to-start").slice(4)).toEqual([
      { fromId: `${dep}:dns-publish`, toId: `${dep}:handover-owner`, type: "finish-to-start" }
    ])
  })

  it("treats names like `constructor` as plain names", () => {
    const odd: Job.Job = {
      ...install(fsn1, "bp-x"),
      id: `${dep}:hel1-1:constructor`,
      jobName: "hel1-1:constructor",
      type: "group",
      parentId: "toString"
    }
    const child: Job.Job = {
      ...install(fsn1, "bp-x"),
      id: `${dep}:leaf`,
      jobName: "leaf",
      parentId: "hel1-1:constructor",
      status: "running"
    }
    const snapshot = compose([odd, child])
    expect(parentOf(snapshot, `${dep}:hel1-1:constructor`)).toBe(`${dep}:fsn1:apps`)
    expect(parentOf(snapshot, `${dep}:leaf`)).toBe(`${dep}:hel1-1:constructor`)
    expect(checkStructure(snapshot, dep).problems).toEqual([])
  })

  it("keeps a secondary's chart named like a phase as an install leaf", () => {
    const snapshot = compose([install(hel1, "bp-apps"), install(hel1, "bp-cutover")])
    expect(nodeOf(snapshot, `${dep}:install-hel1-1:apps`)).toMatchObject({ family: "install", status: "pending" })
    expect(parentOf(snapshot, `${dep}:install-hel1-1:apps`)).toBe(`${dep}:hel1-1:bootstrap-kit`)
    expect(parentOf(snapshot, `${dep}:install-hel1-1:cutover`)).toBe(`${dep}:hel1-1:bootstrap-kit`)
  })

  it("ignores jobs of another deployment", () => {
    const foreign: Job.Job = { ...install(fsn1, "bp-cilium"), deploymentId: "ffffffffffffffff", id: "ffffffffffffffff:install-cilium" }
    expect(compose([foreign]).nodes).toHaveLength(5)
  })

  it("places stored groups and their children under the phase they name, and unknown parents under apps", () => {
    const group: Job.Job = {
      ...Job.phaseGroupJob(dep, "handover"),
      id: `${dep}:dns`,
      jobName: "dns",
      displayName: "DNS",
      parentId: `${dep}:handover`
    }
    const child: Job.Job = {
      ...install(fsn1, "bp-x"),
      id: `${dep}:dns-fsn1`,
      jobName: "dns-fsn1",
      parentId: `${dep}:dns`,
      status: "running",
      startedAt: 3
    }
    const orphan: Job.Job = { ...child, id: `${dep}:orphan`, jobName: "orphan", parentId: `${dep}:missing` }
    const snapshot = compose([group, child, orphan])
    expect(parentOf(snapshot, `${dep}:dns`)).toBe(`${dep}:handover`)
    expect(parentOf(snapshot, `${dep}:dns-fsn1`)).toBe(`${dep}:dns`)
    expect(nodeOf(snapshot, `${dep}:dns`)).toMatchObject({ status: "running", family: "group" })
    expect(nodeOf(snapshot, `${dep}:dns-fsn1`)?.family).toBe("handover")
    expect(parentOf(snapshot, `${dep}:orphan`)).toBe(`${dep}:fsn1:apps`)
  })
})

describe("FlowGraph.compose: the steps after Phase 0", () => {
  const lifecycle = (step: Lifecycle.Step, region: Job.RegionRef, status: Job.JobStatus = "pending") => ({
    ...Lifecycle.job({ deploymentId: dep, region, step }),
    status,
    ...(status === "pending" ? {} : { startedAt: 10 }),
    ...(Job.isTerminal(status) ? { finishedAt: 20 } : {})
  })

  it("puts each in its region's group of the phase that names it, with one edge from the group it waits for", () => {
    const snapshot = compose([
      install(fsn1, "bp-cilium", [], "succeeded", { startedAt: 1, finishedAt: 2 }),
      install(hel1, "bp-cilium", [], "running", { startedAt: 1 }),
      Job.stepJob({ deploymentId: dep, region: fsn1, step: { name: "network", dependsOn: [] }, status: "succeeded" }),
      lifecycle("cutover-dns", fsn1, "succeeded"),
      lifecycle("cutover-mesh", fsn1, "running"),
      lifecycle("cutover-mesh", hel1),
      lifecycle("handover-token", fsn1, "succeeded"),
      lifecycle("handover-access", hel1, "failed")
    ])
    expect(parentOf(snapshot, `${dep}:cutover-dns`)).toBe(`${dep}:fsn1:cutover`)
    expect(parentOf(snapshot, `${dep}:hel1-1:cutover-mesh`)).toBe(`${dep}:hel1-1:cutover`)
    expect(parentOf(snapshot, `${dep}:handover-token`)).toBe(`${dep}:fsn1:handover`)
    expect(parentOf(snapshot, `${dep}:hel1-1:handover-access`)).toBe(`${dep}:hel1-1:handover`)
    expect(nodeOf(snapshot, `${dep}:cutover-mesh`)).toMatchObject({
      family: "cutover",
      region: "fsn1",
      label: "ClusterMesh",
      status: "running"
    })
    expect(nodeOf(snapshot, `${dep}:handover-token`)).toMatchObject({ family: "handover", region: "fsn1" })
    const edges = relsOf(snapshot, "finish-to-start")
      .slice(4)
      .map((rel) => `${rel.fromId.slice(dep.length + 1)} > ${rel.toId.slice(dep.length + 1)}`)
    expect(edges).toEqual([
      "fsn1:provisioner > cutover-dns",
      "fsn1:bootstrap-kit > cutover-mesh",
      "hel1-1:bootstrap-kit > hel1-1:cutover-mesh",
      "fsn1:bootstrap-kit > handover-token"
    ])
    // hel1-1 has no Phase-0 jobs here: its access waits on a group that does not exist, so no edge is drawn (and it is counted)
    expect(FlowGraph.metaOf(snapshot).omittedDependencies).toBe(1)
    expect(checkStructure(snapshot, dep).problems).toEqual([])
    expect(nodeOf(snapshot, `${dep}:cutover`)?.status).toBe("running")
    expect(nodeOf(snapshot, `${dep}:handover`)?.status).toBe("failed")
  })

  it("marks a group without children empty, and only such a group", () => {
    const snapshot = compose([lifecycle("cutover-dns", fsn1, "succeeded")])
    expect(nodeOf(snapshot, `${dep}:apps`)).toMatchObject({ status: "pending", meta: { empty: true } })
    expect(nodeOf(snapshot, `${dep}:handover`)).toMatchObject({ status: "pending", meta: { empty: true } })
    expect(nodeOf(snapshot, `${dep}:cutover`)).toMatchObject({ status: "succeeded" })
    expect(nodeOf(snapshot, `${dep}:cutover`)?.meta).toBeUndefined()
    expect(nodeOf(snapshot, `${dep}:fsn1:cutover`)?.meta).toBeUndefined()
  })

  it("never draws an edge from a group that contains the job, nor from another region's group", () => {
    const own: Job.Job = { ...lifecycle("cutover-mesh", hel1), dependsOn: ["hel1-1:cutover"] }
    const foreign: Job.Job = { ...lifecycle("handover-access", hel1), dependsOn: ["fsn1:bootstrap-kit"] }
    const snapshot = compose([install(fsn1, "bp-cilium"), install(hel1, "bp-cilium"), own, foreign])
    // `fsn1:bootstrap-kit` in a job of hel1-1 reads as hel1-1's own bootstrap kit: a dependency never crosses regions
    expect(Job.canonicalDependsOn(dep, foreign.jobName, foreign.dependsOn)).toEqual(["hel1-1:bootstrap-kit"])
    expect(relsOf(snapshot, "finish-to-start").slice(4)).toEqual([
      { fromId: `${dep}:hel1-1:bootstrap-kit`, toId: `${dep}:hel1-1:handover-access`, type: "finish-to-start" }
    ])
    expect(checkStructure(snapshot, dep).problems).toEqual([])
  })

  it("a region's lifecycle job fails by cascade when its region's bootstrap kit has a failed job", () => {
    const jobs = Job.cascadeFailures([
      install(hel1, "bp-cilium", [], "failed"),
      install(fsn1, "bp-cilium", [], "succeeded"),
      lifecycle("cutover-mesh", fsn1),
      lifecycle("cutover-mesh", hel1),
      lifecycle("handover-access", hel1)
    ])
    expect(jobs.map((job) => [job.jobName, job.status, job.reason])).toEqual([
      ["install-hel1-1:cilium", "failed", undefined],
      ["install-cilium", "succeeded", undefined],
      ["cutover-mesh", "pending", undefined],
      ["hel1-1:cutover-mesh", "failed", "dependency hel1-1:bootstrap-kit failed"],
      ["hel1-1:handover-access", "pending", undefined]
    ])
    const snapshot = compose(jobs)
    expect(nodeOf(snapshot, `${dep}:hel1-1:cutover-mesh`)?.meta).toEqual({ reason: "dependency hel1-1:bootstrap-kit failed" })
  })
})

describe("FlowGraph.diff and apply", () => {
  const full = syntheticDeployment(3, 45)

  it("sends one small upsert when one job changes state", () => {
    const base = full.jobs.map((job) => (job.jobName.startsWith("install-") ? { ...job, status: "running" as const, startedAt: 1 } : job))
    const before = FlowGraph.compose({ deploymentId: full.deploymentId, regions: full.regionKeys, jobs: base })
    const changed = base.map((job) => (job.jobName === "install-gitea" ? { ...job, status: "succeeded" as const, finishedAt: 99 } : job))
    const after = FlowGraph.compose({ deploymentId: full.deploymentId, regions: full.regionKeys, jobs: changed })
    const messages = FlowGraph.diff(before, after)
    expect(messages).toEqual([{ type: "upsert-nodes", nodes: [nodeOf(after, `${full.deploymentId}:install-gitea`)] }])
    expect(JSON.stringify(messages).length).toBeLessThanOrEqual(1024)
    expect(FlowGraph.applyAll(before, messages)).toEqual(after)
    expect(FlowGraph.diff(after, after)).toEqual([])
  })

  it("prunes the relationships of deleted nodes in the reducer", () => {
    const before = compose([install(fsn1, "bp-cilium"), install(fsn1, "bp-flux", ["bp-cilium"])])
    const after = FlowGraph.apply(before, { type: "delete-nodes", ids: [`${dep}:install-cilium`] })
    expect(after.relationships.some((rel) => rel.fromId.endsWith("install-cilium") || rel.toId.endsWith("install-cilium"))).toBe(false)
    expect(after.nodes.some((node) => node.id.endsWith("install-cilium"))).toBe(false)
  })

  it("keeps positions on upsert and appends what is new", () => {
    const before = compose([install(fsn1, "bp-cilium")])
    const node = { ...nodeOf(before, `${dep}:install-cilium`)!, status: "running" }
    const extra = { id: `${dep}:x`, flowId: dep, label: "x", status: "pending" }
    const after = FlowGraph.apply(before, { type: "upsert-nodes", nodes: [extra, node] })
    expect(after.nodes.map((n) => n.id)).toEqual([...before.nodes.map((n) => n.id), extra.id])
    expect(nodeOf(after, node.id)?.status).toBe("running")
  })
})

describe("FlowGraph properties (random deployments of 1–8 regions from the bootstrap kit)", () => {
  const runs = { fastCheck: { numRuns: 60 } }

  it.prop(
    "relationships point at nodes, contains is a tree under the phases, edges stay in region, groups roll up, empty groups say so",
    [modelArbitrary, fc.integer()],
    ([model, order]) => {
      const generated = generate(model)
      const snapshot = FlowGraph.compose({
        deploymentId: generated.deploymentId,
        regions: generated.regionKeys,
        jobs: arrive(generated, order)
      })
      const { parent, groups, problems } = checkStructure(snapshot, generated.deploymentId)
      expect(problems).toEqual([])
      expect(checkRollUp(snapshot, parent, groups)).toEqual([])
      expect(checkGroups(snapshot, parent, groups, model.finished)).toEqual([])
      // every job is a node (region-group rows are reserved; none generated here)
      expect(snapshot.nodes.length).toBeGreaterThanOrEqual(generated.updates.length)
    },
    runs
  )

  it.prop(
    "compose is deterministic to the byte whatever the order of the jobs",
    [modelArbitrary, fc.integer(), fc.integer()],
    ([model, order, permutation]) => {
      const generated = generate(model)
      const jobs = arrive(generated, order)
      const input = { deploymentId: generated.deploymentId, regions: generated.regionKeys }
      const a = JSON.stringify(FlowGraph.compose({ ...input, jobs }))
      const b = JSON.stringify(FlowGraph.compose({ ...input, jobs: shuffle(jobs, permutation) }))
      expect(b).toBe(a)
    },
    runs
  )

  it.prop(
    "jobs merged in any arrival order give the same result",
    [modelArbitrary, fc.integer(), fc.integer()],
    ([model, first, second]) => {
      const generated = generate(model)
      const input = { deploymentId: generated.deploymentId, regions: generated.regionKeys }
      const a = arrive(generated, first)
      const b = arrive(generated, second)
      const sorted = (jobs: ReadonlyArray<Job.Job>) => [...jobs].sort((x, y) => (x.id < y.id ? -1 : 1))
      expect(sorted(b)).toEqual(sorted(a))
      expect(JSON.stringify(FlowGraph.compose({ ...input, jobs: b }))).toBe(JSON.stringify(FlowGraph.compose({ ...input, jobs: a })))
      // the seeded dependencies survived every state event that carried none
      for (const job of a) {
        const seeded = generated.updates.find((versions) => versions[0]!.id === job.id)![0]!
        expect(job.dependsOn).toEqual(seeded.dependsOn)
      }
    },
    runs
  )

  it.prop(
    "apply(a, diff(a, b)) equals b",
    [modelArbitrary, fc.integer(), fc.integer(), fc.integer({ min: 0, max: 3 })],
    ([model, order, change, kind]) => {
      const generated = generate(model)
      const jobs = arrive(generated, order)
      const input = { deploymentId: generated.deploymentId, regions: generated.regionKeys }
      const next = random(change)
      // b: some jobs progress, some are removed, and some of another generation appear
      const progressed = jobs.flatMap((job): ReadonlyArray<Job.Job> => {
        const roll = next()
        if (kind >= 2 && roll < 0.05) return []
        if (roll < 0.3)
          return [
            Job.merge(job, {
              ...job,
              status: (["running", "succeeded", "failed"] as const)[Math.floor(next() * 3)]!,
              startedAt: job.startedAt ?? 7
            })
          ]
        return [job]
      })
      const others = kind === 3 ? arrive(generate({ ...model, seed: model.seed ^ 0x5555 }), order).filter(() => next() < 0.1) : []
      const a = FlowGraph.compose({ ...input, jobs })
      const b = FlowGraph.compose({
        ...input,
        jobs: Job.mergeAll(
          progressed,
          others.map((job) => ({ ...job, deploymentId: generated.deploymentId, id: Job.jobId(generated.deploymentId, job.jobName) }))
        )
      })
      const messages = FlowGraph.diff(a, b)
      for (const message of messages) expect(FlowMessage.decode(message)._tag).toBe("Right")
      const applied = FlowGraph.applyAll(a, messages)
      expect(byKey(applied)).toEqual(byKey(b))
      // same keys in the same order: equal to the byte (a consumer's layout sees b's order)
      if (sameKeys(a, b)) expect(JSON.stringify(applied)).toBe(JSON.stringify(b))
      expect(FlowGraph.diff(b, applied)).toEqual([])
    },
    runs
  )

  // Arbitrary rows, not only what the orchestrator writes: odd names, reserved names, parents that
  // are missing, cyclic or leaves, regions no one declared. The graph must stay well formed.
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
    "constructor",
    ""
  )
  const name = fc.array(fragment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join(":"))
  const row = fc.record({
    jobName: name,
    type: fc.constantFrom<Job.JobType>("install", "install", "group"),
    region: fc.constantFrom("", "fsn1", "hel1-1", "nbg1-7"),
    parent: fc.oneof(name, fc.constant("")),
    dependsOn: fc.array(name, { maxLength: 3 }),
    status: fc.constantFrom<Job.JobStatus>("pending", "running", "succeeded", "failed"),
    startedAt: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined })
  })
  it.prop(
    "stays a well-formed, deterministic graph for arbitrary rows",
    [fc.uniqueArray(row, { selector: (r) => r.jobName, maxLength: 30 }), fc.integer()],
    ([rows, permutation]) => {
      const jobs = rows.map((r): Job.Job => ({
        id: Job.jobId(dep, r.jobName),
        deploymentId: dep,
        jobName: r.jobName,
        type: r.type,
        region: r.region,
        parentId: r.parent === "" ? "" : Job.jobId(dep, r.parent),
        dependsOn: r.dependsOn,
        status: r.status,
        ...(r.startedAt === undefined ? {} : { startedAt: r.startedAt, finishedAt: r.startedAt + 5 }),
        durationMs: 0
      }))
      const snapshot = compose(jobs)
      const { problems, parent, groups } = checkStructure(snapshot, dep)
      expect(problems).toEqual([])
      expect(checkRollUp(snapshot, parent, groups)).toEqual([])
      expect(checkGroups(snapshot, parent, groups, false)).toEqual([])
      expect(JSON.stringify(compose(shuffle(jobs, permutation)))).toBe(JSON.stringify(snapshot))
    },
    { fastCheck: { numRuns: 300 } }
  )
})
