/** The `sovereign` command: `serve`, and the commands of `cli/Commands.ts` through the API's typed client. */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import * as fs from "node:fs"
import { adminTokenFile } from "./Auth.js"
import * as Client from "./cli/Client.js"
import { CliError, ExitCode } from "./cli/Client.js"
import * as Commands from "./cli/Commands.js"
import * as Progress from "./cli/Progress.js"
import { isProcessAlive } from "./internal/files.js"
import { serve } from "./Main.js"

const serverUrl = () => {
  const explicit = process.env.SOVEREIGN_URL
  if (explicit !== undefined && explicit.trim() !== "") return explicit.replace(/\/+$/, "")
  const host = process.env.SOVEREIGN_HOST ?? "127.0.0.1"
  return `http://${host.includes(":") ? `[${host}]` : host}:${process.env.SOVEREIGN_PORT ?? "8080"}`
}

/** The token from SOVEREIGN_TOKEN, else the admin token the server keeps in its data directory. */
const token = (): string | CliError => {
  const explicit = process.env.SOVEREIGN_TOKEN
  if (explicit !== undefined && explicit.trim() !== "") return explicit.trim()
  const file = adminTokenFile(process.env.SOVEREIGN_DATA_DIR ?? "./.sovereign")
  try {
    return fs.readFileSync(file, "utf8").trim()
  } catch {
    return new CliError({
      message: `no token: set SOVEREIGN_TOKEN, or run this where the server keeps ${file}`,
      exitCode: ExitCode.notFound
    })
  }
}

const style = process.stdout.isTTY && process.env.NO_COLOR === undefined ? Progress.ansi : Progress.plain

const console_: Commands.Console = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  style,
  tty: process.stdout.isTTY === true,
  columns: process.stdout.columns ?? 100
}

/** Every command but `serve`: the exit code is the process's. */
const main = (argv: ReadonlyArray<string>): Effect.Effect<number> => {
  // Help and completion work without a server or a token.
  const offline =
    argv.length === 0 ||
    ["help", "completion", "--help", "-h"].includes(argv.find((arg) => !arg.startsWith("-") || arg === "--help" || arg === "-h") ?? "help")
  const found = token()
  const target = { baseUrl: serverUrl(), token: found instanceof CliError ? "" : found }
  return Effect.gen(function* () {
    if (found instanceof CliError && !offline) return yield* found
    return yield* Commands.run(argv, console_)
  }).pipe(
    Effect.provide(Client.layer(target)),
    Effect.catchAll((error) =>
      Effect.sync(() => {
        const explained = Client.explain(error, target.baseUrl)
        console_.err(style.red(explained.message))
        return explained.exitCode
      })
    )
  )
}

/**
 * Started by an npm script (`npm start`), the server stops gracefully when npm itself is gone: a
 * SIGKILL to npm cannot pass the signal on, and the server must not live on as an orphan.
 */
const stopWithLauncher = () => {
  if (process.env.npm_lifecycle_event === undefined || process.platform !== "linux") return
  const statOf = (pid: number) => {
    try {
      return /^\d+ \((.*)\) \S+ (\d+)/.exec(fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
    } catch {
      return null
    }
  }
  // npm runs the script through `sh -c`, which may stay in between.
  let launcher = process.ppid
  const parent = statOf(launcher)
  if (parent !== null && ["sh", "dash", "bash"].includes(parent[1]!)) launcher = Number(parent[2])
  if (launcher <= 1) return
  setInterval(() => {
    if (!isProcessAlive(launcher)) process.kill(process.pid, "SIGTERM")
  }, 1000).unref()
}

const argv = process.argv.slice(2)
if (argv[0] === "serve") {
  stopWithLauncher()
  // `serve` logs a failed start itself, in the configured log format.
  NodeRuntime.runMain(serve, { disableErrorReporting: true })
} else {
  // A reader that stops early (\`| head\`) closes the pipe: that ends the command, it is no error.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => process.exit(error.code === "EPIPE" ? 0 : 1))
  Effect.runPromise(main(argv)).then(
    (code) => process.exit(code),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}
