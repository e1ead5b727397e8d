/** `sovereign serve` on embedded defaults: prints where it listens and a generated admin token that works; stops on SIGTERM. */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { start } from "./support/process.js"

describe("sovereign serve", () => {
  it(
    "prints the URL and a generated admin token (stored 0600), serves with it, and shuts down cleanly (exit 0, port closed) on SIGTERM",
    { timeout: 300_000 },
    async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-serve-"))
      const captured = { text: "" }
      const { SOVEREIGN_API_TOKENS: _tokens, ...env } = process.env
      const server = await start({ ...(env as Record<string, string>), SOVEREIGN_API_TOKENS: "", SOVEREIGN_DATA_DIR: dataDir }, captured)
      try {
        expect(captured.text).toContain(`Sovereign is listening on ${server.url}`)
        const token = /admin token (sov_[0-9a-f]+)/.exec(captured.text)?.[1]
        expect(token).toBeDefined()
        const file = path.join(dataDir, "admin-token")
        expect(fs.statSync(file).mode & 0o777).toBe(0o600)
        expect(fs.readFileSync(file, "utf8").trim()).toBe(token)
        const list = await fetch(`${server.url}/api/v1/deployments`, { headers: { authorization: `Bearer ${token}` } })
        expect(list.status).toBe(200)
        expect(await list.json()).toEqual({ deployments: [] })
        expect(fs.statSync(path.join(dataDir, "secret.key")).mode & 0o777).toBe(0o600)
        await server.kill("SIGTERM")
        // A clean shutdown: the process handles the signal and exits 0 (killed by it, signalCode would be set).
        expect({ exitCode: server.child.exitCode, signalCode: server.child.signalCode }).toEqual({ exitCode: 0, signalCode: null })
        await expect(fetch(`${server.url}/api/v1/deployments`, { headers: { authorization: `Bearer ${token}` } })).rejects.toThrow()
      } finally {
        await server.kill("SIGKILL")
        fs.rmSync(dataDir, { recursive: true, force: true })
      }
    }
  )

  it(
    "makes an existing data directory 0700, and a second start prints where the token is, never the token",
    { timeout: 300_000 },
    async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-serve-again-"))
      fs.chmodSync(dataDir, 0o755)
      const { SOVEREIGN_API_TOKENS: _tokens, ...env } = process.env
      const first = { text: "" }
      const second = { text: "" }
      let server = await start({ ...(env as Record<string, string>), SOVEREIGN_API_TOKENS: "", SOVEREIGN_DATA_DIR: dataDir }, first)
      try {
        expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700)
        const token = fs.readFileSync(path.join(dataDir, "admin-token"), "utf8").trim()
        expect(first.text).toContain(token)
        await server.kill("SIGTERM")
        // Someone loosened it meanwhile: the next start makes it private again.
        fs.chmodSync(dataDir, 0o755)
        server = await start({ ...(env as Record<string, string>), SOVEREIGN_API_TOKENS: "", SOVEREIGN_DATA_DIR: dataDir }, second)
        expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700)
        expect(second.text).toContain(`admin token in ${path.join(dataDir, "admin-token")}`)
        expect(second.text).not.toContain(token)
        const list = await fetch(`${server.url}/api/v1/deployments`, { headers: { authorization: `Bearer ${token}` } })
        expect(list.status).toBe(200)
      } finally {
        await server.kill("SIGKILL")
        fs.rmSync(dataDir, { recursive: true, force: true })
      }
    }
  )
})
