/**
 * A PostgreSQL server of the test's own (initdb + pg_ctl on a free port in a temp dir), for tests that
 * stop and start it; the shared server on 5432 is never touched. As root, it runs as `postgres`.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { freePort } from "./process.js"

const bin = "/usr/lib/postgresql/15/bin"

export interface PrivatePostgres {
  readonly url: string
  readonly stop: () => void
  readonly start: () => void
  readonly destroy: () => void
}

const asOwner = (command: string, args: ReadonlyArray<string>) => {
  const isRoot = process.getuid?.() === 0
  return isRoot
    ? execFileSync("runuser", ["-u", "postgres", "--", path.join(bin, command), ...args], { stdio: "pipe" })
    : execFileSync(path.join(bin, command), [...args], { stdio: "pipe" })
}

export const create = async (): Promise<PrivatePostgres> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-pg-"))
  const data = path.join(dir, "data")
  fs.mkdirSync(data, { mode: 0o700 })
  if (process.getuid?.() === 0) execFileSync("chown", ["-R", "postgres:postgres", dir])
  asOwner("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"])
  const port = await freePort()
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`
  const start = () => void asOwner("pg_ctl", ["-D", data, "-o", options, "-l", path.join(dir, "log"), "-w", "-t", "60", "start"])
  const stop = () => void asOwner("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "60", "stop"])
  start()
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    destroy: () => {
      try {
        stop()
      } catch {
        // already stopped
      }
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}
