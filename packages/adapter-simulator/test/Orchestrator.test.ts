import { describe, expect, it } from "@effect/vitest"
import * as Orchestrator from "@sovereign/core/Orchestrator"
import { Effect } from "effect"
import { advanceUntil, eventsOf, jobsOf, layer, makeWorld, request } from "./harness.js"

describe("Orchestrator on the simulator", () => {
  it.scoped("takes a 1-region deployment to ready", () =>
    Effect.gen(function*() {
      const world = makeWorld()
      yield* Effect.gen(function*() {
        const orchestrator = yield* Orchestrator.Orchestrator
        const created = yield* orchestrator.create(request(1), "ops@omani.works")
        const record = yield* advanceUntil(created.id, ["ready", "failed", "partial-failure"])
        const events = yield* eventsOf(created.id)
        if (record.status !== "ready") console.log(record, events.slice(-10))
        expect(record.status).toBe("ready")
        const jobs = yield* jobsOf(created.id)
        console.log(jobs.length, jobs.filter((j) => j.status !== "succeeded").map((j) => `${j.jobName}:${j.status}`))
      }).pipe(Effect.provide(layer(world)))
    }))
})
