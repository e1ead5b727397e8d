/**
 * Defence in depth (issue 16): whatever path a kubeconfig takes to this adapter, a file reference, a
 * program or a plugin in it is refused here too, no file it names is ever read, and no connection goes
 * to any host but the kubeconfig's API server (a redirect to another host is not followed).
 */
import fs from "node:fs"
import * as https from "node:https"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it, vi } from "@effect/vitest"
import { FakeKubernetesApi } from "@sovereign/testkit"
import { Duration, Effect, Either, Redacted, Stream } from "effect"
import * as KubeClient from "../src/KubeClient.js"
import * as KubernetesClusterAccess from "../src/KubernetesClusterAccess.js"
import * as KubernetesClusterWatch from "../src/KubernetesClusterWatch.js"
import { ClusterWatch } from "@sovereign/core"

/** Files that exist and hold something a client would gladly send: reading any of them is the failure. */
const sentinelDirectory = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-defence-"))
const sentinel = (name: string, contents: string) => {
  const file = path.join(sentinelDirectory, name)
  fs.writeFileSync(file, contents)
  return file
}

/** Every way `node:fs` can open or probe a file, watched; returns the paths under the sentinel directory that were touched. */
const spyOnFiles = () => {
  const touched: Array<string> = []
  const record = (...args: ReadonlyArray<unknown>) => {
    const target = String(args[0])
    if (target.startsWith(sentinelDirectory)) touched.push(target)
  }
  const methods = ["readFileSync", "readFile", "openSync", "open", "createReadStream", "accessSync", "existsSync", "statSync"] as const
  for (const method of methods) {
    const original = fs[method] as (...args: Array<unknown>) => unknown
    vi.spyOn(fs, method).mockImplementation(((...args: Array<unknown>) => {
      record(...args)
      return original.apply(fs, args)
    }) as never)
  }
  const readFile = fs.promises.readFile
  vi.spyOn(fs.promises, "readFile").mockImplementation(((...args: Array<unknown>) => {
    record(...args)
    return (readFile as (...a: Array<unknown>) => unknown).apply(fs.promises, args)
  }) as never)
  return touched
}

afterEach(() => {
  vi.restoreAllMocks()
})

const withUser = (kubeconfig: string, user: string) => kubeconfig.replace(/ {4}token: .*/, user)
const withCluster = (kubeconfig: string, line: string) => kubeconfig.replace(/ {4}certificate-authority-data: .*/, line)

const variants = (fake: FakeKubernetesApi.FakeKubernetesApi) => {
  const ca = sentinel("ca.crt", fake.caPem)
  const token = sentinel("token", fake.token)
  const cert = sentinel("client.crt", fake.caPem)
  const key = sentinel("client.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
  const program = sentinel("credential.sh", "#!/bin/sh\necho '{}'\n")
  return [
    ["certificate-authority", withCluster(fake.kubeconfig, `    certificate-authority: ${ca}`)],
    ["token-file", withUser(fake.kubeconfig, `    token-file: ${token}`)],
    ["client-certificate", withUser(fake.kubeconfig, `    client-certificate: ${cert}\n    client-key-data: AAAA`)],
    ["client-key", withUser(fake.kubeconfig, `    client-certificate-data: AAAA\n    client-key: ${key}`)],
    ["exec", withUser(fake.kubeconfig, `    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ${program}`)],
    ["auth-provider", withUser(fake.kubeconfig, `    auth-provider:\n      name: tokenFile\n      config: {tokenFile: ${token}}`)]
  ] as const
}

describe("a kubeconfig that reaches the adapter by any path", () => {
  it.scopedLive(
    "with a file reference, a program or a plugin is refused by the client, the watch and the owner's access, and no file is read",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const touched = spyOnFiles()
        const watch = KubernetesClusterWatch.make({ reachability: { initialDelay: Duration.millis(10), budget: Duration.seconds(1) } })
        const access = KubernetesClusterAccess.make()
        for (const [field, kubeconfig] of variants(fake)) {
          const client = yield* Effect.flip(Effect.scoped(KubeClient.make(Redacted.make(kubeconfig))))
          expect(client.reason, field).toBe("InvalidKubeconfig")
          expect(client.message, field).toContain(field)
          const watched = yield* watch
            .watch(Redacted.make(kubeconfig), ClusterWatch.defaultWatchOptions)
            .pipe(Stream.runHead, Effect.either)
          expect(Either.isLeft(watched) && watched.left.reason, field).toBe("InvalidKubeconfig")
          const granted = yield* Effect.either(
            access.grantOwner(Redacted.make(kubeconfig), {
              email: "ops@example.com",
              role: "sovereign-admin",
              deploymentId: "0123456789abcdef"
            })
          )
          expect(Either.isLeft(granted), field).toBe(true)
        }
        expect(touched).toEqual([])
        // Nothing reached the API server either.
        expect((yield* fake.requests).length).toBe(0)
      }),
    60_000
  )

  it.scopedLive(
    "never follows a redirect to another host: the other host sees no connection",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        // Another host on this machine (127.0.0.2 is loopback too), counting every connection it gets.
        let connections = 0
        const elsewhere = net.createServer((socket) => {
          connections++
          socket.destroy()
        })
        yield* Effect.acquireRelease(
          Effect.async<void>((resume) => void elsewhere.listen(0, "127.0.0.2", () => resume(Effect.void))),
          () => Effect.sync(() => elsewhere.close())
        )
        const elsewherePort = (elsewhere.address() as net.AddressInfo).port
        // An API server (trusted by the kubeconfig's CA) that redirects every request there.
        const certificate = FakeKubernetesApi.makeServerCertificate(fake.authority, {
          commonName: "redirector",
          dnsNames: [],
          ipAddresses: ["127.0.0.1"]
        })
        const redirector = https.createServer({ cert: certificate.certPem, key: certificate.keyPem }, (request, response) => {
          response.writeHead(302, { location: `https://127.0.0.2:${elsewherePort}${request.url ?? "/"}` })
          response.end()
        })
        yield* Effect.acquireRelease(
          Effect.async<void>((resume) => void redirector.listen(0, "127.0.0.1", () => resume(Effect.void))),
          () => Effect.sync(() => redirector.close())
        )
        const port = (redirector.address() as net.AddressInfo).port
        const kubeconfig = fake.kubeconfigWith({ server: `https://127.0.0.1:${port}` })
        const client = yield* KubeClient.make(Redacted.make(kubeconfig))
        const probed = yield* Effect.flip(client.probe)
        expect(probed.reason).toBe("Untrusted")
        expect(probed.message).toContain("redirected to another host")
        const listed = yield* Effect.flip(client.request("list namespaces", (options) => client.core.listNamespace(undefined, options)))
        expect(listed.reason).toBe("Untrusted")
        const watched = yield* client.watch("/api/v1/namespaces", {}).pipe(Stream.runHead, Effect.either)
        expect(Either.isLeft(watched)).toBe(true)
        expect(connections).toBe(0)
      }),
    60_000
  )
})
