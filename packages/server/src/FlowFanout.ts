/**
 * Fan-out of flow deltas to the clients of `/api/v1/flows/{id}/stream`. One tail of `FlowEvents` per
 * deployment that has clients (not one per client); each delta is encoded once and the same bytes are
 * pushed to every client's response body, a Node `Readable` the HTTP server pipes to the socket. One
 * heartbeat ticker serves every client. A client that cannot keep up (more than `maxBufferedBytes`
 * waiting) is disconnected and resumes with `Last-Event-ID`.
 */
import { FlowEvents } from "@sovereign/core"
import { Duration, Effect, Fiber, Option, Stream } from "effect"
import type * as Http from "node:http"
import { Readable } from "node:stream"

export const maxBufferedBytes = 4 * 1024 * 1024

export interface Frames {
  /** The first frames of a stream: a snapshot, or the deltas replayed after Last-Event-ID, and the last sequence they cover. */
  readonly start: Effect.Effect<{ readonly frames: ReadonlyArray<Uint8Array>; readonly last: number }, FlowEvents.FlowEventsError>
}

interface Client {
  /** The last sequence written; later deltas only. */
  last: number
  /** Deltas that arrived while the start frames were being read; `undefined` once live. */
  pending: Array<FlowEvents.FlowEvent> | undefined
  readonly body: Readable
}

interface Hub {
  readonly clients: Set<Client>
  fiber: Fiber.RuntimeFiber<void> | undefined
}

export interface FlowFanoutService {
  /**
   * Registers a client of the deployment, then reads its start frames (so no delta committed meanwhile
   * is lost), and answers the response body. `response` is the Node response, watched for disconnects.
   */
  readonly open: (
    deploymentId: string,
    start: Frames["start"],
    response: Option.Option<Http.ServerResponse>
  ) => Effect.Effect<Readable, FlowEvents.FlowEventsError>
}

const write = (client: Client, bytes: Uint8Array) => {
  if (client.body.destroyed) return
  if (client.body.readableLength > maxBufferedBytes) {
    client.body.destroy()
    return
  }
  client.body.push(bytes)
}

export const make = (options: {
  readonly encode: (event: FlowEvents.FlowEvent) => Uint8Array
  readonly heartbeat: Uint8Array
  readonly heartbeatInterval: Duration.DurationInput
}) =>
  Effect.gen(function* () {
    const flow = yield* FlowEvents.FlowEvents
    const scope = yield* Effect.scope
    const hubs = new Map<string, Hub>()

    const deliver = (hub: Hub, event: FlowEvents.FlowEvent) => {
      let frame: Uint8Array | undefined
      for (const client of hub.clients) {
        if (client.pending !== undefined) {
          client.pending.push(event)
        } else if (event.seq > client.last) {
          client.last = event.seq
          frame ??= options.encode(event)
          write(client, frame)
        }
      }
    }

    const endAll = (hub: Hub) => {
      for (const client of hub.clients) if (!client.body.destroyed) client.body.push(null)
    }

    const run = (deploymentId: string, hub: Hub): Effect.Effect<void> =>
      Effect.flatMap(flow.latestSeq(deploymentId), (from) =>
        flow.tail(deploymentId, from).pipe(Stream.runForEach((event) => Effect.sync(() => deliver(hub, event))))
      ).pipe(
        // The store failed: end every client's stream; each reconnects and resumes with Last-Event-ID.
        Effect.catchAllCause((cause) =>
          Effect.zipRight(
            Effect.logWarning("a flow stream tail ended", cause),
            Effect.sync(() => {
              if (hubs.get(deploymentId) === hub) hubs.delete(deploymentId)
              endAll(hub)
            })
          )
        )
      )

    const remove = (deploymentId: string, hub: Hub, client: Client) => {
      if (!hub.clients.delete(client)) return
      if (hub.clients.size > 0 || hubs.get(deploymentId) !== hub) return
      hubs.delete(deploymentId)
      if (hub.fiber !== undefined) Effect.runFork(Fiber.interrupt(hub.fiber))
    }

    // One heartbeat for every client of every deployment.
    yield* Effect.sync(() => {
      for (const hub of hubs.values()) for (const client of hub.clients) if (client.pending === undefined) write(client, options.heartbeat)
    }).pipe(Effect.delay(options.heartbeatInterval), Effect.forever, Effect.forkIn(scope))

    // On shutdown, end the responses rather than leave them open.
    yield* Effect.addFinalizer(() => Effect.sync(() => hubs.forEach(endAll)))

    const open: FlowFanoutService["open"] = (deploymentId, start, response) =>
      Effect.gen(function* () {
        const body = new Readable({ read() {} })
        const client: Client = { last: -1, pending: [], body }
        let hub = hubs.get(deploymentId)
        if (hub === undefined) {
          const created: Hub = { clients: new Set(), fiber: undefined }
          hubs.set(deploymentId, created)
          created.clients.add(client)
          created.fiber = yield* Effect.forkIn(run(deploymentId, created), scope)
          hub = created
        } else {
          hub.clients.add(client)
        }
        const registered = hub
        const leave = () => remove(deploymentId, registered, client)
        const first = yield* Effect.onError(start, () => Effect.sync(leave))
        return yield* Effect.sync(() => {
          for (const frame of first.frames) body.push(frame)
          client.last = first.last
          const pending = client.pending ?? []
          client.pending = undefined
          for (const event of pending) {
            if (event.seq > client.last) {
              client.last = event.seq
              write(client, options.encode(event))
            }
          }
          body.once("close", leave)
          Option.map(response, (node) => {
            if (node.closed) {
              body.destroy()
              leave()
            } else node.once("close", () => body.destroy())
          })
          return body
        })
      })

    return { open } satisfies FlowFanoutService
  })
