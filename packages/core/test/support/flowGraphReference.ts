/**
 * The flow graph's rules (SPEC 2.5) written plainly: objects, recursion and sorts with comparators,
 * no parallel arrays and no shortcuts. `FlowGraph.compose` is written for speed; the property tests
 * hold it to this one, byte for byte.
 */
import type { FlowNode, Relationship, Snapshot } from "../../src/FlowMessage.js"
import type { ComposeInput } from "../../src/FlowGraph.js"
import * as Job from "../../src/Job.js"

type Phase = Job.Phase

interface Entry {
  readonly id: string
  readonly name: string
  readonly label: string
  /** A phase group, a region group or a stored job of type `group`. */
  readonly group: boolean
  readonly kind: "phase" | "region" | "job"
  family: string
  readonly region: string
  readonly job: Job.Job | undefined
  phase: Phase
  parent: Entry | undefined
  children: Array<Entry>
}

const familyOfPhase: Record<Phase, string> = {
  provisioner: "provision",
  "bootstrap-kit": "install",
  cutover: "cutover",
  handover: "handover",
  apps: "install"
}

const isPhase = (name: string): name is Phase => (Job.phases as ReadonlyArray<string>).includes(name)

const labelOr = (job: Job.Job | undefined, fallback: string): string =>
  job?.displayName !== undefined && job.displayName.trim() !== "" ? job.displayName : fallback

/** `hel1-1:bootstrap-kit` → region hel1-1, phase bootstrap-kit; never an install job's name. */
const regionGroupOf = (name: string): { readonly regionKey: string; readonly phase: Phase } | undefined => {
  const parts = name.split(":")
  if (parts.length !== 2 || parts[0] === "" || Job.isInstallJobName(name) || !isPhase(parts[1]!)) return undefined
  return { regionKey: parts[0]!, phase: parts[1] }
}

/** `install-hel1-1:cilium` → `cilium`. */
const chartOf = (installName: string): string => {
  const rest = installName.slice("install-".length)
  return rest.includes(":") ? rest.slice(rest.indexOf(":") + 1) : rest
}

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

export const compose = (input: ComposeInput): Snapshot => {
  const { deploymentId, regions } = input
  const phaseOfChart = input.phaseOfChart ?? Job.defaultPhaseOfChart
  const prefix = `${deploymentId}:`
  const rows = input.jobs.filter((job) => job.deploymentId === deploymentId)

  // The last row of a name counts; a name keeps the place of its first row (cycles are broken in that order).
  const lastRow = new Map<string, Job.Job>()
  for (const job of rows) lastRow.set(job.jobName, job)
  const rowOfPhase = (phase: Phase) => lastRow.get(phase)
  const rowOfRegionGroup = (name: string) => lastRow.get(name)

  const phaseGroups = new Map<Phase, Entry>(
    Job.phases.map((phase) => [
      phase,
      {
        id: prefix + phase,
        name: phase,
        label: labelOr(rowOfPhase(phase), Job.phaseLabel[phase]),
        group: true,
        kind: "phase",
        family: "group",
        region: "",
        job: undefined,
        phase,
        parent: undefined,
        children: []
      }
    ])
  )

  const jobs = new Map<string, Entry>()
  for (const [name, job] of lastRow) {
    if (isPhase(name) || regionGroupOf(name) !== undefined) continue
    const group = job.type === "group"
    const install = !group && Job.isInstallJobName(name)
    jobs.set(name, {
      id: job.id,
      name,
      label: labelOr(job, name),
      group,
      kind: "job",
      family: group ? "group" : install ? "install" : "",
      region: job.region !== "" ? job.region : install ? (Job.regionPrefixOf(name) ?? regions[0] ?? "") : "",
      job,
      phase: "apps",
      parent: undefined,
      children: []
    })
  }

  const regionGroups = new Map<string, Entry>()
  const regionGroup = (regionKey: string, phase: Phase): Entry => {
    const name = Job.regionGroupJobName(regionKey, phase)
    let entry = regionGroups.get(name)
    if (entry === undefined) {
      entry = {
        id: prefix + name,
        name,
        label: labelOr(rowOfRegionGroup(name), `${Job.phaseLabel[phase]} (${regionKey})`),
        group: true,
        kind: "region",
        family: "group",
        region: regionKey,
        job: undefined,
        phase,
        parent: undefined,
        children: []
      }
      regionGroups.set(name, entry)
      attach(entry, phaseGroups.get(phase)!)
    }
    return entry
  }
  const attach = (child: Entry, parent: Entry) => {
    child.parent = parent
    parent.children.push(child)
  }
  const containerIn = (region: string, phase: Phase): Entry => (region === "" ? phaseGroups.get(phase)! : regionGroup(region, phase))

  // Placement: an install by its chart's phase; anything else under its parent (a phase, a region
  // group, or a stored group that is not an ancestor being placed); otherwise under `apps`.
  const placing = new Set<Entry>()
  const placed = new Set<Entry>()
  const place = (entry: Entry): void => {
    if (placed.has(entry)) return
    placing.add(entry)
    if (entry.family === "install") {
      const phase = phaseOfChart(chartOf(entry.name))
      entry.phase = isPhase(phase) ? phase : "apps"
      attach(entry, containerIn(entry.region, entry.phase))
    } else {
      const parentId = entry.job!.parentId
      const parentName = parentId.startsWith(prefix) ? parentId.slice(prefix.length) : parentId
      const asRegionGroup = regionGroupOf(parentName)
      const asJob = parentName === "" ? undefined : jobs.get(parentName)
      if (isPhase(parentName)) {
        entry.phase = parentName
        attach(entry, containerIn(entry.region, parentName))
      } else if (asRegionGroup !== undefined) {
        entry.phase = asRegionGroup.phase
        attach(entry, regionGroup(asRegionGroup.regionKey, asRegionGroup.phase))
      } else if (asJob !== undefined && asJob.group && !placing.has(asJob)) {
        place(asJob)
        entry.phase = asJob.phase
        attach(entry, asJob)
      } else {
        entry.phase = "apps"
        attach(entry, containerIn(entry.region, "apps"))
      }
      if (entry.family === "") entry.family = familyOfPhase[entry.phase]
    }
    placing.delete(entry)
    placed.add(entry)
  }
  for (const entry of jobs.values()) place(entry)

  // Order: phase; then region (regions[] first, then other keys by name; region-less first); the
  // region group before its jobs; jobs by name.
  const regionRank = new Map<string, number>()
  regions.forEach((key) => regionRank.has(key) || regionRank.set(key, regionRank.size + 1))
  const others = [...regionGroups.values()].map((entry) => entry.region).filter((key) => !regionRank.has(key))
  ;[...new Set(others)].sort(byCodeUnits).forEach((key) => regionRank.set(key, regionRank.size + 1))
  const topBelowPhase = (entry: Entry): Entry =>
    entry.parent === undefined || entry.parent.kind === "phase" ? entry : topBelowPhase(entry.parent)
  const rankOf = (entry: Entry): number => {
    if (entry.kind === "phase") return 0
    if (entry.kind === "region") return regionRank.get(entry.region)!
    const top = topBelowPhase(entry)
    return top.kind === "region" ? regionRank.get(top.region)! : 0
  }
  const all = [...phaseGroups.values(), ...jobs.values(), ...regionGroups.values()]
  const sortKey = (entry: Entry) => [Job.phases.indexOf(entry.phase), rankOf(entry), entry.kind === "job" ? 1 : 0] as const
  const ordered = all.slice().sort((a, b) => {
    const [x, y] = [sortKey(a), sortKey(b)]
    for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!
    return byCodeUnits(a.name, b.name)
  })

  // Roll-up over the tree leaves below each entry: a job leaf counts with its status, an empty group as pending.
  const leavesOf = (entry: Entry): Array<Entry> => (entry.children.length === 0 ? [entry] : entry.children.flatMap(leavesOf))
  const statusOfLeaf = (leaf: Entry): Job.JobStatus => (leaf.group ? "pending" : leaf.job!.status)
  const startedOf = (leaf: Entry): number | undefined => (leaf.group || leaf.job!.status === "pending" ? undefined : leaf.job!.startedAt)
  const endedOf = (leaf: Entry): number | undefined =>
    leaf.group || (leaf.job!.status !== "succeeded" && leaf.job!.status !== "failed") ? undefined : leaf.job!.finishedAt
  const min = (values: ReadonlyArray<number | undefined>) => {
    const defined = values.filter((value): value is number => value !== undefined)
    return defined.length === 0 ? undefined : Math.min(...defined)
  }
  const max = (values: ReadonlyArray<number | undefined>) => {
    const defined = values.filter((value): value is number => value !== undefined)
    return defined.length === 0 ? undefined : Math.max(...defined)
  }

  const nodeOf = (entry: Entry): FlowNode => {
    const extras = (node: Record<string, unknown>) => {
      if (entry.family !== "") node["family"] = entry.family
      if (entry.region !== "") node["region"] = entry.region
      return node
    }
    if (entry.group) {
      const leaves = entry.kind === "phase" && entry.children.length === 0 ? [] : leavesOf(entry)
      const statuses = leaves.map(statusOfLeaf)
      const status: Job.JobStatus =
        leaves.length === 0
          ? "pending"
          : statuses.includes("failed")
            ? "failed"
            : statuses.every((s) => s === "succeeded")
              ? "succeeded"
              : statuses.every((s) => s === "pending")
                ? "pending"
                : "running"
      const node = extras({ id: entry.id, flowId: deploymentId, label: entry.label, status })
      const started = min(leaves.map(startedOf))
      const ended = max(leaves.map(endedOf))
      if (started !== undefined) node["startedAt"] = started
      if (leaves.length > 0 && statuses.every((s) => s === "succeeded" || s === "failed") && ended !== undefined) node["endedAt"] = ended
      if (entry.children.length === 0) node["meta"] = { empty: true }
      return node as unknown as FlowNode
    }
    const job = entry.job!
    const node = extras({ id: entry.id, flowId: deploymentId, label: entry.label, status: job.status })
    if (job.status !== "pending" && job.startedAt !== undefined) node["startedAt"] = job.startedAt
    if ((job.status === "succeeded" || job.status === "failed") && job.finishedAt !== undefined) node["endedAt"] = job.finishedAt
    if (job.reason !== undefined && job.reason !== "") node["meta"] = { reason: job.reason }
    return node as unknown as FlowNode
  }

  // Relationships: the phase chain, `contains` in node order, then each job's in-region dependencies
  // (a phase names the job's own region's group of it), sources in node order.
  const relationships: Array<Relationship> = []
  Job.phases
    .slice(1)
    .forEach((phase, index) =>
      relationships.push({ fromId: phaseGroups.get(Job.phases[index]!)!.id, toId: phaseGroups.get(phase)!.id, type: "finish-to-start" })
    )
  for (const entry of ordered)
    if (entry.parent !== undefined) relationships.push({ fromId: entry.id, toId: entry.parent.id, type: "contains" })
  const isAncestor = (candidate: Entry, entry: Entry): boolean =>
    entry.parent !== undefined && (entry.parent === candidate || isAncestor(candidate, entry.parent))
  let omittedDependencies = 0
  let crossRegionDependencies = 0
  for (const entry of ordered) {
    if (entry.kind !== "job" || entry.group || entry.job!.dependsOn.length === 0) continue
    const sources: Array<Entry> = []
    for (const dependency of Job.canonicalDependsOn(deploymentId, entry.name, entry.job!.dependsOn)) {
      const asJob = jobs.get(dependency)
      let source: Entry | undefined
      if (asJob === undefined) {
        const group = isPhase(dependency) ? { regionKey: undefined, phase: dependency } : regionGroupOf(dependency)
        if (group === undefined) {
          omittedDependencies++
          continue
        }
        if (group.regionKey !== undefined && group.regionKey !== entry.region) {
          crossRegionDependencies++
          continue
        }
        source = entry.region === "" ? phaseGroups.get(group.phase) : regionGroups.get(Job.regionGroupJobName(entry.region, group.phase))
        if (source === undefined) {
          omittedDependencies++
          continue
        }
        if (isAncestor(source, entry)) continue
      } else {
        if (asJob.group || asJob === entry) continue
        if (asJob.region !== entry.region) {
          crossRegionDependencies++
          continue
        }
        source = asJob
      }
      if (!sources.includes(source)) sources.push(source)
    }
    sources.sort((a, b) => ordered.indexOf(a) - ordered.indexOf(b))
    for (const source of sources) relationships.push({ fromId: source.id, toId: entry.id, type: "finish-to-start" })
  }

  // The flow, decided by the job leaves.
  const jobLeaves = [...jobs.values()].filter((entry) => !entry.group)
  const done = (entry: Entry) => entry.job!.status === "succeeded" || entry.job!.status === "failed"
  const status =
    jobLeaves.length === 0
      ? "pending"
      : !jobLeaves.every(done) || input.inFlight === true
        ? "running"
        : jobLeaves.some((entry) => entry.job!.status === "failed")
          ? "failed"
          : "succeeded"
  const flow: Record<string, unknown> = { id: deploymentId, status, startedAt: min(jobLeaves.map(startedOf)) ?? 0 }
  const ended = max(jobLeaves.map(endedOf))
  if ((status === "failed" || status === "succeeded") && ended !== undefined) flow["endedAt"] = ended
  flow["meta"] = { omittedDependencies, crossRegionDependencies }

  return { type: "snapshot", flow: flow as unknown as Snapshot["flow"], nodes: ordered.map(nodeOf), relationships }
}
