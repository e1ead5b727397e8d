/** A real etcd (Debian etcd-server) on a free loopback port with client-certificate auth, stopped with its scope. */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { request } from "node:https"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface EtcdServer {
  /** The client port on 127.0.0.1 (TLS). */
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
      "--name",
      "mesh",
      "--data-dir",
      join(directory, "data"),
      "--listen-client-urls",
      clientUrl,
      "--advertise-client-urls",
      clientUrl,
      "--listen-peer-urls",
      peerUrl,
      "--initial-advertise-peer-urls",
      peerUrl,
      "--initial-cluster",
      `mesh=${peerUrl}`,
      "--cert-file",
      file("server.crt", options.serverCert),
      "--key-file",
      file("server.key", options.serverKey),
      "--trusted-ca-file",
      file("ca.crt", options.trustedCa),
      "--client-cert-auth",
      "--logger",
      "zap"
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

/** A client identity for etcd, PEM. */
export interface TlsIdentity {
  /** The CA that must have signed the server's certificate. */
  readonly ca: string
  readonly cert: string
  readonly key: string
}

/**
 * One call to etcd's v3 JSON gateway over TLS with full server verification: the certificate must
 * chain to `identity.ca` and carry `servername` (the name the client dialled, not the address).
 */
export const call = (
  address: { readonly host: string; readonly port: number },
  servername: string,
  identity: TlsIdentity,
  path: string,
  body: unknown
) =>
  Effect.async<unknown, Error>((resume) => {
    const outgoing = request(
      {
        host: address.host,
        port: address.port,
        path,
        method: "POST",
        servername,
        ca: identity.ca,
        cert: identity.cert,
        key: identity.key,
        headers: { "content-type": "application/json" },
        agent: false,
        timeout: 10_000
      },
      (response) => {
        let text = ""
        response.on("data", (chunk: Buffer) => (text += chunk.toString()))
        response.on("end", () =>
          response.statusCode === 200
            ? resume(Effect.succeed(JSON.parse(text)))
            : resume(Effect.fail(new Error(`HTTP ${response.statusCode}: ${text}`)))
        )
      }
    )
    outgoing.on("timeout", () => outgoing.destroy(new Error(`etcd at ${address.host}:${address.port} did not answer`)))
    outgoing.on("error", (error) => resume(Effect.fail(error)))
    outgoing.end(JSON.stringify(body))
  })

const base64 = (text: string) => Buffer.from(text).toString("base64")

export const put = (
  address: { readonly host: string; readonly port: number },
  servername: string,
  identity: TlsIdentity,
  key: string,
  value: string
) => Effect.asVoid(call(address, servername, identity, "/v3/kv/put", { key: base64(key), value: base64(value) }))

/** The value of `key`, or undefined when it is absent. */
export const get = (address: { readonly host: string; readonly port: number }, servername: string, identity: TlsIdentity, key: string) =>
  Effect.map(call(address, servername, identity, "/v3/kv/range", { key: base64(key) }), (answer) => {
    const kvs = (answer as { readonly kvs?: ReadonlyArray<{ readonly value?: string }> }).kvs
    const value = kvs?.[0]?.value
    return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8")
  })
