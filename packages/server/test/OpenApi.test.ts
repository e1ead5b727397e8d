/**
 * The OpenAPI document the server serves passes a strict OpenAPI 3.1 schema validator and Redocly's
 * recommended lint rules without a problem (offline: both tools run on the document in memory).
 */
import { describe, expect, it } from "@effect/vitest"
import { createConfig, lintFromString } from "@redocly/openapi-core"
import { Validator } from "@seriousme/openapi-schema-validator"
import { openApi } from "../src/Api.js"
import { makeServer } from "./support/apiServer.js"

const served = async () => {
  const server = makeServer()
  try {
    const response = await fetch(`${await server.url()}/api/v1/openapi.json`)
    expect(response.status).toBe(200)
    return (await response.json()) as Record<string, unknown>
  } finally {
    await server.dispose()
  }
}

type Operation = { readonly summary?: string; readonly security?: ReadonlyArray<unknown>; readonly tags?: ReadonlyArray<string> }

describe("the OpenAPI document", () => {
  it("is the one the server serves, and valid under a strict OpenAPI 3.1 schema validator", async () => {
    const document = await served()
    expect(document).toEqual(JSON.parse(JSON.stringify(openApi)))
    expect(document.openapi).toMatch(/^3\.1\./)
    const result = await new Validator().validate(document)
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([])
    expect(result.valid).toBe(true)
    // The duplicate `$id` a strict validator refused is gone from the flow snapshot's `meta`.
    expect(JSON.stringify(document)).not.toContain('"$id":"/schemas/')
  })

  it("is clean under Redocly's recommended rules: summaries, descriptions, servers, license", async () => {
    const config = await createConfig({ extends: ["recommended"] })
    const problems = await lintFromString({ source: JSON.stringify(openApi), absoluteRef: "openapi.json", config })
    expect(
      problems.map((problem) => `${problem.severity} ${problem.ruleId}: ${problem.message} at ${problem.location[0]?.pointer ?? ""}`)
    ).toEqual([])
  })

  it("a document without summaries or servers is not clean (the lint is live)", async () => {
    const config = await createConfig({ extends: ["recommended"] })
    const { servers: _servers, ...withoutServers } = JSON.parse(JSON.stringify(openApi)) as Record<string, unknown>
    const problems = await lintFromString({ source: JSON.stringify(withoutServers), absoluteRef: "openapi.json", config })
    expect(problems.map((problem) => problem.ruleId)).toContain("no-empty-servers")
  })

  it("every operation has a summary, and every route but the probes and the public ones needs a bearer token", () => {
    const paths = openApi.paths as Record<string, Record<string, Operation>>
    let operations = 0
    for (const [route, item] of Object.entries(paths)) {
      for (const [method, operation] of Object.entries(item)) {
        operations++
        expect(operation.summary, `${method} ${route}`).toEqual(expect.any(String))
        const isPublic = (operation.tags ?? []).some((tag) => tag === "health" || tag === "public")
        if (isPublic) expect(operation.security ?? [], `${method} ${route}`).toEqual([])
        else expect(operation.security, `${method} ${route}`).toEqual([{ bearer: [] }])
      }
    }
    expect(operations).toBeGreaterThanOrEqual(22)
    expect(openApi.servers?.length).toBe(1)
  })
})
