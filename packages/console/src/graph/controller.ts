/**
 * Owns one deployment's live graph: the flow stream, the model, the layout and the view. SSE messages
 * are queued and applied once per animation frame; a structural change lays the graph out again, a
 * status change patches the affected nodes only. The critical path is recomputed at most twice a
 * second, never per message.
 */
import { api } from "../api.js"
import * as Sse from "../stream.js"
import { criticalPath } from "./analysis.js"
import { layout as computeLayout, type Layout } from "./layout.js"
import { emptyChange, FlowModel, type FlowMessage } from "./model.js"
import { GraphView } from "./view.js"

export interface ControllerListener {
  /** The flow (status, times) or the selected node changed. */
  readonly changed: () => void
  readonly select: (id: string | undefined) => void
  readonly streamState: (state: string) => void
}

/** Counters the benchmarks and tests read (`window.sovereignConsole`). */
export const stats = { messages: 0, nodeUpdates: 0, jobStatusChanges: 0, frames: 0, layouts: 0, patched: 0 }
;(globalThis as { sovereignConsole?: unknown }).sovereignConsole = stats

export class FlowController {
  readonly model = new FlowModel()
  readonly view: GraphView
  private queue: Array<FlowMessage> = []
  private frame = 0
  private stream: Sse.Stream | undefined
  private readonly userFolds = new Map<string, boolean>()
  private current: Layout | undefined
  private autoFolded = new Set<string>()
  private regionCount = 0
  private analysisTimer: ReturnType<typeof setTimeout> | undefined
  selected: string | undefined

  constructor(
    root: HTMLElement,
    readonly deploymentId: string,
    private readonly listener: ControllerListener
  ) {
    this.view = new GraphView(root, {
      select: (id) => this.select(id),
      toggle: (id) => {
        this.userFolds.set(id, !this.isFolded(id))
        this.relayout()
      }
    })
  }

  start(): void {
    this.stream = Sse.open(api.flow(this.deploymentId), {
      onEvent: (event, data) => {
        if (event === "heartbeat") return
        try {
          this.push(JSON.parse(data) as FlowMessage)
        } catch {
          // not a message of the contract: ignored
        }
      },
      onState: (state, detail) => this.listener.streamState(detail === undefined ? state : `${state}: ${detail}`)
    })
  }

  stop(): void {
    this.stream?.close()
    if (this.frame !== 0) cancelAnimationFrame(this.frame)
    if (this.analysisTimer !== undefined) clearTimeout(this.analysisTimer)
  }

  push(message: FlowMessage): void {
    stats.messages++
    if (message.type === "upsert-nodes") stats.nodeUpdates++
    this.queue.push(message)
    if (this.frame === 0) this.frame = requestAnimationFrame(() => this.flush())
  }

  private flush(): void {
    this.frame = 0
    stats.frames++
    const change = emptyChange()
    const queue = this.queue
    this.queue = []
    for (const message of queue) this.model.apply(message, change)
    stats.jobStatusChanges += change.jobStatusChanges
    let relayout = change.structure
    if (!relayout && this.regionCount > 4) {
      // a group that finished folds by default when there are many regions
      for (const id of change.changed) if (this.model.children.has(id) && this.isFolded(id) !== this.autoFolded.has(id)) relayout = true
    }
    if (relayout) this.relayout()
    else if (change.changed.size > 0) {
      stats.patched += change.changed.size
      this.view.patch(this.model, change.changed)
    }
    if (change.flow || (this.selected !== undefined && (change.changed.has(this.selected) || change.structure))) this.listener.changed()
    if (relayout || change.changed.size > 0) this.scheduleAnalysis()
  }

  private scheduleAnalysis(): void {
    if (this.analysisTimer !== undefined) return
    this.analysisTimer = setTimeout(() => {
      this.analysisTimer = undefined
      const running = this.model.flow?.status === "running"
      this.view.mark("critical", running ? criticalPath(this.model) : new Set())
    }, 500)
  }

  isFolded(id: string): boolean {
    const chosen = this.userFolds.get(id)
    if (chosen !== undefined) return chosen
    const node = this.model.nodes.get(id)
    // Regions unfolded; finished groups (below the phases) folded when there are more than 4 regions.
    return this.regionCount > 4 && node !== undefined && node.status === "succeeded" && this.model.parent.has(id)
  }

  relayout(): void {
    stats.layouts++
    this.model.index()
    const regions = new Set<string>()
    for (const node of this.model.nodes.values()) if (node.region !== undefined && node.region !== "") regions.add(node.region)
    this.regionCount = regions.size
    this.autoFolded = new Set()
    this.current = computeLayout(this.model, (id) => {
      const folded = this.isFolded(id)
      if (folded) this.autoFolded.add(id)
      return folded
    })
    this.view.render(this.model, this.current)
  }

  select(id: string | undefined): void {
    this.selected = id
    this.view.mark("selected", id === undefined ? new Set() : new Set([id]))
    this.listener.select(id)
  }

  /** Unfolds the containers of `id` so that it is drawn. */
  reveal(id: string): void {
    let changed = false
    for (let at = this.model.parent.get(id); at !== undefined; at = this.model.parent.get(at)) {
      if (this.isFolded(at)) {
        this.userFolds.set(at, false)
        changed = true
      }
    }
    if (changed) this.relayout()
    this.view.scrollTo(id)
  }
}
