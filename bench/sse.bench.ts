/**
 * SSE fan-out: the latency from a committed flow change to its frame at every stream client, at 1,000
 * and 10,000 clients, and the 1,000-client figure against a bare `node:http` server writing the same
 * bytes to 1,000 sockets in the same run (rounds alternate between the two, so both see the same
 * machine). The clients run in a child process (`support/sseClients.mjs`), stamping arrivals on the
 * monotonic clock every process shares.
 */
import { DeploymentRepo, FlowEvents } from "@sovereign/core"
import { Effect } from "effect"
import { fork, type ChildProcess } from "node:child_process"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"
import { makeServer, tokens } from "../packages/server/test/support/apiServer.js"
import { requestJson } from "../packages/server/test/support/fixtures.js"
import { sseFrame } from "../packages/server/src/Http.js"
import type { Metric } from "./run.js"

const now = () => Number(process.hrtime.bigint()) / 1e6

export const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  const sorted = Float64Array.from(samples).sort()
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))]!
}

const summary = (samples: ReadonlyArray<number>) => ({
  p50: percentile(samples, 0.5),
  p99: percentile(samples, 0.99),
  max: percentile(samples, 1)
})

type FromClients =
  | { readonly type: "opened"; readonly group: string }
  | { readonly type: "failed"; readonly group: string; readonly message: string }
  | { readonly type: "complete"; readonly group: string; readonly id: string; readonly arrivals: ReadonlyArray<number> }
  | { readonly type: "closed"; readonly group: string }

/** A child process of stream clients, in groups; `until(group, id)` answers every client's arrival time of frame `id`. */
export const clientProcess = () => {
  const child: ChildProcess = fork(fileURLToPath(new URL("./support/sseClients.mjs", import.meta.url)), [], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    // Plain node (no TypeScript loader) for the clients.
    execArgv: []
  })
  const reported = new Map<string, ReadonlyArray<number>>()
  const closed = new Map<string, number>()
  const failures: Array<string> = []
  const listeners = new Set<() => void>()
  child.on("message", (message: FromClients) => {
    if (message.type === "complete") reported.set(`${message.group}/${message.id}`, message.arrivals)
    if (message.type === "opened") reported.set(`${message.group}/:opened`, [])
    if (message.type === "closed") closed.set(message.group, (closed.get(message.group) ?? 0) + 1)
    if (message.type === "failed") failures.push(message.message)
    for (const listener of listeners) listener()
  })
  /** Resolves with what the clients reported under `key`; rejects on any client failure or after `timeoutMs`. */
  const wait = (key: string, timeoutMs: number) =>
    new Promise<ReadonlyArray<number>>((resolve, reject) => {
      const settle = (outcome: () => void) => {
        clearTimeout(timer)
        listeners.delete(check)
        outcome()
      }
      const check = () => {
        const found = reported.get(key)
        if (found !== undefined) {
          reported.delete(key)
          settle(() => resolve(found))
        } else if (failures.length > 0) settle(() => reject(new Error(`a client failed: ${failures[0]}`)))
      }
      const timer = setTimeout(() => {
        // Ask the clients what they saw, then fail with it.
        failures.length = 0
        child.send({ type: "status" })
        setTimeout(
          () => settle(() => reject(new Error(`the clients did not report ${key} within ${timeoutMs} ms: ${failures[0] ?? "no status"}`))),
          1000
        )
      }, timeoutMs)
      listeners.add(check)
      check()
    })
  return {
    /** Opens `count` streams of `path` on `base` and waits until each has received frame `firstId`. */
    open: async (group: string, base: string, path: string, count: number, firstId: string) => {
      const { hostname, port } = new URL(base)
      const request = `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${tokens.alice}\r\nAccept: text/event-stream\r\n\r\n`
      child.send({ type: "open", group, host: hostname, port: Number(port), request, count })
      await wait(`${group}/:opened`, 600_000)
      await wait(`${group}/${firstId}`, 600_000)
    },
    until: (group: string, id: string) => wait(`${group}/${id}`, 60_000),
    dropped: (group: string) => closed.get(group) ?? 0,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve())
        child.send({ type: "stop" })
      })
  }
}

/** The change every round publishes: one node of the deployment's flow moves. */
const change = (id: string, round: number) => ({
  type: "upsert-nodes",
  nodes: [{ id: `${id}:n${round}`, flowId: id, label: "n", status: "running" }]
})

/** A bare `node:http` server that writes whatever bytes it is given to every open response. */
const nodeBaseline = async () => {
  const responses = new Set<http.ServerResponse>()
  const server = http.createServer((_request, response) => {
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
    response.write(sseFrame({ event: "snapshot", id: 0, data: {} }))
    responses.add(response)
    response.on("close", () => responses.delete(response))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Writes to every response in one loop; answers when it started (on the shared clock). */
    write: (bytes: Uint8Array) => {
      const at = now()
      for (const response of responses) response.write(bytes)
      return Promise.resolve(at)
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const response of responses) response.destroy()
        server.close(() => resolve())
      })
  }
}

/** The same bare server in a child process: `write` answers when (on the shared clock) it started writing. */
const nodeBaselineProcess = async () => {
  const child = fork(fileURLToPath(new URL("./support/nodeBaselineServer.mjs", import.meta.url)), [], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    execArgv: []
  })
  const next = <A>(type: string) =>
    new Promise<A>((resolve) => {
      const listener = (message: { readonly type: string }) => {
        if (message.type !== type) return
        child.off("message", listener)
        resolve(message as A)
      }
      child.on("message", listener)
    })
  const { port } = await next<{ readonly port: number }>("listening")
  return {
    base: `http://127.0.0.1:${port}`,
    write: async (bytes: Uint8Array) => {
      const written = next<{ readonly at: number }>("written")
      child.send({ type: "write", frame: Buffer.from(bytes).toString("utf8") })
      return (await written).at
    },
    close: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve())
        child.send({ type: "stop" })
      })
  }
}

/**
 * `clients` flow-stream clients of one deployment on an in-process server (PGlite), and, when
 * `baseline`, as many clients of a bare node:http server. Each round publishes one change through
 * `FlowEvents` (a commit, then the announcement) and, alternately, has the bare server write the
 * very bytes Sovereign sends for it, and, with `events`, appends a deployment event for as many
 * clients of the deployment's event stream; `warmup` rounds are not counted.
 */
export const sseLatency = async (options: {
  readonly clients: number
  readonly rounds: number
  readonly warmup?: number
  /** The bare server in this process, in a child process of its own (its clients in a second client process), or none. */
  readonly baseline: "none" | "in-process" | "child-process"
  readonly events?: boolean
}) => {
  const server = makeServer()
  const clients = clientProcess()
  const baselineClients = options.baseline === "child-process" ? clientProcess() : clients
  const baseline =
    options.baseline === "in-process"
      ? await nodeBaseline()
      : options.baseline === "child-process"
        ? await nodeBaselineProcess()
        : undefined
  try {
    const base = await server.url()
    const created = await fetch(`${base}/api/v1/deployments`, {
      method: "POST",
      headers: { authorization: `Bearer ${tokens.alice}`, "content-type": "application/json" },
      body: JSON.stringify(requestJson("bench.example.com"))
    })
    const id = ((await created.json()) as { readonly id: string }).id
    await clients.open("sovereign", base, `/api/v1/flows/${id}/stream`, options.clients, "0")
    if (baseline !== undefined) await baselineClients.open("node", baseline.base, "/", options.clients, "0")
    // The deployment's event stream (its first event, 1, is `accepted`), when asked for.
    if (options.events) await clients.open("events", base, `/api/v1/deployments/${id}/events`, options.clients, "1")
    const samples = { sovereign: new Array<number>(), node: new Array<number>(), commit: new Array<number>(), events: new Array<number>() }
    const warmup = options.warmup ?? 3
    for (let round = 1; round <= warmup + options.rounds; round++) {
      const calledAt = now()
      // Stamped in the publishing fiber the moment `publish` returns: committed and announced, before
      // the fan-out's fiber has run.
      const [event, committedAt] = await server.runtime.runPromise(
        Effect.flatMap(FlowEvents.FlowEvents, (flow) =>
          Effect.map(flow.publish(id, [change(id, round)], Date.now()), (published) => [published[0]!, now()] as const)
        )
      )
      const arrivals = await clients.until("sovereign", String(round))
      if (round > warmup) {
        samples.sovereign.push(...arrivals.map((at) => at - committedAt))
        samples.commit.push(committedAt - calledAt)
      }
      if (baseline !== undefined) {
        const bytes = sseFrame({ event: "upsert-nodes", id: event.seq, data: event.message })
        const reached = baselineClients.until("node", String(round))
        const writtenAt = await baseline.write(bytes)
        const arrived = await reached
        if (round > warmup) samples.node.push(...arrived.map((at) => at - writtenAt))
      }
      if (options.events) {
        const [appended, appendedAt] = await server.runtime.runPromise(
          Effect.flatMap(DeploymentRepo.DeploymentRepo, (repo) =>
            Effect.map(
              repo.appendEvents(id, [{ at: Date.now(), phase: "deployment", level: "info", message: `round ${round}`, type: "step" }]),
              (events) => [events[0]!, now()] as const
            )
          )
        )
        const reached = await clients.until("events", String(appended.seq))
        if (round > warmup) samples.events.push(...reached.map((at) => at - appendedAt))
      }
    }
    return {
      sovereign: summary(samples.sovereign),
      commit: summary(samples.commit),
      node: baseline === undefined ? undefined : summary(samples.node),
      events: options.events ? summary(samples.events) : undefined,
      dropped: clients.dropped("sovereign") + clients.dropped("events")
    }
  } finally {
    await clients.stop()
    if (baselineClients !== clients) await baselineClients.stop()
    await baseline?.close()
    await server.dispose()
  }
}

export default async (): Promise<Record<string, Metric>> => {
  const thousand = await sseLatency({ clients: 1000, rounds: 100, baseline: "in-process", events: true })
  const tenThousand = await sseLatency({ clients: 10_000, rounds: 10, baseline: "child-process" })
  return {
    "sse.latency.1000_clients.p99_ms": { value: thousand.sovereign.p99, unit: "ms", goal: "<= 50" },
    "sse.latency.1000_clients.p50_ms": { value: thousand.sovereign.p50, unit: "ms" },
    "sse.latency.1000_clients.max_ms": { value: thousand.sovereign.max, unit: "ms" },
    "sse.node_baseline.1000_clients.p99_ms": { value: thousand.node!.p99, unit: "ms" },
    "sse.node_baseline.1000_clients.p50_ms": { value: thousand.node!.p50, unit: "ms" },
    "sse.fanout.ratio_to_node_baseline": { value: thousand.sovereign.p99 / thousand.node!.p99, unit: "ratio", goal: "<= 2" },
    "sse.latency.10000_clients.p99_ms": { value: tenThousand.sovereign.p99, unit: "ms", goal: "<= 100" },
    "sse.latency.10000_clients.p50_ms": { value: tenThousand.sovereign.p50, unit: "ms" },
    "sse.latency.10000_clients.max_ms": { value: tenThousand.sovereign.max, unit: "ms" },
    "sse.latency.10000_clients.replicas": { value: 1, unit: "replicas" },
    "sse.node_baseline.10000_clients.p99_ms": { value: tenThousand.node!.p99, unit: "ms" },
    "sse.node_baseline.10000_clients.p50_ms": { value: tenThousand.node!.p50, unit: "ms" },
    "sse.events.latency.1000_clients.p99_ms": { value: thousand.events!.p99, unit: "ms" },
    "sse.events.latency.1000_clients.p50_ms": { value: thousand.events!.p50, unit: "ms" },
    "sse.commit.p50_ms": { value: thousand.commit.p50, unit: "ms" },
    "sse.dropped_clients": { value: thousand.dropped + tenThousand.dropped, unit: "clients", goal: "0" }
  }
}
