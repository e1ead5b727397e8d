/** What the server reads from a request before any handler trusts it: the capped body, its JSON nesting, the bearer token, the caller's address. */
import type { HttpServerRequest } from "@effect/platform"
import { Chunk, Effect, Option, Stream } from "effect"
import { InvalidRequest, PayloadTooLarge } from "./Api.js"

export const maxBodyBytes = 1024 * 1024
/** Deeper JSON is refused before it is parsed: no request of the API nests anywhere near this. */
export const maxJsonDepth = 64

/** Reads at most `limit` bytes; a larger body is a 413 without reading the rest. */
export const readBody = (request: HttpServerRequest.HttpServerRequest, limit = maxBodyBytes) =>
  Effect.gen(function* () {
    const tooLarge = new PayloadTooLarge({ error: "payload-too-large", message: `the body must be at most ${limit} bytes` })
    const declared = Number(request.headers["content-length"] ?? "0")
    if (Number.isFinite(declared) && declared > limit) return yield* Effect.fail(tooLarge)
    let size = 0
    const chunks = yield* request.stream.pipe(
      Stream.takeWhile((chunk) => {
        size += chunk.byteLength
        return size <= limit
      }),
      Stream.runCollect,
      Effect.mapError(() => InvalidRequest.of([{ path: "", message: "the request body could not be read" }]))
    )
    if (size > limit) return yield* Effect.fail(tooLarge)
    return Buffer.concat(Chunk.toReadonlyArray(chunks)).toString("utf8")
  })

/**
 * The deepest nesting of arrays and objects in JSON text, counted without parsing (strings skipped),
 * stopping as soon as `limit` is passed. A 100,000-deep body costs one linear scan, not a stack.
 */
export const jsonDepthExceeds = (text: string, limit = maxJsonDepth): boolean => {
  let depth = 0
  let inString = false
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index)
    if (inString) {
      if (code === 0x5c)
        index++ // backslash: skip the escaped character
      else if (code === 0x22) inString = false
      continue
    }
    if (code === 0x22) inString = true
    else if (code === 0x5b || code === 0x7b) {
      if (++depth > limit) return true
    } else if (code === 0x5d || code === 0x7d) depth--
  }
  return false
}

/** The bearer token of the `Authorization` header, if any. */
export const bearerOf = (request: HttpServerRequest.HttpServerRequest): Option.Option<string> => {
  const header = request.headers["authorization"]
  const match = header === undefined ? null : /^bearer\s+(.+)$/i.exec(header.trim())
  return match === null ? Option.none() : Option.some(match[1]!.trim())
}

/** Text a database accepts as a key (no NUL); anything else cannot name a stored object. */
export const isKey = (text: string) => !text.includes("\u0000") && text.length <= 512
