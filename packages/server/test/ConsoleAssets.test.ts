/**
 * The web console at `/` (issue 12): the API keeps its paths, any other GET serves the app's page (deep
 * links), hashed assets are cached for ever, the page carries its security headers, and a missing
 * build answers 503 with how to build it.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as ConsoleAssets from "../src/ConsoleAssets.js"
import { makeServer, tokens } from "./support/apiServer.js"

const consoleDir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-console-assets-"))
fs.mkdirSync(path.join(consoleDir, "assets"))
fs.writeFileSync(path.join(consoleDir, "index.html"), "<!doctype html><title>console</title>")
fs.writeFileSync(path.join(consoleDir, "assets", "app-0123456789ab.js"), "console.log(1)")
fs.writeFileSync(path.join(consoleDir, "secret.txt"), "not served")

let server: ReturnType<typeof makeServer>
let url: string

beforeAll(async () => {
  server = makeServer({ consoleDir })
  url = await server.url()
})

afterAll(async () => {
  await server?.dispose()
  fs.rmSync(consoleDir, { recursive: true, force: true })
})

describe("the console's files", () => {
  it("serves the page at / and at every path outside /api/ (deep links), with its security headers", async () => {
    for (const route of ["/", "/deployments/0123456789abcdef", "/new", "/secret.txt", "/../etc/passwd"]) {
      const response = await fetch(url + route)
      expect(response.status, route).toBe(200)
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8")
      expect(await response.text()).toContain("<title>console</title>")
      expect(response.headers.get("content-security-policy")).toContain("default-src 'self'")
      expect(response.headers.get("x-frame-options")).toBe("DENY")
      expect(response.headers.get("cache-control")).toBe("no-cache")
    }
  })

  it("serves hashed assets, cached for ever; an unknown asset is a 404", async () => {
    const asset = await fetch(`${url}/assets/app-0123456789ab.js`)
    expect(asset.status).toBe(200)
    expect(asset.headers.get("content-type")).toBe("text/javascript; charset=utf-8")
    expect(asset.headers.get("cache-control")).toContain("immutable")
    expect(await asset.text()).toBe("console.log(1)")
    expect((await fetch(`${url}/assets/app-missing.js`)).status).toBe(404)
    expect((await fetch(`${url}/assets/..%2Fsecret.txt`)).status).toBe(404)
  })

  it("leaves the API's paths to the API: health, unknown API routes (JSON 404), other methods", async () => {
    expect((await fetch(`${url}/readyz`)).status).toBe(200)
    const unknown = await fetch(`${url}/api/v1/nope`)
    expect(unknown.status).toBe(404)
    expect(await unknown.json()).toEqual({ error: "not-found", message: "no such route" })
    const list = await fetch(`${url}/api/v1/deployments`, { headers: { authorization: `Bearer ${tokens.admin}` } })
    expect(list.status).toBe(200)
    expect((await fetch(`${url}/anything`, { method: "POST" })).status).toBe(404)
  })

  it("answers 503 with how to build it when the build is missing", () => {
    const answer = ConsoleAssets.answer(ConsoleAssets.makeStore(path.join(consoleDir, "missing")), path.join(consoleDir, "missing"), "/")
    expect(answer.status).toBe(503)
  })
})
