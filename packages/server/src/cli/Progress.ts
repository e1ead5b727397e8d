/** What `sovereign deploy --follow` shows: per phase and region, done/total with a bar, running jobs and failures. Pure. */
import type { FlowMessage } from "@sovereign/core"

export interface RegionPhaseProgress {
  readonly phase: string
  readonly region: string
  readonly done: number
  readonly total: number
  readonly running: ReadonlyArray<string>
  readonly failed: ReadonlyArray<{ readonly label: string; readonly reason: string | undefined }>
}

const phaseOrder = ["provisioner", "bootstrap-kit", "cutover", "handover", "apps"]
const phaseTitle: Record<string, string> = {
  provisioner: "Phase 0  provision",
  "bootstrap-kit": "Phase 1  bootstrap kit",
  cutover: "Cutover",
  handover: "Handover",
  apps: "Apps"
}

/** Groups the leaves of a snapshot by their region group (`<dep>:<region>:<phase>`). */
export const progressOf = (snapshot: FlowMessage.Snapshot, regions: ReadonlyArray<string>): ReadonlyArray<RegionPhaseProgress> => {
  const parentOf = new Map<string, string>()
  const hasChildren = new Set<string>()
  for (const relationship of snapshot.relationships) {
    if (relationship.type !== "contains") continue
    parentOf.set(relationship.fromId, relationship.toId)
    hasChildren.add(relationship.toId)
  }
  const groups = new Map<string, { phase: string; region: string; leaves: Array<FlowMessage.FlowNode> }>()
  const prefix = `${snapshot.flow.id}:`
  for (const node of snapshot.nodes) {
    if (hasChildren.has(node.id) || node.family === "group") continue
    let group = parentOf.get(node.id)
    // Walk up to the region group: the first ancestor named <dep>:<region>:<phase>.
    while (group !== undefined) {
      const rest = group.startsWith(prefix) ? group.slice(prefix.length) : group
      const phase = phaseOrder.find((candidate) => rest.endsWith(`:${candidate}`))
      if (phase !== undefined && rest.length > phase.length + 1) {
        const region = rest.slice(0, rest.length - phase.length - 1)
        const entry = groups.get(group) ?? { phase, region, leaves: [] }
        entry.leaves.push(node)
        groups.set(group, entry)
        break
      }
      group = parentOf.get(group)
    }
  }
  return [...groups.values()]
    .map((group) => ({
      phase: group.phase,
      region: group.region,
      done: group.leaves.filter((leaf) => leaf.status === "succeeded").length,
      total: group.leaves.length,
      running: group.leaves.filter((leaf) => leaf.status === "running").map((leaf) => shortLabel(leaf.label)),
      failed: group.leaves
        .filter((leaf) => leaf.status === "failed")
        .map((leaf) => ({ label: shortLabel(leaf.label), reason: typeof leaf.meta?.reason === "string" ? leaf.meta.reason : undefined }))
    }))
    .sort(
      (a, b) =>
        phaseOrder.indexOf(a.phase) - phaseOrder.indexOf(b.phase) ||
        regionRank(regions, a.region) - regionRank(regions, b.region) ||
        a.region.localeCompare(b.region)
    )
}

/** `install-hel1-1:cilium` → `cilium`: the region is already on the line. */
const shortLabel = (label: string) => label.replace(/^install-/, "").replace(/^[a-z0-9-]+:/, "")

const regionRank = (regions: ReadonlyArray<string>, region: string) => {
  const index = regions.indexOf(region)
  return index < 0 ? regions.length : index
}

export interface Style {
  readonly red: (text: string) => string
  readonly green: (text: string) => string
  readonly yellow: (text: string) => string
  readonly dim: (text: string) => string
  readonly bold: (text: string) => string
}

export const plain: Style = { red: (t) => t, green: (t) => t, yellow: (t) => t, dim: (t) => t, bold: (t) => t }
export const ansi: Style = {
  red: (t) => `\x1b[31m${t}\x1b[39m`,
  green: (t) => `\x1b[32m${t}\x1b[39m`,
  yellow: (t) => `\x1b[33m${t}\x1b[39m`,
  dim: (t) => `\x1b[2m${t}\x1b[22m`,
  bold: (t) => `\x1b[1m${t}\x1b[22m`
}

export const bar = (done: number, total: number, width = 24): string => {
  const filled = total === 0 ? 0 : Math.round((done / total) * width)
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`
}

const truncate = (text: string, width: number) => (text.length <= width ? text : `${text.slice(0, width - 1)}…`)

export interface View {
  readonly id: string
  readonly fqdn: string
  readonly status: string
  readonly progress: ReadonlyArray<RegionPhaseProgress>
  /** Recent warnings and errors from the deployment events. */
  readonly problems: ReadonlyArray<{ readonly level: string; readonly message: string }>
  readonly handoverURL: string | undefined
  readonly error: string | undefined
}

/** The lines of the live view. */
export const render = (view: View, style: Style, width = 100): ReadonlyArray<string> => {
  const lines: Array<string> = []
  const statusText =
    view.status === "ready"
      ? style.green(view.status)
      : view.status === "failed" || view.status === "partial-failure"
        ? style.red(view.status)
        : style.yellow(view.status)
  lines.push(`${style.bold(view.fqdn)}  ${style.dim(view.id)}  ${statusText}`)
  let lastPhase = ""
  for (const entry of view.progress) {
    if (entry.phase !== lastPhase) {
      lines.push(style.bold(phaseTitle[entry.phase] ?? entry.phase))
      lastPhase = entry.phase
    }
    const counts = `${entry.done}/${entry.total}`.padStart(7)
    const state =
      entry.failed.length > 0
        ? style.red(` ${entry.failed.length} failed`)
        : entry.done === entry.total && entry.total > 0
          ? style.green(" done")
          : ""
    lines.push(`  ${entry.region.padEnd(10)} ${bar(entry.done, entry.total)} ${counts}${state}`)
    if (entry.running.length > 0) {
      lines.push(style.dim(`             running: ${truncate(entry.running.join(", "), width - 22)}`))
    }
    for (const failure of entry.failed) {
      lines.push(
        style.red(`             ✗ ${truncate(`${failure.label}${failure.reason === undefined ? "" : `: ${failure.reason}`}`, width - 15)}`)
      )
    }
  }
  for (const problem of view.problems.slice(-3)) {
    const text = truncate(problem.message, width - 4)
    lines.push(problem.level === "error" ? style.red(`  ✗ ${text}`) : style.yellow(`  ! ${text}`))
  }
  if (view.error !== undefined && (view.status === "failed" || view.status === "partial-failure"))
    lines.push(style.red(`Error: ${view.error}`))
  if (view.handoverURL !== undefined) lines.push(`${style.green("Ready.")} Hand over: ${view.handoverURL}`)
  return lines
}
