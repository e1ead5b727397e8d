/**
 * Every `sovereign` command against the real server process, run as an operator runs them (the
 * bundle), each with `--output json` parsed back, and the documented exit codes: 0 ok, 1 a deployment
 * that ends failed, 2 usage, 3 not found or unauthorised.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { requestJson } from "./support/fixtures.js"
import { bundle, start } from "./support/process.js"
import { testToken } from "./support/tokens.js"

const token = testToken("cli-admin")

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

describe("the sovereign CLI", () => {
  it("runs every command with --output json against a simulated world, with the documented exit codes", { timeout: 300_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-cli-"))
    const server = await start({
      SOVEREIGN_DATA_DIR: path.join(dir, "data"),
      SOVEREIGN_API_TOKENS: `${token}:admin:admin@example.com`,
      SOVEREIGN_SECRET_KEY: "e".repeat(64),
      SOVEREIGN_SIM_SPEED: "200",
      // Deployments with a region in nbg1 fail in Phase 0; the others reach ready.
      SOVEREIGN_SIM_FAULTS: "region-fail=nbg1"
    })
    const cli = (args: ReadonlyArray<string>, options: { readonly token?: string } = {}) =>
      new Promise<Run>((resolve) => {
        execFile(
          process.execPath,
          [bundle, ...args],
          {
            env: { ...process.env, SOVEREIGN_URL: server.url, SOVEREIGN_TOKEN: options.token ?? token, NO_COLOR: "1" },
            maxBuffer: 16 * 1024 * 1024
          },
          (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })
        )
      })
    const json = async (args: ReadonlyArray<string>, code = 0) => {
      const result = await cli([...args, "--output", "json"])
      expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(code)
      return JSON.parse(result.stdout) as Record<string, any>
    }
    const file = (name: string, request: unknown) => {
      const target = path.join(dir, name)
      fs.writeFileSync(target, JSON.stringify(request))
      return target
    }
    try {
      // deploy --follow: the final state, exit 0 once ready.
      const ready = await json(["deploy", file("ready.json", requestJson("cli.omani.works", 2)), "--follow"])
      expect(ready.status).toBe("ready")
      const id = ready.id as string
      expect(ready.handoverURL).toEqual(expect.any(String))

      const list = await json(["status"])
      expect(list.deployments.map((entry: { id: string }) => entry.id)).toContain(id)
      expect((await json(["status", id])).results.regions).toHaveLength(2)

      // logs: one JSON event per line, in order, handover-ready among them.
      const logs = await cli(["logs", id, "-o", "json"])
      expect(logs.code).toBe(0)
      const events = logs.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { seq: number; type?: string; deploymentId: string })
      expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index + 1))
      expect(events.every((event) => event.deploymentId === id)).toBe(true)
      expect(events.some((event) => event.type === "handover-ready")).toBe(true)

      const jobs = await json(["jobs", id])
      expect(jobs.jobs.length).toBeGreaterThan(5)
      expect(jobs.jobs.some((job: { status: string }) => job.status === "succeeded")).toBe(true)

      // tree: nested by containment, with statuses; the text form draws it like flux tree.
      const tree = await json(["tree", id])
      expect(tree.id).toBe(id)
      const count = (nodes: ReadonlyArray<{ children: ReadonlyArray<unknown> }>): number =>
        nodes.reduce((sum, node) => sum + 1 + count(node.children as ReadonlyArray<{ children: ReadonlyArray<unknown> }>), 0)
      expect(tree.tree.length).toBeGreaterThan(0)
      expect(count(tree.tree)).toBeGreaterThan(tree.tree.length)
      const text = await cli(["tree", id])
      expect(text.code).toBe(0)
      expect(text.stdout).toMatch(/^├── .+ \[succeeded\]$/m)
      expect(text.stdout).toMatch(/└── /)

      const plan = await json(["dns-plan", id])
      expect(Array.isArray(plan.plans)).toBe(true)
      expect(Array.isArray(plan.warnings)).toBe(true)

      const adopted = await json(["finalise", id])
      expect(adopted.status).toBe("adopted")

      // A deployment that ends failed: deploy --follow exits 1; retry is accepted.
      const failed = await json(["deploy", file("failing.json", requestJson("fails.omani.works", 3)), "--follow"], 1)
      expect(["failed", "partial-failure"]).toContain(failed.status)
      const retried = await json(["retry", failed.id])
      expect(retried.id).toBe(failed.id)

      // deploy without --follow, wipe, then delete --wipe (waits for the wipe, then removes the record).
      const created = await json(["deploy", file("wiped.json", requestJson("wiped.omani.works", 1))])
      expect(created.status).toBe("pending")
      const wiping = await json(["wipe", created.id, "--force"])
      expect(wiping).toMatchObject({ id: created.id, status: "wiping" })
      const deleted = await json(["delete", created.id, "--wipe"])
      expect(deleted).toMatchObject({ id: created.id, deleted: true })
      expect((await cli(["status", created.id])).code).toBe(3)

      // Completion scripts and help.
      const bash = await json(["completion", "bash"])
      expect(bash.script).toContain("complete -F _sovereign sovereign")
      expect((await json(["completion", "zsh"])).script).toContain("#compdef sovereign")
      expect((await json(["help"])).commands).toEqual(
        expect.arrayContaining(["deploy", "jobs", "tree", "retry", "finalise", "delete", "dns-plan", "completion"])
      )

      // Exit codes: 2 usage, 3 not found or unauthorised.
      expect((await cli(["bogus"])).code).toBe(2)
      expect((await cli(["jobs"])).code).toBe(2)
      expect((await cli(["status", "--output", "yaml"])).code).toBe(2)
      expect((await cli(["deploy", path.join(dir, "missing.json")])).code).toBe(2)
      const missing = await cli(["status", "0123456789abcdef", "-o", "json"])
      expect(missing.code).toBe(3)
      expect(missing.stderr).toContain("not-found")
      expect((await cli(["status"], { token: testToken("stranger") })).code).toBe(3)
    } finally {
      await server.kill("SIGTERM")
    }
  })
})
