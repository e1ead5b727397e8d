/** Generated malformed requests against every write endpoint: never a 5xx, always a JSON 4xx, never a secret in the answer. */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { makeServer, tokens } from "./support/apiServer.js"
import { requestJson } from "./support/fixtures.js"

const server = makeServer()
let base = ""
let existing = ""

beforeAll(async () => {
  base = await server.url()
  const created = await fetch(`${base}/api/v1/deployments`, {
    method: "POST",
    headers: { authorization: `Bearer ${tokens.alice}`, "content-type": "application/json" },
    body: JSON.stringify(requestJson("fuzz.example.com"))
  })
  existing = ((await created.json()) as { readonly id: string }).id
}, 120_000)
afterAll(() => server.dispose())

const secret = requestJson().credentials.hetznerToken

/** A request body: broken JSON, valid JSON of the wrong shape, or a valid request with one field mangled. */
const body = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.json({ maxDepth: 3 }),
  fc.constantFrom(
    "",
    "{",
    "[]",
    "null",
    '{"regions":',
    "\u0000",
    '{"a":1}'.repeat(3),
    JSON.stringify({ ...requestJson("nul.example.com"), orgName: "a\u0000b" })
  ),
  fc
    .record({
      field: fc.constantFrom(
        "sovereignFQDN",
        "orgEmail",
        "regions",
        "topology",
        "parentDomains",
        "sshPublicKey",
        "clusterMesh",
        "credentials",
        "haControlPlane",
        "extra"
      ),
      value: fc.oneof(fc.anything({ maxDepth: 2 }), fc.string(), fc.integer(), fc.constant(null))
    })
    .map(({ field, value }) => JSON.stringify({ ...requestJson(`f${Math.abs(field.length)}.example.com`), [field]: value }))
)

const contentType = fc.constantFrom(
  undefined,
  "application/json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/octet-stream",
  "application/json; charset=utf-16",
  ""
)

const id = fc.oneof(
  fc.constant("EXISTING"),
  fc.hexaString({ minLength: 16, maxLength: 16 }),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.constantFrom("..", "%2e%2e", "%ff", "a%2Fb", "%00", "x".repeat(300))
)

const token = fc.constantFrom(undefined, tokens.alice, tokens.bob, tokens.admin, "garbage", "", "Bearer Bearer")

const requestArbitrary = fc.record({
  route: fc.constantFrom("create", "kubeconfig", "retry", "wipe", "finalise", "delete"),
  id,
  body,
  contentType,
  token,
  query: fc.constantFrom(
    "",
    "?force=true",
    "?force=maybe",
    "?region=",
    "?region=%ff",
    "?region=hel1-1",
    "?region=nowhere",
    "?%%%",
    "?force=true&force=false"
  )
})

describe("fuzzing the write endpoints", () => {
  it("answers 1,000 malformed requests with JSON 4xx only", { timeout: 600_000 }, async () => {
    const seen = new Map<number, number>()
    await fc.assert(
      fc.asyncProperty(requestArbitrary, async (request) => {
        const target = request.id === "EXISTING" ? existing : request.id
        const [method, path] =
          request.route === "create"
            ? ["POST", "/api/v1/deployments"]
            : request.route === "kubeconfig"
              ? ["PUT", `/api/v1/deployments/${target}/kubeconfig`]
              : request.route === "delete"
                ? ["DELETE", `/api/v1/deployments/${target}`]
                : ["POST", `/api/v1/deployments/${target}/${request.route}`]
        const headers: Record<string, string> = {}
        if (request.token !== undefined)
          headers.authorization =
            request.route === "kubeconfig" && request.token === tokens.alice ? "Bearer postback-guess" : `Bearer ${request.token}`
        if (request.contentType !== undefined) headers["content-type"] = request.contentType
        const response = await fetch(`${base}${path}${request.query}`, { method, headers, body: request.body })
        const text = await response.text()
        seen.set(response.status, (seen.get(response.status) ?? 0) + 1)
        const accepted = response.status === 201 || response.status === 202 || response.status === 200
        if (!accepted) {
          expect(response.status, `${method} ${path}${request.query} → ${text}`).toBeGreaterThanOrEqual(400)
          expect(response.status, `${method} ${path}${request.query} → ${text}`).toBeLessThan(500)
          expect(response.headers.get("content-type") ?? "").toContain("application/json")
          expect(typeof JSON.parse(text).error).toBe("string")
        }
        expect(text).not.toContain(secret)
      }),
      { numRuns: 1000, seed: 4242 }
    )
    // The run must have exercised more than one kind of refusal.
    expect([...seen.keys()].filter((status) => status >= 400).length).toBeGreaterThanOrEqual(4)
  })
})
