/**
 * A server-sent-events stream read with `fetch`, because the browser's `EventSource` cannot send an
 * `Authorization` header and the token must never travel in a URL. It behaves like one EventSource
 * per stream: it sends `Last-Event-ID` when it reconnects (the server resumes or sends a fresh
 * snapshot), reconnects with jittered exponential backoff capped at 30 s, and closes while the tab is
 * hidden (an idle hidden tab makes no requests at all), resuming when it is shown again. While it
 * is open, the server's heartbeat every 15 s is the only traffic; nothing is polled.
 */
import { getToken, signOut } from "./api.js"

export interface StreamHandlers {
  readonly onEvent: (event: string, data: string, id: string | undefined) => void
  readonly onState?: (state: "connecting" | "open" | "waiting" | "paused" | "ended", detail?: string) => void
  /** The stream ended by itself (the server closed it after `done`): reconnecting would only replay. */
  readonly endsOn?: (event: string) => boolean
}

export interface Stream {
  readonly close: () => void
  /** The stream ended by itself (`endsOn`, or 404): reopen it with `lastEventId` when there is more to follow. */
  readonly ended: () => boolean
  readonly lastEventId: () => string | undefined
}

export const maxBackoffMs = 30_000

/** The wait before attempt `attempt` (1, 2, ...): 1 s doubling, capped at 30 s, jittered to 50-100 %. */
export const backoff = (attempt: number, random: () => number = Math.random) =>
  Math.round(Math.min(maxBackoffMs, 1000 * 2 ** Math.min(attempt - 1, 15)) * (0.5 + random() / 2))

export const open = (url: string, handlers: StreamHandlers, resumeAfter?: string): Stream => {
  let lastEventId: string | undefined = resumeAfter
  let controller: AbortController | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let failures = 0
  let closed = false
  let ended = false

  const state = (value: Parameters<NonNullable<StreamHandlers["onState"]>>[0], detail?: string) => handlers.onState?.(value, detail)

  const schedule = () => {
    if (closed || ended || document.hidden) return
    failures++
    const wait = backoff(failures)
    state("waiting", `reconnecting in ${Math.ceil(wait / 1000)} s`)
    timer = setTimeout(connect, wait)
  }

  const connect = async () => {
    timer = undefined
    if (closed || ended || document.hidden) return
    const token = getToken()
    if (token === null) return
    const abort = (controller = new AbortController())
    state("connecting")
    try {
      const headers: Record<string, string> = { accept: "text/event-stream", authorization: `Bearer ${token}` }
      if (lastEventId !== undefined) headers["last-event-id"] = lastEventId
      const response = await fetch(url, { headers, cache: "no-store", signal: abort.signal })
      if (response.status === 401) {
        signOut("The server refused the token (401): sign in again.")
        return
      }
      if (response.status === 404) {
        ended = true
        state("ended", "not found")
        return
      }
      if (!response.ok || response.body === null) throw new Error(`status ${response.status}`)
      failures = 0
      state("open")
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ""
      let event = ""
      let data: Array<string> = []
      let id: string | undefined
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let newline: number
        while ((newline = buffer.indexOf("\n")) >= 0) {
          let line = buffer.slice(0, newline)
          buffer = buffer.slice(newline + 1)
          if (line.endsWith("\r")) line = line.slice(0, -1)
          if (line === "") {
            if (id !== undefined) lastEventId = id
            if (data.length > 0) {
              const name = event === "" ? "message" : event
              handlers.onEvent(name, data.join("\n"), id)
              if (handlers.endsOn?.(name) === true) ended = true
            }
            event = ""
            data = []
            id = undefined
            continue
          }
          const colon = line.indexOf(":")
          const field = colon < 0 ? line : line.slice(0, colon)
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "")
          if (field === "event") event = text
          else if (field === "data") data.push(text)
          else if (field === "id") id = text
        }
      }
      if (ended) {
        state("ended")
        return
      }
      // The server closed the stream: reconnect (resuming after the last id).
      schedule()
    } catch {
      if (abort.signal.aborted) return
      schedule()
    }
  }

  const onVisibility = () => {
    if (document.hidden) {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      controller?.abort()
      if (!ended && !closed) state("paused", "paused while the tab is hidden")
    } else if (!closed && !ended && timer === undefined) {
      failures = 0
      void connect()
    }
  }
  document.addEventListener("visibilitychange", onVisibility)
  void connect()

  return {
    ended: () => ended,
    lastEventId: () => lastEventId,
    close: () => {
      closed = true
      if (timer !== undefined) clearTimeout(timer)
      controller?.abort()
      document.removeEventListener("visibilitychange", onVisibility)
    }
  }
}
