/** The `sovereign` command: `serve`, `deploy <request.json> [--follow]`, `status [<id>]`, `logs <id>`, `wipe <id>`. */
import { NodeRuntime } from "@effect/platform-node"
import { FlowGraph, type FlowMessage } from "@sovereign/core"
import * as fs from "node:fs"
import * as path from "node:path"
import { adminTokenFile } from "./Auth.js"
import { isProcessAlive } from "./internal/files.js"
import * as Progress from "./cli/Progress.js"
import { readStream } from "./cli/Sse.js"
import { serve } from "./Main.js"

const usage = `Usage: sovereign <command>

  serve                               run the server (simulator world on PGlite unless configured)
  deploy <request.json> [--follow]    submit a deployment; --follow shows live progress until it ends
  status [<id>]                       list deployments, or show one
  logs <id>                           print the deployment's events
  wipe <id> [--force]                 remove everything the deployment created

Environment: SOVEREIGN_URL (default http://SOVEREIGN_HOST:SOVEREIGN_PORT), SOVEREIGN_TOKEN
(default: the admin token in SOVEREIGN_DATA_DIR); the server reads the variables of its README.`

class CliError extends Error {}

const serverUrl = () => {
  const explicit = process.env.SOVEREIGN_URL
  if (explicit !== undefined && explicit.trim() !== "") return explicit.replace(/\/+$/, "")
  const host = process.env.SOVEREIGN_HOST ?? "127.0.0.1"
  return `http://${host.includes(":") ? `[${host}]` : host}:${process.env.SOVEREIGN_PORT ?? "8080"}`
}

const token = () => {
  const explicit = process.env.SOVEREIGN_TOKEN
  if (explicit !== undefined && explicit.trim() !== "") return explicit.trim()
  const file = adminTokenFile(process.env.SOVEREIGN_DATA_DIR ?? "./.sovereign")
  try {
    return fs.readFileSync(file, "utf8").trim()
  } catch {
    throw new CliError(`no token: set SOVEREIGN_TOKEN, or run this where the server keeps ${file}`)
  }
}

const api = async (method: string, route: string, body?: unknown): Promise<any> => {
  let response: Response
  try {
    response = await fetch(`${serverUrl()}${route}`, {
      method,
      headers: { authorization: `Bearer ${token()}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
  } catch (error) {
    if (error instanceof CliError) throw error
    throw new CliError(`cannot reach the server at ${serverUrl()} (is \`npm start\` running?)`)
  }
  const text = await response.text()
  const json = text === "" ? undefined : safeJson(text)
  if (!response.ok) {
    const issues = Array.isArray(json?.issues) ? json.issues.map((issue: any) => `\n  ${issue.path || "(request)"}: ${issue.message}`).join("") : ""
    throw new CliError(`${response.status} ${json?.error ?? ""}: ${json?.message ?? text}${issues}`)
  }
  return json
}

const safeJson = (text: string) => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const style = process.stdout.isTTY && process.env.NO_COLOR === undefined ? Progress.ansi : Progress.plain

const time = (ms: number | undefined) => (ms === undefined ? "" : new Date(ms).toISOString().replace("T", " ").slice(0, 19))

const printDeployment = (state: any) => {
  console.log(`${style.bold(state.request.sovereignFQDN)}  ${state.id}  ${state.status}`)
  console.log(`  owner ${state.owner}  created ${time(state.createdAt)}${state.finishedAt === undefined ? "" : `  finished ${time(state.finishedAt)}`}`)
  for (const region of state.results.regions ?? []) {
    const health = region.phase1 === undefined ? "" : `  phase1 ${region.phase1.installed}/${region.phase1.total} ${region.phase1.state}`
    console.log(`  ${String(region.regionKey).padEnd(10)} ${region.provider}/${region.cloudRegion}  phase0 ${region.phase0}${health}${region.error === undefined ? "" : style.red(`  ${region.error}`)}`)
  }
  if (state.error !== undefined) console.log(style.red(`  error: ${state.error}`))
  if (state.handoverURL !== undefined) console.log(`  handover: ${state.handoverURL}`)
}

const follow = async (id: string): Promise<number> => {
  const state = await api("GET", `/api/v1/deployments/${id}`)
  const regions: Array<string> = (state.results.regions ?? []).map((region: any) => region.regionKey)
  let snapshot: FlowMessage.Snapshot | undefined
  let view: Progress.View = {
    id,
    fqdn: state.request.sovereignFQDN,
    status: state.status,
    progress: [],
    problems: [],
    handoverURL: undefined,
    error: state.error
  }
  const tty = process.stdout.isTTY === true
  let drawn = 0
  let lastPlain = ""
  const draw = () => {
    const lines = Progress.render(view, style, Math.max(60, process.stdout.columns ?? 100))
    if (tty) {
      if (drawn > 0) process.stdout.write(`\x1b[${drawn}A\x1b[J`)
      process.stdout.write(lines.join("\n") + "\n")
      drawn = lines.length
    } else {
      // Without a terminal, print a compact line only when something changed.
      const summary = view.progress.map((entry) => `${entry.phase}/${entry.region} ${entry.done}/${entry.total}`).join("  ")
      const line = `${view.status}  ${summary}`
      if (line !== lastPlain) console.log(line)
      lastPlain = line
    }
  }
  let timer: NodeJS.Timeout | undefined
  const schedule = () => {
    timer ??= setTimeout(() => {
      timer = undefined
      draw()
    }, 100)
  }
  const controller = new AbortController()
  const flow = readStream(`${serverUrl()}/api/v1/flows/${id}/stream`, { token: token(), signal: controller.signal }, (frame) => {
    if (frame.event === "heartbeat") return
    const message = safeJson(frame.data) as FlowMessage.FlowMessage | undefined
    if (message === undefined) return
    snapshot = message.type === "snapshot" ? message : snapshot === undefined ? undefined : FlowGraph.apply(snapshot, message)
    if (snapshot !== undefined) view = { ...view, progress: Progress.progressOf(snapshot, regions) }
    schedule()
  }).catch((error) => {
    if (!controller.signal.aborted) console.error(style.dim(`flow stream ended: ${error.message}`))
  })
  await readStream(`${serverUrl()}/api/v1/deployments/${id}/events`, { token: token() }, (frame) => {
    if (frame.event === "heartbeat") return
    const data = safeJson(frame.data)
    if (data === undefined) return
    if (frame.event === "done") {
      view = { ...view, status: data.status, error: data.error, handoverURL: data.handoverURL ?? view.handoverURL }
      return false
    }
    if (frame.event === "handover-ready" && typeof data.handoverURL === "string") view = { ...view, handoverURL: data.handoverURL }
    if (data.type === "status" && typeof data.state === "string") view = { ...view, status: data.state }
    if (data.level === "warn" || data.level === "error") view = { ...view, problems: [...view.problems, { level: data.level, message: data.message }].slice(-3) }
    if (!tty && (data.type === "status" || data.level !== "info")) console.log(`${time(data.at)}  ${data.level.padEnd(5)} ${data.message}`)
    schedule()
  })
  controller.abort()
  await flow
  if (timer !== undefined) clearTimeout(timer)
  if (tty) draw()
  else for (const line of Progress.render(view, style)) console.log(line)
  return view.status === "ready" || view.status === "wiped" || view.status === "adopted" ? 0 : 1
}

const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  const [command, ...rest] = argv
  const flags = new Set(rest.filter((arg) => arg.startsWith("--")))
  const args = rest.filter((arg) => !arg.startsWith("--"))
  switch (command) {
    case "deploy": {
      const file = args[0]
      if (file === undefined) throw new CliError("deploy needs a request file: sovereign deploy <request.json>")
      let request: unknown
      try {
        request = JSON.parse(fs.readFileSync(path.resolve(file), "utf8"))
      } catch (error) {
        throw new CliError(`cannot read ${file}: ${(error as Error).message}`)
      }
      const created = await api("POST", "/api/v1/deployments", request)
      console.log(`Deployment ${created.id} accepted (${created.status})`)
      return flags.has("--follow") ? follow(created.id) : 0
    }
    case "status": {
      if (args[0] !== undefined) {
        printDeployment(await api("GET", `/api/v1/deployments/${args[0]}`))
        return 0
      }
      const list = await api("GET", "/api/v1/deployments")
      if (list.deployments.length === 0) console.log("No deployments.")
      for (const entry of list.deployments) {
        console.log(`${entry.id}  ${String(entry.status).padEnd(16)} ${entry.sovereignFQDN.padEnd(30)} ${entry.regions.join(",")}  ${time(entry.createdAt)}`)
      }
      return 0
    }
    case "logs": {
      const id = args[0]
      if (id === undefined) throw new CliError("logs needs a deployment id")
      await readStream(`${serverUrl()}/api/v1/deployments/${id}/events`, { token: token() }, (frame) => {
        const data = safeJson(frame.data)
        if (frame.event === "done" || data === undefined) return frame.event !== "done"
        if (frame.event === "heartbeat") return
        const line = `${time(data.at)}  ${String(data.level).padEnd(5)} ${data.phase.padEnd(11)} ${data.message}${data.handoverURL === undefined ? "" : ` ${data.handoverURL}`}`
        console.log(data.level === "error" ? style.red(line) : data.level === "warn" ? style.yellow(line) : line)
      })
      return 0
    }
    case "wipe": {
      const id = args[0]
      if (id === undefined) throw new CliError("wipe needs a deployment id")
      const answer = await api("POST", `/api/v1/deployments/${id}/wipe${flags.has("--force") ? "?force=true" : ""}`)
      console.log(`${answer.id}: ${answer.status} — ${answer.message}`)
      return 0
    }
    default:
      console.log(usage)
      return command === undefined || command === "help" || command === "--help" ? 0 : 2
  }
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
  NodeRuntime.runMain(serve)
} else {
  main(argv).then(
    (code) => process.exit(code),
    (error) => {
      console.error(error instanceof CliError ? style.red(error.message) : error)
      process.exit(1)
    }
  )
}
