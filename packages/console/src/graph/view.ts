/**
 * Draws a layout into a container as absolutely positioned elements (one flat list: groups, then the
 * edges' SVG, then the jobs) built as one HTML string, and afterwards patches single nodes in place:
 * a status change sets two attributes and one text of that node's element, nothing else is touched.
 */
import type { Layout } from "./layout.js"
import type { FlowModel, FlowNode } from "./model.js"

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === '"' ? "&quot;" : "&#39;"))

/** Status in words (never colour alone). */
export const statusWord = (status: string) => status

const titleOf = (node: FlowNode) => {
  const reason = typeof node.meta?.reason === "string" ? ` — ${node.meta.reason}` : ""
  return `${node.label}: ${node.status}${reason}`
}

export class GraphView {
  private readonly canvas: HTMLDivElement
  private elements = new Map<string, HTMLElement>()
  private edgeElements = new Map<string, Array<SVGPathElement>>()
  private marked = new Map<string, Set<string>>()

  constructor(
    readonly root: HTMLElement,
    private readonly handlers: { readonly select: (id: string) => void; readonly toggle: (id: string) => void }
  ) {
    this.canvas = document.createElement("div")
    this.canvas.className = "canvas"
    root.appendChild(this.canvas)
    this.canvas.addEventListener("click", (event) => {
      const target = event.target as HTMLElement
      const fold = target.closest<HTMLElement>("[data-fold]")
      if (fold !== null) {
        this.handlers.toggle(fold.dataset.fold!)
        return
      }
      const node = target.closest<HTMLElement>("[data-node]")
      if (node !== null) this.handlers.select(node.dataset.node!)
    })
    this.canvas.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return
      const node = (event.target as HTMLElement).closest<HTMLElement>("[data-node]")
      if (node !== null) {
        event.preventDefault()
        this.handlers.select(node.dataset.node!)
      }
    })
  }

  render(model: FlowModel, layout: Layout): void {
    const parts: Array<string> = []
    for (const band of layout.bands) {
      parts.push(
        `<div class="band" style="top:${band.y - 9}px;height:${band.h + 18}px;width:${layout.width}px"><span>${escape(band.label)}</span></div>`
      )
    }
    const jobs: Array<string> = []
    for (const box of layout.boxes) {
      const node = model.nodes.get(box.id)
      if (node === undefined) continue
      const id = escape(box.id)
      const status = escape(node.status)
      const label = escape(node.label)
      const style = box.hidden ? "" : ` style="left:${box.x}px;top:${box.y}px;width:${box.w}px;height:${box.h}px"`
      const hidden = box.hidden ? " hidden" : ""
      if (box.kind === "job") {
        jobs.push(
          `<div class="n${hidden}" data-node="${id}" data-job-id="${id}" data-status="${status}" tabindex="0" role="button" title="${escape(titleOf(node))}"${style}><i></i><b>${label}</b><em>${escape(statusWord(node.status))}</em></div>`
        )
      } else {
        const kind = box.kind === "phase" ? "p" : "g"
        const count = box.folded ? ` <small>${this.countOf(model, box.id)}</small>` : ""
        parts.push(
          `<div class="${kind}${box.folded ? " folded" : ""}${hidden}" data-node="${id}" data-group-id="${id}" data-status="${status}" title="${escape(titleOf(node))}"${style}><header><button type="button" data-fold="${id}" aria-expanded="${!box.folded}" aria-label="${box.folded ? "unfold" : "fold"} ${label}">${box.folded ? "▸" : "▾"}</button><b>${label}</b>${count}<em>${escape(statusWord(node.status))}</em></header></div>`
        )
      }
    }
    const paths = layout.edges.map((edge) => `<path data-from="${escape(edge.from)}" data-to="${escape(edge.to)}" d="${edge.d}"/>`)
    parts.push(`<svg class="edges" width="${layout.width}" height="${layout.height}" aria-hidden="true">${paths.join("")}</svg>`)
    this.canvas.style.width = `${layout.width}px`
    this.canvas.style.height = `${layout.height}px`
    this.canvas.innerHTML = parts.join("") + jobs.join("")
    this.elements = new Map()
    for (const element of this.canvas.querySelectorAll<HTMLElement>("[data-node]")) this.elements.set(element.dataset.node!, element)
    this.edgeElements = new Map()
    for (const path of this.canvas.querySelectorAll<SVGPathElement>("path")) {
      for (const end of [path.dataset.from!, path.dataset.to!]) {
        const list = this.edgeElements.get(end)
        if (list === undefined) this.edgeElements.set(end, [path])
        else list.push(path)
      }
    }
    // marks survive a new layout
    const marks = this.marked
    this.marked = new Map()
    for (const [kind, ids] of marks) this.mark(kind, ids)
  }

  private countOf(model: FlowModel, id: string): string {
    let total = 0
    let done = 0
    const walk = (at: string) => {
      for (const kid of model.children.get(at) ?? []) {
        if (model.children.has(kid)) walk(kid)
        else {
          total++
          if (model.nodes.get(kid)?.status === "succeeded") done++
        }
      }
    }
    walk(id)
    return `${done}/${total}`
  }

  /** Patches the nodes whose status changed: attributes and the status word only. */
  patch(model: FlowModel, ids: Iterable<string>): void {
    for (const id of ids) {
      const element = this.elements.get(id)
      const node = model.nodes.get(id)
      if (element === undefined || node === undefined) continue
      if (element.dataset.status !== node.status) {
        element.dataset.status = node.status
        const word = element.querySelector("em")
        if (word !== null) word.textContent = statusWord(node.status)
      }
      element.title = titleOf(node)
    }
  }

  /** Marks a set of nodes (and the edges between them) with a class: `chain`, `critical`, `selected`. */
  mark(kind: string, ids: ReadonlySet<string>): void {
    const before = this.marked.get(kind) ?? new Set<string>()
    for (const id of before) {
      if (ids.has(id)) continue
      this.elements.get(id)?.classList.remove(kind)
      for (const path of this.edgeElements.get(id) ?? []) path.classList.remove(kind)
    }
    for (const id of ids) {
      this.elements.get(id)?.classList.add(kind)
      for (const path of this.edgeElements.get(id) ?? []) {
        if (ids.has(path.dataset.from!) && ids.has(path.dataset.to!)) path.classList.add(kind)
        else path.classList.remove(kind)
      }
    }
    this.marked.set(kind, new Set(ids))
  }

  scrollTo(id: string): void {
    this.elements.get(id)?.scrollIntoView({ block: "nearest", inline: "nearest" })
  }
}
