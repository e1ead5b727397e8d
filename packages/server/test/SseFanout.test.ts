/**
 * The SSE fan-out's correctness, independent of HTTP and of time: every client sees a gap-free,
 * duplicate-free, increasing sequence however its start read interleaves with commits and
 * announcements; a resumed client continues exactly where it stopped; a client that does not read
 * is dropped at its bound without delaying the others; ending items end the streams; heartbeats
 * reach live clients only.
 */
import { FlowEvents } from "@sovereign/core"
import { afterAll, beforeAll, describe, expect, it, vi } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, TestClock } from "effect"
import * as fc from "fast-check"
import * as net from "node:net"
import type { Readable } from "node:stream"
import * as SseFanout from "../src/SseFanout.js"
import { makeServer, tokens } from "./support/apiServer.js"
import { requestJson } from "./support/fixtures.js"

const key = "a000000000000001"

const delta = (seq: number) => SseFanout.frame({ event: "upsert-nodes", id: seq, data: { seq, padding: "x".repeat(40) } })
const snapshot = (seq: number) => SseFanout.frame({ event: "snapshot", id: seq, data: { nodes: [] } })
const item = (seq: number): SseFanout.Item => ({ seq, frames: [delta(seq)], end: false })

interface Frame {
  readonly event: string
  readonly id: number | undefined
}

const parse = (text: string): ReadonlyArray<Frame> =>
  text
    .split("\n\n")
    .filter((block) => block !== "")
    .map((block) => {
      const id = /^id: (.*)$/m.exec(block)?.[1]
      return { event: /^event: (.*)$/m.exec(block)?.[1] ?? "message", id: id === undefined ? undefined : Number(id) }
    })

/** Reads everything the body emits (flowing mode), as a client socket would. */
const follow = (body: Readable) => {
  const state = { text: "", ended: false }
  body.setEncoding("utf8")
  body.on("data", (chunk: string) => (state.text += chunk))
  body.on("end", () => (state.ended = true))
  return state
}

/** Lets queued stream events (nextTick / setImmediate) run. */
const settle = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

const withFanout = <A, E>(options: SseFanout.Options, body: (fanout: SseFanout.SseFanoutService) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.flatMap(SseFanout.make(options), body))

// The model: a store (commits numbered 1, 2, ...) whose announcements follow the commits in order and
// later, and clients whose start read happens at a moment the test chooses.
type Command =
  | { readonly kind: "commit" }
  | { readonly kind: "announce" }
  | { readonly kind: "open"; readonly client: number }
  | { readonly kind: "start"; readonly client: number }
  | { readonly kind: "close"; readonly client: number }

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "commit" as const }) },
  { weight: 3, arbitrary: fc.constant({ kind: "announce" as const }) },
  ...(["open", "start", "close"] as const).map((kind) => ({
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: 3 }).map((client) => ({ kind, client }))
  }))
)

interface Session {
  /** Last-Event-ID of this session, or none (it starts with a snapshot). */
  readonly resumeFrom: number | undefined
  readonly gate: Deferred.Deferred<void>
  readonly fiber: Fiber.RuntimeFiber<Readable>
  received?: { text: string; ended: boolean }
  body?: Readable
}

describe("SseFanout", () => {
  it("gives every client a gap-free, duplicate-free sequence whatever the interleaving, and resumes after Last-Event-ID", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 80 }), async (commands) => {
        await Effect.runPromise(
          withFanout({}, (fanout) =>
            Effect.gen(function* () {
              const channel = fanout.flow
              let committed = 0
              let announced = 0
              const sessions = new Map<number, Session>()
              const finished: Array<{ readonly resumeFrom: number | undefined; readonly frames: ReadonlyArray<Frame> }> = []
              /** Where each client resumes: the last id its previous session received. */
              const resumeAt = new Map<number, number>()

              const startOf = (resumeFrom: number | undefined, gate: Deferred.Deferred<void>) =>
                Effect.zipRight(
                  Deferred.await(gate),
                  Effect.sync((): SseFanout.Start => {
                    if (resumeFrom === undefined) return { frames: [snapshot(committed)], last: committed, ended: false }
                    const frames: Array<Uint8Array> = []
                    for (let seq = resumeFrom + 1; seq <= committed; seq++) frames.push(delta(seq))
                    return { frames, last: Math.max(resumeFrom, committed), ended: false }
                  })
                )

              const begin = (client: number) =>
                Effect.gen(function* () {
                  const session = sessions.get(client)!
                  if (session.body !== undefined) return
                  yield* Deferred.succeed(session.gate, undefined)
                  const body = yield* Fiber.join(session.fiber)
                  session.body = body
                  session.received = follow(body)
                })

              for (const step of commands) {
                switch (step.kind) {
                  case "commit":
                    committed++
                    break
                  case "announce":
                    if (announced < committed) channel.publish(key, item(++announced))
                    break
                  case "open": {
                    if (sessions.has(step.client)) break
                    const gate = yield* Deferred.make<void>()
                    const resumeFrom = resumeAt.get(step.client)
                    const fiber = yield* Effect.fork(channel.open(key, startOf(resumeFrom, gate), Option.none()))
                    yield* Effect.yieldNow()
                    sessions.set(step.client, { resumeFrom, gate, fiber })
                    break
                  }
                  case "start":
                    if (sessions.has(step.client)) yield* begin(step.client)
                    break
                  case "close": {
                    const session = sessions.get(step.client)
                    if (session?.body === undefined) break
                    yield* settle
                    session.body.destroy()
                    const frames = parse(session.received!.text)
                    finished.push({ resumeFrom: session.resumeFrom, frames })
                    const last = frames[frames.length - 1]?.id
                    if (last !== undefined) resumeAt.set(step.client, last)
                    sessions.delete(step.client)
                    break
                  }
                }
                // Streams deliver on later ticks now and then, as sockets do.
                if (committed % 3 === 0) yield* settle
              }
              // Everything committed is announced; every client that is still open has started.
              while (announced < committed) channel.publish(key, item(++announced))
              for (const client of [...sessions.keys()]) yield* begin(client)
              yield* settle
              yield* settle
              for (const session of sessions.values())
                finished.push({ resumeFrom: session.resumeFrom, frames: parse(session.received!.text) })

              for (const { resumeFrom, frames } of finished) {
                const ids = frames.map((frame) => frame.id!)
                if (resumeFrom === undefined) expect(frames[0]?.event).toBe("snapshot")
                const first = resumeFrom === undefined ? ids[0]! : resumeFrom + 1
                // Consecutive from where the session started: nothing lost, nothing repeated, in order.
                expect(ids).toEqual(Array.from({ length: ids.length }, (_, index) => first + index))
                expect(frames.slice(resumeFrom === undefined ? 1 : 0).every((frame) => frame.event === "upsert-nodes")).toBe(true)
              }
              // A session still open at the end has everything committed.
              for (const session of sessions.values()) {
                const frames = parse(session.received!.text)
                expect(frames[frames.length - 1]?.id ?? session.resumeFrom).toBe(committed)
              }
              for (const session of sessions.values()) session.body!.destroy()
              yield* settle
              expect(channel.clients()).toBe(0)
            })
          )
        )
      }),
      { numRuns: 150 }
    )
  })

  it.effect("drops a client that does not read at its bound, without holding up the others; it resumes where it stopped", () =>
    withFanout({ maxBufferedBytes: 4096 }, (fanout) =>
      Effect.gen(function* () {
        const channel = fanout.flow
        const start = (last: number, frames: ReadonlyArray<Uint8Array>) => Effect.succeed<SseFanout.Start>({ frames, last, ended: false })
        const fast = follow(yield* channel.open(key, start(0, [snapshot(0)]), Option.none()))
        // The slow client takes its snapshot and one delta, then stops reading.
        const slowBody = yield* channel.open(key, start(0, [snapshot(0)]), Option.none())
        expect(channel.clients()).toBe(2)
        // The reader that keeps up is flowing (as a piped body is once the socket takes bytes).
        yield* settle
        channel.publish(key, item(1))
        expect(parse(String(slowBody.read()))).toEqual([
          { event: "snapshot", id: 0 },
          { event: "upsert-nodes", id: 1 }
        ])
        let largest = 0
        for (let seq = 2; seq <= 400; seq++) {
          channel.publish(key, item(seq))
          largest = Math.max(largest, slowBody.readableLength)
        }
        // Dropped once 4 KiB waited: what it held stayed within the bound.
        expect(slowBody.destroyed).toBe(true)
        expect(largest).toBeLessThanOrEqual(4096 + snapshot(0).byteLength)
        yield* settle
        expect(channel.clients()).toBe(1)
        // The reader that keeps up got everything, in order.
        expect(parse(fast.text).map((frame) => frame.id)).toEqual(Array.from({ length: 401 }, (_, index) => index))
        // Resumed after the last id it read: the rest, then live changes, with nothing lost.
        const replay = Array.from({ length: 399 }, (_, index) => delta(index + 2))
        const resumed = follow(yield* channel.open(key, start(400, replay), Option.none()))
        channel.publish(key, item(401))
        yield* settle
        expect(parse(resumed.text).map((frame) => frame.id)).toEqual(Array.from({ length: 400 }, (_, index) => index + 2))
        expect(parse(fast.text).length).toBe(402)
      })
    )
  )

  it.effect("ends a client after its start frames when more was published during its start read than it may hold", () =>
    withFanout({ maxBufferedBytes: 4096 }, (fanout) =>
      Effect.gen(function* () {
        const gate = yield* Deferred.make<void>()
        const opening = yield* Effect.fork(
          fanout.flow.open(key, Effect.as(Deferred.await(gate), { frames: [snapshot(0)], last: 0, ended: false }), Option.none())
        )
        yield* Effect.yieldNow()
        for (let seq = 1; seq <= 200; seq++) fanout.flow.publish(key, item(seq))
        yield* Deferred.succeed(gate, undefined)
        const state = follow(yield* Fiber.join(opening))
        yield* settle
        expect(parse(state.text)).toEqual([{ event: "snapshot", id: 0 }])
        expect(state.ended).toBe(true)
        expect(fanout.clients("flow")).toBe(0)
      })
    )
  )

  it.effect("ends every client with an ending item, also one still reading its start; a start that ends ends at once", () =>
    withFanout({}, (fanout) =>
      Effect.gen(function* () {
        const channel = fanout.events
        const live = follow(yield* channel.open(key, Effect.succeed({ frames: [], last: 3, ended: false }), Option.none()))
        const gate = yield* Deferred.make<void>()
        const late = yield* Effect.fork(
          channel.open(key, Effect.as(Deferred.await(gate), { frames: [delta(4)], last: 4, ended: false }), Option.none())
        )
        yield* Effect.yieldNow()
        const done = SseFanout.frame({ event: "done", data: { status: "failed" } })
        channel.publish(key, { seq: 5, frames: [delta(5), done], end: true })
        // Published after the end: reaches nobody who followed the ended stream.
        channel.publish(key, item(6))
        yield* Deferred.succeed(gate, undefined)
        const lateState = follow(yield* Fiber.join(late))
        const finished = follow(
          yield* channel.open("b000000000000002", Effect.succeed({ frames: [delta(1), done], last: 1, ended: true }), Option.none())
        )
        yield* settle
        for (const [state, ids] of [
          [live, [5]],
          [lateState, [4, 5]]
        ] as const) {
          expect(parse(state.text).map((frame) => frame.id)).toEqual([...ids, undefined])
          expect(parse(state.text).at(-1)?.event).toBe("done")
          expect(state.ended).toBe(true)
        }
        expect(parse(finished.text).map((frame) => frame.event)).toEqual(["upsert-nodes", "done"])
        expect(finished.ended).toBe(true)
        yield* settle
        expect(fanout.clients("events")).toBe(0)
      })
    )
  )

  it.effect("a failed start answers the error and leaves no client behind", () =>
    withFanout({}, (fanout) =>
      Effect.gen(function* () {
        const exit = yield* Effect.exit(fanout.flow.open(key, Effect.fail("the store is down"), Option.none()))
        expect(exit).toEqual(Exit.fail("the store is down"))
        expect(fanout.clients("flow")).toBe(0)
        expect(fanout.flow.has(key)).toBe(false)
      })
    )
  )

  it.scoped("sends the heartbeat to every live client of both streams, not to one still reading its start", () =>
    Effect.gen(function* () {
      const fanout = yield* SseFanout.make({ heartbeatInterval: "15 seconds" })
      const scope = yield* Effect.scope
      const flow = follow(yield* fanout.flow.open(key, Effect.succeed({ frames: [snapshot(0)], last: 0, ended: false }), Option.none()))
      const events = follow(yield* fanout.events.open(key, Effect.succeed({ frames: [], last: 0, ended: false }), Option.none()))
      const gate = yield* Deferred.make<void>()
      const waiting = yield* Effect.forkIn(
        fanout.flow.open(key, Effect.as(Deferred.await(gate), { frames: [snapshot(0)], last: 0, ended: false }), Option.none()),
        scope
      )
      yield* TestClock.adjust("15 seconds")
      yield* Deferred.succeed(gate, undefined)
      const late = follow(yield* Fiber.join(waiting))
      yield* settle
      expect(parse(flow.text).map((frame) => frame.event)).toEqual(["snapshot", "heartbeat"])
      expect(parse(events.text).map((frame) => frame.event)).toEqual(["heartbeat"])
      expect(parse(late.text).map((frame) => frame.event)).toEqual(["snapshot"])
      expect([fanout.clients("flow"), fanout.clients("events")]).toEqual([2, 1])
    })
  )
})

/** Waits for a condition (a wait, not a timing assertion: the bound only stops a broken run). */
const eventually = (check: () => void) => vi.waitFor(check, { timeout: 60_000, interval: 20 })

describe("SseFanout over HTTP", () => {
  const server = makeServer()
  let base = ""
  beforeAll(async () => {
    base = await server.url()
  }, 120_000)
  afterAll(() => server.dispose())

  it(
    "drops a flow-stream client whose socket stops reading, keeps the others in order, and lets it resume",
    { timeout: 120_000 },
    async () => {
      const created = await fetch(`${base}/api/v1/deployments`, {
        method: "POST",
        headers: { authorization: `Bearer ${tokens.alice}`, "content-type": "application/json" },
        body: JSON.stringify(requestJson("slow-client.example.com"))
      })
      const { id } = (await created.json()) as { id: string }
      const fanout = await server.runtime.runPromise(SseFanout.SseFanout)
      // 10 KiB deltas, 100 per commit.
      let published = 0
      const publishBatch = () =>
        server.runtime.runPromise(
          Effect.flatMap(FlowEvents.FlowEvents, (flow) =>
            flow.publish(
              id,
              Array.from({ length: 100 }, () => ({
                type: "upsert-nodes",
                nodes: [{ id: `${id}:n${++published}`, flowId: id, label: "x".repeat(10_240), status: "running" }]
              })),
              5
            )
          )
        )
      const open = (lastEventId?: number) => {
        const { hostname, port } = new URL(base)
        const socket = net.connect({ host: hostname, port: Number(port) })
        socket.write(
          `GET /api/v1/flows/${id}/stream HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${tokens.alice}\r\n${lastEventId === undefined ? "" : `Last-Event-ID: ${lastEventId}\r\n`}\r\n`
        )
        socket.setEncoding("latin1")
        const state = { text: "", closed: false }
        socket.on("close", () => (state.closed = true))
        return {
          socket,
          state,
          ids: () => parse(state.text.replace(/\r\n[0-9a-f]+\r\n/g, "")).flatMap((frame) => (frame.id === undefined ? [] : [frame.id]))
        }
      }
      const reading = open()
      reading.socket.on("data", (chunk: string) => (reading.state.text += chunk))
      // This one never reads: the server's socket buffers fill, then 1 MiB waits for it, then it is dropped.
      const stalled = open()
      await eventually(() => expect(fanout.clients("flow")).toBe(2))
      await eventually(() => expect(reading.ids()).toEqual([0]))
      for (let batch = 0; batch < 60 && fanout.clients("flow") > 1; batch++) {
        await publishBatch()
        await new Promise((resolve) => setImmediate(resolve))
      }
      await eventually(() => expect(fanout.clients("flow")).toBe(1))
      // The reader kept up and has every delta, in order, nothing twice.
      await eventually(() => expect(reading.ids().length).toBe(published + 1))
      expect(reading.ids()).toEqual(Array.from({ length: published + 1 }, (_, index) => index))
      // The dropped client reads what reached it, then the end of its connection; it resumes after the
      // last id it read and gets the rest (the store still holds it), then what follows.
      stalled.socket.on("data", (chunk: string) => (stalled.state.text += chunk))
      await eventually(() => expect(stalled.state.closed).toBe(true))
      const seen = stalled.ids()
      expect(seen).toEqual(Array.from({ length: seen.length }, (_, index) => index))
      expect(seen.length).toBeLessThan(published + 1)
      const resumed = open(seen[seen.length - 1])
      resumed.socket.on("data", (chunk: string) => (resumed.state.text += chunk))
      await eventually(() => expect(fanout.clients("flow")).toBe(2))
      await eventually(() => expect(resumed.ids().length).toBe(published - seen.length + 1))
      await publishBatch()
      const expected = Array.from({ length: published - seen.length + 1 }, (_, index) => seen.length + index)
      await eventually(() => expect(resumed.ids()).toEqual(expected))
      await eventually(() => expect(reading.ids().length).toBe(published + 1))
      reading.socket.destroy()
      resumed.socket.destroy()
    }
  )
})
