/**
 * The kubeconfig call-back of the real server process (the bundle `npm start` runs), simulated world:
 * the existing answers hold, a region's token opens that region only, each forbidden field and a
 * foreign server are 422s that store nothing and contact nothing, and the region's real kubeconfig
 * (the one its simulated control plane writes) still gets its 204 and makes the deployment ready.
 */
import { describe, expect, it } from "@effect/vitest"
import { certificateAuthorityData } from "@sovereign/adapter-simulator/SimulatorAuthority"
import { Kubeconfig } from "@sovereign/core"
import { Effect, Redacted } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as SecretBox from "../src/SecretBox.js"
import { requestJson } from "./support/fixtures.js"
import { start, waitUntil } from "./support/process.js"
import { testToken } from "./support/tokens.js"

const secretKey = "d".repeat(64)
const admin = testToken("callback-admin")
const postback = (id: string, region: string) =>
  Effect.runSync(SecretBox.makeService(SecretBox.keyFromString(secretKey)).postbackToken(id, region).pipe(Effect.map(Redacted.value)))

/** The kubeconfig a simulated control plane writes, pointed at `server`, with extra lines spliced into its user or cluster. */
const simulated = (id: string, region: string, server: string) =>
  Redacted.value(
    Kubeconfig.render({
      cluster: { name: `sim-${id}-${region}`, server, certificateAuthorityData },
      user: { name: "admin", credential: { _tag: "Token", token: Redacted.make("simulated-admin-token-0123456789") } },
      context: { name: `sim-${id}-${region}` }
    })
  )

describe("the kubeconfig call-back of the real server process", () => {
  it(
    "keeps 401/403/413/422, refuses forbidden fields and foreign servers storing nothing, then takes the real kubeconfig and gets ready",
    { timeout: 600_000 },
    async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-callback-process-"))
      let attackerConnections = 0
      const attacker = net.createServer((socket) => {
        attackerConnections++
        socket.destroy()
      })
      await new Promise<void>((resolve) => attacker.listen(0, "127.0.0.2", resolve))
      const attackerServer = `https://127.0.0.2:${(attacker.address() as net.AddressInfo).port}`
      const server = await start({
        SOVEREIGN_DATA_DIR: dataDir,
        SOVEREIGN_API_TOKENS: `${admin}:admin:admin@example.com`,
        SOVEREIGN_SECRET_KEY: secretKey,
        SOVEREIGN_SIM_SPEED: "200",
        // The simulated control planes never call back by themselves: this test delivers for them.
        SOVEREIGN_SIM_FAULTS: "kubeconfig-delay=never"
      })
      try {
        const call = async (method: string, route: string, token: string | undefined, body?: string) => {
          const response = await fetch(`${server.url}${route}`, {
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
        }
        const created = await fetch(`${server.url}/api/v1/deployments`, {
          method: "POST",
          headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
          body: JSON.stringify(requestJson("process-door.omani.works", 2))
        })
        const id = ((await created.json()) as { id: string }).id
        const put = (token: string | undefined, body: string, region = "fsn1") =>
          call("PUT", `/api/v1/deployments/${id}/kubeconfig?region=${region}`, token, body)
        const primary = postback(id, "fsn1")
        const attackerDocument = simulated(id, "fsn1", attackerServer)

        // Phase 0 gives the region its addresses; the window is open once the cloud reports the control plane.
        await waitUntil(
          async () => (await put(primary, attackerDocument)).status !== 409,
          180_000,
          () => "the call-back window never opened"
        )
        const state = (await call("GET", `/api/v1/deployments/${id}`, admin)).json
        await waitUntil(
          async () => (await call("GET", `/api/v1/deployments/${id}`, admin)).json?.results?.regions?.[0]?.loadBalancerIP !== undefined,
          180_000
        )
        const region = (await call("GET", `/api/v1/deployments/${id}`, admin)).json.results.regions[0]
        expect(state.status).toMatch(/provisioning|phase1-watching/)
        const real = simulated(id, "fsn1", `https://${region.loadBalancerIP}:6443`)

        expect((await put(undefined, real)).status).toBe(401)
        expect((await put(testToken("guess"), real)).status).toBe(403)
        expect((await put(postback(id, "hel1-1"), real)).status).toBe(403)
        expect((await put(primary, real, "hel1-1")).status).toBe(403)
        expect((await put(primary, "x".repeat(1024 * 1024 + 1))).status).toBe(413)
        expect((await put(primary, " ")).status).toBe(422)
        expect((await put(primary, real, "%00")).status).toBe(404)

        const withUser = (line: string) => real.replace(/ {4}token: .*/, line)
        for (const [field, document] of [
          ["token-file", withUser(`    token-file: "${path.join(dataDir, "admin-token")}"`)],
          ["client-key", withUser(`    client-certificate-data: "AAAA"\n    client-key: "${path.join(dataDir, "secret.key")}"`)],
          ["exec", withUser("    exec: {command: /bin/sh}")],
          [
            "certificate-authority",
            real.replace(/ {4}certificate-authority-data: .*/, `    certificate-authority: "${path.join(dataDir, "secret.key")}"`)
          ],
          ["insecure-skip-tls-verify", real.replace("    server:", "    insecure-skip-tls-verify: true\n    server:")]
        ] as const) {
          const answer = await put(primary, document)
          expect([answer.status, answer.json?.error, answer.json?.field], field).toEqual([422, "forbidden-field", field])
        }
        const foreign = await put(primary, attackerDocument)
        expect([foreign.status, foreign.json?.error]).toEqual([422, "server-not-allowed"])
        expect(foreign.json?.allowed).toContain(region.loadBalancerIP)
        expect((await call("GET", `/api/v1/deployments/${id}/kubeconfig`, admin)).status).toBe(404)

        // The real one: 204, then the single use is spent.
        expect((await put(primary, real)).status).toBe(204)
        expect((await put(primary, real)).json?.error).toBe("already-set")
        expect((await put(postback(id, "hel1-1"), simulated(id, "hel1-1", attackerServer), "hel1-1")).json?.error).toBe(
          "server-not-allowed"
        )
        await waitUntil(
          async () => (await call("GET", `/api/v1/deployments/${id}`, admin)).json?.status === "ready",
          300_000,
          () => server.output()
        )
        expect(attackerConnections).toBe(0)
        // The server logged the refusals' failed authentications without any token.
        expect(server.output()).not.toContain(primary)
        expect(server.output()).not.toContain(admin)
      } finally {
        await server.kill("SIGKILL")
        attacker.close()
        fs.rmSync(dataDir, { recursive: true, force: true })
      }
    }
  )
})
