import { describe, expect, it } from "@effect/vitest"
import { DeploymentRepo } from "@sovereign/core/DeploymentRepo"
import { JobRepo } from "@sovereign/core/JobRepo"
import * as Orchestrator from "@sovereign/core/Orchestrator"
import { Effect, TestClock } from "effect"
import { checkReplay, checkSnapshot } from "./flowChecks.js"
import { Duration } from "effect"
import {
  advanceUntil,
  advanceUntilRegionsConcluded,
  advanceUntilSettled,
  creations,
  eventsOf,
  inventory,
  jobsOf,
  jobWithLogs,
  layer,
  makeWorld,
  publishedFlow,
  request,
  statusOf,
  type World
} from "./harness.js"
import { checkFinished } from "./flowChecks.js"

/** Where process A is interrupted: after the k-th finished Phase-0 step, in the middle of the next one, or after k installs. */
type Boundary =
  | { readonly phase: "phase0"; readonly finishedSteps: number; readonly midStep: boolean }
  | { readonly phase: "phase1"; readonly installed: number }

const reached = (id: string, boundary: Boundary) =>
  Effect.gen(function* () {
    const record = yield* statusOf(id)
    if (boundary.phase === "phase0") {
      const journal = yield* Effect.flatMap(DeploymentRepo, (repo) => Effect.orDie(repo.journal(id)))
      const finished = journal.filter((entry) => entry.status === "succeeded").length
      if (record.status !== "pending" && record.status !== "provisioning") return true
      if (finished < boundary.finishedSteps) return false
      return !boundary.midStep || journal.some((entry) => entry.status === "running")
    }
    if (record.status !== "phase1-watching") return record.status === "ready" || record.status === "failed"
    const jobs = yield* jobsOf(id)
    return jobs.filter((job) => job.jobName.startsWith("install-") && job.status === "succeeded").length >= boundary.installed
  })

/** Process A: create, run until the boundary, then the process "dies" (its scope closes and every fiber is interrupted). */
const processA = (world: World, boundary: Boundary) =>
  Effect.gen(function* () {
    const orchestrator = yield* Orchestrator.Orchestrator
    const created = yield* orchestrator.create(request(2), "ops@omani.works")
    for (let i = 0; i < 20_000 && !(yield* reached(created.id, boundary)); i++) {
      yield* TestClock.adjust("2 seconds")
      for (let j = 0; j < 3; j++) yield* Effect.yieldNow()
    }
    return created.id
  }).pipe(Effect.provide(layer(world)), Effect.scoped)

/** Process B: a fresh orchestrator and simulator over what was persisted; resume, then run to the end. */
const processB = (world: World, id: string) =>
  Effect.gen(function* () {
    const orchestrator = yield* Orchestrator.Orchestrator
    yield* orchestrator.resumeAll
    yield* advanceUntil(id, ["ready", "failed", "partial-failure"])
    yield* advanceUntilRegionsConcluded(id)
    // The steps after Phase 0 (owner access, DNS, the mesh once both kits converged) finish too.
    yield* advanceUntilSettled(id, (job) => job.status === "succeeded")
    const record = yield* statusOf(id)
    const jobs = yield* jobsOf(id)
    const executions = yield* Effect.flatMap(JobRepo, (repo) =>
      Effect.forEach(jobs, (job) =>
        Effect.map(Effect.orDie(repo.get(id, job.jobName)), (found) => (found._tag === "Some" ? found.value.executions : []))
      )
    )
    return {
      record,
      jobs,
      runningExecutions: executions.flat().filter((execution) => execution.status === "running").length,
      resources: (yield* inventory).filter(
        (resource) => resource.labels["sovereign.dev/deployment"] === id || resource.name.startsWith("t1-")
      ),
      creations: yield* creations(id),
      events: yield* eventsOf(id),
      flow: yield* publishedFlow(id)
    }
  }).pipe(Effect.provide(layer(world)), Effect.scoped)

const boundaries: ReadonlyArray<Boundary> = [
  ...Array.from({ length: 12 }, (_, k): Boundary => ({ phase: "phase0", finishedSteps: k, midStep: false })),
  ...[0, 3, 7].map((k): Boundary => ({ phase: "phase0", finishedSteps: k, midStep: true })),
  ...[0, 1, 10, 25, 40, 55, 69].map((k): Boundary => ({ phase: "phase1", installed: k }))
]

const describeBoundary = (boundary: Boundary) =>
  boundary.phase === "phase0"
    ? `${boundary.midStep ? "in the middle of the step after" : "after"} ${boundary.finishedSteps} finished Phase-0 step(s)`
    : `after ${boundary.installed} installed release(s) in Phase 1`

describe("Resume after a restart (2 regions)", () => {
  for (const boundary of boundaries) {
    it.effect(`reaches ready when interrupted ${describeBoundary(boundary)}, creating every resource once`, () =>
      Effect.gen(function* () {
        const world = makeWorld()
        const id = yield* processA(world, boundary)
        const result = yield* processB(world, id)
        expect(result.record.status).toBe("ready")
        expect(result.record.error).toBeUndefined()
        // Every simulated cloud resource exists once, was created once, and carries its owner label.
        expect(result.resources).toHaveLength(12)
        for (const resource of result.resources) expect(resource.labels["sovereign.dev/deployment"]).toBe(id)
        expect(Object.keys(result.creations)).toHaveLength(12)
        expect(Object.entries(result.creations).filter(([, count]) => count !== 1)).toEqual([])
        // No job stuck, no execution left running, the event history numbered without gaps.
        expect(result.jobs.filter((job) => job.status !== "succeeded").map((job) => job.jobName)).toEqual([])
        // 11 cloud steps, 70 charts, DNS, the handover, and per region the mesh and the owner's access.
        expect(result.jobs).toHaveLength(11 + 70 + 6)
        expect(result.runningExecutions).toBe(0)
        expect(result.events.map((event) => event.seq)).toEqual(result.events.map((_, index) => index + 1))
        expect(result.events.filter((event) => event.type === "handover-ready")).toHaveLength(1)
        // The flow deltas published by both processes still rebuild the final graph.
        const snapshot = checkReplay(id, ["fsn1", "hel1-1"], result.flow, result.jobs, false)
        checkSnapshot(snapshot, id)
        checkFinished(snapshot, id)
      })
    )
  }
})

/** Finished Phase-0 steps plus installed releases: grows by one at every boundary. */
const progress = (id: string) =>
  Effect.gen(function* () {
    const journal = yield* Effect.flatMap(DeploymentRepo, (repo) => Effect.orDie(repo.journal(id)))
    const jobs = yield* jobsOf(id)
    return (
      journal.filter((entry) => entry.status === "succeeded").length +
      jobs.filter((job) => job.jobName.startsWith("install-") && job.status === "succeeded").length
    )
  })

describe("Chained restarts (2 regions)", () => {
  it.effect(
    "a process killed after every single step and every installed release still reaches ready, nothing duplicated",
    () =>
      Effect.gen(function* () {
        const world = makeWorld()
        const id = yield* Effect.gen(function* () {
          const orchestrator = yield* Orchestrator.Orchestrator
          return (yield* orchestrator.create(request(2), "ops@omani.works")).id
        }).pipe(Effect.provide(layer(world)), Effect.scoped)
        let restarts = 0
        let finished = false
        while (!finished && restarts < 400) {
          restarts++
          finished = yield* Effect.gen(function* () {
            const orchestrator = yield* Orchestrator.Orchestrator
            yield* orchestrator.resumeAll
            const before = yield* progress(id)
            for (let i = 0; i < 5_000; i++) {
              const record = yield* statusOf(id)
              const concluded = record.results.regions.every((region) => region.phase1 !== undefined && region.phase1.state !== "watching")
              if (record.status === "failed" || record.status === "partial-failure") return true
              if (record.status === "ready" && concluded) return true
              if ((yield* progress(id)) > before) return false
              yield* TestClock.adjust("2 seconds")
              for (let j = 0; j < 3; j++) yield* Effect.yieldNow()
            }
            return true
          }).pipe(Effect.provide(layer(world)), Effect.scoped)
        }
        const result = yield* processB(world, id)
        expect(restarts).toBeGreaterThan(40)
        expect(result.record.status).toBe("ready")
        expect(result.resources).toHaveLength(12)
        expect(Object.entries(result.creations).filter(([, count]) => count !== 1)).toEqual([])
        for (const resource of result.resources) expect(resource.labels["sovereign.dev/deployment"]).toBe(id)
        expect(result.jobs.filter((job) => job.status !== "succeeded").map((job) => job.jobName)).toEqual([])
        expect(result.runningExecutions).toBe(0)
        expect(result.events.filter((event) => event.type === "handover-ready")).toHaveLength(1)
        checkSnapshot(checkReplay(id, ["fsn1", "hel1-1"], result.flow, result.jobs, false), id)
      }),
    120_000
  )
})

describe("Resume of the steps after Phase 0 (2 regions, hel1's mesh faulted for 90 minutes after boot)", () => {
  const faults = { meshFaults: [{ cloudRegion: "hel1", until: Duration.minutes(90) }] }

  it.effect("a mesh job running when the process dies is finished by the next one, which meshes both regions once the fault clears", () =>
    Effect.gen(function* () {
      const world = makeWorld()
      // Process A: until a mesh job is running (retrying the faulted region), then it dies.
      const { id, running } = yield* Effect.gen(function* () {
        const orchestrator = yield* Orchestrator.Orchestrator
        const created = yield* orchestrator.create(request(2), "ops@omani.works")
        for (let i = 0; i < 20_000; i++) {
          const jobs = yield* jobsOf(created.id)
          const mesh = jobs.find((job) => job.jobName.endsWith("cutover-mesh") && job.status === "running")
          if (mesh !== undefined) return { id: created.id, running: mesh }
          yield* TestClock.adjust("5 seconds")
          for (let j = 0; j < 3; j++) yield* Effect.yieldNow()
        }
        return yield* Effect.die("no mesh job ever ran")
      }).pipe(Effect.provide(layer(world, { faults })), Effect.scoped)

      // Process B: resumes; the dead process's execution is finished (on its way out, or at B's start), then the mesh goes on.
      yield* Effect.gen(function* () {
        const orchestrator = yield* Orchestrator.Orchestrator
        expect(yield* orchestrator.resumeAll).toContain(id)
        yield* TestClock.adjust("1 second")
        for (let j = 0; j < 5; j++) yield* Effect.yieldNow()
        const closed = yield* jobWithLogs(id, running.jobName)
        const interrupted = closed.executions.find((execution) => execution.id === running.latestExecutionId)
        expect(interrupted?.status).toBe("failed")
        expect(closed.lines.some((line) => line.startsWith("interrupted"))).toBe(true)

        yield* advanceUntilSettled(id, (job) => job.status === "succeeded")
        const jobs = yield* jobsOf(id)
        expect(jobs.filter((job) => job.status !== "succeeded").map((job) => job.jobName)).toEqual([])
        const executions = yield* Effect.flatMap(JobRepo, (repo) =>
          Effect.forEach(jobs, (job) =>
            Effect.map(Effect.orDie(repo.get(id, job.jobName)), (found) => (found._tag === "Some" ? found.value.executions : []))
          )
        )
        expect(executions.flat().filter((execution) => execution.status === "running")).toEqual([])
        const mesh = (yield* statusOf(id)).results.mesh ?? []
        expect(mesh.map((region) => region.peers.every((peer) => peer.configured))).toEqual([true, true])
        const snapshot = checkReplay(id, ["fsn1", "hel1-1"], yield* publishedFlow(id), jobs, false)
        checkSnapshot(snapshot, id)
        checkFinished(snapshot, id)
      }).pipe(Effect.provide(layer(world, { faults })), Effect.scoped)
    })
  )
})

describe("Resume of other statuses", () => {
  it.effect("a wipe interrupted by a restart is finished by the next process", () =>
    Effect.gen(function* () {
      const world = makeWorld()
      const id = yield* Effect.gen(function* () {
        const orchestrator = yield* Orchestrator.Orchestrator
        const created = yield* orchestrator.create(request(2), "ops@omani.works")
        yield* advanceUntil(created.id, ["ready"])
        yield* orchestrator.wipe(created.id)
        return created.id
      }).pipe(Effect.provide(layer(world)), Effect.scoped)
      expect((yield* Effect.provide(statusOf(id), layer(world)).pipe(Effect.scoped)).status).toBe("wiping")
      yield* Effect.gen(function* () {
        const orchestrator = yield* Orchestrator.Orchestrator
        expect(yield* orchestrator.resumeAll).toContain(id)
        expect((yield* advanceUntil(id, ["wiped", "failed"])).status).toBe("wiped")
        expect((yield* inventory).filter((resource) => resource.labels["sovereign.dev/deployment"] === id)).toEqual([])
      }).pipe(Effect.provide(layer(world)), Effect.scoped)
    })
  )

  it.effect("a non-resumable cloud adapter gets the original policy: failed, naming what may be orphaned, offering the wipe", () =>
    Effect.gen(function* () {
      const world = makeWorld()
      const id = yield* processA(world, { phase: "phase0", finishedSteps: 3, midStep: true })
      yield* Effect.gen(function* () {
        const orchestrator = yield* Orchestrator.Orchestrator
        expect(yield* orchestrator.resumeAll).not.toContain(id)
        const record = yield* statusOf(id)
        expect(record.status).toBe("failed")
        expect(record.error).toContain("sovereign.dev/deployment=" + id)
        expect(record.error).toContain("/wipe")
        // The operator wipes: every resource goes, by label.
        yield* orchestrator.wipe(id)
        expect((yield* advanceUntil(id, ["wiped", "failed"])).status).toBe("wiped")
        expect((yield* inventory).filter((resource) => resource.labels["sovereign.dev/deployment"] === id)).toEqual([])
      }).pipe(Effect.provide(layer(world, { nonResumable: true })), Effect.scoped)
    })
  )

  it.effect("a ready deployment handed over (adopted) never changes: no wipe, no retry", () =>
    Effect.gen(function* () {
      const world = makeWorld()
      yield* Effect.gen(function* () {
        const orchestrator = yield* Orchestrator.Orchestrator
        const created = yield* orchestrator.create(request(1), "ops@omani.works")
        yield* advanceUntil(created.id, ["ready"])
        const refused = yield* Effect.flip(orchestrator.finalise("0000000000000000"))
        expect(refused.reason).toBe("NotFound")
        expect((yield* orchestrator.finalise(created.id)).status).toBe("adopted")
        expect((yield* Effect.flip(orchestrator.wipe(created.id))).reason).toBe("Adopted")
        expect((yield* Effect.flip(orchestrator.retry(created.id))).reason).toBe("Adopted")
        expect((yield* Effect.flip(orchestrator.finalise(created.id))).reason).toBe("Adopted")
        expect((yield* statusOf(created.id)).adoptedAt).toBeTypeOf("number")
      }).pipe(Effect.provide(layer(world)), Effect.scoped)
    })
  )
})
