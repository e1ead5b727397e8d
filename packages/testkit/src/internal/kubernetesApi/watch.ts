/**
 * Watches: chunked streams of `{type, object}` lines, started from the current objects
 * (resourceVersion 0 or none) or resumed from the history (`410 Expired` when compacted past),
 * with periodic BOOKMARKs, `timeoutSeconds`, and the fault controls that act on open watches
 * (silence, forced `410 Gone`).
 */
import type { ServerResponse } from "node:http"
import type { Effect } from "effect"
import type { KubeObject } from "../../FakeKubernetesApi.js"
import type { Json } from "../../kubernetes/Patch.js"
import { selectorOf } from "./selectors.js"
import { Signal } from "./signal.js"
import { badRequest, expired, type JsonObject } from "./status.js"
import { apiVersionOf, type ObjectStore, type ResourceType, type StoredEvent } from "./store.js"

interface Watcher {
  readonly resource: ResourceType
  readonly namespace: string | undefined
  readonly matches: (object: KubeObject) => boolean
  readonly bookmarks: boolean
  readonly response: ServerResponse
  timer: NodeJS.Timeout | undefined
}

const writeEvent = (watcher: Watcher, event: JsonObject): void => {
  if (!watcher.response.writableEnded && !watcher.response.destroyed) watcher.response.write(JSON.stringify(event) + "\n")
}

const sees = (watcher: Watcher, resource: ResourceType, object: KubeObject): boolean =>
  watcher.resource === resource &&
  (watcher.namespace === undefined || watcher.namespace === object.metadata.namespace) &&
  watcher.matches(object)

export class Watches {
  private readonly watchers = new Set<Watcher>()
  private readonly opened = new Signal()
  private readonly bookmarkTimer: NodeJS.Timeout
  /** While silent, open and new watches receive no events and no bookmarks. */
  silent = false

  constructor(
    private readonly store: ObjectStore,
    bookmarkIntervalMillis: number
  ) {
    this.bookmarkTimer = setInterval(() => this.sendBookmarks(), bookmarkIntervalMillis)
    this.bookmarkTimer.unref()
  }

  get size(): number {
    return this.watchers.size
  }

  /** The store's fan-out: each event to every watch that sees it. */
  publish(event: StoredEvent): void {
    if (this.silent) return
    for (const watcher of this.watchers) {
      if (sees(watcher, event.resource, event.object)) writeEvent(watcher, { type: event.type, object: event.object as unknown as Json })
    }
  }

  sendBookmarks(): void {
    if (this.silent) return
    for (const watcher of this.watchers) {
      if (watcher.bookmarks) {
        writeEvent(watcher, {
          type: "BOOKMARK",
          object: {
            kind: watcher.resource.kind,
            apiVersion: apiVersionOf(watcher.resource),
            metadata: { resourceVersion: String(this.store.resourceVersion) }
          }
        })
      }
    }
  }

  /** Serves `GET …?watch=true` on `response`. */
  open(
    target: { readonly resource: ResourceType; readonly namespace: string | undefined },
    query: URLSearchParams,
    response: ServerResponse
  ): void {
    const store = this.store
    const watcher: Watcher = {
      resource: target.resource,
      namespace: target.namespace,
      matches: selectorOf(query),
      bookmarks: query.get("allowWatchBookmarks") === "true",
      response,
      timer: undefined
    }
    response.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" })
    response.flushHeaders()
    const from = query.get("resourceVersion") ?? ""
    if (from === "" || from === "0") {
      if (!this.silent) {
        for (const object of store.list(target.resource, target.namespace)) {
          if (watcher.matches(object)) writeEvent(watcher, { type: "ADDED", object: object as unknown as Json })
        }
      }
    } else {
      const since = Number(from)
      if (!Number.isInteger(since) || since < 0) {
        writeEvent(watcher, { type: "ERROR", object: badRequest(`invalid resourceVersion ${from}`).toStatus() })
        response.end()
        return
      }
      if (since < store.compactedResourceVersion) {
        writeEvent(watcher, {
          type: "ERROR",
          object: expired(`too old resource version: ${since} (${store.compactedResourceVersion})`).toStatus()
        })
        response.end()
        return
      }
      if (!this.silent) {
        for (const event of store.eventsAfter(since)) {
          if (sees(watcher, event.resource, event.object))
            writeEvent(watcher, { type: event.type, object: event.object as unknown as Json })
        }
      }
    }
    this.watchers.add(watcher)
    const timeoutSeconds = Number(query.get("timeoutSeconds") ?? "0")
    if (timeoutSeconds > 0) watcher.timer = setTimeout(() => this.end(watcher), timeoutSeconds * 1000)
    response.on("close", () => {
      this.watchers.delete(watcher)
      if (watcher.timer !== undefined) clearTimeout(watcher.timer)
    })
    this.opened.notify()
  }

  /** Forgets every watch without ending its response (the connections are destroyed by the caller). */
  forget(): void {
    this.watchers.clear()
  }

  /** Ends every open watch with an `ERROR` event carrying a 410 `Expired` Status (after a compaction). */
  expireAll(): void {
    const compacted = this.store.compactedResourceVersion
    for (const watcher of [...this.watchers]) {
      writeEvent(watcher, { type: "ERROR", object: expired(`too old resource version: ${compacted - 1} (${compacted})`).toStatus() })
      this.end(watcher)
    }
  }

  /** Completes once at least `count` watches are open (of the given resource plural, if any). */
  awaitOpen(count: number, plural?: string): Effect.Effect<void> {
    return this.opened.until(
      () => [...this.watchers].filter((watcher) => plural === undefined || watcher.resource.plural === plural).length >= count
    )
  }

  close(): void {
    clearInterval(this.bookmarkTimer)
    for (const watcher of [...this.watchers]) this.end(watcher)
  }

  private end(watcher: Watcher): void {
    this.watchers.delete(watcher)
    if (watcher.timer !== undefined) clearTimeout(watcher.timer)
    if (!watcher.response.writableEnded) watcher.response.end()
  }
}
