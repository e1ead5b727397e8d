import { describe, expect, it } from "@effect/vitest"
import * as Job from "@sovereign/core/Job"
import type * as JobRepo from "@sovereign/core/JobRepo"
import * as Lifecycle from "@sovereign/core/Lifecycle"
import * as Orchestrator from "@sovereign/core/Orchestrator"
import type * as ClusterWatch from "@sovereign/core/ClusterWatch"
import { ReleaseEvent } from "@sovereign/core/ClusterWatch"
import type * as HelmRelease from "@sovereign/core/HelmRelease"
import * as FlowGraph from "@sovereign/core/FlowGraph"
import { Duration, Effect, Option, Stream } from "effect"
import { SimulatorWorld } from "../src/SimulatorWorld.js"
import { bootstrapKit } from "../src/internal/bootstrapKit.js"
import { checkFinished, checkReplay, checkSnapshot } from "./flowChecks.js"
import {
  advance,
  advanceUntil,
  advanceUntilRegionsConcluded,
  advanceUntilSettled,
  creations,
  dnsRecords,
  eventsOf,
  inventory,
  jobsOf,
  jobWithLogs,
  layer,
  makeWorld,
  publishedFlow,
  request,
  statusOf
} from "./harness.js"

const terminal = ["ready", "failed", "partial-failure", "wiped"]

/** The executions the lifecycle steps started, so their later log and finish writes are recognised too. */
const lifecycleExecutions = new Set<string>()
/** A list of job writes made by a step after Phase 0 (not by Phase 1's watch). */
const lifecycleList = (writes: ReadonlyArray<JobRepo.JobWrite>): boolean =>
  writes.length > 0 &&
  writes.every((write) => {
    switch (write._tag) {
      case "Upsert":
        return Lifecycle.stepOf(write.job.jobName) !== undefined
      case "Start":
        if (Lifecycle.stepOf(write.jobName) === undefined) return false
        lifecycleExecutions.add(write.executionId)
        return true
      default:
        return lifecycleExecutions.has(write.executionId)
    }
  })
const regionKeys = ["fsn1", "hel1-1", "nbg1-2"]

describe("Orchestrator on the simulator: the happy path", () => {
  for (const regions of [1, 2, 3]) {
    it.scoped(`takes a ${regions}-region deployment to ready with every job and a sound flow graph`, () =>
      Effect.gen(function* () {
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

        // After the ready outcome: the owner's access everywhere, DNS, and the mesh once each region's kit converged.
        yield* advanceUntilSettled(created.id)

        // Jobs: every cloud step, every chart and every step after Phase 0 of every region, all succeeded, named per SPEC 2.4.
        const jobs = yield* jobsOf(created.id)
        const keys = regionKeys.slice(0, regions)
        const expected = keys.flatMap((key, index) => {
          const prefix = index === 0 ? "" : `${key}:`
          const steps = ["network", "firewall", "ssh-key", "load-balancer", "control-plane", ...(index === 0 ? ["workers"] : [])]
          const lifecycle = [
            ...(index === 0 ? ["cutover-dns", "handover-token"] : []),
            ...(regions >= 2 ? [`${prefix}cutover-mesh`] : []),
            `${prefix}handover-access`
          ]
          return [
            ...steps.map((step) => `${prefix}${step}`),
            ...bootstrapKit.map((release) => `install-${prefix}${Job.chartOf(release.name)}`),
            ...lifecycle
          ]
        })
        expect(jobs.map((job) => job.jobName).sort()).toEqual([...expected].sort())
        expect(jobs.filter((job) => job.status !== "succeeded").map((job) => job.jobName)).toEqual([])
        const harbor = jobs.find((job) => job.jobName === (regions > 1 ? "install-hel1-1:harbor" : "install-harbor"))!
        expect(harbor.dependsOn.length).toBeGreaterThan(0)
        for (const dependency of harbor.dependsOn) expect(dependency.startsWith(regions > 1 ? "install-hel1-1:" : "install-")).toBe(true)
        // Each lifecycle step ran as an execution with log lines.
        for (const name of expected.filter((jobName) => /(^|:)(cutover|handover)-/.test(jobName))) {
          const found = yield* jobWithLogs(created.id, name)
          expect(found.executions.length, name).toBeGreaterThanOrEqual(1)
          expect(
            found.executions.every((execution) => execution.status === "succeeded"),
            name
          ).toBe(true)
          expect(found.lines.length, name).toBeGreaterThan(0)
        }

        // The flow: the published deltas rebuild exactly the composition of the stored jobs.
        const published = yield* publishedFlow(created.id)
        const snapshot = checkReplay(created.id, keys, published, jobs, false)
        checkSnapshot(snapshot, created.id)
        checkFinished(snapshot, created.id)
        expect(snapshot.flow.status).toBe("succeeded")
        const node = (name: string) => snapshot.nodes.find((n) => n.id === `${created.id}:${name}`)
        const parentOf = (name: string) =>
          snapshot.relationships.find((r) => r.type === "contains" && r.fromId === `${created.id}:${name}`)?.toId
        expect(node("cutover")?.status).toBe("succeeded")
        expect(node("handover")?.status).toBe("succeeded")
        expect(node("apps")).toMatchObject({ status: "pending", meta: { empty: true } })
        expect(node("cutover-dns")).toMatchObject({ status: "succeeded", region: "fsn1", family: "cutover" })
        expect(parentOf("cutover-dns")).toBe(`${created.id}:fsn1:cutover`)
        expect(node("handover-token")).toMatchObject({ status: "succeeded", region: "fsn1", family: "handover" })
        keys.forEach((key, index) => {
          const prefix = index === 0 ? "" : `${key}:`
          if (regions >= 2) {
            expect(node(`${prefix}cutover-mesh`), key).toMatchObject({ status: "succeeded", region: key })
            expect(parentOf(`${prefix}cutover-mesh`)).toBe(`${created.id}:${key}:cutover`)
            // "after this region's bootstrap kit": one edge from the region's group
            expect(snapshot.relationships).toContainEqual({
              fromId: `${created.id}:${key}:bootstrap-kit`,
              toId: `${created.id}:${prefix}cutover-mesh`,
              type: "finish-to-start"
            })
          }
          expect(parentOf(`${prefix}handover-access`)).toBe(`${created.id}:${key}:handover`)
        })

        // Handover announced once, DNS published, every resource owned and created once, the owner granted everywhere.
        const events = yield* eventsOf(created.id)
        expect(events.filter((event) => event.type === "handover-ready")).toHaveLength(1)
        expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index + 1))
        expect(JSON.stringify(events)).not.toContain("secret-token-value")
        const records = yield* dnsRecords
        expect(records.filter((r) => r.owner === created.id).map((r) => r.name)).toContain("console.t1.omani.works.")
        const resources = (yield* inventory).filter((r) => r.labels["sovereign.dev/deployment"] === created.id)
        expect(resources.length).toBe(regions * 5 + 2)
        expect(Object.values(yield* creations(created.id)).every((count) => count === 1)).toBe(true)
        const world = yield* Effect.flatMap(SimulatorWorld, (w) => Effect.orDie(w.read(created.id)))
        for (const key of keys) expect(Option.getOrThrow(world).clusters[key]?.grants).toEqual(["ops@omani.works:sovereign-admin"])

        if (regions >= 2) {
          // The mesh converged in the background, then heals every 5 minutes without adding executions.
          const meshed = yield* statusOf(created.id)
          expect(meshed.results.mesh?.length).toBe(regions)
          for (const region of meshed.results.mesh ?? []) {
            expect(region.peers.length).toBe(regions - 1)
            expect(region.peers.every((peer) => peer.configured)).toBe(true)
          }
          expect((yield* eventsOf(created.id)).some((event) => event.type === "mesh" && event.state === "connected")).toBe(true)
          const before = yield* jobWithLogs(created.id, "hel1-1:cutover-mesh")
          yield* advance(30)
          const after = yield* jobWithLogs(created.id, "hel1-1:cutover-mesh")
          expect(after.executions.length).toBe(before.executions.length)
          expect(after.lines.length).toBe(before.lines.length)
          expect(after.job.status).toBe("succeeded")
        }
      }).pipe(Effect.provide(layer(makeWorld())))
    )
  }

  it.scoped("a mesh fault shows as the reason of the region's mesh job, which recovers when the fault clears", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(3), "ops@omani.works")
      expect((yield* advanceUntil(created.id, terminal)).status).toBe("ready")
      // While the fault lasts: hel1-1's own job names the fault; its peers' jobs name hel1-1's cluster.
      const seen = { running: false, failed: false, peer: false, node: false }
      for (let minute = 0; minute < 240 && !(seen.failed && seen.peer); minute++) {
        const jobs = yield* jobsOf(created.id)
        const hel = jobs.find((job) => job.jobName === "hel1-1:cutover-mesh")!
        if (hel.reason?.includes("does not answer (simulated mesh-fault)")) {
          if (hel.status === "running") seen.running = true
          if (hel.status === "failed") seen.failed = true
          const snapshot = FlowGraph.compose({ deploymentId: created.id, regions: regionKeys, jobs })
          const node = snapshot.nodes.find((n) => n.id === `${created.id}:hel1-1:cutover-mesh`)
          if (typeof node?.meta?.reason === "string" && node.meta.reason.includes("simulated mesh-fault")) seen.node = true
        }
        const primary = jobs.find((job) => job.jobName === "cutover-mesh")!
        if (primary.reason?.includes("t1-hel: peer region hel1-1 failed")) seen.peer = true
        yield* advance(1)
      }
      expect(seen).toEqual({ running: true, failed: true, peer: true, node: true })
      // The fault clears 90 minutes after hel1-1 booted: the next pass heals every region.
      yield* advanceUntilSettled(created.id, (job) => job.status === "succeeded")
      const jobs = yield* jobsOf(created.id)
      for (const name of ["cutover-mesh", "hel1-1:cutover-mesh", "nbg1-2:cutover-mesh"]) {
        const job = jobs.find((j) => j.jobName === name)!
        expect(job.status, name).toBe("succeeded")
        expect(job.reason, name).toBeUndefined()
      }
      const hel = yield* jobWithLogs(created.id, "hel1-1:cutover-mesh")
      // Newest first: the healing run succeeded, the run during the fault failed with the fault as its reason.
      expect(hel.executions.map((execution) => execution.status)).toEqual(["succeeded", "failed"])
      expect(hel.lines.some((line) => line.includes("simulated mesh-fault"))).toBe(true)
      expect(hel.lines.some((line) => line.startsWith("Healed:"))).toBe(true)
      const meshed = yield* statusOf(created.id)
      for (const region of meshed.results.mesh ?? []) expect(region.peers.every((peer) => peer.configured)).toBe(true)
      const snapshot = checkReplay(created.id, regionKeys, yield* publishedFlow(created.id), jobs, false)
      checkSnapshot(snapshot, created.id)
      checkFinished(snapshot, created.id)
      expect(snapshot.flow.status).toBe("succeeded")
    }).pipe(Effect.provide(layer(makeWorld(), { faults: { meshFaults: [{ cloudRegion: "hel1", until: Duration.minutes(90) }] } })))
  )

  it.scoped("Phase 1 reads each install job from the store once, then writes whole batches of release events at a time", () => {
    const calls: Array<{ readonly method: string; readonly args: ReadonlyArray<unknown> }> = []
    return Effect.gen(function* () {
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
      expect(
        calls.filter((call) => (call.method === "finishExecution" || call.method === "appendLog") && !phase0Executions.has(call.args[1]))
      ).toEqual([])
      // (The steps after Phase 0 write their own lists: only Phase 1's count here.)
      const lists = calls.filter((call) => call.method === "record" && !lifecycleList(call.args[1] as ReadonlyArray<JobRepo.JobWrite>))
      const written = lists.flatMap((call) => call.args[1] as ReadonlyArray<{ readonly _tag: string }>)
      const components = (yield* eventsOf(created.id)).filter((event) => event.type === "component")
      // Every reported release is one Upsert in some list; a list holds a whole batch, so there are at most as many lists as reports.
      expect(written.filter((w) => w._tag === "Upsert").length).toBe(components.length)
      expect(lists.length).toBeLessThanOrEqual(components.length)
    }).pipe(Effect.provide(layer(makeWorld(), { spyJobs: (method, args) => calls.push({ method, args }) })))
  })

  it.scoped("a burst of watch events is stored in a few batches, not one transaction per event", () => {
    const calls: Array<string> = []
    const spy = (method: string, args: ReadonlyArray<unknown>) => {
      if (method !== "record" || !lifecycleList(args[1] as ReadonlyArray<JobRepo.JobWrite>)) calls.push(method)
    }
    const ready = (status: "True" | "False" | "Unknown", reason: string): HelmRelease.Condition => ({
      type: "Ready",
      status,
      reason,
      message: reason
    })
    const cycle = [[ready("Unknown", "Progressing")], [ready("False", "InstallFailed")], [ready("True", "InstallSucceeded")]]
    const observed = (index: number, conditions: ReadonlyArray<HelmRelease.Condition>) => {
      const release = bootstrapKit[index]!
      return ReleaseEvent.Observed({
        release: {
          name: release.name,
          namespace: release.namespace,
          generation: 1,
          observedGeneration: 1,
          suspend: false,
          conditions,
          dependsOn: release.dependsOn
        }
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
    const watch: ClusterWatch.ClusterWatchService = {
      watch: () => Stream.concat(Stream.fromIterable(burst).pipe(Stream.rechunk(1)), Stream.never)
    }
    return Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(1), "ops@omani.works")
      expect((yield* advanceUntil(created.id, terminal)).status).toBe("ready")
      const components = (yield* eventsOf(created.id)).filter((event) => event.type === "component")
      expect(components.length).toBe(bootstrapKit.length + 4000 + bootstrapKit.length)
      // 8,105 events: whatever arrived while the previous batch was stored, at most 2,000 to a batch.
      const lists = calls.filter((method) => method === "record").length
      expect(lists).toBeGreaterThan(0)
      expect(lists).toBeLessThanOrEqual(12)
    }).pipe(Effect.provide(layer(makeWorld(), { watch, spyJobs: spy, jobsLatency: "10 millis" })))
  })

  it.scoped("rejects an invalid request with field issues and a second deployment of an FQDN in flight", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const invalid = yield* Effect.flip(orchestrator.create({ ...request(1), regions: [] }, "ops@omani.works"))
      expect(invalid._tag).toBe("InvalidRequest")
      yield* orchestrator.create(request(1), "ops@omani.works")
      const conflict = yield* Effect.flip(orchestrator.create(request(1), "ops@omani.works"))
      expect(conflict._tag === "OrchestratorError" && conflict.reason).toBe("Conflict")
    }).pipe(Effect.provide(layer(makeWorld())))
  )
})
