import { describe, expect, it } from "@effect/vitest"
import * as Job from "@sovereign/core/Job"
import * as Orchestrator from "@sovereign/core/Orchestrator"
import type * as ClusterWatch from "@sovereign/core/ClusterWatch"
import { ReleaseEvent } from "@sovereign/core/ClusterWatch"
import type * as HelmRelease from "@sovereign/core/HelmRelease"
import { Effect, Stream } from "effect"
import { bootstrapKit } from "../src/internal/bootstrapKit.js"
import { checkReplay, checkSnapshot } from "./flowChecks.js"
import {
  advance,
  advanceUntil,
  advanceUntilRegionsConcluded,
  creations,
  dnsRecords,
  eventsOf,
  inventory,
  jobsOf,
  layer,
  makeWorld,
  publishedFlow,
  request,
  statusOf
} from "./harness.js"

const terminal = ["ready", "failed", "partial-failure", "wiped"]
const regionKeys = ["fsn1", "hel1-1", "nbg1-2"]

describe("Orchestrator on the simulator: the happy path", () => {
  for (const regions of [1, 2, 3]) {
    it.scoped(`takes a ${regions}-region deployment to ready with every job and a sound flow graph`, () =>
      Effect.gen(function*() {
        const orchestrator = yield* Orchestrator.Orchestrator
        const created = yield* orchestrator.create(request(regions), "ops@omani.works")
        expect(created.status).toBe("pending")
        const record = yield* advanceUntil(created.id, terminal)
        expect(record.status).toBe("ready")
        expect(record.error).toBeUndefined()
        expect(record.results.phase1Outcome).toBe("ready")
        // The primary decided; the secondaries are still watched to their end.
        const concluded = yield* advanceUntilRegionsConcluded(created.id)
        for (const region of concluded.results.regions) expect(region.phase1?.state).toBe("ready")

        // Jobs: every cloud step and every chart of every region, all succeeded, named per SPEC 2.4.
        const jobs = yield* jobsOf(created.id)
        const keys = regionKeys.slice(0, regions)
        const expected = keys.flatMap((key, index) => {
          const prefix = index === 0 ? "" : `${key}:`
          const steps = ["network", "firewall", "ssh-key", "load-balancer", "control-plane", ...(index === 0 ? ["workers"] : [])]
          return [...steps.map((step) => `${prefix}${step}`), ...bootstrapKit.map((release) => `install-${prefix}${Job.chartOf(release.name)}`)]
        })
        expect(jobs.map((job) => job.jobName).sort()).toEqual([...expected].sort())
        expect(jobs.filter((job) => job.status !== "succeeded").map((job) => job.jobName)).toEqual([])
        const harbor = jobs.find((job) => job.jobName === (regions > 1 ? "install-hel1-1:harbor" : "install-harbor"))!
        expect(harbor.dependsOn.length).toBeGreaterThan(0)
        for (const dependency of harbor.dependsOn) expect(dependency.startsWith(regions > 1 ? "install-hel1-1:" : "install-")).toBe(true)

        // The flow: the published deltas rebuild exactly the composition of the stored jobs.
        const published = yield* publishedFlow(created.id)
        const snapshot = checkReplay(created.id, keys, published, jobs, false)
        checkSnapshot(snapshot, created.id)
        expect(snapshot.flow.status).toBe("succeeded")

        // Handover announced once, DNS published, every resource owned and created once.
        const events = yield* eventsOf(created.id)
        expect(events.filter((event) => event.type === "handover-ready")).toHaveLength(1)
        expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index + 1))
        expect(JSON.stringify(events)).not.toContain("secret-token-value")
        const records = yield* dnsRecords
        expect(records.filter((r) => r.owner === created.id).map((r) => r.name)).toContain("console.t1.omani.works.")
        const resources = (yield* inventory).filter((r) => r.labels["sovereign.dev/deployment"] === created.id)
        expect(resources.length).toBe(regions * 5 + 2)
        expect(Object.values(yield* creations(created.id)).every((count) => count === 1)).toBe(true)

        if (regions >= 2) {
          // The mesh converges in the background, then heals.
          yield* advance(15)
          const meshed = yield* statusOf(created.id)
          expect(meshed.results.mesh?.length).toBe(regions)
          for (const region of meshed.results.mesh ?? []) {
            expect(region.peers.length).toBe(regions - 1)
            expect(region.peers.every((peer) => peer.configured)).toBe(true)
          }
          expect((yield* eventsOf(created.id)).some((event) => event.type === "mesh" && event.state === "connected")).toBe(true)
        }
      }).pipe(Effect.provide(layer(makeWorld()))))
  }

  it.scoped("Phase 1 reads each install job from the store once, then writes whole batches of release events at a time", () => {
    const calls: Array<{ readonly method: string; readonly args: ReadonlyArray<unknown> }> = []
    return Effect.gen(function*() {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(1), "ops@omani.works")
      expect((yield* advanceUntil(created.id, terminal)).status).toBe("ready")
      const isInstall = (name: unknown) => typeof name === "string" && Job.isInstallJobName(name)
      // Reads: once per install job (the watch keeps what it wrote), not once per release event.
      const reads = calls.filter((call) => call.method === "get" && isInstall(call.args[1])).map((call) => call.args[1] as string)
      expect(reads.length).toBe(bootstrapKit.length)
      expect(new Set(reads).size).toBe(reads.length)
      // Writes: only lists. No single-call write touches an install job or an execution Phase 0 did not start.
      const phase0Executions = new Set(calls.filter((call) => call.method === "startExecution").map((call) => call.args[2]))
      const jobNameOf = (call: (typeof calls)[number]) =>
        call.method === "upsert" ? (call.args[0] as Job.Job).jobName : call.method === "startExecution" ? call.args[1] : undefined
      expect(calls.filter((call) => isInstall(jobNameOf(call)))).toEqual([])
      expect(calls.filter((call) => (call.method === "finishExecution" || call.method === "appendLog") && !phase0Executions.has(call.args[1]))).toEqual([])
      const lists = calls.filter((call) => call.method === "record")
      const written = lists.flatMap((call) => call.args[1] as ReadonlyArray<{ readonly _tag: string }>)
      const components = (yield* eventsOf(created.id)).filter((event) => event.type === "component")
      // Every reported release is one Upsert in some list; a list holds a whole batch, so there are at most as many lists as reports.
      expect(written.filter((w) => w._tag === "Upsert").length).toBe(components.length)
      expect(lists.length).toBeLessThanOrEqual(components.length)
    }).pipe(Effect.provide(layer(makeWorld(), { spyJobs: (method, args) => calls.push({ method, args }) })))
  })

  it.scoped("a burst of watch events is stored in a few batches, not one transaction per event", () => {
    const calls: Array<string> = []
    const ready = (status: "True" | "False" | "Unknown", reason: string): HelmRelease.Condition => ({ type: "Ready", status, reason, message: reason })
    const cycle = [[ready("Unknown", "Progressing")], [ready("False", "InstallFailed")], [ready("True", "InstallSucceeded")]]
    const observed = (index: number, conditions: ReadonlyArray<HelmRelease.Condition>) => {
      const release = bootstrapKit[index]!
      return ReleaseEvent.Observed({
        release: { name: release.name, namespace: release.namespace, generation: 1, observedGeneration: 1, suspend: false, conditions, dependsOn: release.dependsOn }
      })
    }
    // The initial list, then 4,000 state changes, each followed by a repeat, then every release Ready:
    // delivered one event per chunk, while every store call takes 10 ms (of the test clock).
    const burst: Array<ClusterWatch.ReleaseEvent> = [...bootstrapKit.map((_, index) => observed(index, [])), ReleaseEvent.Synced()]
    for (let step = 0; step < 4000; step++) {
      const index = step % bootstrapKit.length
      const event = observed(index, cycle[(Math.floor(step / bootstrapKit.length) + index) % 2]!)
      burst.push(event, event)
    }
    burst.push(...bootstrapKit.map((_, index) => observed(index, cycle[2]!)))
    const watch: ClusterWatch.ClusterWatchService = { watch: () => Stream.concat(Stream.fromIterable(burst).pipe(Stream.rechunk(1)), Stream.never) }
    return Effect.gen(function*() {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(1), "ops@omani.works")
      expect((yield* advanceUntil(created.id, terminal)).status).toBe("ready")
      const components = (yield* eventsOf(created.id)).filter((event) => event.type === "component")
      expect(components.length).toBe(bootstrapKit.length + 4000 + bootstrapKit.length)
      // 8,105 events: whatever arrived while the previous batch was stored, at most 2,000 to a batch.
      const lists = calls.filter((method) => method === "record").length
      expect(lists).toBeGreaterThan(0)
      expect(lists).toBeLessThanOrEqual(12)
    }).pipe(Effect.provide(layer(makeWorld(), { watch, spyJobs: (method) => calls.push(method), jobsLatency: "10 millis" })))
  })

  it.scoped("rejects an invalid request with field issues and a second deployment of an FQDN in flight", () =>
    Effect.gen(function*() {
      const orchestrator = yield* Orchestrator.Orchestrator
      const invalid = yield* Effect.flip(orchestrator.create({ ...request(1), regions: [] }, "ops@omani.works"))
      expect(invalid._tag).toBe("InvalidRequest")
      yield* orchestrator.create(request(1), "ops@omani.works")
      const conflict = yield* Effect.flip(orchestrator.create(request(1), "ops@omani.works"))
      expect(conflict._tag === "OrchestratorError" && conflict.reason).toBe("Conflict")
    }).pipe(Effect.provide(layer(makeWorld()))))
})
