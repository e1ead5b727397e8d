import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import * as FakeHetznerApi from "../src/FakeHetznerApi.js"

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: any
}

const call = (fake: FakeHetznerApi.FakeHetznerApi, method: string, path: string, body?: unknown, token = fake.token) =>
  Effect.promise(async (): Promise<Answer> => {
    const response = await fetch(`${fake.endpoint}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const text = await response.text()
    return { status: response.status, headers: response.headers, body: text.length > 0 ? JSON.parse(text) : undefined }
  })

const withFake = <A, E>(options: FakeHetznerApi.FakeHetznerOptions, body: (fake: FakeHetznerApi.FakeHetznerApi) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.flatMap(FakeHetznerApi.make(options), body))

const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com"

describe("FakeHetznerApi", () => {
  it.live("filters lists by label selector and name, and pages them with meta.pagination", () =>
    withFake({}, (fake) =>
      Effect.gen(function* () {
        for (let index = 0; index < 7; index++) {
          yield* fake.seed("servers", {
            name: `s${index}`,
            labels: { owner: index < 5 ? "a" : "b", ...(index === 0 ? { primary: "" } : {}) }
          })
        }
        const page = yield* call(fake, "GET", "/servers?label_selector=owner%3Da&per_page=2&page=2")
        expect(page.body.servers.map((server: { name: string }) => server.name)).toEqual(["s2", "s3"])
        expect(page.body.meta.pagination).toMatchObject({
          page: 2,
          per_page: 2,
          previous_page: 1,
          next_page: 3,
          last_page: 3,
          total_entries: 5
        })
        const last = yield* call(fake, "GET", "/servers?label_selector=owner%3Da&per_page=2&page=3")
        expect(last.body.meta.pagination.next_page).toBeNull()
        const presence = yield* call(fake, "GET", "/servers?label_selector=owner%3Da,primary")
        expect(presence.body.servers.map((server: { name: string }) => server.name)).toEqual(["s0"])
        const unequal = yield* call(fake, "GET", "/servers?label_selector=owner!%3Da")
        expect(unequal.body.servers.map((server: { name: string }) => server.name)).toEqual(["s5", "s6"])
        const named = yield* call(fake, "GET", "/servers?name=s6")
        expect(named.body.servers.length).toBe(1)
      })
    )
  )

  it.live("answers 401 to an unknown token and 403 to a read-only token that writes", () =>
    withFake({ readOnlyToken: "reader" }, (fake) =>
      Effect.gen(function* () {
        const unknown = yield* call(fake, "GET", "/servers", undefined, "nope")
        expect([unknown.status, unknown.body.error.code]).toEqual([401, "unauthorized"])
        expect((yield* call(fake, "GET", "/servers", undefined, "reader")).status).toBe(200)
        const write = yield* call(fake, "POST", "/networks", { name: "n", ip_range: "10.0.0.0/16" }, "reader")
        expect([write.status, write.body.error.code]).toEqual([403, "forbidden"])
      })
    )
  )

  it.live("refuses duplicate names and duplicate SSH key fingerprints with uniqueness_error", () =>
    withFake({}, (fake) =>
      Effect.gen(function* () {
        expect((yield* call(fake, "POST", "/ssh_keys", { name: "k1", public_key: key })).status).toBe(201)
        const sameKey = yield* call(fake, "POST", "/ssh_keys", { name: "k2", public_key: key })
        expect([sameKey.status, sameKey.body.error.code]).toEqual([409, "uniqueness_error"])
        expect((yield* call(fake, "POST", "/networks", { name: "n", ip_range: "10.0.0.0/16" })).status).toBe(201)
        const sameName = yield* call(fake, "POST", "/networks", { name: "n", ip_range: "10.0.0.0/16" })
        expect(sameName.body.error.code).toBe("uniqueness_error")
      })
    )
  )

  it.live("finishes actions after N polls, and keeps a network in use until its server's deletion finished", () =>
    withFake({ actionPolls: 2, actionDuration: "1 hour" }, (fake) =>
      Effect.gen(function* () {
        const network = (yield* call(fake, "POST", "/networks", { name: "n", ip_range: "10.0.0.0/16" })).body.network
        const created = yield* call(fake, "POST", "/servers", {
          name: "s",
          server_type: "cpx32",
          location: "fsn1",
          image: "ubuntu-24.04",
          networks: [network.id],
          labels: { a: "b" }
        })
        expect(created.body.server.private_net).toEqual([{ network: network.id, ip: "10.0.1.2" }])
        const actionId = created.body.action.id
        expect((yield* call(fake, "GET", `/actions/${actionId}`)).body.action.status).toBe("running")
        expect((yield* call(fake, "GET", `/actions/${actionId}`)).body.action.status).toBe("success")
        expect((yield* call(fake, "GET", `/servers/${created.body.server.id}`)).body.server.status).toBe("running")
        const deletion = yield* call(fake, "DELETE", `/servers/${created.body.server.id}`)
        const inUse = yield* call(fake, "DELETE", `/networks/${network.id}`)
        expect([inUse.status, inUse.body.error.code]).toEqual([422, "resource_in_use"])
        yield* call(fake, "GET", `/actions/${deletion.body.action.id}`)
        yield* call(fake, "GET", `/actions/${deletion.body.action.id}`)
        expect((yield* call(fake, "DELETE", `/networks/${network.id}`)).status).toBe(204)
        expect((yield* call(fake, "DELETE", `/networks/${network.id}`)).status).toBe(404)
      })
    )
  )

  it.live("keeps a firewall in use while it is applied, until remove_from_resources finished", () =>
    withFake({ actionPolls: 1, actionDuration: "1 hour" }, (fake) =>
      Effect.gen(function* () {
        const target = { type: "label_selector", label_selector: { selector: "a=b" } }
        const created = yield* call(fake, "POST", "/firewalls", { name: "f", rules: [], apply_to: [target] })
        for (const action of created.body.actions) yield* call(fake, "GET", `/actions/${action.id}`)
        const id = created.body.firewall.id
        expect((yield* call(fake, "DELETE", `/firewalls/${id}`)).body.error.code).toBe("resource_in_use")
        const removal = yield* call(fake, "POST", `/firewalls/${id}/actions/remove_from_resources`, { remove_from: [target] })
        expect((yield* call(fake, "DELETE", `/firewalls/${id}`)).status).toBe(422)
        yield* call(fake, "GET", `/actions/${removal.body.actions[0].id}`)
        expect((yield* call(fake, "DELETE", `/firewalls/${id}`)).status).toBe(204)
      })
    )
  )

  it.live("announces its budget in RateLimit headers, answers 429 when it is spent, and counts every request over it", () =>
    withFake({ rateLimit: { limit: 2, refillPerSecond: 0.001 } }, (fake) =>
      Effect.gen(function* () {
        const first = yield* call(fake, "GET", "/servers")
        expect(first.headers.get("ratelimit-limit")).toBe("2")
        expect(first.headers.get("ratelimit-remaining")).toBe("1")
        expect(Number(first.headers.get("ratelimit-reset"))).toBeGreaterThan(Date.now() / 1000)
        yield* call(fake, "GET", "/servers")
        const over = yield* call(fake, "GET", "/servers")
        expect([over.status, over.body.error.code, over.headers.get("ratelimit-remaining")]).toEqual([429, "rate_limit_exceeded", "0"])
        expect(yield* fake.violations).toBe(1)
      })
    )
  )

  it.live("injects faults by call number or by the next matching request, and a scripted 429 empties the budget", () =>
    withFake({ rateLimit: { limit: 100, refillPerSecond: 0.001 } }, (fake) =>
      Effect.gen(function* () {
        yield* fake.inject({ call: 2, status: 503, code: "unavailable" }, { status: 429, code: "rate_limit_exceeded", method: "POST" })
        expect((yield* call(fake, "GET", "/servers")).status).toBe(200)
        expect((yield* call(fake, "GET", "/servers")).status).toBe(503)
        const limited = yield* call(fake, "POST", "/networks", { name: "n", ip_range: "10.0.0.0/16" })
        expect([limited.status, limited.headers.get("ratelimit-remaining")]).toEqual([429, "0"])
        expect((yield* call(fake, "GET", "/servers")).status).toBe(429)
        expect(yield* fake.violations).toBe(1)
      })
    )
  )

  it.live("acts on the crash call but never answers it", () =>
    withFake({}, (fake) =>
      Effect.gen(function* () {
        const crashed = yield* fake.crashAt(1)
        const pending = yield* Effect.fork(call(fake, "POST", "/networks", { name: "n", ip_range: "10.0.0.0/16" }))
        yield* Deferred.await(crashed)
        expect((yield* fake.resources).map((resource) => resource.name)).toEqual(["n"])
        expect(pending.unsafePoll()).toBeNull()
      })
    )
  )
})

describe("FakeHetznerApi validation", () => {
  it.live("rejects invalid labels with invalid_input, as the API does", () =>
    withFake({}, (fake) =>
      Effect.gen(function* () {
        const bad = yield* call(fake, "POST", "/networks", {
          name: "n",
          ip_range: "10.0.0.0/16",
          labels: { "sovereign.dev/region": "hel 1" }
        })
        expect([bad.status, bad.body.error.code]).toEqual([400, "invalid_input"])
        const good = yield* call(fake, "POST", "/networks", {
          name: "n",
          ip_range: "10.0.0.0/16",
          labels: { "sovereign.dev/region": "hel1-1" }
        })
        expect(good.status).toBe(201)
      })
    )
  )
})
