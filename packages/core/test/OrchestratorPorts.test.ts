import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option, Redacted, Stream } from "effect"
import { DeploymentRepo, type NewDeployment } from "../src/DeploymentRepo.js"
import { FlowEvents } from "../src/FlowEvents.js"
import * as Job from "../src/Job.js"
import { JobRepo } from "../src/JobRepo.js"
import { Kubeconfigs } from "../src/Kubeconfigs.js"
import { orderSteps } from "../src/orchestrator/Phase0.js"
import * as Secrets from "../src/Secrets.js"
import * as Memory from "../src/testing/Memory.js"

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")
const utf8 = (text: string) => new TextEncoder().encode(text)

const record = (id: string, fqdn: string, status: NewDeployment["status"] = "pending"): NewDeployment => ({
  id,
  owner: "ops@example.com",
  status,
  spec: {
    sovereignFQDN: fqdn,
    orgName: "Example",
    orgEmail: "ops@example.com",
    topology: "single-region",
    regions: [{ provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx32", workerCount: 0 }],
    parentDomains: [{ name: "example.com", role: "primary" }],
    sshPublicKey: "ssh-ed25519 AAAA ops",
    haControlPlane: false
  },
  sealedCredentials: "memsealed:",
  results: { regions: [] },
  createdAt: 1
})

const event = { at: 1, phase: "deployment" as const, level: "info" as const, message: "accepted", type: "status", state: "pending" }

describe("Secrets", () => {
  it("HMAC-SHA256 matches RFC 4231 (test case 2)", () => {
    expect(hex(Secrets.hmacSha256(utf8("Jefe"), utf8("what do ya want for nothing?")))).toBe(
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
  })

  it.effect("derives one postback token per deployment, region and key, verifies it, and seals credentials reversibly", () =>
    Effect.gen(function* () {
      const secrets = yield* Secrets.Secrets
      const token = Redacted.value(yield* secrets.postbackToken("0123456789abcdef", "fsn1"))
      expect(token).toMatch(/^[0-9a-f]{64}$/)
      expect(Redacted.value(yield* secrets.postbackToken("0123456789abcdef", "fsn1"))).toBe(token)
      expect(Redacted.value(yield* secrets.postbackToken("0123456789abcdee", "fsn1"))).not.toBe(token)
      expect(Redacted.value(yield* secrets.postbackToken("0123456789abcdef", "hel1-1"))).not.toBe(token)
      expect(Secrets.derivePostbackToken(utf8("another key"), "0123456789abcdef", "fsn1")).not.toBe(token)
      expect(yield* secrets.verifyPostbackToken("0123456789abcdef", "fsn1", Redacted.make(token))).toBe(true)
      // A region's token never opens another region of the same deployment.
      expect(yield* secrets.verifyPostbackToken("0123456789abcdef", "hel1-1", Redacted.make(token))).toBe(false)
      expect(yield* secrets.verifyPostbackToken("0123456789abcdef", "fsn1", Redacted.make(token.slice(1)))).toBe(false)
      const sealed = yield* Secrets.sealCredentials({ hetznerToken: Redacted.make("hunter2") })
      expect(sealed).not.toContain("hunter2")
      const opened = yield* Secrets.unsealCredentials(sealed)
      expect(Redacted.value(opened["hetznerToken"]!)).toBe("hunter2")
      expect((yield* Effect.flip(secrets.unseal("garbage"))).reason).toBe("Corrupt")
      // Join secrets: random, distinct per draw, sealed with the credentials; an older blob opens without them.
      const [first, second] = [yield* secrets.generateSecret, yield* secrets.generateSecret]
      expect(Redacted.value(first)).toMatch(/^[0-9a-f]{64}$/)
      expect(Redacted.value(first)).not.toBe(Redacted.value(second))
      const bundle = yield* Secrets.sealDeploymentSecrets({
        credentials: { hetznerToken: Redacted.make("hunter2") },
        clusterJoinSecrets: { fsn1: first }
      })
      expect(bundle).not.toContain(Redacted.value(first))
      const reopened = yield* Secrets.unsealDeploymentSecrets(bundle)
      expect(Redacted.value(reopened.clusterJoinSecrets["fsn1"]!)).toBe(Redacted.value(first))
      expect(Redacted.value(reopened.credentials["hetznerToken"]!)).toBe("hunter2")
      expect((yield* Secrets.unsealDeploymentSecrets(sealed)).clusterJoinSecrets).toEqual({})
    }).pipe(Effect.provide(Secrets.layerMemory()))
  )
})

describe("in-memory DeploymentRepo", () => {
  it.effect("refuses a second deployment of an FQDN in flight, allows it once the first is terminal", () =>
    Effect.gen(function* () {
      const repo = yield* DeploymentRepo
      const first = yield* repo.create(record("0000000000000001", "t1.example.com"), event)
      expect(first.version).toBe(1)
      expect((yield* Effect.flip(repo.create(record("0000000000000002", "t1.example.com"), event))).reason).toBe("Conflict")
      yield* repo.update(first.id, 1, { status: "failed", error: "boom" }, [], 2)
      yield* repo.create(record("0000000000000002", "t1.example.com"), event)
      expect((yield* repo.list({})).map((r) => r.id).sort()).toEqual(["0000000000000001", "0000000000000002"])
    }).pipe(Effect.provide(Memory.layer(Memory.makeState())))
  )

  it.effect("updates with an optimistic version and persists events with the change, numbered without gaps", () =>
    Effect.gen(function* () {
      const repo = yield* DeploymentRepo
      const created = yield* repo.create(record("0000000000000001", "t1.example.com"), event)
      const { record: updated, events } = yield* repo.update(
        created.id,
        1,
        { status: "provisioning" },
        [{ ...event, state: "provisioning" }],
        5
      )
      expect(updated.version).toBe(2)
      expect(events.map((e) => e.seq)).toEqual([2])
      expect((yield* Effect.flip(repo.update(created.id, 1, { status: "failed" }, [], 6))).reason).toBe("VersionConflict")
      const cleared = yield* repo.update(created.id, 2, { error: "x" }, [], 7)
      expect(cleared.record.error).toBe("x")
      expect((yield* repo.update(created.id, 3, { clear: ["error"] }, [], 8)).record.error).toBeUndefined()
    }).pipe(Effect.provide(Memory.layer(Memory.makeState())))
  )

  it.scoped("tail replays what was persisted, then delivers new events live, in order", () =>
    Effect.gen(function* () {
      const repo = yield* DeploymentRepo
      const created = yield* repo.create(record("0000000000000001", "t1.example.com"), event)
      yield* repo.appendEvents(created.id, [{ ...event, message: "two" }])
      const fiber = yield* repo.tail(created.id, 1).pipe(Stream.take(3), Stream.runCollect, Effect.fork)
      yield* Effect.yieldNow()
      yield* repo.appendEvents(created.id, [
        { ...event, message: "three" },
        { ...event, message: "four" }
      ])
      const seen = [...(yield* Fiber.join(fiber))]
      expect(seen.map((e) => [e.seq, e.message])).toEqual([
        [2, "two"],
        [3, "three"],
        [4, "four"]
      ])
    }).pipe(Effect.provide(Memory.layer(Memory.makeState())))
  )
})

describe("in-memory JobRepo, Kubeconfigs and FlowEvents", () => {
  it.effect("jobs merge by the rules of SPEC 2.4 and executions carry numbered log lines", () =>
    Effect.gen(function* () {
      const jobs = yield* JobRepo
      const region = { key: "fsn1", primary: true }
      yield* jobs.upsert(Job.installJob({ deploymentId: "d1", region, release: "bp-harbor", dependsOn: ["bp-cnpg"] }))
      const merged = yield* jobs.upsert(Job.installJob({ deploymentId: "d1", region, release: "bp-harbor", status: "running" }))
      expect(merged.dependsOn).toEqual(["install-cnpg"])
      const execution = yield* jobs.startExecution("d1", "install-harbor", "e1", 10)
      yield* jobs.appendLog("d1", execution.id, [
        { timestamp: 11, level: "INFO", message: "a" },
        { timestamp: 12, level: "WARN", message: "b" }
      ])
      yield* jobs.finishExecution("d1", execution.id, "succeeded", 20)
      yield* jobs.finishExecution("d1", execution.id, "failed", 30)
      const found = Option.getOrThrow(yield* jobs.get("d1", "d1:install-harbor"))
      expect(found.job).toMatchObject({ status: "succeeded", startedAt: 10, finishedAt: 20, durationMs: 10, latestExecutionId: "e1" })
      const page = yield* jobs.logs("d1", "e1", 2, 0)
      expect(page).toEqual({ lines: [{ lineNumber: 2, timestamp: 12, level: "WARN", message: "b" }], total: 2, executionFinished: true })
      expect((yield* Effect.flip(jobs.startExecution("d1", "install-nothing", "e2", 1))).reason).toBe("NotFound")
    }).pipe(Effect.provide(Memory.layer(Memory.makeState())))
  )

  it.scoped("a kubeconfig is delivered once per region and wakes whoever awaits it", () =>
    Effect.gen(function* () {
      const kubeconfigs = yield* Kubeconfigs
      const waiting = yield* Effect.fork(kubeconfigs.await("d1", "hel1-1"))
      yield* Effect.yieldNow()
      expect((yield* Effect.flip(kubeconfigs.put("d1", "hel1-1", Redacted.make("  "), 1))).reason).toBe("Empty")
      yield* kubeconfigs.put("d1", "hel1-1", Redacted.make("apiVersion: v1"), 2)
      expect(Redacted.value(yield* Fiber.join(waiting))).toBe("apiVersion: v1")
      expect((yield* Effect.flip(kubeconfigs.put("d1", "hel1-1", Redacted.make("other"), 3))).reason).toBe("AlreadySet")
      expect(yield* kubeconfigs.arrivals("d1")).toEqual([{ regionKey: "hel1-1", receivedAt: 2 }])
    }).pipe(Effect.provide(Memory.layer(Memory.makeState())))
  )

  it.effect("flow events are bounded per deployment; a reader behind the bound is told to take a snapshot", () =>
    Effect.gen(function* () {
      const flow = yield* FlowEvents
      yield* flow.publish(
        "d1",
        [1, 2, 3, 4, 5].map((n) => ({ n })),
        1
      )
      expect(yield* flow.latestSeq("d1")).toBe(5)
      expect(Option.isNone(yield* flow.since("d1", 0))).toBe(true)
      expect(Option.getOrThrow(yield* flow.since("d1", 2)).map((e) => e.seq)).toEqual([3, 4, 5])
      expect(Option.getOrThrow(yield* flow.since("d1", 5))).toEqual([])
    }).pipe(Effect.provide(Memory.layer(Memory.makeState({ flowRetention: 3 }))))
  )
})

describe("Phase-0 step order", () => {
  it("orders a region's steps by their dependencies, keeping the adapter's order otherwise", () => {
    const step = (name: string, dependsOn: ReadonlyArray<string>) => ({ name, displayName: name, region: "fsn1", dependsOn })
    const ordered = orderSteps([step("servers", ["network", "key"]), step("network", []), step("key", []), step("lb", ["network"])])
    expect(ordered.map((s) => s.name)).toEqual(["network", "key", "servers", "lb"])
  })
})
