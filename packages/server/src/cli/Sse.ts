/** Server-sent-event framing for the CLI: the frames of a text stream (the client reads the bytes). */

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
