import { describe, expect, it } from "@effect/vitest"
import { DeploymentRepo } from "@sovereign/core/DeploymentRepo"
import { JobRepo } from "@sovereign/core/JobRepo"
import * as Orchestrator from "@sovereign/core/Orchestrator"
import { Effect, TestClock } from "effect"
import { checkReplay, checkSnapshot } from "./flowChecks.js"
import { advanceUntil, advanceUntilRegionsConcluded, creations, eventsOf, inventory, jobsOf, layer, makeWorld, publishedFlow, request, statusOf, type World } from "./harness.js"

/** Where process A is interrupted: after the k-th finished Phase-0 step, in the middle of the next one, or after k installs. */
type Boundary =
  | { readonly phase: "phase0"; readonly finishedSteps: number; readonly midStep: boolean }
  | { readonly phase: "phase1"; readonly installed: number }

const reached = (id: string, boundary: Boundary) =>
  Effect.gen(function*() {
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
  Effect.gen(function*() {
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
  Effect.gen(function*() {
    const orchestrator = yield* Orchestrator.Orchestrator
    yield* orchestrator.resumeAll
    yield* advanceUntil(id, ["ready", "failed", "partial-failure"])
    const record = yield* advanceUntilRegionsConcluded(id)
    const jobs = yield* jobsOf(id)
    const executions = yield* Effect.flatMap(JobRepo, (repo) =>
      Effect.forEach(jobs, (job) => Effect.map(Effect.orDie(repo.get(id, job.jobName)), (found) => found._tag === "Some" ? found.value.executions : [])))
    return {
      record,
      jobs,
      runningExecutions: executions.flat().filter((execution) => execution.status === "running").length,
      resources: (yield* inventory).filter((resource) => resource.labels["sovereign.dev/deployment"] === id || resource.name.startsWith("t1-")),
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
      Effect.gen(function*() {
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
        expect(result.jobs).toHaveLength(11 + 70)
        expect(result.runningExecutions).toBe(0)
        expect(result.events.map((event) => event.seq)).toEqual(result.events.map((_, index) => index + 1))
        expect(result.events.filter((event) => event.type === "handover-ready")).toHaveLength(1)
        // The flow deltas published by both processes still rebuild the final graph.
        checkSnapshot(checkReplay(id, ["fsn1", "hel1-1"], result.flow, result.jobs, false), id)
      }))
  }
})
