/** A minimal server-sent-events reader over `fetch`, for the CLI. */

export interface SseFrame {
  readonly event: string
  readonly id: string | undefined
  readonly data: string
}

/** Splits a text stream into frames (`event:`, `id:`, `data:` lines, blank-line separated). */
export const parseFrames = (buffer: string): { readonly frames: ReadonlyArray<SseFrame>; readonly rest: string } => {
  const frames: Array<SseFrame> = []
  const blocks = buffer.replace(/\r\n/g, "\n").split("\n\n")
  const rest = blocks.pop() ?? ""
  for (const block of blocks) {
    let event = "message"
    let id: string | undefined
    const data: Array<string> = []
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue
      const colon = line.indexOf(":")
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "")
      if (field === "event") event = value
      else if (field === "id") id = value
      else if (field === "data") data.push(value)
    }
    if (data.length > 0) frames.push({ event, id, data: data.join("\n") })
  }
  return { frames, rest }
}

/** Reads the stream at `url` until it ends, `onFrame` returns false, or `signal` aborts. */
export const readStream = async (
  url: string,
  options: { readonly token: string; readonly lastEventId?: string; readonly signal?: AbortSignal },
  onFrame: (frame: SseFrame) => boolean | void
): Promise<void> => {
  const response = await fetch(url, {
    headers: {
      authorization: `Bearer ${options.token}`,
      accept: "text/event-stream",
      ...(options.lastEventId === undefined ? {} : { "last-event-id": options.lastEventId })
    },
    ...(options.signal === undefined ? {} : { signal: options.signal })
  })
  if (!response.ok || response.body === null) {
    throw new Error(`${url} answered ${response.status}: ${await response.text()}`)
  }
  const decoder = new TextDecoder()
  let buffer = ""
  const reader = response.body.getReader()
  try {
    while (true) {
      const { done, value } = await reader.read()
      if (done) return
      buffer += decoder.decode(value, { stream: true })
      const parsed = parseFrames(buffer)
      buffer = parsed.rest
      for (const frame of parsed.frames) {
        if (onFrame(frame) === false) return
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined)
  }
}
