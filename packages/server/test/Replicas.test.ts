/**
 * Several replicas on one PostgreSQL (issue 11, items 3 and 4): three real server processes on a
 * PostgreSQL of the test's own, behind a round-robin proxy that the operator and the control planes'
 * call-backs both go through. Four 3-region deployments run while one replica is killed for good,
 * another is SIGKILLed and restarted, PostgreSQL restarts, and the third is frozen (SIGSTOP) for
 * longer than the lease and thawed. Every deployment is ready, nothing was created twice, the live
 * replicas serve identical deployments, flows and JWKS, and a wipe leaves nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { requestJson } from "./support/fixtures.js"
import * as PrivatePostgres from "./support/privatePostgres.js"
import { start, waitUntil, type ServerProcess } from "./support/process.js"
import { testToken } from "./support/tokens.js"

const token = testToken("replicas-admin")
const headers = { authorization: `Bearer ${token}` }
const leaseSeconds = 5

/** Round-robin over the replicas that answer; a request to a dead or frozen one is tried on the next. */
const makeProxy = (targets: () => ReadonlyArray<string>) => {
  let next = 0
  const server = http.createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body = Buffer.concat(chunks)
      const attempt = (left: number) => {
        const live = targets()
        if (left === 0 || live.length === 0) {
          response.writeHead(502).end()
          return
        }
        const target = new URL(live[next++ % live.length]!)
        const upstream = http.request(
          { host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers, timeout: 5_000 },
          (answer) => {
            response.writeHead(answer.statusCode ?? 502, answer.headers)
            answer.pipe(response)
          }
        )
        upstream.on("timeout", () => upstream.destroy(new Error("timeout")))
        upstream.on("error", () => {
          if (!response.headersSent) attempt(left - 1)
          else response.destroy()
        })
        upstream.end(body)
      }
      attempt(6)
    })
  })
  return new Promise<{ readonly url: string; readonly close: () => void }>((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() })
    )
  )
}

const getJson = async (base: string, route: string): Promise<any> => {
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(`${base}${route}`, { headers }).catch(() => undefined)
    if (response !== undefined && response.status === 200) return response.json()
    if (attempt > 50) throw new Error(`${route} on ${base}: ${response?.status}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

const firstDifference = (views: ReadonlyArray<string>) => {
  const [a, b] = [views[0] ?? "", views[1] ?? ""]
  let index = 0
  while (index < a.length && a[index] === b[index]) index++
  return `${a.slice(Math.max(0, index - 300), index + 200)}\n  versus\n${b.slice(Math.max(0, index - 300), index + 200)}`
}

describe("three replicas on one PostgreSQL", () => {
  it(
    "run four 3-region deployments to ready through kills, a restart of PostgreSQL and a frozen replica; the survivors agree; a wipe leaves nothing",
    { timeout: 900_000 },
    async () => {
      const postgres = await PrivatePostgres.create()
      const replicas: Array<ServerProcess | undefined> = [undefined, undefined, undefined]
      const frozen = new Set<number>()
      const proxy = await makeProxy(() =>
        replicas.flatMap((replica, index) => (replica === undefined || frozen.has(index) ? [] : [replica.url]))
      )
      const env = (index: number) => ({
        DATABASE_URL: postgres.url,
        SOVEREIGN_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), `sovereign-replica-${index}-`)),
        SOVEREIGN_API_TOKENS: `${token}:admin:admin@example.com`,
        SOVEREIGN_SECRET_KEY: "d".repeat(64),
        SOVEREIGN_PUBLIC_URL: proxy.url,
        SOVEREIGN_LEASE_TTL: `${leaseSeconds} seconds`,
        SOVEREIGN_METRICS_PORT: "0",
        SOVEREIGN_SIM_SPEED: "30",
        SOVEREIGN_SIM_SEED: "11"
      })
      const outputs = [{ text: "" }, { text: "" }, { text: "" }]
      try {
        // One after the other: the first migrates, the others find the key check and the handover key.
        for (const index of [0, 1, 2]) replicas[index] = await start(env(index), outputs[index])

        // One signing key for all: every replica publishes the same JWKS.
        const jwks = await Promise.all(replicas.map((replica) => getJson(replica!.url, "/api/v1/handover/jwks.json")))
        expect(jwks[1]).toEqual(jwks[0])
        expect(jwks[2]).toEqual(jwks[0])

        const ids: Array<string> = []
        for (let index = 0; index < 4; index++) {
          const created = await fetch(`${proxy.url}/api/v1/deployments`, {
            method: "POST",
            headers: { ...headers, "content-type": "application/json" },
            body: JSON.stringify(requestJson(`replica${index}.omani.works`, 3))
          })
          expect(created.status).toBe(201)
          ids.push(((await created.json()) as { readonly id: string }).id)
        }
        const statuses = async () =>
          Promise.all(ids.map(async (id) => (await getJson(proxy.url, `/api/v1/deployments/${id}`)).status as string))
        await waitUntil(
          async () => (await statuses()).every((status) => status === "provisioning" || status === "phase1-watching"),
          180_000,
          () => "every deployment under way"
        )

        // Replica 0 dies for good: the others take its runs over by themselves.
        await replicas[0]!.kill("SIGKILL")
        replicas[0] = undefined

        // Replica 1 is killed and comes back.
        await replicas[1]!.kill("SIGKILL")
        replicas[1] = undefined
        replicas[1] = await start(env(1), outputs[1])

        // PostgreSQL restarts under everyone.
        postgres.stop()
        await new Promise((resolve) => setTimeout(resolve, 2_000))
        postgres.start()

        // Replica 2 freezes for longer than the lease, then thaws: its runs were taken over and write nothing more.
        frozen.add(2)
        replicas[2]!.child.kill("SIGSTOP")
        await new Promise((resolve) => setTimeout(resolve, (leaseSeconds + 3) * 1_000))
        replicas[2]!.child.kill("SIGCONT")
        frozen.delete(2)

        // A SIGKILL of replica 1 while the frozen one thaws, and its restart.
        await replicas[1]!.kill("SIGKILL")
        replicas[1] = await start(env(1), outputs[1])

        let last: ReadonlyArray<string> = []
        await waitUntil(
          async () => {
            last = await statuses()
            return last.every((status) => status === "ready" || status === "failed" || status === "partial-failure")
          },
          600_000,
          () => {
            outputs.forEach((output, index) =>
              fs.writeFileSync(path.join(os.tmpdir(), `sovereign-replicas-test-${index}.log`), output.text)
            )
            return `every deployment finished (now ${last.join(", ")}; the replicas' output is in ${os.tmpdir()}/sovereign-replicas-test-*.log)`
          }
        )
        expect(await statuses()).toEqual(ids.map(() => "ready"))

        // Nothing created twice: every simulated resource name exists once.
        const inventory = (await getJson(proxy.url, "/api/v1/simulator/inventory")) as {
          readonly resources: ReadonlyArray<{ readonly kind: string; readonly name: string; readonly labels: Record<string, string> }>
        }
        const names = inventory.resources.map((resource) => `${resource.kind}/${resource.name}`)
        expect(new Set(names).size).toBe(names.length)
        for (const id of ids) expect(inventory.resources.some((resource) => resource.labels["sovereign.dev/deployment"] === id)).toBe(true)

        // The live replicas serve the same truth: the list, each deployment, its events and its flow.
        let lastViews: ReadonlyArray<string> = ["", ""]
        await waitUntil(
          async () => {
            // The handover link carries a token minted per request (its own jti): everything else must match.
            const views = await Promise.all(
              [replicas[1]!, replicas[2]!].map(async (replica) =>
                JSON.stringify([
                  await getJson(replica.url, "/api/v1/deployments"),
                  ...(await Promise.all(ids.map((id) => getJson(replica.url, `/api/v1/deployments/${id}`)))),
                  ...(await Promise.all(ids.map((id) => getJson(replica.url, `/api/v1/flows/${id}/snapshot`))))
                ]).replace(/token=[^"&]+/g, "token=…")
              )
            )
            if (views[0] !== views[1]) lastViews = views
            return views[0] === views[1]
          },
          60_000,
          () => `identical views on both live replicas: ${firstDifference(lastViews)}`
        )

        // No stale run wrote after its lease was taken: the frozen replica's runs stopped on their own.
        const all = outputs.map((output) => output.text).join("\n")
        expect(all).not.toContain("stopped on a defect")

        // A wipe of each, through the proxy, leaves nothing.
        for (const id of ids) {
          const wiped = await fetch(`${proxy.url}/api/v1/deployments/${id}/wipe?force=true`, { method: "POST", headers })
          expect([200, 202]).toContain(wiped.status)
        }
        await waitUntil(
          async () => (await statuses()).every((status) => status === "wiped"),
          300_000,
          () => "every deployment wiped"
        )
        const after = (await getJson(proxy.url, "/api/v1/simulator/inventory")) as typeof inventory
        expect(after.resources.filter((resource) => ids.includes(resource.labels["sovereign.dev/deployment"] ?? ""))).toEqual([])
      } finally {
        for (const replica of replicas) {
          if (replica === undefined) continue
          replica.child.kill("SIGCONT")
          await replica.kill("SIGKILL")
        }
        proxy.close()
        postgres.destroy()
      }
    }
  )
})
