import { HttpClient, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Redacted, Ref, TestClock } from "effect"
import { apiBase, errorFromStatus, make, rejectedRecord } from "../src/PowerDnsClient.js"
import { toPatch, toRecordSet } from "../src/PowerDnsProvider.js"

/** An HttpClient that answers from a script, one entry per request, and records what it was sent. */
const scripted = (answers: ReadonlyArray<{ status: number; body: string }>) =>
  Effect.gen(function* () {
    const sent = yield* Ref.make<ReadonlyArray<{ method: string; url: string; key: string | undefined }>>([])
    const client = HttpClient.make((request) =>
      Ref.modify(sent, (list) => [
        list.length,
        [...list, { method: request.method, url: request.url, key: request.headers["x-api-key"] }]
      ]).pipe(
        Effect.map((index) => {
          const answer = answers[Math.min(index, answers.length - 1)] ?? { status: 500, body: "" }
          return HttpClientResponse.fromWeb(request, new Response(answer.status === 204 ? null : answer.body, { status: answer.status }))
        })
      )
    )
    return { layer: Layer.succeed(HttpClient.HttpClient, client), sent }
  })

const options = { apiUrl: "http://pdns.invalid:8081/", apiKey: Redacted.make("secret-key") }

describe("PowerDnsClient", () => {
  it("accepts the base URL with or without /api/v1", () => {
    expect(apiBase("http://h:8081/")).toBe("http://h:8081/api/v1")
    expect(apiBase("http://h:8081/api/v1/")).toBe("http://h:8081/api/v1")
  })

  it.effect("sends the key as X-API-Key to the server's zone path and decodes the zone", () =>
    Effect.gen(function* () {
      const world = yield* scripted([
        {
          status: 200,
          body: JSON.stringify({
            id: "t1.x.",
            name: "t1.x.",
            kind: "Native",
            rrsets: [
              {
                name: "Console.t1.x.",
                type: "A",
                ttl: 60,
                records: [
                  { content: "192.0.2.1", disabled: false },
                  { content: "192.0.2.9", disabled: true }
                ],
                comments: [{ content: "owner=0123456789abcdef", account: "sovereign", modified_at: 1 }]
              }
            ]
          })
        }
      ])
      const client = yield* make({ ...options, serverId: "localhost" }).pipe(Effect.provide(world.layer))
      const zone = yield* client.getZone("t1.x.")
      expect(yield* Ref.get(world.sent)).toEqual([
        { method: "GET", url: "http://pdns.invalid:8081/api/v1/servers/localhost/zones/t1.x.", key: "secret-key" }
      ])
      expect(zone.rrsets.map(toRecordSet)).toEqual([
        { name: "console.t1.x.", type: "A", ttl: 60, records: ["192.0.2.1"], owner: "0123456789abcdef" }
      ])
    })
  )

  it.effect("retries 5xx with exponential backoff and succeeds when PowerDNS recovers", () =>
    Effect.gen(function* () {
      const world = yield* scripted([
        { status: 503, body: "" },
        { status: 502, body: "" },
        { status: 200, body: "[]" }
      ])
      const client = yield* make(options).pipe(Effect.provide(world.layer))
      const fiber = yield* Effect.fork(client.listZones())
      yield* TestClock.adjust("250 millis")
      expect(yield* Ref.get(world.sent)).toHaveLength(2)
      yield* TestClock.adjust("500 millis")
      expect(yield* Fiber.join(fiber)).toEqual([])
      expect(yield* Ref.get(world.sent)).toHaveLength(3)
    })
  )

  it.effect("gives up after the retries with Unavailable", () =>
    Effect.gen(function* () {
      const world = yield* scripted([{ status: 500, body: '{"error": "backend down"}' }])
      const client = yield* make({ ...options, retry: { times: 2, base: "10 millis" } }).pipe(Effect.provide(world.layer))
      const fiber = yield* Effect.fork(Effect.flip(client.listZones()))
      yield* TestClock.adjust("1 second")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ reason: "Unavailable" })
      expect(error.message).toContain("backend down")
      expect(yield* Ref.get(world.sent)).toHaveLength(3)
    })
  )

  it.effect("does not retry a 4xx, and an answer of the wrong shape is Unknown rather than a crash", () =>
    Effect.gen(function* () {
      const rejected = yield* scripted([{ status: 400, body: '{"error": "malformed"}' }])
      const client = yield* make(options).pipe(Effect.provide(rejected.layer))
      expect(yield* client.listZones().pipe(Effect.flip)).toMatchObject({ reason: "Unknown" })
      expect(yield* Ref.get(rejected.sent)).toHaveLength(1)
      const garbled = yield* scripted([{ status: 200, body: '{"zones": 3}' }])
      const other = yield* make(options).pipe(Effect.provide(garbled.layer))
      const error = yield* other.listZones().pipe(Effect.flip)
      expect(error.reason).toBe("Unknown")
      expect(error.message).toContain("unexpected answer")
    })
  )
})

describe("error mapping", () => {
  const context = { action: "change zone x.", zone: "x.", names: ["a.x.", "b.a.x."] }
  const rows: ReadonlyArray<[number, string, string, string | undefined]> = [
    [401, "Unauthorized", "Unauthorized", undefined],
    [403, "Forbidden", "Unauthorized", undefined],
    [404, "Not Found", "ZoneNotFound", undefined],
    [422, '{"error": "DNS Name \'a.x\' is not canonical"}', "Rejected", "a.x"],
    [422, '{"error": "RRset b.a.x. IN A: Conflicts with pre-existing RRset"}', "Rejected", "b.a.x. A"],
    [422, '{"error": "Record b.a.x./A \'300.1.1.1\': Parsing record content"}', "Rejected", "b.a.x. A"],
    [422, '{"error": "something about b.a.x. went wrong"}', "Rejected", "b.a.x."],
    [500, "oops", "Unavailable", undefined],
    [503, "", "Unavailable", undefined],
    [429, "", "Unavailable", undefined],
    [409, "Conflict", "Unknown", undefined]
  ]
  for (const [status, body, reason, record] of rows) {
    it(`${status} ${body.slice(0, 40)} → ${reason}`, () => {
      const error = errorFromStatus(status, body, context)
      expect(error.reason).toBe(reason)
      expect(error.record).toBe(record)
      expect(error.isRetryable).toBe(reason === "Unavailable")
    })
  }

  it("finds the record in PowerDNS's texts", () => {
    expect(rejectedRecord("RRset a.other. IN A: Name is out of zone", [])).toBe("a.other. A")
    expect(rejectedRecord("nothing useful", ["a.x."])).toBeUndefined()
  })
})

describe("wire mapping", () => {
  it("sends bare DELETEs first, then REPLACEs with owner comments (none for unowned records)", () => {
    expect(
      toPatch({
        create: [{ name: "A.x", type: "a", ttl: 60, records: ["192.0.2.1"], owner: "0123456789abcdef" }],
        update: [{ name: "b.x.", type: "A", ttl: 60, records: ["192.0.2.2"] }],
        delete: [{ name: "c.x.", type: "A", ttl: 60, records: ["192.0.2.3"], owner: "0123456789abcdef" }]
      })
    ).toEqual({
      rrsets: [
        { name: "c.x.", type: "A", changetype: "DELETE" },
        {
          name: "a.x.",
          type: "A",
          ttl: 60,
          changetype: "REPLACE",
          records: [{ content: "192.0.2.1", disabled: false }],
          comments: [{ content: "owner=0123456789abcdef", account: "sovereign" }]
        },
        { name: "b.x.", type: "A", ttl: 60, changetype: "REPLACE", records: [{ content: "192.0.2.2", disabled: false }], comments: [] }
      ]
    })
  })

  it("an owner= comment under another account is not an ownership claim", () => {
    expect(
      toRecordSet({ name: "a.x.", type: "A", ttl: 60, records: [], comments: [{ content: "owner=0123456789abcdef", account: "alice" }] })
        .owner
    ).toBeUndefined()
  })
})
