/**
 * The kubeconfig call-back door end to end (issue 16): the server's production layers (HTTP, doors,
 * runtime, orchestrator, PGlite store, the real Kubernetes watch) over a simulated cloud whose control
 * planes are at 127.0.0.1, where a protocol-faithful Kubernetes API serves the Flux releases. An
 * attacker's listener on 127.0.0.2 (loopback too) stands for "a host I run".
 */
import { describe, expect, it } from "@effect/vitest"
import { KubernetesClusterWatch } from "@sovereign/adapter-kubernetes"
import { SimulatorCloud, SimulatorConfig, SimulatorStore, SimulatorWorld } from "@sovereign/adapter-simulator"
import { CloudProvider, Ids } from "@sovereign/core"
import { ClusterWatchSuite, FakeKubernetesApi } from "@sovereign/testkit"
import { Duration, Effect, Layer, ManagedRuntime, Option, Redacted } from "effect"
import * as net from "node:net"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { World } from "../src/Adapters.js"
import * as Auth from "../src/Auth.js"
import * as Database from "../src/Database.js"
import * as HandoverSigner from "../src/HandoverSigner.js"
import * as HttpServer from "../src/HttpServer.js"
import * as Runtime from "../src/Runtime.js"
import * as SecretBox from "../src/SecretBox.js"
import * as ServerConfig from "../src/ServerConfig.js"
import * as SqlStore from "../src/SqlStore.js"
import { requestJson } from "./support/fixtures.js"
import { waitUntil } from "./support/process.js"
import { testToken } from "./support/tokens.js"

const secretKey = Buffer.alloc(32, 7)
const owner = testToken("owner")

/** The production composition of `Main.ts`, with this world instead of the configured one. */
const makeServer = (fakeUrl: string) => {
  const config = ServerConfig.layerWith({
    dataDir: fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-callback-")),
    phase1Timeout: Duration.minutes(5)
  })
  const storage = SqlStore.layer().pipe(
    Layer.provideMerge(SecretBox.layerKey(secretKey)),
    Layer.provideMerge(Database.layerPglite(undefined))
  )
  // The simulated cloud builds the regions quickly; its control planes never call back by themselves.
  const cloud = SimulatorCloud.layer.pipe(
    Layer.provide(
      SimulatorWorld.layer({ speed: 500, seed: 3, faults: { ...SimulatorConfig.noFaults, kubeconfigDelay: Duration.infinity } })
    ),
    Layer.provide(SimulatorStore.layerMemory()),
    Layer.provide(Layer.succeed(SimulatorWorld.KubeconfigDelivery, { deliver: () => Effect.void }))
  )
  const address = new URL(fakeUrl).hostname
  const world = Layer.effect(
    World,
    Effect.map(CloudProvider.CloudProvider, (simulated) => ({
      cloud: {
        ...simulated,
        // Every region's control plane and load balancer is where the fake Kubernetes API listens.
        outputs: (deployment: CloudProvider.CloudDeployment) =>
          Effect.map(simulated.outputs(deployment), (outputs) =>
            outputs.map((output) => ({ ...output, controlPlaneIPs: [address], loadBalancerIP: address }))
          )
      },
      watch: KubernetesClusterWatch.make({ reachability: { initialDelay: Duration.millis(100), budget: Duration.seconds(20) } }),
      access: Option.none(),
      dns: Option.none(),
      mesh: Option.none(),
      simulator: Option.none()
    }))
  ).pipe(Layer.provide(cloud))
  const handover = HandoverSigner.layerHandover.pipe(Layer.provideMerge(HandoverSigner.layerEphemeral))
  const app = HttpServer.layer({ host: "127.0.0.1", port: 0 }).pipe(
    Layer.provideMerge(Runtime.controlLayer),
    Layer.provideMerge(Runtime.orchestratorLayer),
    Layer.provideMerge(Runtime.resumedLayer),
    Layer.provideMerge(world),
    Layer.provideMerge(handover),
    Layer.provideMerge(Ids.layerCrypto),
    Layer.provideMerge(Auth.layerTokens([{ token: owner, principal: { email: "ops@omani.works", role: "operator" } }])),
    Layer.provideMerge(storage),
    Layer.provideMerge(config)
  )
  return ManagedRuntime.make(app)
}

const postback = (id: string, region: string) =>
  Effect.runSync(SecretBox.makeService(secretKey).postbackToken(id, region).pipe(Effect.map(Redacted.value)))

const replaceUser = (kubeconfig: string, user: string) => kubeconfig.replace(/ {4}token: .*/, user)
const replaceCluster = (kubeconfig: string, line: string) => kubeconfig.replace(/ {4}certificate-authority-data: .*/, line)

describe("the kubeconfig call-back door, end to end", () => {
  it.scopedLive(
    "refuses every forbidden field and every foreign server without storing or contacting anything; the real kubeconfig then makes the deployment ready",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        for (const chart of ["bp-cilium", "bp-cert-manager", "bp-flux"]) {
          yield* fake.put(
            ClusterWatchSuite.helmReleaseObject("flux-system", chart, { ready: { status: "True", reason: "InstallSucceeded" } }, 1)
          )
        }
        // The attacker's host: it counts every connection it ever gets.
        let attackerConnections = 0
        const attacker = net.createServer((socket) => {
          attackerConnections++
          socket.destroy()
        })
        yield* Effect.acquireRelease(
          Effect.async<void>((resume) => void attacker.listen(0, "127.0.0.2", () => resume(Effect.void))),
          () => Effect.sync(() => attacker.close())
        )
        const attackerServer = `https://127.0.0.2:${(attacker.address() as net.AddressInfo).port}`
        const runtime = makeServer(fake.url)
        yield* Effect.addFinalizer(() => Effect.promise(() => runtime.dispose()))
        const base = yield* Effect.promise(() => runtime.runPromise(HttpServer.baseUrl))
        yield* Effect.promise(() => runtime.runPromise(Runtime.resumeAll))
        const call = (method: string, route: string, token: string | undefined, body?: string) =>
          Effect.promise(async () => {
            const response = await fetch(`${base}${route}`, {
              method,
              headers: {
                ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
                ...(body === undefined ? {} : { "content-type": "application/yaml" })
              },
              ...(body === undefined ? {} : { body })
            })
            const text = await response.text()
            let json: any
            try {
              json = JSON.parse(text)
            } catch {
              json = undefined
            }
            return { status: response.status, json, text }
          })

        const created = yield* Effect.promise(() =>
          fetch(`${base}/api/v1/deployments`, {
            method: "POST",
            headers: { authorization: `Bearer ${owner}`, "content-type": "application/json" },
            body: JSON.stringify({ ...requestJson("door.omani.works", 2) })
          }).then((response) => response.json() as Promise<{ id: string }>)
        )
        const id = created.id
        const primary = postback(id, "fsn1")
        const secondary = postback(id, "hel1-1")
        const put = (token: string | undefined, body: string, region = "") =>
          call("PUT", `/api/v1/deployments/${id}/kubeconfig${region}`, token, body)
        const attackerKubeconfig = fake.kubeconfigWith({ server: attackerServer })

        // The window opens once the cloud reports the region's control plane (409 not-open before that).
        yield* Effect.promise(() =>
          waitUntil(
            async () => (await Effect.runPromise(put(primary, attackerKubeconfig))).status !== 409,
            120_000,
            () => "the call-back window never opened"
          )
        )

        // The existing behaviour: 401 without a token, 403 with a wrong one, 413 over 1 MiB, 422 empty.
        expect((yield* put(undefined, fake.kubeconfig)).status).toBe(401)
        expect((yield* put(testToken("guess"), fake.kubeconfig)).status).toBe(403)
        expect((yield* put(primary, "x".repeat(1024 * 1024 + 1))).status).toBe(413)
        expect((yield* put(primary, "  \n ")).status).toBe(422)
        // A region's token opens that region only.
        expect((yield* put(secondary, fake.kubeconfig)).status).toBe(403)
        expect((yield* put(primary, fake.kubeconfig, "?region=hel1-1")).status).toBe(403)

        // Every forbidden field: 422 naming it.
        const token = path.join(os.tmpdir(), "sovereign-admin-token-that-must-not-be-read")
        const forbidden: ReadonlyArray<readonly [string, string]> = [
          ["token-file", replaceUser(fake.kubeconfig, `    token-file: ${token}`)],
          ["certificate-authority", replaceCluster(fake.kubeconfig, `    certificate-authority: ${token}`)],
          ["client-certificate", replaceUser(fake.kubeconfig, `    client-certificate: ${token}\n    client-key-data: AAAA`)],
          ["client-key", replaceUser(fake.kubeconfig, `    client-certificate-data: AAAA\n    client-key: ${token}`)],
          ["exec", replaceUser(fake.kubeconfig, "    exec:\n      command: /bin/sh")],
          ["auth-provider", replaceUser(fake.kubeconfig, "    auth-provider:\n      name: oidc")],
          [
            "proxy-url",
            fake.kubeconfig.replace("    certificate-authority-data:", `    proxy-url: ${attackerServer}\n    certificate-authority-data:`)
          ],
          ["insecure-skip-tls-verify", fake.kubeconfigWith({ insecureSkipTlsVerify: true })],
          ["username", replaceUser(fake.kubeconfig, "    username: admin\n    password: admin")]
        ]
        for (const [field, document] of forbidden) {
          const answer = yield* put(primary, document)
          expect([answer.status, answer.json?.error, answer.json?.field], field).toEqual([422, "forbidden-field", field])
        }
        // The attack of the issue, and any other host: 422 saying what is allowed.
        const elsewhere = yield* put(primary, replaceUser(attackerKubeconfig, `    token-file: ${token}`))
        expect([elsewhere.status, elsewhere.json?.field]).toEqual([422, "token-file"])
        const foreign = yield* put(primary, attackerKubeconfig)
        expect([foreign.status, foreign.json?.error, foreign.json?.allowed]).toEqual([422, "server-not-allowed", ["127.0.0.1"]])
        expect(foreign.json?.message).toContain("127.0.0.1")
        // A CA that is not a CA.
        const leaf = FakeKubernetesApi.makeServerCertificate(fake.authority, {
          commonName: "leaf",
          dnsNames: [],
          ipAddresses: ["127.0.0.1"]
        })
        expect((yield* put(primary, fake.kubeconfigWith({ caPem: leaf.certPem }))).json?.error).toBe("untrusted-authority")

        // Nothing was stored: the owner finds no kubeconfig, and no request went anywhere.
        expect((yield* call("GET", `/api/v1/deployments/${id}/kubeconfig`, owner)).status).toBe(404)
        expect(attackerConnections).toBe(0)
        expect((yield* fake.requests).length).toBe(0)

        // The region's real kubeconfig still gets its single use: 204, and 403 after.
        expect((yield* put(primary, fake.kubeconfig)).status).toBe(204)
        expect((yield* put(primary, fake.kubeconfig)).json?.error).toBe("already-set")
        const stored = yield* call("GET", `/api/v1/deployments/${id}/kubeconfig`, owner)
        expect(stored.text).toContain(`server: "${fake.url}"`)

        yield* Effect.promise(() =>
          waitUntil(
            async () => (await Effect.runPromise(call("GET", `/api/v1/deployments/${id}`, owner))).json?.status === "ready",
            240_000,
            () => "the deployment never became ready"
          )
        )
        // The watch talked to the region's API server; the attacker's host never heard from the server.
        expect((yield* fake.requests).some((request) => request.path.includes("helmreleases"))).toBe(true)
        expect(attackerConnections).toBe(0)
      }),
    400_000
  )
})
