/**
 * Fan-out of server-sent events to the clients of the event and flow streams.
 *
 * A change costs one encoding, whatever the number of clients: the publisher turns it into an `Item`
 * (its SSE frames as bytes) once, and `publish` pushes those same bytes to every client of the key, a
 * plain loop over a set. There is no fiber, queue or `Stream` per client: a client is its response
 * body (a Node `Readable` the HTTP server pipes to the response), the response itself (written
 * directly while nothing waits in the body: one `write` per client per change, as a bare `node:http`
 * server would do) and the sequence number it has reached.
 * One heartbeat ticker serves every client of every stream.
 *
 * Ordering and resumption: a client registers first and only then reads its start frames (a snapshot
 * or the replay after `Last-Event-ID`) from the store; what is published meanwhile waits in its
 * `pending` list and is written afterwards, skipping what the start frames covered (by sequence
 * number). A publisher that is subscribed to the store's announcements before any client registers
 * therefore loses nothing and repeats nothing.
 *
 * Backpressure: a client whose socket does not take the bytes has them queued in its body; once more
 * than `maxBufferedBytes` wait there the client is disconnected (it reconnects and resumes with
 * `Last-Event-ID`). A slow client never delays the others, and what it holds is bounded.
 */
import { Context, Duration, Effect, Layer, Option } from "effect"
import type * as Http from "node:http"
import { Readable } from "node:stream"

/** The streams served: `/deployments/{id}/events` and `/flows/{id}/stream`. */
export type StreamName = "events" | "flow"
export const streamNames: ReadonlyArray<StreamName> = ["events", "flow"]

/** Bytes a client may have waiting beyond its start frames before it is disconnected (≈ 3,000 flow deltas). */
export const defaultMaxBufferedBytes = 1024 * 1024

/** One change for every client of a key: its sequence number, its frames (encoded once), and whether the stream ends after it. */
export interface Item {
  readonly seq: number
  readonly frames: ReadonlyArray<Uint8Array>
  readonly end: boolean
}

/** A client's first frames (snapshot or replay), the sequence they cover, and whether the stream ends with them. */
export interface Start {
  readonly frames: ReadonlyArray<Uint8Array>
  readonly last: number
  readonly ended: boolean
}

interface Client {
  /** The last sequence written; only later items are. */
  last: number
  /** Items published while the start frames were being read; `undefined` once live. */
  pending: Array<Item> | undefined
  /** Bytes of `pending`; past the bound they are dropped and the stream ends after the start frames (resume). */
  pendingBytes: number
  ended: boolean
  /** Bytes that may wait in `body` before the client is dropped. */
  limit: number
  readonly body: Readable
  /** The Node response `body` is piped to, once known: written directly while nothing waits in `body`. */
  response: Http.ServerResponse | undefined
}

export interface Channel {
  readonly name: StreamName
  /** Whether the key has clients: a publisher encodes nothing for a key nobody follows. */
  readonly has: (key: string) => boolean
  /** Writes the item's bytes to every client of the key that has not seen its sequence yet. Synchronous. */
  readonly publish: (key: string, item: Item) => void
  /**
   * Registers a client of the key, then runs `start` (so nothing published meanwhile is lost) and answers
   * the response body. `response` is the Node response, watched for disconnects.
   */
  readonly open: <E>(
    key: string,
    start: Effect.Effect<Start, E>,
    response: Option.Option<Http.ServerResponse>
  ) => Effect.Effect<Readable, E>
  /** Connected clients (including those still reading their start frames). */
  readonly clients: () => number
}

export interface SseFanoutService {
  readonly events: Channel
  readonly flow: Channel
  /** Connected clients of a stream: cheap (a counter), for metrics. */
  readonly clients: (stream: StreamName) => number
}

export class SseFanout extends Context.Tag("@sovereign/server/SseFanout")<SseFanout, SseFanoutService>() {}

export interface Options {
  /** How often every live client gets a `heartbeat` frame (15 s). */
  readonly heartbeatInterval?: Duration.DurationInput
  readonly maxBufferedBytes?: number
}

export const defaultHeartbeatInterval: Duration.DurationInput = "15 seconds"

const encoder = new TextEncoder()

/** One SSE frame as bytes: `event:` (when named), `id:` (when given), `data:` (the JSON of `data`, one line). */
export const frame = (parts: { readonly event?: string; readonly id?: number | string; readonly data: unknown }): Uint8Array =>
  encoder.encode(
    `${parts.event === undefined ? "" : `event: ${parts.event}\n`}${parts.id === undefined ? "" : `id: ${parts.id}\n`}data: ${JSON.stringify(parts.data)}\n\n`
  )

export const heartbeat = frame({ event: "heartbeat", data: {} })

const end = (client: Client) => {
  if (client.ended) return
  client.ended = true
  if (!client.body.destroyed) client.body.push(null)
}

/**
 * Writes the bytes to the client's response when its body is flowing and empty (everything pushed
 * before has reached the response, so the order holds) and the socket takes more; else queues them on
 * the body, which the pipe delivers once the socket drains; drops the client when too much waits there.
 */
const write = (client: Client, bytes: Uint8Array) => {
  if (client.ended || client.body.destroyed) return
  const response = client.response
  if (
    response !== undefined &&
    client.body.readableFlowing === true &&
    client.body.readableLength === 0 &&
    response.headersSent &&
    !response.writableNeedDrain &&
    !response.writableEnded
  ) {
    response.write(bytes)
    return
  }
  if (client.body.readableLength + bytes.byteLength > client.limit) {
    client.body.destroy()
    return
  }
  client.body.push(bytes)
}

const deliver = (client: Client, item: Item) => {
  if (client.pending !== undefined) {
    if (client.pendingBytes > client.limit) return
    for (const frame of item.frames) client.pendingBytes += frame.byteLength
    if (client.pendingBytes > client.limit) client.pending.length = 0
    else client.pending.push(item)
    return
  }
  if (item.seq <= client.last || client.ended) return
  client.last = item.seq
  for (const frame of item.frames) write(client, frame)
  if (item.end) end(client)
}

const makeChannel = (name: StreamName, maxBufferedBytes: number) => {
  const hubs = new Map<string, Set<Client>>()
  let count = 0

  const remove = (key: string, client: Client) => {
    const hub = hubs.get(key)
    if (hub === undefined || !hub.delete(client)) return
    count--
    if (hub.size === 0) hubs.delete(key)
  }

  const channel: Channel = {
    name,
    has: (key) => hubs.has(key),
    publish: (key, item) => {
      const hub = hubs.get(key)
      if (hub === undefined) return
      for (const client of hub) deliver(client, item)
    },
    open: (key, start, response) =>
      Effect.suspend(() => {
        const body = new Readable({ read() {} })
        const client: Client = { last: -1, pending: [], pendingBytes: 0, ended: false, limit: maxBufferedBytes, body, response: undefined }
        let hub = hubs.get(key)
        if (hub === undefined) {
          hub = new Set()
          hubs.set(key, hub)
        }
        hub.add(client)
        count++
        const leave = () => remove(key, client)
        return Effect.onExit(start, (exit) =>
          Effect.sync(() => {
            if (exit._tag === "Failure") {
              leave()
              return
            }
            const first = exit.value
            let startBytes = 0
            for (const frame of first.frames) {
              body.push(frame)
              startBytes += frame.byteLength
            }
            const overflowed = client.pendingBytes > client.limit
            client.limit = maxBufferedBytes + startBytes
            client.last = first.last
            const pending = client.pending ?? []
            client.pending = undefined
            // More was published during the start read than a client may hold: the stream ends after the
            // start frames, and the client resumes from them with Last-Event-ID.
            if (first.ended || overflowed) end(client)
            for (const item of pending) deliver(client, item)
            // An ended client takes nothing more: it leaves now rather than when its socket closes.
            if (client.ended) leave()
            else body.once("close", leave)
            Option.map(response, (node) => {
              if (node.closed) {
                body.destroy()
                leave()
              } else {
                node.once("close", () => body.destroy())
                client.response = node
              }
            })
          })
        ).pipe(Effect.as(body))
      }),
    clients: () => count
  }

  const live = function* () {
    for (const hub of hubs.values()) for (const client of hub) if (client.pending === undefined) yield client
  }
  return { channel, live, endAll: () => hubs.forEach((hub) => hub.forEach(end)) }
}

/** The fan-out for both streams, with its heartbeat ticker; every response is ended when the scope closes. */
export const make = (options: Options = {}) =>
  Effect.gen(function* () {
    const maxBufferedBytes = options.maxBufferedBytes ?? defaultMaxBufferedBytes
    const events = makeChannel("events", maxBufferedBytes)
    const flow = makeChannel("flow", maxBufferedBytes)
    yield* Effect.sync(() => {
      for (const channel of [events, flow]) for (const client of channel.live()) write(client, heartbeat)
    }).pipe(Effect.delay(options.heartbeatInterval ?? defaultHeartbeatInterval), Effect.forever, Effect.forkScoped)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        events.endAll()
        flow.endAll()
      })
    )
    return {
      events: events.channel,
      flow: flow.channel,
      clients: (stream) => (stream === "events" ? events.channel : flow.channel).clients()
    } satisfies SseFanoutService
  })

export const layer = (options: Options = {}): Layer.Layer<SseFanout> => Layer.scoped(SseFanout, make(options))
