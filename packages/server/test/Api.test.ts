/** Every route of SPEC §5: authorisation, the one 404, conflicts, the kubeconfig call-back, SSE and the OpenAPI document. */
import { DeploymentRepo, FlowEvents, Secrets } from "@sovereign/core"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import * as SecretBox from "../src/SecretBox.js"
import { makeServer, secretKey, tokens } from "./support/apiServer.js"
import { requestJson } from "./support/fixtures.js"

const server = makeServer({ flowRetention: 5 })
let base = ""

beforeAll(async () => {
  base = await server.url()
}, 120_000)
afterAll(() => server.dispose())

const call = async (
  method: string,
  path: string,
  options: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}
) => {
  const headers: Record<string, string> = { ...(options.headers ?? {}) }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  let body: string | undefined
  if (options.raw !== undefined) body = options.raw
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body)
    headers["content-type"] ??= "application/json"
  }
  const response = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body }) })
  const text = await response.text()
  let json: any
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.status, headers: response.headers, text, json }
}

const postback = (id: string, region = "fsn1") =>
  Effect.runSync(SecretBox.makeService(secretKey).postbackToken(id, region).pipe(Effect.map(Redacted.value)))

const pemData = Buffer.from("-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIBADAKBggqhkjOPQQDAjAj\n-----END CERTIFICATE-----\n").toString(
  "base64"
)
/** A kubeconfig of the accepted shape (the route tests' stand-in checks the shape only). */
const validKubeconfig = (marker: string) =>
  [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: default",
    "  cluster:",
    "    server: https://203.0.113.5:6443",
    `    certificate-authority-data: ${pemData}`,
    "contexts:",
    "- name: default",
    "  context: {cluster: default, user: default}",
    "current-context: default",
    "users:",
    "- name: default",
    `  user: {token: ${marker}}`,
    "# a comment the normalised document drops"
  ].join("\n")

const create = async (fqdn: string, token = tokens.alice) => {
  const answer = await call("POST", "/api/v1/deployments", { token, body: requestJson(fqdn) })
  expect(answer.status).toBe(201)
  return answer.json.id as string
}

describe("HTTP API", () => {
  it("answers health, readiness, the public in-flight count and the JWKS", async () => {
    expect((await call("GET", "/healthz")).status).toBe(200)
    expect((await call("GET", "/readyz")).status).toBe(200)
    const id = await create("count1.example.com")
    const count = await call("GET", "/api/v1/deployments/in-flight-count")
    expect(count.status).toBe(200)
    expect(count.json.ids).toContain(id)
    expect(count.text).not.toContain("example.com")
    const jwks = await call("GET", "/api/v1/handover/jwks.json")
    expect(jwks.json.keys[0]).toMatchObject({ kty: "RSA", alg: "RS256", use: "sig" })
    expect(jwks.json.keys[0].d).toBeUndefined()
  })

  it("serves an OpenAPI document generated from the same definition", async () => {
    const doc = await call("GET", "/api/v1/openapi.json")
    expect(doc.status).toBe(200)
    expect(Object.keys(doc.json.paths)).toEqual(
      expect.arrayContaining(["/api/v1/deployments", "/api/v1/deployments/{id}/kubeconfig", "/api/v1/flows/{id}/stream"])
    )
    // The call-back's refusals are described: the 422 of a refused kubeconfig, with its codes, and the 409 not-open.
    const put = doc.json.paths["/api/v1/deployments/{id}/kubeconfig"].put
    const unprocessable = JSON.stringify(put.responses["422"])
    expect(unprocessable).toContain("KubeconfigRejected")
    const schema = JSON.stringify(doc.json.components.schemas.KubeconfigRejected)
    for (const code of ["forbidden-field", "unknown-field", "invalid-kubeconfig", "untrusted-authority", "server-not-allowed"])
      expect(schema).toContain(code)
    expect(schema).toContain("allowed")
    expect(JSON.stringify(put.responses["409"])).toContain("Conflict")
    expect(put.description).toContain("not-open")
  })

  it("requires a known bearer token for operator routes", async () => {
    const none = await call("GET", "/api/v1/deployments")
    expect(none.status).toBe(401)
    expect(none.json.error).toBe("unauthorized")
    const wrong = await call("GET", "/api/v1/deployments", { token: "not-a-token" })
    expect(wrong.status).toBe(401)
  })

  it("creates with 201, rejects invalid requests with issues, and a second in-flight FQDN with 409", async () => {
    const created = await call("POST", "/api/v1/deployments", { token: tokens.alice, body: requestJson("c1.example.com") })
    expect(created.status).toBe(201)
    expect(created.json).toMatchObject({ status: "pending", links: { self: `/api/v1/deployments/${created.json.id}` } })
    const again = await call("POST", "/api/v1/deployments", { token: tokens.bob, body: requestJson("c1.example.com") })
    expect(again.status).toBe(409)
    const invalid = await call("POST", "/api/v1/deployments", {
      token: tokens.alice,
      body: { ...requestJson("c2.example.com"), colour: "blue", regions: [] }
    })
    expect(invalid.status).toBe(400)
    expect(invalid.json.error).toBe("invalid-request")
    expect(invalid.json.issues.map((issue: any) => issue.path)).toEqual(expect.arrayContaining(["colour", "regions"]))
    expect(invalid.text).not.toContain("hcloud-secret-token-do-not-leak")
    const malformed = await call("POST", "/api/v1/deployments", {
      token: tokens.alice,
      raw: "{not json",
      headers: { "content-type": "application/json" }
    })
    expect(malformed.status).toBe(400)
    const wrongType = await call("POST", "/api/v1/deployments", {
      token: tokens.alice,
      raw: "a=b",
      headers: { "content-type": "application/x-www-form-urlencoded" }
    })
    expect(wrongType.status).toBe(415)
    const huge = await call("POST", "/api/v1/deployments", {
      token: tokens.alice,
      raw: JSON.stringify({ pad: "x".repeat(1024 * 1024 + 10) }),
      headers: { "content-type": "application/json" }
    })
    expect(huge.status).toBe(413)
  })

  it("shows operators their own deployments only, with the same 404 for unknown and foreign ids", async () => {
    const id = await create("own1.example.com")
    const mine = await call("GET", `/api/v1/deployments/${id}`, { token: tokens.alice })
    expect(mine.status).toBe(200)
    expect(mine.json).toMatchObject({ id, status: "pending", owner: "alice@example.com", request: { sovereignFQDN: "own1.example.com" } })
    expect(mine.text).not.toContain("hcloud-secret-token-do-not-leak")
    expect(mine.json.request.credentials).toBeUndefined()
    const foreign = await call("GET", `/api/v1/deployments/${id}`, { token: tokens.bob })
    const unknown = await call("GET", `/api/v1/deployments/ffffffffffffffff`, { token: tokens.bob })
    expect(foreign.status).toBe(404)
    expect(foreign.text).toBe(unknown.text)
    for (const path of ["/events", "/jobs", "/jobs/install-cilium", "/kubeconfig", "/executions/x/logs"]) {
      const answer = await call("GET", `/api/v1/deployments/${id}${path}`, { token: tokens.bob })
      expect(answer.status, path).toBe(404)
    }
    expect((await call("GET", `/api/v1/flows/${id}/snapshot`, { token: tokens.bob })).status).toBe(404)
    const bobs = await call("GET", "/api/v1/deployments", { token: tokens.bob })
    expect(bobs.json.deployments.map((d: any) => d.id)).not.toContain(id)
    const all = await call("GET", "/api/v1/deployments", { token: tokens.admin })
    expect(all.json.deployments.map((d: any) => d.id)).toContain(id)
    expect((await call("GET", `/api/v1/deployments/${id}`, { token: tokens.admin })).status).toBe(200)
  })

  it("refuses to delete a deployment in flight (409) or adopted (422), deletes a finished one", async () => {
    const id = await create("del1.example.com")
    expect((await call("DELETE", `/api/v1/deployments/${id}`, { token: tokens.alice })).status).toBe(409)
    const failed = await create("del2.example.com")
    // The stand-in control moves statuses; wiping then retrying is enough to reach a terminal state here.
    expect((await call("POST", `/api/v1/deployments/${failed}/wipe`, { token: tokens.alice })).status).toBe(202)
    const adoptedId = await create("del3.example.com")
    expect((await call("POST", `/api/v1/deployments/${adoptedId}/finalise`, { token: tokens.alice })).status).toBe(409)
    const retryPending = await call("POST", `/api/v1/deployments/${id}/retry`, { token: tokens.alice })
    expect(retryPending.status).toBe(409)
    expect(retryPending.json.error).toBe("conflict")
  })

  it("finalises a ready deployment; an adopted one cannot be deleted (422) or changed", async () => {
    const id = await create("adopt1.example.com")
    // Move it to ready as the runtime would (persisted with its status event).
    await server.runtime.runPromise(
      Effect.flatMap(DeploymentRepo.DeploymentRepo, (repo) =>
        Effect.flatMap(repo.get(id), (found) =>
          repo.update(
            id,
            Option.getOrThrow(found).version,
            { status: "ready" },
            [{ at: 3, phase: "deployment", level: "info", message: "ready", type: "status", state: "ready" }],
            3
          )
        )
      )
    )
    const ready = await call("GET", `/api/v1/deployments/${id}`, { token: tokens.alice })
    expect(ready.json.handoverURL).toMatch(/^https:\/\/console\.adopt1\.example\.com\/auth\/handover\?token=/)
    const finalised = await call("POST", `/api/v1/deployments/${id}/finalise`, { token: tokens.alice })
    expect(finalised.status).toBe(200)
    expect(finalised.json.status).toBe("adopted")
    const removed = await call("DELETE", `/api/v1/deployments/${id}`, { token: tokens.alice })
    expect(removed.status).toBe(422)
    expect(removed.json.error).toBe("adopted")
    expect((await call("POST", `/api/v1/deployments/${id}/wipe`, { token: tokens.alice })).status).toBe(422)
    expect((await call("GET", "/api/v1/deployments", { token: tokens.alice })).json.deployments.map((d: any) => d.id)).not.toContain(id)
    const events = await fetch(`${base}/api/v1/deployments/${id}/events`, { headers: { authorization: `Bearer ${tokens.alice}` } })
    const text = await events.text()
    // The whole history, in order, then `done` with the final state.
    expect([...text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]))).toEqual([1, 2, 3])
    expect(text.trimEnd().split("\n\n").at(-1)).toMatch(/^event: done\ndata: .*"status":"adopted"/)
  })

  it("takes a region's kubeconfig once with the region's postback token: 204, 401, 403, 413, 422", async () => {
    const id = await create("kc1.example.com")
    const put = (options: Parameters<typeof call>[2], region = "") => call("PUT", `/api/v1/deployments/${id}/kubeconfig${region}`, options)
    const kubeconfig = validKubeconfig("secret-kubeconfig-marker")
    expect((await put({ raw: kubeconfig })).status).toBe(401)
    expect((await put({ raw: kubeconfig, token: "wrong-token" })).status).toBe(403)
    expect((await put({ raw: kubeconfig, token: postback("ffffffffffffffff") })).status).toBe(403)
    // The primary's token does not open the secondary's call-back, nor the other way round.
    expect((await put({ raw: kubeconfig, token: postback(id, "fsn1") }, "?region=hel1-1")).status).toBe(403)
    expect((await put({ raw: kubeconfig, token: postback(id, "hel1-1") })).status).toBe(403)
    expect((await put({ raw: "   ", token: postback(id) })).status).toBe(422)
    expect((await put({ raw: "x".repeat(1024 * 1024 + 1), token: postback(id) })).status).toBe(413)
    const refused = await put({ raw: "clusters: [", token: postback(id) })
    expect([refused.status, refused.json.error]).toEqual([422, "invalid-kubeconfig"])
    const forbidden = await put({
      raw: kubeconfig.replace("{token: secret-kubeconfig-marker}", "{token-file: /etc/shadow}"),
      token: postback(id)
    })
    expect([forbidden.status, forbidden.json.error, forbidden.json.field]).toEqual([422, "forbidden-field", "token-file"])
    const ok = await put({ raw: kubeconfig, token: postback(id) })
    expect(ok.status).toBe(204)
    const twice = await put({ raw: kubeconfig, token: postback(id) })
    expect(twice.status).toBe(403)
    expect(twice.json.error).toBe("already-set")
    expect((await put({ raw: kubeconfig, token: postback(id, "hel1-1") }, "?region=hel1-1")).status).toBe(204)
    expect((await put({ raw: kubeconfig, token: postback(id) }, "?region=nowhere-9")).status).toBe(404)
    const unknown = await call("PUT", `/api/v1/deployments/ffffffffffffffff/kubeconfig`, { raw: kubeconfig, token: postback(id) })
    expect(unknown.status).toBe(404)
    const download = await call("GET", `/api/v1/deployments/${id}/kubeconfig`, { token: tokens.alice })
    expect(download.status).toBe(200)
    expect(download.headers.get("content-disposition")).toContain("attachment")
    // The normalised document we rendered, not the caller's text.
    expect(download.text).toContain('token: "secret-kubeconfig-marker"')
    expect(download.text).not.toContain("comment")
    // A NUL (or any key that is no region of the deployment) is a 404 and never reaches the store.
    expect((await call("GET", `/api/v1/deployments/${id}/kubeconfig?region=%00`, { token: tokens.alice })).status).toBe(404)
    expect((await put({ raw: kubeconfig, token: postback(id) }, "?region=%00")).status).toBe(404)
    // The owner may replace a region's kubeconfig (repair) with their operator token; someone else may not.
    expect((await put({ raw: validKubeconfig("replaced-by-owner"), token: tokens.bob })).status).toBe(403)
    expect((await put({ raw: validKubeconfig("replaced-by-owner"), token: tokens.alice })).status).toBe(204)
    expect((await call("GET", `/api/v1/deployments/${id}/kubeconfig`, { token: tokens.alice })).text).toContain("replaced-by-owner")
  })

  it("streams deployment events over SSE, replays after Last-Event-ID and ends with done", async () => {
    const id = await create("sse1.example.com")
    await call("POST", `/api/v1/deployments/${id}/wipe`, { token: tokens.alice })
    const response = await fetch(`${base}/api/v1/deployments/${id}/events`, {
      headers: { authorization: `Bearer ${tokens.alice}`, "last-event-id": "1" }
    })
    expect(response.headers.get("content-type")).toContain("text/event-stream")
    const reader = response.body!.getReader()
    let text = ""
    // wiping is in flight: the stream stays open; read what was replayed.
    while (!text.includes("wiping")) {
      const chunk = await reader.read()
      text += new TextDecoder().decode(chunk.value)
    }
    await reader.cancel()
    expect(text).toContain("id: 2")
    expect(text).not.toContain("id: 1\n")
  })

  it("serves jobs, the flow snapshot, log pages and the simulator inventory (admins only)", async () => {
    const id = await create("jobs1.example.com")
    expect((await call("GET", `/api/v1/deployments/${id}/jobs`, { token: tokens.alice })).json).toEqual({ jobs: [] })
    expect((await call("GET", `/api/v1/deployments/${id}/jobs/install-x`, { token: tokens.alice })).status).toBe(404)
    const logs = await call("GET", `/api/v1/deployments/${id}/executions/nope/logs?fromLine=abc`, { token: tokens.alice })
    expect(logs.status).toBe(400)
    expect(logs.json.error).toBe("invalid-request")
    const snapshot = await call("GET", `/api/v1/flows/${id}/snapshot`, { token: tokens.alice })
    expect(snapshot.status).toBe(200)
    expect(snapshot.json.type).toBe("snapshot")
    expect((await call("GET", "/api/v1/simulator/inventory", { token: tokens.alice })).status).toBe(403)
    const inventory = await call("GET", "/api/v1/simulator/inventory", { token: tokens.admin })
    expect(inventory.json.resources[0]).toMatchObject({ kind: "server", region: "fsn1" })
  })

  it("streams the flow: snapshot first, deltas pushed with increasing ids, Last-Event-ID resume, fresh snapshot when too old", async () => {
    const id = await create("flow1.example.com")
    const publish = (count: number) =>
      server.runtime.runPromise(
        Effect.flatMap(FlowEvents.FlowEvents, (flow) =>
          flow.publish(
            id,
            Array.from({ length: count }, (_, index) => ({
              type: "upsert-nodes",
              nodes: [{ id: `${id}:n${index}`, flowId: id, label: "n", status: "running" }]
            })),
            5
          )
        )
      )
    const open = async (lastEventId?: string) => {
      const controller = new AbortController()
      const response = await fetch(`${base}/api/v1/flows/${id}/stream`, {
        headers: { authorization: `Bearer ${tokens.alice}`, ...(lastEventId === undefined ? {} : { "last-event-id": lastEventId }) },
        signal: controller.signal
      })
      expect(response.headers.get("content-type")).toContain("text/event-stream")
      const reader = response.body!.getReader()
      let buffer = ""
      const frames: Array<{ event: string; id: string }> = []
      return {
        /** Reads until `count` frames have arrived. */
        next: async (count: number) => {
          while (frames.length < count) {
            const chunk = await reader.read()
            buffer += new TextDecoder().decode(chunk.value)
            const blocks = buffer.split("\n\n")
            buffer = blocks.pop()!
            for (const block of blocks) {
              const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message"
              const frameId = /^id: (.*)$/m.exec(block)?.[1] ?? ""
              if (event !== "heartbeat") frames.push({ event, id: frameId })
            }
          }
          return frames.slice(0, count)
        },
        close: () => controller.abort()
      }
    }
    const first = await open()
    expect(await first.next(1)).toEqual([{ event: "snapshot", id: "0" }])
    await publish(2)
    expect(await first.next(3)).toEqual([
      { event: "snapshot", id: "0" },
      { event: "upsert-nodes", id: "1" },
      { event: "upsert-nodes", id: "2" }
    ])
    first.close()
    await publish(1)
    const resumed = await open("2")
    expect(await resumed.next(1)).toEqual([{ event: "upsert-nodes", id: "3" }])
    resumed.close()
    await publish(6)
    // Event 3 was trimmed (retention 5): the reader starts again from a fresh snapshot.
    const stale = await open("2")
    expect(await stale.next(1)).toEqual([{ event: "snapshot", id: "9" }])
    stale.close()
  })

  it("answers unknown routes with a JSON 404", async () => {
    const answer = await call("GET", "/api/v1/nothing-here")
    expect(answer.status).toBe(404)
    expect(answer.json.error).toBe("not-found")
  })
})

void Secrets
