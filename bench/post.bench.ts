/**
 * POST /api/v1/deployments while 100 simulated 3-region deployments run on one server (issue 11):
 * the real process (the bundle `npm start` runs) on PGlite, the simulator at speed 1 so every run stays
 * in flight, 100 deployments posted first, then 25 more posted one after another and timed.
 */
import { randomBytes } from "node:crypto"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { freePort, waitUntil } from "../packages/server/test/support/process.js"
import { buildServer } from "../scripts/build.mjs"
import type { Metric } from "./run.js"

const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  const sorted = samples.slice().sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)]!
}

const request = (index: number) => ({
  sovereignFQDN: `post${index}.omani.works`,
  orgName: "Omani Works",
  orgEmail: "ops@omani.works",
  regions: [
    { provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx32", workerSize: "cpx42", workerCount: 1 },
    { provider: "hetzner", cloudRegion: "hel1", controlPlaneSize: "cpx32", workerCount: 0 },
    { provider: "hetzner", cloudRegion: "nbg1", controlPlaneSize: "cpx32", workerCount: 0 }
  ],
  sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHdlbGxrbm93bnRlc3RrZXk ops@omani.works",
  credentials: { hetznerToken: "hcloud-bench-token" }
})

export default async (): Promise<Record<string, Metric>> => {
  const bundle = await buildServer()
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-bench-post-"))
  const token = `bench-admin-${randomBytes(24).toString("hex")}`
  const port = await freePort()
  const child = spawn(process.execPath, [bundle, "serve"], {
    env: {
      ...process.env,
      SOVEREIGN_DATA_DIR: dataDir,
      SOVEREIGN_PORT: String(port),
      SOVEREIGN_HOST: "127.0.0.1",
      SOVEREIGN_METRICS_PORT: "0",
      SOVEREIGN_API_TOKENS: `${token}:admin:a@b.c`,
      SOVEREIGN_SIM_SPEED: "1",
      SOVEREIGN_SIM_SEED: "7"
    },
    stdio: "ignore"
  })
  const url = `http://127.0.0.1:${port}`
  try {
    await waitUntil(
      async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200,
      180_000,
      () => "readyz"
    )
    const postOnce = async (index: number) => {
      const started = performance.now()
      const response = await fetch(`${url}/api/v1/deployments`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(request(index))
      })
      await response.text()
      if (response.status !== 201) throw new Error(`POST answered ${response.status}`)
      return performance.now() - started
    }
    // A keep-alive connection the server closed resets once: that attempt is not a sample.
    const post = (index: number) => postOnce(index).catch(() => postOnce(index))
    const first: Array<number> = []
    for (let index = 0; index < 100; index++) first.push(await post(index))
    const inFlight = (
      (await (await fetch(`${url}/api/v1/deployments/in-flight-count`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
        count: number
      }
    ).count
    const samples: Array<number> = []
    for (let index = 0; index < 25; index++) samples.push(await post(1000 + index))
    return {
      "server.post_latency.100_in_flight.p99_ms": { value: percentile(samples, 0.99), unit: "ms", goal: "<= 250" },
      "server.post_latency.100_in_flight.p50_ms": { value: percentile(samples, 0.5), unit: "ms" },
      "server.post_latency.first_10.p50_ms": { value: percentile(first.slice(0, 10), 0.5), unit: "ms" },
      "server.post_latency.in_flight_when_measured": { value: inFlight, unit: "deployments" }
    }
  } finally {
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve())
      child.kill("SIGTERM")
    })
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}
