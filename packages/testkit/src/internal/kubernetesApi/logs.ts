/** Pod logs: lines appended by the test, served by `GET …/pods/{name}/log` (`sinceTime`, `follow`). */
import type { ServerResponse } from "node:http"
import type { Effect } from "effect"
import { Signal } from "./signal.js"

export class PodLogs {
  private readonly lines = new Map<string, Array<{ readonly at: number; readonly line: string }>>()
  private readonly followers = new Set<{ readonly key: string; readonly response: ServerResponse }>()
  private readonly followed = new Signal()

  append(namespace: string, pod: string, line: string): void {
    const key = `${namespace}/${pod}`
    const lines = this.lines.get(key) ?? []
    lines.push({ at: Date.now(), line })
    this.lines.set(key, lines)
    for (const follower of this.followers)
      if (follower.key === key && !follower.response.writableEnded) follower.response.write(line + "\n")
  }

  /** Writes the pod's lines since `sinceTime`; with `follow=true` keeps the response open for new ones. */
  serve(namespace: string | undefined, pod: string, query: URLSearchParams, response: ServerResponse): void {
    const key = `${namespace ?? ""}/${pod}`
    const sinceTime = query.get("sinceTime")
    const since = sinceTime === null ? 0 : Date.parse(sinceTime)
    response.writeHead(200, { "content-type": "text/plain", "transfer-encoding": "chunked" })
    for (const entry of this.lines.get(key) ?? []) if (entry.at >= since) response.write(entry.line + "\n")
    if (query.get("follow") !== "true") {
      response.end()
      return
    }
    response.flushHeaders()
    const follower = { key, response }
    this.followers.add(follower)
    response.on("close", () => this.followers.delete(follower))
    this.followed.notify()
  }

  /** Completes once at least `count` clients follow pod logs. */
  awaitFollowers(count: number): Effect.Effect<void> {
    return this.followed.until(() => this.followers.size >= count)
  }

  close(): void {
    for (const follower of this.followers) follower.response.end()
  }
}
