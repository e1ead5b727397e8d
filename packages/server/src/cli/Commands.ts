/**
 * The `sovereign` commands other than `serve`: each talks to the server through the `HttpApi`-derived
 * client, prints text for people or, with `--output json`, JSON for programs, and ends with an exit code.
 */
import { FlowGraph, type FlowMessage, type Job } from "@sovereign/core"
import { Effect, Fiber, Option, Schedule, Stream } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type * as Api from "../Api.js"
import { CliError, CliTarget, deploymentEvents, ExitCode, explain, flowMessages, SovereignClient, type EventFrame } from "./Client.js"
import * as Progress from "./Progress.js"

export const commands = [
  "deploy",
  "status",
  "logs",
  "jobs",
  "tree",
  "retry",
  "wipe",
  "finalise",
  "delete",
  "dns-plan",
  "completion",
  "help"
] as const

export const usage = `Usage: sovereign <command> [--output json]

  serve                               run the server (simulator world on PGlite unless configured)
  deploy <request.json> [--follow]    submit a deployment; --follow shows live progress until it ends
  status [<id>]                       list deployments, or show one
  logs <id>                           print the deployment's events (replayed, then live until it ends)
  jobs <id>                           list the deployment's jobs with their status
  tree <id>                           the deployment's graph as an indented tree with statuses
  retry <id>                          retry a failed deployment from where it failed
  wipe <id> [--force]                 remove everything the deployment created
  finalise <id>                       end a ready deployment's handover (adopted)
  delete <id> [--wipe]                delete the deployment's record (--wipe: wipe it first, and wait)
  dns-plan <id>                       what publishing the deployment's DNS names would change now
  completion bash|zsh                 print a shell completion script

  --output json (-o json)             machine-readable output: one JSON document (logs: one JSON object per line)

Exit codes: 0 ok, 1 failed (a deployment that ends failed, a refused request, the server unreachable),
2 usage, 3 not found or unauthorised.

Environment: SOVEREIGN_URL (default http://SOVEREIGN_HOST:SOVEREIGN_PORT), SOVEREIGN_TOKEN
(default: the admin token in SOVEREIGN_DATA_DIR); the server reads the variables of its README.`

export interface Invocation {
  readonly command: string | undefined
  readonly args: ReadonlyArray<string>
  readonly flags: ReadonlySet<string>
  readonly json: boolean
}

/** Splits argv into a command, its positional arguments and flags; `--output json`, `--output=json` and `-o json` alike. */
export const parse = (argv: ReadonlyArray<string>): Invocation | CliError => {
  const args: Array<string> = []
  const flags = new Set<string>()
  let output = "text"
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!
    if (arg === "--output" || arg === "-o") {
      const value = argv[++index]
      if (value === undefined) return new CliError({ message: "--output needs a value: json or text", exitCode: ExitCode.usage })
      output = value
    } else if (arg.startsWith("--output=")) output = arg.slice("--output=".length)
    else if (arg.startsWith("-")) flags.add(arg)
    else args.push(arg)
  }
  if (output !== "json" && output !== "text")
    return new CliError({ message: `--output ${output}: use json or text`, exitCode: ExitCode.usage })
  const [command, ...rest] = args
  return { command, args: rest, flags, json: output === "json" }
}

export interface Console {
  readonly out: (line: string) => void
  readonly err: (line: string) => void
  readonly style: Progress.Style
  /** Whether stdout is a terminal (the live progress redraws in place). */
  readonly tty: boolean
  readonly columns: number
}

const time = (ms: number | undefined) => (ms === undefined ? "" : new Date(ms).toISOString().replace("T", " ").slice(0, 19))

const needId = (invocation: Invocation) =>
  invocation.args[0] === undefined
    ? Effect.fail(
        new CliError({
          message: `${invocation.command} needs a deployment id: sovereign ${invocation.command} <id>`,
          exitCode: ExitCode.usage
        })
      )
    : Effect.succeed(invocation.args[0])

// ---------------------------------------------------------------------------------------------
// Views

type DeploymentState = typeof Api.DeploymentState.Type

const printDeployment = (console: Console, state: DeploymentState) => {
  const { style } = console
  console.out(`${style.bold(state.request.sovereignFQDN)}  ${state.id}  ${state.status}`)
  console.out(
    `  owner ${state.owner}  created ${time(state.createdAt)}${state.finishedAt === undefined ? "" : `  finished ${time(state.finishedAt)}`}`
  )
  for (const region of state.results.regions) {
    const health = region.phase1 === undefined ? "" : `  phase1 ${region.phase1.installed}/${region.phase1.total} ${region.phase1.state}`
    console.out(
      `  ${region.regionKey.padEnd(10)} ${region.provider}/${region.cloudRegion}  phase0 ${region.phase0}${health}${region.error === undefined ? "" : style.red(`  ${region.error}`)}`
    )
  }
  if (state.error !== undefined) console.out(style.red(`  error: ${state.error}`))
  if (state.handoverURL !== undefined) console.out(`  handover: ${state.handoverURL}`)
}

const eventLine = (console: Console, event: EventFrame) => {
  const line = `${time(event.at)}  ${event.level.padEnd(5)} ${event.phase.padEnd(11)} ${event.message}${event.handoverURL === undefined ? "" : ` ${event.handoverURL}`}`
  return event.level === "error" ? console.style.red(line) : event.level === "warn" ? console.style.yellow(line) : line
}

export interface TreeNode {
  readonly id: string
  readonly label: string
  readonly status: string
  readonly region?: string
  readonly children: ReadonlyArray<TreeNode>
}

/** The snapshot's nodes nested by their `contains` relationships (child → container), in snapshot order. */
export const treeOf = (snapshot: FlowMessage.Snapshot): ReadonlyArray<TreeNode> => {
  const parentOf = new Map<string, string>()
  const ids = new Set(snapshot.nodes.map((node) => node.id))
  for (const relationship of snapshot.relationships) {
    if (relationship.type === "contains" && ids.has(relationship.toId)) parentOf.set(relationship.fromId, relationship.toId)
  }
  const childrenOf = new Map<string, Array<FlowMessage.FlowNode>>()
  for (const node of snapshot.nodes) {
    const parent = parentOf.get(node.id) ?? ""
    childrenOf.set(parent, [...(childrenOf.get(parent) ?? []), node])
  }
  const build = (node: FlowMessage.FlowNode, seen: ReadonlySet<string>): TreeNode => ({
    id: node.id,
    label: node.label,
    status: node.status,
    ...(node.region === undefined ? {} : { region: node.region }),
    children: seen.has(node.id) ? [] : (childrenOf.get(node.id) ?? []).map((child) => build(child, new Set([...seen, node.id])))
  })
  return (childrenOf.get("") ?? []).map((node) => build(node, new Set()))
}

/** `flux tree` style: one line per node, `├──`/`└──` under its container, the status after the label. */
export const renderTree = (roots: ReadonlyArray<TreeNode>, style: Progress.Style = Progress.plain): ReadonlyArray<string> => {
  const lines: Array<string> = []
  const paint = (status: string) =>
    ["succeeded", "installed", "ready", "done"].includes(status)
      ? style.green(status)
      : ["failed", "error"].includes(status)
        ? style.red(status)
        : ["running", "installing", "retrying"].includes(status)
          ? style.yellow(status)
          : style.dim(status)
  const walk = (node: TreeNode, prefix: string, last: boolean, root: boolean) => {
    lines.push(`${root ? "" : `${prefix}${last ? "└── " : "├── "}`}${node.label} [${paint(node.status)}]`)
    const nextPrefix = root ? "" : `${prefix}${last ? "    " : "│   "}`
    node.children.forEach((child, index) => walk(child, nextPrefix, index === node.children.length - 1, false))
  }
  for (const root of roots) walk(root, "", true, true)
  return lines
}

const printJobs = (console: Console, jobs: ReadonlyArray<Job.Job>) => {
  if (jobs.length === 0) console.out("No jobs.")
  for (const job of jobs) {
    const seconds = job.durationMs > 0 ? `${(job.durationMs / 1000).toFixed(1)}s` : ""
    console.out(`${job.jobName.padEnd(40)} ${job.status.padEnd(10)} ${(job.region ?? "").padEnd(8)} ${seconds}`)
  }
}

// ---------------------------------------------------------------------------------------------
// Completion

export const completion = (shell: string): string | undefined => {
  const words = ["serve", ...commands].join(" ")
  if (shell === "bash") {
    return `# sovereign completion for bash: source <(sovereign completion bash)
_sovereign() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$prev" = "--output" ] || [ "$prev" = "-o" ]; then COMPREPLY=( $(compgen -W "json text" -- "$cur") ); return; fi
  if [ "$COMP_CWORD" -eq 1 ]; then COMPREPLY=( $(compgen -W "${words}" -- "$cur") ); return; fi
  case "\${COMP_WORDS[1]}" in
    deploy) COMPREPLY=( $(compgen -f -W "--follow --output" -- "$cur") ) ;;
    wipe) COMPREPLY=( $(compgen -W "--force --output" -- "$cur") ) ;;
    delete) COMPREPLY=( $(compgen -W "--wipe --output" -- "$cur") ) ;;
    completion) COMPREPLY=( $(compgen -W "bash zsh" -- "$cur") ) ;;
    *) COMPREPLY=( $(compgen -W "--output" -- "$cur") ) ;;
  esac
}
complete -F _sovereign sovereign
`
  }
  if (shell === "zsh") {
    return `#compdef sovereign
# sovereign completion for zsh: sovereign completion zsh > "\${fpath[1]}/_sovereign"
_sovereign() {
  local -a subcommands
  subcommands=(${words})
  if (( CURRENT == 2 )); then compadd -- $subcommands; return; fi
  case $words[2] in
    deploy) _arguments '--follow[show live progress]' '--output[output format]:format:(json text)' '*:request file:_files' ;;
    wipe) _arguments '--force[wipe even if younger than the minimum life]' '--output[output format]:format:(json text)' ;;
    delete) _arguments '--wipe[wipe first and wait]' '--output[output format]:format:(json text)' ;;
    completion) compadd -- bash zsh ;;
    *) _arguments '--output[output format]:format:(json text)' ;;
  esac
}
compdef _sovereign sovereign
`
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// deploy --follow

const finishedOk = (status: string) => status === "ready" || status === "wiped" || status === "adopted"

/** Live progress until the deployment's event stream ends; the final state. */
const follow = (console: Console, initial: DeploymentState) =>
  Effect.gen(function* () {
    const regions = initial.results.regions.map((region) => region.regionKey)
    let snapshot: FlowMessage.Snapshot | undefined
    let view: Progress.View = {
      id: initial.id,
      fqdn: initial.request.sovereignFQDN,
      status: initial.status,
      progress: [],
      problems: [],
      handoverURL: undefined,
      error: initial.error
    }
    let drawn = 0
    let lastPlain = ""
    const draw = () => {
      const lines = Progress.render(view, console.style, Math.max(60, console.columns))
      if (console.tty) {
        if (drawn > 0) process.stdout.write(`\x1b[${drawn}A\x1b[J`)
        process.stdout.write(lines.join("\n") + "\n")
        drawn = lines.length
      } else {
        const summary = view.progress.map((entry) => `${entry.phase}/${entry.region} ${entry.done}/${entry.total}`).join("  ")
        const line = `${view.status}  ${summary}`
        if (line !== lastPlain) console.out(line)
        lastPlain = line
      }
    }
    // The flow graph feeds the bars; it runs beside the events and stops with them.
    const flow = yield* flowMessages(initial.id).pipe(
      Stream.runForEach((message) =>
        Effect.sync(() => {
          snapshot = message.type === "snapshot" ? message : snapshot === undefined ? undefined : FlowGraph.apply(snapshot, message)
          if (snapshot !== undefined) view = { ...view, progress: Progress.progressOf(snapshot, regions) }
        })
      ),
      Effect.catchAll((error) => Effect.sync(() => console.err(console.style.dim(`flow stream ended: ${error.message}`)))),
      Effect.fork
    )
    const ticker = yield* Effect.fork(Effect.repeat(Effect.sync(draw), Schedule.spaced("200 millis")))
    let final: DeploymentState = initial
    yield* deploymentEvents(initial.id).pipe(
      Stream.runForEach((item) =>
        Effect.sync(() => {
          if (item._tag === "Done") {
            final = item.state
            view = { ...view, status: item.state.status, error: item.state.error, handoverURL: item.state.handoverURL ?? view.handoverURL }
            return
          }
          const event = item.event
          if (event.type === "handover-ready" && event.handoverURL !== undefined) view = { ...view, handoverURL: event.handoverURL }
          if (event.type === "status" && event.state !== undefined) view = { ...view, status: event.state }
          if (event.level === "warn" || event.level === "error")
            view = { ...view, problems: [...view.problems, { level: event.level, message: event.message }].slice(-3) }
          if (!console.tty && (event.type === "status" || event.level !== "info"))
            console.out(`${time(event.at)}  ${event.level.padEnd(5)} ${event.message}`)
        })
      )
    )
    yield* Fiber.interrupt(flow)
    yield* Fiber.interrupt(ticker)
    if (console.tty) draw()
    else for (const line of Progress.render(view, console.style)) console.out(line)
    return final
  })

// ---------------------------------------------------------------------------------------------
// The commands

const readRequest = (file: string) =>
  Effect.try({
    try: () => JSON.parse(fs.readFileSync(path.resolve(file), "utf8")) as unknown,
    catch: (error) =>
      new CliError({ message: `cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`, exitCode: ExitCode.usage })
  })

const printJson = (console: Console, value: unknown) => console.out(JSON.stringify(value, null, 2))

/** Runs one command; the exit code it ends with. */
export const run = (argv: ReadonlyArray<string>, console: Console) =>
  Effect.gen(function* () {
    const invocation = parse(argv)
    if (invocation instanceof CliError) return yield* invocation
    const target = yield* CliTarget
    const client = yield* SovereignClient
    const { json } = invocation
    const api = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.mapError(effect, (error) => explain(error, target.baseUrl))
    switch (invocation.flags.has("--help") || invocation.flags.has("-h") ? "help" : invocation.command) {
      case "deploy": {
        const file = invocation.args[0]
        if (file === undefined)
          return yield* new CliError({ message: "deploy needs a request file: sovereign deploy <request.json>", exitCode: ExitCode.usage })
        const request = yield* readRequest(file)
        const created = yield* api(client.deployments.create({ payload: request }))
        // The web console's page of the new deployment (served by the same server, issue 12).
        const consolePage = `${target.baseUrl.replace(/\/+$/, "")}/deployments/${encodeURIComponent(created.id)}`
        if (!invocation.flags.has("--follow")) {
          if (json) printJson(console, created)
          else console.out(`Deployment ${created.id} accepted (${created.status})\nConsole: ${consolePage}`)
          return ExitCode.ok
        }
        if (!json) console.out(`Deployment ${created.id} accepted (${created.status})\nConsole: ${consolePage}`)
        const initial = yield* api(client.deployments.get({ path: { id: created.id } }))
        const final = json
          ? yield* Stream.runLast(deploymentEvents(created.id)).pipe(
              Effect.map(Option.flatMap((item) => (item._tag === "Done" ? Option.some(item.state) : Option.none()))),
              Effect.map(Option.getOrElse(() => initial))
            )
          : yield* follow(console, initial)
        if (json) printJson(console, final)
        return finishedOk(final.status) ? ExitCode.ok : ExitCode.failed
      }
      case "status": {
        const id = invocation.args[0]
        if (id !== undefined) {
          const state = yield* api(client.deployments.get({ path: { id } }))
          if (json) printJson(console, state)
          else printDeployment(console, state)
          return ExitCode.ok
        }
        const list = yield* api(client.deployments.list())
        if (json) printJson(console, list)
        else {
          if (list.deployments.length === 0) console.out("No deployments.")
          for (const entry of list.deployments) {
            console.out(
              `${entry.id}  ${entry.status.padEnd(16)} ${entry.sovereignFQDN.padEnd(30)} ${entry.regions.join(",")}  ${time(entry.createdAt)}`
            )
          }
        }
        return ExitCode.ok
      }
      case "logs": {
        const id = yield* needId(invocation)
        yield* deploymentEvents(id).pipe(
          Stream.runForEach((item) =>
            Effect.sync(() => {
              if (item._tag === "Event") console.out(json ? JSON.stringify(item.event) : eventLine(console, item.event))
            })
          )
        )
        return ExitCode.ok
      }
      case "jobs": {
        const id = yield* needId(invocation)
        const jobs = yield* api(client.deployments.jobs({ path: { id } }))
        if (json) printJson(console, jobs)
        else printJobs(console, jobs.jobs)
        return ExitCode.ok
      }
      case "tree": {
        const id = yield* needId(invocation)
        const snapshot = yield* api(client.deployments.flowSnapshot({ path: { id } }))
        const roots = treeOf(snapshot)
        if (json) printJson(console, { id, tree: roots })
        else for (const line of renderTree(roots, console.style)) console.out(line)
        return ExitCode.ok
      }
      case "retry":
      case "finalise": {
        const id = yield* needId(invocation)
        const answer =
          invocation.command === "retry"
            ? yield* api(client.deployments.retry({ path: { id } }))
            : yield* api(client.deployments.finalise({ path: { id } }))
        if (json) printJson(console, answer)
        else console.out(`${answer.id}: ${answer.status}${"message" in answer ? ` — ${answer.message}` : ""}`)
        return ExitCode.ok
      }
      case "wipe": {
        const id = yield* needId(invocation)
        const answer = yield* api(
          client.deployments.wipe({ path: { id }, urlParams: invocation.flags.has("--force") ? { force: "true" } : {} })
        )
        if (json) printJson(console, answer)
        else console.out(`${answer.id}: ${answer.status} — ${answer.message}`)
        return ExitCode.ok
      }
      case "delete": {
        const id = yield* needId(invocation)
        if (invocation.flags.has("--wipe")) {
          const state = yield* api(client.deployments.get({ path: { id } }))
          if (state.status !== "wiped") {
            if (state.status !== "wiping") yield* api(client.deployments.wipe({ path: { id }, urlParams: { force: "true" } }))
            if (!json) console.out(`${id}: wiping…`)
            const final = yield* Stream.runLast(deploymentEvents(id))
            const status = Option.match(final, {
              onNone: () => "unknown",
              onSome: (item) => (item._tag === "Done" ? item.state.status : "unknown")
            })
            if (status !== "wiped")
              return yield* new CliError({ message: `${id}: the wipe ended ${status}; the record is kept`, exitCode: ExitCode.failed })
          }
        }
        const answer = yield* api(client.deployments.remove({ path: { id } }))
        if (json) printJson(console, answer)
        else console.out(`${answer.id}: deleted (${answer.mode})`)
        return ExitCode.ok
      }
      case "dns-plan": {
        const id = yield* needId(invocation)
        const plan = yield* api(client.deployments.dnsPlan({ path: { id } }))
        if (json) printJson(console, plan)
        else {
          for (const zone of plan.plans) {
            console.out(`zone ${zone.zone}`)
            for (const [action, sets] of [
              ["create", zone.changes.create],
              ["update", zone.changes.update],
              ["delete", zone.changes.delete]
            ] as const) {
              for (const set of sets) console.out(`  ${action.padEnd(7)} ${set.name} ${set.type} ${set.records.join(",")}`)
            }
            if (zone.changes.create.length + zone.changes.update.length + zone.changes.delete.length === 0) console.out("  (no changes)")
          }
          for (const warning of plan.warnings)
            console.out(console.style.yellow(`  warning ${warning.name} ${warning.type}: ${warning.message}`))
        }
        return ExitCode.ok
      }
      case "completion": {
        const shell = invocation.args[0] ?? ""
        const script = completion(shell)
        if (script === undefined)
          return yield* new CliError({ message: "completion needs a shell: sovereign completion bash|zsh", exitCode: ExitCode.usage })
        if (json) printJson(console, { shell, script })
        else console.out(script.trimEnd())
        return ExitCode.ok
      }
      case undefined:
      case "help":
        if (json) printJson(console, { usage, commands: [...commands, "serve"] })
        else console.out(usage)
        return ExitCode.ok
      default:
        return yield* new CliError({ message: `unknown command ${invocation.command}\n\n${usage}`, exitCode: ExitCode.usage })
    }
  })
