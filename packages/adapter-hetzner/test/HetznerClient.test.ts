import { describe, expect, it } from "@effect/vitest"
import { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { FakeHetznerApi } from "@sovereign/testkit"
import { Effect, Redacted } from "effect"
import * as HetznerClient from "../src/HetznerClient.js"
import * as HetznerSchema from "../src/HetznerSchema.js"
import { scaled } from "./world.js"

/**
 * Budget tests use the fake's in-process transport: a socket's real latency, scaled up a
 * thousandfold, would refill the budget between any two calls and hide a client that overspends.
 */
const withApi = <A, E>(
  fakeOptions: FakeHetznerApi.FakeHetznerOptions,
  body: (api: HetznerClient.HetznerApi, fake: FakeHetznerApi.FakeHetznerApi, http: HttpClient.HttpClient) => Effect.Effect<A, E>,
  transport: "socket" | "in-process" = "socket"
) =>
  scaled(
    Effect.scoped(
      Effect.gen(function* () {
        const fake = yield* FakeHetznerApi.make(fakeOptions)
        const http = transport === "socket" ? yield* HttpClient.HttpClient : fake.httpClient
        const api = HetznerClient.make(http, { endpoint: fake.endpoint }).forToken(Redacted.make(fake.token))
        return yield* body(api, fake, http)
      })
    )
  ).pipe(Effect.provide(NodeHttpClient.layer))

const sshKey = (index: number) => ({ name: `key-${index}`, labels: { team: index % 2 === 0 ? "even" : "odd" } })

describe("HetznerClient", () => {
  it.live("follows meta.pagination.next_page until the last page", () =>
    withApi({}, (api, fake) =>
      Effect.gen(function* () {
        for (let index = 0; index < 120; index++) yield* fake.seed("ssh_keys", sshKey(index))
        const all = yield* api.list(HetznerSchema.kinds.sshKeys)
        expect(all.map((key) => key.name)).toEqual(Array.from({ length: 120 }, (_, index) => `key-${index}`))
        const even = yield* api.list(HetznerSchema.kinds.sshKeys, { labelSelector: "team=even" })
        expect(even.length).toBe(60)
        const pages = (yield* fake.requests).map((request) => request.query.page)
        expect(pages).toEqual(["1", "2", "3", "1", "2"])
      })
    )
  )

  it.live("keeps a burst of parallel calls within the budget the headers announce", () =>
    withApi(
      { rateLimit: { limit: 5, refillPerSecond: 0.2 } },
      (api, fake) =>
        Effect.gen(function* () {
          yield* Effect.forEach(Array.from({ length: 30 }), () => api.list(HetznerSchema.kinds.servers), { concurrency: "unbounded" })
          const requests = yield* fake.requests
          expect(requests.length).toBe(30)
          expect(requests.every((request) => request.status === 200)).toBe(true)
          expect(yield* fake.violations).toBe(0)
        }),
      "in-process"
    )
  )

  it.live("shares one budget between every client of the same project over the same budgets (as one layer's clients do)", () =>
    withApi(
      { rateLimit: { limit: 4, refillPerSecond: 0.2 } },
      (_api, fake, http) =>
        Effect.gen(function* () {
          const budgets = HetznerClient.makeBudgets()
          const api = HetznerClient.make(http, { endpoint: fake.endpoint }, budgets).forToken(Redacted.make(fake.token))
          const other = HetznerClient.make(http, { endpoint: fake.endpoint }, budgets).forToken(Redacted.make(fake.token))
          yield* Effect.all(
            [
              Effect.forEach(Array.from({ length: 8 }), () => api.list(HetznerSchema.kinds.networks), { concurrency: "unbounded" }),
              Effect.forEach(Array.from({ length: 8 }), () => other.list(HetznerSchema.kinds.firewalls), { concurrency: "unbounded" })
            ],
            { concurrency: 2 }
          )
          expect(yield* fake.violations).toBe(0)
        }),
      "in-process"
    )
  )

  it.live("waits for the budget to refill after a 429 instead of hammering", () =>
    withApi(
      { rateLimit: { limit: 10, refillPerSecond: 0.1 } },
      (api, fake) =>
        Effect.gen(function* () {
          yield* fake.inject({ status: 429, code: "rate_limit_exceeded" })
          yield* api.list(HetznerSchema.kinds.servers)
          const [limited, retried] = yield* fake.requests
          expect([limited!.status, retried!.status]).toEqual([429, 200])
          // One request per 10 s comes back; the retry waited for it.
          expect(retried!.at - limited!.at).toBeGreaterThanOrEqual(10_000)
          expect(yield* fake.violations).toBe(0)
        }),
      "in-process"
    )
  )

  const classified: ReadonlyArray<readonly [number, string, "retried" | "permanent"]> = [
    [503, "unavailable", "retried"],
    [500, "server_error", "retried"],
    [409, "conflict", "retried"],
    [423, "locked", "retried"],
    [429, "rate_limit_exceeded", "retried"],
    [422, "invalid_input", "permanent"],
    [409, "uniqueness_error", "permanent"],
    [422, "resource_unavailable", "permanent"],
    [403, "resource_limit_exceeded", "permanent"],
    [403, "forbidden", "permanent"]
  ]
  for (const [status, code, verdict] of classified) {
    it.live(`${status} ${code} is ${verdict}`, () =>
      withApi({}, (api, fake) =>
        Effect.gen(function* () {
          yield* fake.inject({ status, code, method: "POST" }, { status, code, method: "POST" })
          const result = yield* Effect.either(
            api.create(HetznerSchema.kinds.sshKeys, {
              name: "k",
              public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x@y"
            })
          )
          const posts = (yield* fake.requests).filter((request) => request.method === "POST").length
          if (verdict === "retried") {
            expect(result._tag).toBe("Right")
            expect(posts).toBe(3)
          } else {
            expect(result._tag === "Left" && result.left.code).toBe(code)
            expect(result._tag === "Left" && result.left.isRetryable).toBe(false)
            expect(posts).toBe(1)
          }
        })
      )
    )
  }

  it.live("a rejected token fails at once as 401", () =>
    scaled(
      Effect.scoped(
        Effect.gen(function* () {
          const fake = yield* FakeHetznerApi.make({})
          const http = yield* HttpClient.HttpClient
          const api = HetznerClient.make(http, { endpoint: fake.endpoint }).forToken(Redacted.make("wrong"))
          const error = yield* Effect.flip(api.list(HetznerSchema.kinds.servers))
          expect([error.status, error.code, error.isRetryable]).toEqual([401, "unauthorized", false])
          expect((yield* fake.requests).length).toBe(1)
        })
      )
    ).pipe(Effect.provide(NodeHttpClient.layer))
  )

  it.live("polls an action with backoff until it succeeds, and treats a 404 delete as done", () =>
    withApi({ actionPolls: 3, actionDuration: "1 hour" }, (api, fake) =>
      Effect.gen(function* () {
        const network = yield* api.create(HetznerSchema.kinds.networks, { name: "n", ip_range: "10.0.0.0/16", subnets: [] })
        const created = yield* api.create(HetznerSchema.kinds.servers, {
          name: "s",
          server_type: "cpx32",
          location: "fsn1",
          image: "ubuntu-24.04",
          networks: [network.resource.id]
        })
        expect(created.actions.map((action) => action.status)).toEqual(["running", "running"])
        yield* api.awaitActions(created.actions)
        const polls = (yield* fake.requests).filter(FakeHetznerApi.isActionPoll)
        expect(polls.length).toBe(6)
        expect(yield* api.remove(HetznerSchema.kinds.networks, 999)).toEqual([])
      })
    )
  )
})

describe("HetznerClient actions", () => {
  it.live("an action that ends in error fails with its code, without further polls", () =>
    withApi({ failingActions: ["create_server"] }, (api, fake) =>
      Effect.gen(function* () {
        const created = yield* api.create(HetznerSchema.kinds.servers, {
          name: "s",
          server_type: "cpx32",
          location: "fsn1",
          image: "ubuntu-24.04"
        })
        const error = yield* Effect.flip(api.awaitActions(created.actions.filter((action) => action.command === "create_server")))
        expect([error.code, error.isRetryable]).toEqual(["action_failed", false])
        expect(error.message).toContain("create_server failed")
        expect((yield* fake.requests).filter(FakeHetznerApi.isActionPoll).length).toBe(1)
      })
    )
  )
})
