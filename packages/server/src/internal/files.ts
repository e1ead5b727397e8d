/** Small helpers for the data directory: private (0700/0600) files written atomically, and the pid lock's liveness check. */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

/** Creates the directory 0700, or makes an existing one 0700 (a directory another user can read would expose keys and tokens). */
export const ensurePrivateDir = (dir: string): void => {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  if ((fs.statSync(dir).mode & 0o077) !== 0) fs.chmodSync(dir, 0o700)
}

/** Writes a file readable only by its owner: temp file, fsync, rename. */
export const writePrivateFile = (file: string, contents: string | Uint8Array): void => {
  ensurePrivateDir(path.dirname(file))
  const temp = `${file}.${randomBytes(6).toString("hex")}.tmp`
  const fd = fs.openSync(temp, "w", 0o600)
  try {
    fs.writeSync(fd, typeof contents === "string" ? Buffer.from(contents) : contents)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(temp, file)
}

/** Reads the file, or creates it with `generate()` when it does not exist yet. */
export const readOrCreatePrivateFile = (file: string, generate: () => string): { readonly contents: string; readonly created: boolean } => {
  try {
    return { contents: fs.readFileSync(file, "utf8"), created: false }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error
    const contents = generate()
    writePrivateFile(file, contents)
    return { contents, created: true }
  }
}

/** Whether a process with this pid exists (one we may not signal still exists: EPERM). */
export const isProcessAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}
