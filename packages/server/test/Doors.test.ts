/** The doors of issue 16, item 7, each tried against a running server as the security review did. */
import { afterAll, beforeAll, describe, expect, it, vi } from "@effect/vitest"
import * as net from "node:net"
import { makeServer, tokens } from "./support/apiServer.js"
import { requestJson } from "./support/fixtures.js"
import { waitUntil } from "./support/process.js"

/** Sends raw bytes on a fresh connection and returns everything the server sent until it closed the connection. */
const rawUntilClosed = (url: string, bytes: string) =>
  new Promise<string>((resolve, reject) => {
    const { hostname, port } = new URL(url)
    let received = ""
    const socket = net.connect(Number(port), hostname, () => socket.write(bytes))
    socket.on("data", (chunk) => (received += chunk.toString("utf8")))
    socket.on("error", reject)
    socket.on("close", () => resolve(received))
  })

const stalledUpload = (token: string) =>
  `POST /api/v1/deployments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"so`

describe("the body timeout and the uploads per client", () => {
  const server = makeServer({ guards: { bodyTimeout: "1 second", maxUploadsPerClient: 2 } })
  let base = ""
  beforeAll(async () => {
    base = await server.url()
  }, 120_000)
  afterAll(() => server.dispose())

  it("closes a request whose body stalls with 408, and an SSE answer outlives the timeout", { timeout: 60_000 }, async () => {
    const created = await fetch(`${base}/api/v1/deployments`, {
      method: "POST",
      headers: { authorization: `Bearer ${tokens.alice}`, "content-type": "application/json" },
      body: JSON.stringify(requestJson("sse-outlives.example.com"))
    })
    const { id } = (await created.json()) as { id: string }
    const stream = await fetch(`${base}/api/v1/deployments/${id}/events`, { headers: { authorization: `Bearer ${tokens.alice}` } })
    const reader = stream.body!.getReader()
    const decoder = new TextDecoder()
    let text = ""
    const readUntil = async (marker: string) => {
      while (!text.includes(marker)) {
        const next = await reader.read()
        if (next.done) throw new Error(`the stream ended before ${marker}:\n${text}`)
        text += decoder.decode(next.value)
      }
    }
    await readUntil("id: 1")
    // A POST that declares 1,000 bytes and sends 5: answered 408 and closed once the timeout has passed.
    const answer = await rawUntilClosed(base, stalledUpload(tokens.alice))
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 408 Request Timeout")
    // The event stream opened before it is still served after the timeout: the next event arrives on it.
    await fetch(`${base}/api/v1/deployments/${id}/wipe`, { method: "POST", headers: { authorization: `Bearer ${tokens.alice}` } })
    await readUntil("id: 2")
    expect(text).toContain('"state":"wiping"')
    await reader.cancel()
  })

  it("answers a client's third body in flight with 429 and closes it", { timeout: 60_000 }, async () => {
    const { hostname, port } = new URL(base)
    const open: Array<net.Socket> = []
    try {
      for (let index = 0; index < 2; index++) {
        const socket = net.connect(Number(port), hostname, () => socket.write(stalledUpload(tokens.alice)))
        socket.on("error", () => undefined)
        open.push(socket)
        // Each stalled upload is in the server before the next one starts.
        await fetch(`${base}/healthz`)
      }
      const third = await rawUntilClosed(base, stalledUpload(tokens.alice))
      expect(third.split("\r\n")[0]).toBe("HTTP/1.1 429 Too Many Requests")
      expect(third).toContain('"error":"too-many-uploads"')
    } finally {
      for (const socket of open) socket.destroy()
    }
  })
})

describe("the brake on failed authentication", () => {
  const server = makeServer({ guards: { authFailureLimit: 3 } })
  let base = ""
  beforeAll(async () => {
    base = await server.url()
  }, 120_000)
  afterAll(() => server.dispose())

  it(
    "slows a client down after repeated 401/403 answers (the postback PUT included) and logs them without the token",
    { timeout: 60_000 },
    async () => {
      const lines: Array<string> = []
      const capture = (...args: ReadonlyArray<unknown>) => void lines.push(args.map(String).join(" "))
      const spies = (["log", "info", "warn", "error"] as const).map((method) => vi.spyOn(console, method).mockImplementation(capture))
      const guess = "guessed-token-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
      const created = await fetch(`${base}/api/v1/deployments`, {
        method: "POST",
        headers: { authorization: `Bearer ${tokens.alice}`, "content-type": "application/json" },
        body: JSON.stringify(requestJson("brake.example.com"))
      })
      const { id } = (await created.json()) as { id: string }
      try {
        const statuses: Array<number> = []
        for (let attempt = 0; attempt < 3; attempt++) {
          statuses.push((await fetch(`${base}/api/v1/deployments`, { headers: { authorization: `Bearer ${guess}` } })).status)
        }
        // The postback door counts too (403 for a wrong token).
        statuses.push(
          (
            await fetch(`${base}/api/v1/deployments/${id}/kubeconfig`, {
              method: "PUT",
              headers: { authorization: `Bearer ${guess}` },
              body: "x"
            })
          ).status
        )
        const slowed = await fetch(`${base}/api/v1/deployments`, { headers: { authorization: `Bearer ${guess}` } })
        statuses.push(slowed.status)
        expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 403])
        expect(statuses[4]).toBe(429)
        expect(Number(slowed.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
        expect(((await slowed.json()) as { error: string }).error).toBe("too-many-failures")
        // While slowed down, even a good token from that client waits: guessing gains nothing.
        expect((await fetch(`${base}/api/v1/deployments`, { headers: { authorization: `Bearer ${tokens.alice}` } })).status).toBe(429)
        // Health stays outside the brake.
        expect((await fetch(`${base}/healthz`)).status).toBe(200)
        await waitUntil(async () => lines.some((line) => line.includes("slowing the client down")), 10_000)
        const failures = lines.filter((line) => line.includes("authentication failed"))
        expect(failures.length).toBeGreaterThanOrEqual(3)
        expect(failures.some((line) => line.includes(`PUT /api/v1/deployments/${id}/kubeconfig`))).toBe(true)
        expect(lines.join("\n")).not.toContain(guess)
        expect(lines.join("\n")).not.toContain(tokens.alice)
      } finally {
        for (const spy of spies) spy.mockRestore()
      }
    }
  )
})

describe("request shapes and the headers of every answer", () => {
  const server = makeServer()
  let base = ""
  beforeAll(async () => {
    base = await server.url()
  }, 120_000)
  afterAll(() => server.dispose())

  it("refuses a JSON body nested 100,000 levels deep with a 400 before decoding it", async () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000)
    const answer = await fetch(`${base}/api/v1/deployments`, {
      method: "POST",
      headers: { authorization: `Bearer ${tokens.alice}`, "content-type": "application/json" },
      body: deep
    })
    expect(answer.status).toBe(400)
    const body = (await answer.json()) as { error: string; issues: Array<{ message: string }> }
    expect(body.error).toBe("invalid-request")
    expect(body.issues[0]!.message).toContain("deeper than 64")
    // 64 levels are fine for the depth check (the request is then refused for what it is, not for its depth).
    const shallow = await fetch(`${base}/api/v1/deployments`, {
      method: "POST",
      headers: { authorization: `Bearer ${tokens.alice}`, "content-type": "application/json" },
      body: "[".repeat(64) + "]".repeat(64)
    })
    expect(shallow.status).toBe(400)
    expect(JSON.stringify(await shallow.json())).not.toContain("deeper than")
  })

  it("sends nosniff on every answer, no-store on authenticated ones, WWW-Authenticate on 401", async () => {
    const created = await fetch(`${base}/api/v1/deployments`, {
      method: "POST",
      headers: { authorization: `Bearer ${tokens.alice}`, "content-type": "application/json" },
      body: JSON.stringify(requestJson("headers.example.com"))
    })
    const { id } = (await created.json()) as { id: string }
    const answers = {
      health: await fetch(`${base}/healthz`),
      openapi: await fetch(`${base}/api/v1/openapi.json`),
      unknownRoute: await fetch(`${base}/api/v1/nowhere`),
      jwks: await fetch(`${base}/api/v1/handover/jwks.json`),
      noToken: await fetch(`${base}/api/v1/deployments`),
      badToken: await fetch(`${base}/api/v1/deployments`, { headers: { authorization: "Bearer not-a-token" } }),
      get: await fetch(`${base}/api/v1/deployments/${id}`, { headers: { authorization: `Bearer ${tokens.alice}` } }),
      list: await fetch(`${base}/api/v1/deployments`, { headers: { authorization: `Bearer ${tokens.alice}` } }),
      notFound: await fetch(`${base}/api/v1/deployments/ffffffffffffffff`, { headers: { authorization: `Bearer ${tokens.alice}` } }),
      postback: await fetch(`${base}/api/v1/deployments/${id}/kubeconfig`, {
        method: "PUT",
        headers: { authorization: "Bearer wrong" },
        body: "x"
      }),
      sse: await fetch(`${base}/api/v1/flows/${id}/stream`, { headers: { authorization: `Bearer ${tokens.alice}` } })
    }
    for (const [name, answer] of Object.entries(answers)) {
      expect(answer.headers.get("x-content-type-options"), name).toBe("nosniff")
    }
    for (const name of ["badToken", "get", "list", "notFound", "postback", "sse"] as const) {
      expect(answers[name].headers.get("cache-control") ?? "", name).toContain("no-store")
    }
    expect(answers.noToken.status).toBe(401)
    expect(answers.noToken.headers.get("www-authenticate")).toBe('Bearer realm="sovereign"')
    expect(answers.badToken.headers.get("www-authenticate")).toBe('Bearer realm="sovereign", error="invalid_token"')
    expect(answers.get.headers.get("www-authenticate")).toBeNull()
    await answers.sse.body?.cancel()
  })
})
