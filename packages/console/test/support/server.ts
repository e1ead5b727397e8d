/**
 * The real server process for the browser tests: the bundle `npm start` runs
 * (`packages/server/dist/sovereign.mjs serve`, built by this project's global set-up) on a free
 * loopback port, serving the console's build.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
export const bundle = path.resolve(here, "../../../server/dist/sovereign.mjs")

/** A token as long and as random as the server demands (≥ 32 characters, many distinct ones). */
export const testToken = (label: string): string => `${label}-${randomBytes(24).toString("hex")}`

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

/** Polls `condition` with a short pause between checks (no fixed sleeps). */
export const waitUntil = async (
  condition: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => string = () => "condition"
): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await condition()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`timed out: ${describe()}`)
}

export interface ServerProcess {
  readonly url: string
  readonly child: ChildProcess
  readonly output: () => string
  readonly kill: () => Promise<void>
}

export const start = async (env: Record<string, string>): Promise<ServerProcess> => {
  // the probed port may be taken by another test before the server listens: try another
  for (let attempt = 1; ; attempt++) {
    const output = { text: "" }
    try {
      return await startOnce(env, output)
    } catch (error) {
      if (attempt >= 3 || !output.text.includes("EADDRINUSE")) throw error
    }
  }
}

const startOnce = async (env: Record<string, string>, captured: { text: string }): Promise<ServerProcess> => {
  if (!fs.existsSync(bundle)) throw new Error(`${bundle} is missing: run \`npm run build\` (vitest's global set-up does)`)
  const port = await freePort()
  const child = spawn(process.execPath, [bundle, "serve"], {
    env: { ...process.env, SOVEREIGN_METRICS_PORT: "0", ...env, SOVEREIGN_HOST: "127.0.0.1", SOVEREIGN_PORT: String(port), NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  child.stdout!.on("data", (chunk) => (captured.text += chunk.toString()))
  child.stderr!.on("data", (chunk) => (captured.text += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const url = `http://127.0.0.1:${port}`
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}):\n${captured.text}`)
      const response = await fetch(`${url}/readyz`).catch(() => undefined)
      return response?.status === 200
    },
    180_000,
    () => `the server did not become ready:\n${captured.text}`
  )
  return {
    url,
    child,
    output: () => captured.text,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      await exited
    }
  }
}
