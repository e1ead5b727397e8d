/** A real etcd (Debian etcd-server) on free loopback ports with client-certificate auth, stopped with its scope. */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface EtcdServer {
  readonly port: number
  readonly dataDir: string
}

const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/**
 * Starts `etcd` serving TLS on 127.0.0.1 with `--client-cert-auth`: only clients whose certificate
 * chains to `trustedCa` get in. Resolves once etcd logs that it serves clients.
 */
export const start = (options: { readonly serverCert: string; readonly serverKey: string; readonly trustedCa: string }) =>
  Effect.gen(function* () {
    const directory = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "sovereign-etcd-"))),
      (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true }))
    )
    const file = (name: string, content: string) => {
      const path = join(directory, name)
      writeFileSync(path, content, { mode: 0o600 })
      return path
    }
    const [clientPort, peerPort] = [yield* freePort, yield* freePort]
    const peerUrl = `http://127.0.0.1:${peerPort}`
    const clientUrl = `https://127.0.0.1:${clientPort}`
    const args = [
      "--name", "mesh",
      "--data-dir", join(directory, "data"),
      "--listen-client-urls", clientUrl,
      "--advertise-client-urls", clientUrl,
      "--listen-peer-urls", peerUrl,
      "--initial-advertise-peer-urls", peerUrl,
      "--initial-cluster", `mesh=${peerUrl}`,
      "--cert-file", file("server.crt", options.serverCert),
      "--key-file", file("server.key", options.serverKey),
      "--trusted-ca-file", file("ca.crt", options.trustedCa),
      "--client-cert-auth",
      "--logger", "zap"
    ]
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => spawn("etcd", args, { stdio: ["ignore", "pipe", "pipe"] })),
      (process) =>
        Effect.async<void>((resume) => {
          if (process.exitCode !== null || process.signalCode !== null) return resume(Effect.void)
          process.once("exit", () => resume(Effect.void))
          process.kill("SIGTERM")
        })
    )
    let log = ""
    yield* Effect.async<void, Error>((resume) => {
      const onData = (chunk: Buffer) => {
        log += chunk.toString()
        if (/serving client (traffic|requests) securely|ready to serve client requests/.test(log) && log.includes(String(clientPort))) {
          resume(Effect.void)
        }
      }
      child.stdout!.on("data", onData)
      child.stderr!.on("data", onData)
      child.once("exit", (code) => resume(Effect.fail(new Error(`etcd exited with ${code}:\n${log}`))))
      child.once("error", (error) => resume(Effect.fail(error)))
    }).pipe(Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error(`etcd did not become ready:\n${log}`) }))
    return { port: clientPort, dataDir: directory } satisfies EtcdServer
  })
