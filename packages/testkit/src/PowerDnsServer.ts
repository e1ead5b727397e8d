/** A real PowerDNS Authoritative server for tests: gsqlite3 on a fresh database, free loopback ports, stopped with its scope. */
import { Context, Data, Duration, Effect, Layer, Redacted, Schedule } from "effect"
import type { Scope } from "effect"
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { createSocket } from "node:dgram"
import { existsSync } from "node:fs"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export class PowerDnsServerError extends Data.TaggedError("PowerDnsServerError")<{ readonly message: string }> {}

export interface PowerDnsServer {
  /** Base URL of the webserver, e.g. `http://127.0.0.1:41234` (the API lives under `/api/v1`). */
  readonly apiUrl: string
  readonly apiKey: Redacted.Redacted<string>
  readonly serverId: string
  /** Holds pdns.conf, the sqlite database and the control socket; removed when the server stops. */
  readonly directory: string
  /** UDP and TCP port on 127.0.0.1 that answers DNS queries. */
  readonly dnsPort: number
  /** Creates a Native zone (canonical name) through the API; an existing zone is fine. */
  readonly createZone: (name: string) => Effect.Effect<void, PowerDnsServerError>
  /** Sends one raw API request, for seeding records the way another tool would. */
  readonly request: (
    method: string,
    path: string,
    body?: unknown
  ) => Effect.Effect<{ readonly status: number; readonly body: string }, PowerDnsServerError>
}

export class PowerDnsServerTag extends Context.Tag("@sovereign/testkit/PowerDnsServer")<PowerDnsServerTag, PowerDnsServer>() {}

export interface StartOptions {
  /** Zones to create before the server is handed out. */
  readonly zones?: ReadonlyArray<string>
  readonly apiKey?: string
}

/** Where Debian's pdns-backend-sqlite3 puts the schema (the doc copy is the fallback). */
const schemaCandidates = [
  "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql",
  "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql"
]

const freeTcpPort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const udpPortFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = createSocket("udp4")
    socket.once("error", () => resolve(false))
    socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)))
  })

const freeDnsPort = async (): Promise<number> => {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freeTcpPort()
    if (await udpPortFree(port)) return port
  }
  throw new Error("no loopback port free for both TCP and UDP")
}

const run = (command: string, args: ReadonlyArray<string>, input?: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "ignore", "pipe"] })
    let stderr = ""
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    child.once("error", reject)
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}: ${stderr}`))))
    child.stdin?.end(input ?? "")
  })

const stop = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const force = setTimeout(() => child.kill("SIGKILL"), 5_000)
    child.once("exit", () => {
      clearTimeout(force)
      resolve()
    })
    child.kill("SIGTERM")
  })

const fail = (what: string) => (cause: unknown) =>
  new PowerDnsServerError({ message: `${what}: ${cause instanceof Error ? cause.message : String(cause)}` })

/** Starts one pdns_server and stops it (and removes its directory) when the scope closes, also on failure. */
export const start = (options: StartOptions = {}): Effect.Effect<PowerDnsServer, PowerDnsServerError, Scope.Scope> =>
  Effect.gen(function* () {
    const schema = schemaCandidates.find((path) => existsSync(path))
    if (schema === undefined) {
      return yield* new PowerDnsServerError({
        message: "pdns-backend-sqlite3 is not installed (apt-get install pdns-server pdns-backend-sqlite3 sqlite3)"
      })
    }
    const directory = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => mkdtemp(join(tmpdir(), "sovereign-pdns-")), catch: fail("temporary directory") }),
      (path) => Effect.promise(() => rm(path, { recursive: true, force: true }))
    )
    const apiKey = options.apiKey ?? `test-${Math.random().toString(36).slice(2)}`
    const database = join(directory, "pdns.sqlite3")
    yield* Effect.tryPromise({
      try: async () => run("sqlite3", [database], await readFile(schema, "utf8")),
      catch: fail("creating the sqlite database")
    })
    // A port taken between probing and binding makes pdns_server exit at once: try again on new ports.
    const launch = Effect.gen(function* () {
      const [dnsPort, webPort] = yield* Effect.tryPromise({
        try: async () => [await freeDnsPort(), await freeTcpPort()] as const,
        catch: fail("finding free ports")
      })
      const config = [
        "launch=gsqlite3",
        `gsqlite3-database=${database}`,
        "gsqlite3-dnssec=yes",
        "local-address=127.0.0.1",
        `local-port=${dnsPort}`,
        "api=yes",
        `api-key=${apiKey}`,
        "webserver=yes",
        "webserver-address=127.0.0.1",
        `webserver-port=${webPort}`,
        "webserver-allow-from=127.0.0.0/8",
        `socket-dir=${directory}`,
        "guardian=no",
        "daemon=no",
        "disable-syslog=yes",
        "loglevel=4"
      ].join("\n")
      yield* Effect.tryPromise({ try: () => writeFile(join(directory, "pdns.conf"), `${config}\n`), catch: fail("writing pdns.conf") })

      let output = ""
      const child = yield* Effect.acquireRelease(
        Effect.try({
          try: () => {
            const process = spawn(
              "pdns_server",
              [`--config-dir=${directory}`, "--daemon=no", "--guardian=no", `--socket-dir=${directory}`],
              {
                stdio: ["ignore", "pipe", "pipe"]
              }
            )
            const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4_000))
            process.stdout?.on("data", keep)
            process.stderr?.on("data", keep)
            process.on("error", (error) => keep(Buffer.from(`spawn failed: ${error.message}\n`)))
            return process
          },
          catch: fail("starting pdns_server")
        }),
        (process) => Effect.promise(() => stop(process))
      )

      const apiUrl = `http://127.0.0.1:${webPort}`
      const request = (method: string, path: string, body?: unknown) =>
        Effect.tryPromise({
          try: async () => {
            const response = await fetch(`${apiUrl}/api/v1/servers/localhost${path}`, {
              method,
              headers: { "X-API-Key": apiKey, "Content-Type": "application/json" },
              ...(body === undefined ? {} : { body: JSON.stringify(body) })
            })
            return { status: response.status, body: await response.text() }
          },
          catch: fail(`${method} ${path}`)
        })

      // Wait for the API to answer instead of sleeping; give up with the server's own output.
      yield* Effect.suspend(() =>
        child.exitCode !== null || child.signalCode !== null
          ? Effect.fail(new PowerDnsServerError({ message: `pdns_server exited early:\n${output}` }))
          : request("GET", "").pipe(
              Effect.filterOrFail(
                (answer) => answer.status === 200,
                () => new PowerDnsServerError({ message: "API not ready" })
              )
            )
      ).pipe(
        Effect.retry({
          schedule: Schedule.spaced(Duration.millis(50)),
          while: (error) => !error.message.startsWith("pdns_server exited early")
        }),
        Effect.timeoutFail({
          duration: Duration.seconds(20),
          onTimeout: () => new PowerDnsServerError({ message: `pdns_server did not answer within 20s:\n${output}` })
        })
      )
      return { apiUrl, request, dnsPort }
    })
    const { apiUrl, request, dnsPort } = yield* launch.pipe(
      Effect.retry({ times: 3, while: (error) => error.message.startsWith("pdns_server exited early") })
    )

    const createZone = (name: string) =>
      request("POST", "/zones", { name, kind: "Native", nameservers: [] }).pipe(
        Effect.flatMap((answer) =>
          answer.status === 201 || answer.status === 409
            ? Effect.void
            : Effect.fail(new PowerDnsServerError({ message: `creating zone ${name}: ${answer.status} ${answer.body}` }))
        )
      )
    for (const zone of options.zones ?? []) yield* createZone(zone)

    return { apiUrl, apiKey: Redacted.make(apiKey), serverId: "localhost", directory, dnsPort, createZone, request }
  })

/** The server as a scoped layer, for `layer(...)` in @effect/vitest. */
export const layer = (options: StartOptions = {}): Layer.Layer<PowerDnsServerTag, PowerDnsServerError> =>
  Layer.scoped(PowerDnsServerTag, start(options))
