/**
 * The graph's layout, computed once per structural change (never per status change): one column per
 * phase (the five phase groups, left to right), one band per region (primary and secondaries alike,
 * plus a band for jobs of no region), and inside every group its children in layers by longest path
 * over the finish-to-start edges between them (an edge between descendants of two children orders
 * those children). A group that is folded is one box. Edges are drawn between what is visible: a
 * group→group edge is one edge between the two group boxes, never multiplied into leaf edges, and
 * an edge into or out of a folded group ends at the group's box (duplicates drawn once).
 *
 * Linear in nodes and edges (plus a sort per layer): no measurement of the DOM, fixed box sizes.
 */
import type { FlowModel } from "./model.js"

export const jobWidth = 188
export const jobHeight = 30
const foldedHeight = 40
const groupHeader = 26
const groupPad = 8
const layerGap = 34
const subColumnGap = 12
const maxRows = 6
const rowGap = 8
const columnGap = 56
const bandGap = 18
const phaseHeader = 40
const bandLabelWidth = 96

export interface Box {
  readonly id: string
  x: number
  y: number
  w: number
  h: number
  readonly kind: "job" | "group" | "phase"
  readonly folded: boolean
  /** Inside a folded group: in the DOM (with its status) but not drawn. */
  readonly hidden: boolean
}

export interface Edge {
  readonly from: string
  readonly to: string
  readonly d: string
}

export interface Band {
  readonly key: string
  readonly label: string
  readonly y: number
  readonly h: number
}

export interface Layout {
  readonly width: number
  readonly height: number
  readonly boxes: ReadonlyArray<Box>
  readonly edges: ReadonlyArray<Edge>
  readonly bands: ReadonlyArray<Band>
  /** The visible box a node is drawn as (itself, or its outermost folded ancestor). */
  readonly visibleOf: ReadonlyMap<string, string>
}

interface Size {
  w: number
  h: number
}

export const layout = (model: FlowModel, folded: (id: string) => boolean): Layout => {
  const { nodes, parent, children } = model
  const isGroup = (id: string) => model.isGroup(id)
  // Phase groups: the groups without a parent, in flow order; other parentless nodes go last.
  const phases: Array<string> = []
  const loose: Array<string> = []
  for (const [id, node] of nodes) {
    if (parent.has(id)) continue
    if (node.family === "group" || children.has(id)) phases.push(id)
    else loose.push(id)
  }

  // The scope (lowest common container) of every finish-to-start edge, with the two children of
  // that scope it orders: each group lays out its own children only.
  const ancestors = (id: string): Array<string> => {
    const chain = [id]
    for (let at = parent.get(id); at !== undefined && chain.length < 64; at = parent.get(at)) chain.push(at)
    return chain
  }
  const scopedEdges = new Map<string, Array<[string, string]>>()
  for (const [to, froms] of model.incoming) {
    const toChain = ancestors(to)
    const toIndex = new Map(toChain.map((id, index) => [id, index]))
    for (const from of froms) {
      const fromChain = ancestors(from)
      let i = 0
      for (; i < fromChain.length; i++) if (toIndex.has(fromChain[i]!)) break
      if (i === 0 || i >= fromChain.length) continue // one contains the other, or no common container
      const scope = fromChain[i]!
      const j = toIndex.get(scope)!
      if (j === 0) continue
      const a = fromChain[i - 1]!
      const b = toChain[j - 1]!
      if (a === b) continue
      let list = scopedEdges.get(scope)
      if (list === undefined) scopedEdges.set(scope, (list = []))
      list.push([a, b])
    }
  }

  const relative = new Map<string, { x: number; y: number }>()
  const sizes = new Map<string, Size>()

  /** Lays out `items` (children of `scope`) in layers; returns the size of the block. */
  const layered = (scope: string, items: ReadonlyArray<string>): Size => {
    if (items.length === 0) return { w: 0, h: 0 }
    const position = new Map<string, number>()
    items.forEach((id, index) => position.set(id, index))
    const preds: Array<Array<number>> = items.map(() => [])
    const succs: Array<Array<number>> = items.map(() => [])
    for (const [a, b] of scopedEdges.get(scope) ?? []) {
      const ia = position.get(a)
      const ib = position.get(b)
      if (ia === undefined || ib === undefined) continue
      preds[ib]!.push(ia)
      succs[ia]!.push(ib)
    }
    // Longest-path layering (Kahn); members of a cycle (a data error) keep the layer reached so far.
    const layer = new Int32Array(items.length)
    const missing = new Int32Array(items.length)
    for (let i = 0; i < items.length; i++) missing[i] = preds[i]!.length
    const queue: Array<number> = []
    for (let i = 0; i < items.length; i++) if (missing[i] === 0) queue.push(i)
    for (let head = 0; head < queue.length; head++) {
      const u = queue[head]!
      for (const v of succs[u]!) {
        if (layer[v]! < layer[u]! + 1) layer[v] = layer[u]! + 1
        if (--missing[v]! === 0) queue.push(v)
      }
    }
    let layerCount = 0
    for (let i = 0; i < items.length; i++) layerCount = Math.max(layerCount, layer[i]! + 1)
    const columns: Array<Array<number>> = Array.from({ length: layerCount }, () => [])
    for (let i = 0; i < items.length; i++) columns[layer[i]!]!.push(i)
    // Order within a layer by the mean row of the predecessors (one sweep): fewer crossings.
    const row = new Float64Array(items.length)
    let x = 0
    let height = 0
    for (const column of columns) {
      if (x > 0 || column !== columns[0]) {
        for (const i of column) {
          const p = preds[i]!
          let sum = 0
          for (const u of p) sum += row[u]!
          row[i] = p.length > 0 ? sum / p.length : i
        }
        column.sort((a, b) => row[a]! - row[b]! || a - b)
      }
      // A tall layer (many charts that wait for the same ones) wraps into sub-columns of at most
      // `maxRows`: the bands stay low, the order across layers stays left to right.
      for (let from = 0; from < column.length; from += maxRows) {
        let y = 0
        let width = 0
        column.slice(from, from + maxRows).forEach((i, index) => {
          const id = items[i]!
          const size = measure(id)
          relative.set(id, { x, y })
          row[i] = from + index
          y += size.h + rowGap
          width = Math.max(width, size.w)
        })
        height = Math.max(height, y - rowGap)
        x += width + (from + maxRows < column.length ? subColumnGap : layerGap)
      }
    }
    return { w: x - layerGap, h: height }
  }

  const measure = (id: string): Size => {
    const known = sizes.get(id)
    if (known !== undefined) return known
    let size: Size
    if (!isGroup(id)) size = { w: jobWidth, h: jobHeight }
    else if (folded(id)) size = { w: jobWidth, h: foldedHeight }
    else {
      const inner = layered(id, children.get(id) ?? [])
      size = { w: Math.max(jobWidth, inner.w) + 2 * groupPad, h: groupHeader + inner.h + groupPad + (inner.h > 0 ? 0 : 8) }
    }
    sizes.set(id, size)
    return size
  }

  // Bands: the region of each phase group's child (region groups carry `region`); "" for none.
  const bandOf = (id: string) => nodes.get(id)?.region ?? ""
  const bandKeys: Array<string> = []
  const seenBands = new Set<string>()
  for (const phase of phases) {
    for (const child of children.get(phase) ?? []) {
      const key = bandOf(child)
      if (!seenBands.has(key)) {
        seenBands.add(key)
        bandKeys.push(key)
      }
    }
  }
  // Jobs of no region first (they come before the regions in the flow), then regions in flow order.
  bandKeys.sort((a, b) => (a === "" ? -1 : b === "" ? 1 : 0))
  if (bandKeys.length === 0) bandKeys.push("")

  // Cells: per (phase, band) the phase group's children of that band, laid out in layers.
  const cellSizes = phases.map((phase) => {
    const byBand = new Map<string, Array<string>>()
    if (!folded(phase)) {
      for (const child of children.get(phase) ?? []) {
        const key = bandOf(child)
        let list = byBand.get(key)
        if (list === undefined) byBand.set(key, (list = []))
        list.push(child)
      }
    }
    return new Map(
      bandKeys.map((key) => {
        const items = byBand.get(key) ?? []
        // Each band of a phase is its own scope: orders only what is in that band.
        const size = layered(phase, items)
        return [key, { items, size }] as const
      })
    )
  })
  const columnWidths = phases.map((_, p) => {
    let width = jobWidth + 2 * groupPad
    for (const key of bandKeys) width = Math.max(width, cellSizes[p]!.get(key)!.size.w + 2 * groupPad)
    return width
  })
  const bandHeights = bandKeys.map((key) => {
    let height = 0
    phases.forEach((_, p) => (height = Math.max(height, cellSizes[p]!.get(key)!.size.h)))
    return Math.max(height, key === "" ? 0 : jobHeight)
  })

  const boxes: Array<Box> = []
  const absolute = new Map<string, Box>()
  const visibleOf = new Map<string, string>()
  const place = (id: string, x: number, y: number, hidden: boolean, visible: string | undefined) => {
    const size = measure(id)
    const group = isGroup(id)
    const isFolded = group && folded(id)
    const box: Box = { id, x, y, w: size.w, h: size.h, kind: group ? "group" : "job", folded: isFolded, hidden }
    boxes.push(box)
    absolute.set(id, box)
    visibleOf.set(id, visible ?? id)
    if (!group) return
    const kids = children.get(id) ?? []
    if (isFolded) {
      // in the DOM with their statuses, drawn as the folded group
      for (const kid of kids) placeHidden(kid, visible ?? id)
      return
    }
    for (const kid of kids) {
      const at = relative.get(kid)!
      place(kid, x + groupPad + at.x, y + groupHeader + at.y, hidden, visible)
    }
  }
  const placeHidden = (id: string, visible: string) => {
    const group = isGroup(id)
    const box: Box = { id, x: 0, y: 0, w: jobWidth, h: jobHeight, kind: group ? "group" : "job", folded: group, hidden: true }
    boxes.push(box)
    absolute.set(id, box)
    visibleOf.set(id, visible)
    for (const kid of children.get(id) ?? []) placeHidden(kid, visible)
  }

  const bands: Array<Band> = []
  let y = phaseHeader + bandGap
  const bandY = bandKeys.map((key, b) => {
    const top = y
    bands.push({ key, label: key === "" ? "all regions" : key, y: top, h: bandHeights[b]! })
    y += bandHeights[b]! + bandGap
    return top
  })
  const totalHeight = y
  let x = bandLabelWidth
  phases.forEach((phase, p) => {
    const width = columnWidths[p]!
    const isFolded = folded(phase)
    const box: Box = { id: phase, x, y: 0, w: width, h: totalHeight, kind: "phase", folded: isFolded, hidden: false }
    boxes.push(box)
    absolute.set(phase, box)
    visibleOf.set(phase, phase)
    if (isFolded) for (const kid of children.get(phase) ?? []) placeHidden(kid, phase)
    bandKeys.forEach((key, b) => {
      const cell = cellSizes[p]!.get(key)!
      for (const id of cell.items) {
        const at = relative.get(id)!
        place(id, x + groupPad + at.x, bandY[b]! + at.y, false, undefined)
      }
    })
    x += width + columnGap
  })
  for (const id of loose) {
    place(id, x, phaseHeader + bandGap, false, undefined)
  }
  const width = x + (loose.length > 0 ? jobWidth : -columnGap) + 16

  // Edges between visible boxes, each drawn once.
  const edges: Array<Edge> = []
  const drawn = new Set<string>()
  for (const [to, froms] of model.incoming) {
    const b = visibleOf.get(to)
    if (b === undefined) continue
    for (const from of froms) {
      const a = visibleOf.get(from)
      if (a === undefined || a === b) continue
      const key = a + "\u0000" + b
      if (drawn.has(key)) continue
      drawn.add(key)
      const source = absolute.get(a)!
      const target = absolute.get(b)!
      edges.push({ from: a, to: b, d: edgePath(source, target) })
    }
  }
  return { width, height: totalHeight, boxes, edges, bands, visibleOf }
}

// A group edge leaves and enters an unfolded group at its top border, not through its title.
const anchorY = (box: Box) => (box.kind === "phase" ? phaseHeader / 2 : box.kind === "group" && !box.folded ? box.y + 1 : box.y + box.h / 2)

const edgePath = (source: Box, target: Box): string => {
  const x1 = source.x + source.w
  const y1 = anchorY(source)
  const x2 = target.x
  const y2 = anchorY(target)
  const bend = Math.max(24, Math.abs(x2 - x1) / 2)
  return `M${x1} ${y1}C${x1 + bend} ${y1} ${x2 - bend} ${y2} ${x2} ${y2}`
}
