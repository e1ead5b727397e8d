/**
 * The real server process for end-to-end tests: the bundle `npm start` runs
 * (`packages/server/dist/sovereign.mjs serve`) on a free loopback port, with everything it prints
 * captured, so a test exercises the artifact an operator runs. The server's and the console's tests
 * both start it through here.
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

/** Polls `condition` (no fixed sleeps: it re-checks as soon as the previous check finished, with a short pause). */
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
  /** Everything printed so far (stdout and stderr), across restarts when shared. */
  readonly output: () => string
  /** Sends `signal` (SIGTERM unless named) and waits for the exit. */
  readonly kill: (signal?: NodeJS.Signals) => Promise<void>
}

/** Starts `bundle serve` with `env` and waits for `/readyz`; `captured` collects the output (share it across restarts). */
export const start = async (
  bundle: string,
  env: Record<string, string>,
  captured: { text: string } = { text: "" }
): Promise<ServerProcess> => {
  // The free port may be taken by another test between our probe and the server's listen: try another.
  for (let attempt = 1; ; attempt++) {
    const before = captured.text.length
    try {
      return await startOnce(bundle, env, captured)
    } catch (error) {
      if (attempt >= 3 || !captured.text.slice(before).includes("EADDRINUSE")) throw error
    }
  }
}

const startOnce = async (bundle: string, env: Record<string, string>, captured: { text: string }): Promise<ServerProcess> => {
  if (!fs.existsSync(bundle)) throw new Error(`${bundle} is missing: run \`npm run build\` (vitest's global set-up does)`)
  const port = await freePort()
  const child = spawn(process.execPath, [bundle, "serve"], {
    // Metrics on a free port of their own unless the test names one (the default, 9464, would be shared by every test server).
    env: { ...process.env, SOVEREIGN_METRICS_PORT: "0", ...env, SOVEREIGN_HOST: "127.0.0.1", SOVEREIGN_PORT: String(port), NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  child.stdout!.on("data", (chunk) => (captured.text += chunk.toString()))
  child.stderr!.on("data", (chunk) => (captured.text += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const url = `http://127.0.0.1:${port}`
  const server: ServerProcess = {
    url,
    child,
    output: () => captured.text,
    kill: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
    }
  }
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}):\n${captured.text}`)
      const response = await fetch(`${url}/readyz`).catch(() => undefined)
      return response?.status === 200
    },
    180_000,
    () => `the server did not become ready:\n${captured.text}`
  )
  return server
}
