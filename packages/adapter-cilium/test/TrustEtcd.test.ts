/**
 * Real trust: the files the adapter writes into a region's `cilium-clustermesh` Secret, used exactly
 * as a Cilium agent uses them, open a TLS session to a real etcd that trusts only the peer's CA.
 */
import { Deployment, MeshProvider } from "@sovereign/core"
import { MeshWorld } from "@sovereign/testkit/MeshProviderSuite"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs"
import { request } from "node:https"
import type { LookupFunction } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Certificates from "../src/Certificates.js"
import * as CiliumMesh from "../src/CiliumMesh.js"
import * as EtcdServer from "./EtcdServer.js"
import { makeMemoryWorld } from "./MemoryClusters.js"

const spec = Either.getOrThrow(
  Deployment.validate({
    sovereignFQDN: "t1.example.com",
    orgName: "Example",
    orgEmail: "ops@example.com",
    regions: [
      { provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx32" },
      { provider: "hetzner", cloudRegion: "hel1", controlPlaneSize: "cpx32" }
    ],
    sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO3 ops@example.com"
  })
)
const [regionA, regionB] = Deployment.deriveRegions(spec, "00000000000000aa") as [Deployment.Region, Deployment.Region]

/** The etcd client config fields Cilium reads from `/var/lib/cilium/clustermesh/<peer>`. */
const parseConfig = (blob: string) => {
  const field = (name: string) => blob.match(new RegExp(`^${name}:\\s*(\\S+)\\s*$`, "m"))?.[1]
  const endpoints = [...blob.matchAll(/^-\s*(\S+)\s*$/gm)].map((match) => match[1]!)
  return { endpoints, trustedCaFile: field("trusted-ca-file"), certFile: field("cert-file"), keyFile: field("key-file") }
}

interface TlsClient {
  readonly endpoint: string
  readonly ca: string
  readonly cert: string
  readonly key: string
  /** Name resolution as the pod sees it: the DaemonSet's hostAliases, nothing else. */
  readonly hosts: ReadonlyMap<string, string>
  readonly servername?: string
}

/** etcd's v3 JSON gateway over the gRPC port, with full server verification (hostname included). */
const etcdCall = (client: TlsClient, path: string, body: unknown) =>
  Effect.async<unknown, Error>((resume) => {
    const lookup: LookupFunction = (hostname, options, callback) => {
      const address = client.hosts.get(hostname)
      if (address === undefined) return callback(Object.assign(new Error(`${hostname} not in hostAliases`), { code: "ENOTFOUND" }), "", 4)
      return options.all ? (callback as any)(null, [{ address, family: 4 }]) : callback(null, address, 4)
    }
    const url = new URL(path, client.endpoint)
    const call = request(
      url,
      {
        method: "POST",
        ca: client.ca,
        cert: client.cert,
        key: client.key,
        lookup,
        ...(client.servername === undefined ? {} : { servername: client.servername }),
        headers: { "content-type": "application/json" },
        agent: false
      },
      (response) => {
        let text = ""
        response.on("data", (chunk: Buffer) => (text += chunk.toString()))
        response.on("end", () =>
          response.statusCode === 200 ? resume(Effect.succeed(JSON.parse(text))) : resume(Effect.fail(new Error(`HTTP ${response.statusCode}: ${text}`)))
        )
      }
    )
    call.on("error", (error) => resume(Effect.fail(error)))
    call.end(JSON.stringify(body))
  })

const base64 = (text: string) => Buffer.from(text).toString("base64")

const openssl = (...args: ReadonlyArray<string>) => {
  try {
    return { ok: true, output: execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }) }
  } catch (error) {
    return { ok: false, output: String((error as { stderr?: unknown }).stderr ?? error) }
  }
}

describe("ClusterMesh trust against a real etcd", () => {
  it.scopedLive("a peer reads etcd with exactly the files the adapter wrote; the wrong CA and the wrong name are refused", () =>
    Effect.gen(function* () {
      const now = Date.now()
      const caA = Certificates.authority(`${regionA.clusterName} cilium-ca`, now)
      const caB = Certificates.authority(`${regionB.clusterName} cilium-ca`, now)
      // The clustermesh-apiserver's etcd in region B: server cert for *.mesh.cilium.io from B's CA, trusting only B's CA.
      const server = Either.getOrThrow(
        Certificates.issue(caB, {
          commonName: "clustermesh-apiserver",
          dnsNames: ["*.mesh.cilium.io", `${regionB.clusterName}.mesh.cilium.io`],
          usages: ["serverAuth", "clientAuth"],
          now,
          validityDays: 1
        })
      )
      const etcd = yield* EtcdServer.start({ serverCert: server.cert, serverKey: server.key, trustedCa: caB.cert })

      // Mesh A and B through the adapter. B has no remote cert: the adapter must mint CN=remote with B's CA.
      const { clustersLayer, worldLayer } = makeMemoryWorld()
      const observed = yield* Effect.gen(function* () {
        const world = yield* MeshWorld
        const regions = [
          yield* world.seed(regionA, {
            service: { type: "LoadBalancer", loadBalancerIP: "127.0.0.2", port: 2379 },
            ca: caA,
            remote: Either.getOrThrow(Certificates.mintRemote(caA, now)),
            ciliumConfig: { clusterName: regionA.clusterName, clusterId: regionA.clusterId }
          }),
          yield* world.seed(regionB, {
            service: { type: "LoadBalancer", loadBalancerIP: "127.0.0.1", port: etcd.port },
            ca: caB,
            remote: undefined,
            ciliumConfig: { clusterName: regionB.clusterName, clusterId: regionB.clusterId }
          })
        ]
        const statuses = yield* (yield* MeshProvider.MeshProvider).establish("00000000000000aa", regions)
        expect(statuses.map((status) => status.peers.every((peer) => peer.configured))).toEqual([true, true])
        return yield* world.observe(regionA.key)
      }).pipe(Effect.provide(Layer.merge(CiliumMesh.layer().pipe(Layer.provide(clustersLayer)), worldLayer)))

      // Materialise A's Secret the way the chart mounts it: every key a file under the clustermesh directory.
      const mount = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "sovereign-clustermesh-"))),
        (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true }))
      )
      const directory = join(mount, "var/lib/cilium/clustermesh")
      mkdirSync(directory, { recursive: true })
      for (const [key, value] of Object.entries(observed.secretData ?? {})) writeFileSync(join(directory, key), value, { mode: 0o600 })
      const inMount = (path: string | undefined) => {
        expect(path).toMatch(/^\/var\/lib\/cilium\/clustermesh\//)
        return readFileSync(join(mount, path!), "utf8")
      }
      const config = parseConfig(readFileSync(join(directory, regionB.clusterName), "utf8"))
      expect(config.endpoints).toEqual([`https://${regionB.clusterName}.mesh.cilium.io:${etcd.port}`])
      const hosts = new Map(observed.hostAliases.flatMap((alias) => alias.hostnames.map((hostname) => [hostname, alias.ip] as const)))
      const peerFiles = { ca: inMount(config.trustedCaFile), cert: inMount(config.certFile), key: inMount(config.keyFile) }
      const client: TlsClient = { endpoint: config.endpoints[0]!, ...peerFiles, hosts }

      yield* etcdCall(client, "/v3/kv/put", { key: base64("cilium/cluster/t1-hel"), value: base64("meshed") })
      const range = (yield* etcdCall(client, "/v3/kv/range", { key: base64("cilium/cluster/t1-hel") })) as {
        readonly kvs?: ReadonlyArray<{ readonly value: string }>
      }
      expect(range.kvs?.map((kv) => Buffer.from(kv.value, "base64").toString())).toEqual(["meshed"])

      // A client certificate from the wrong CA (t126: signed by the local region's CA) is refused by etcd.
      const wrong = Either.getOrThrow(Certificates.mintRemote(caA, now))
      const refused = yield* Effect.either(etcdCall({ ...client, ...wrong }, "/v3/kv/range", { key: base64("cilium/cluster/t1-hel") }))
      // (TLS 1.3 reports it after the handshake: an alert naming the certificate, or a reset.)
      expect(Either.isLeft(refused) && refused.left.message).toMatch(/bad certificate|unknown ca|certificate required|ECONNRESET|socket hang up/i)
      // Hostname verification is on: the same server under a name outside its SANs is refused by the client.
      const misnamed = yield* Effect.either(etcdCall({ ...client, servername: "t1-hel.example.org" }, "/v3/kv/range", { key: base64("x") }))
      expect(Either.isLeft(misnamed) && misnamed.left.message).toMatch(/altnames|does not match|Hostname/i)

      // openssl confirms every chain written: each peer's client cert chains to the CA file next to it.
      const caFile = join(directory, `${regionB.clusterName}-ca.crt`)
      const certFile = join(directory, `${regionB.clusterName}.crt`)
      expect(openssl("verify", "-CAfile", caFile, certFile)).toMatchObject({ ok: true, output: expect.stringContaining(": OK") })
      expect(openssl("x509", "-in", certFile, "-noout", "-subject").output).toMatch(/CN ?= ?remote/)
      const foreignCa = join(mount, "foreign-ca.crt")
      writeFileSync(foreignCa, caA.cert)
      expect(openssl("verify", "-CAfile", foreignCa, certFile).ok).toBe(false)
    }),
    60_000
  )
})
