/**
 * Store faults are waits, not failures (issue 11): while the store is out, a run waits (logging the
 * cause at each wait) and continues where it was, repeating nothing its journal says is done; a
 * store that refuses for another reason ends the deployment `failed`, naming the cause, never stranded.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Orchestrator from "@sovereign/core/Orchestrator"
import { Effect, HashMap, List, Logger } from "effect"
import { advance, advanceUntil, advanceUntilSettled, creations, jobsOf, layer, makeWorld, request, type StoreFaults } from "./harness.js"

const terminal = ["ready", "failed", "partial-failure", "wiped"]

/** Every log line (message and annotations) the run writes, as text. */
const captureLogs = (lines: Array<string>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ annotations, cause, message }) => {
      const text = [
        List.toArray(Array.isArray(message) ? List.fromIterable(message) : List.of(message))
          .map(String)
          .join(" "),
        cause._tag === "Empty" ? "" : String(cause)
      ]
      lines.push(`${text.join(" ")} ${JSON.stringify(Object.fromEntries(HashMap.toEntries(annotations)))}`)
    })
  )

describe("store faults during a run", () => {
  const outage: StoreFaults = { fault: undefined, failed: 0 }
  const logs: Array<string> = []
  it.scoped(
    "an outage in Phase 0 and one in Phase 1 are waited out; the deployment is ready with every resource created once",
    () =>
      Effect.gen(function* () {
        const orchestrator = yield* Orchestrator.Orchestrator
        const created = yield* orchestrator.create(request(3), "ops@omani.works")
        const down = {
          reason: "Unavailable" as const,
          cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" })
        }
        yield* advance(2)
        expect((yield* jobsOf(created.id)).some((job) => job.status === "succeeded")).toBe(true)
        outage.fault = down
        yield* advance(3, 5)
        outage.fault = undefined
        yield* advanceUntil(created.id, ["phase1-watching", ...terminal])
        yield* advance(4)
        outage.fault = down
        yield* advance(2, 5)
        outage.fault = undefined
        const record = yield* advanceUntil(created.id, terminal)
        expect(record.status).toBe("ready")
        expect(outage.failed).toBeGreaterThan(0)
        const waits = logs.filter((line) => line.includes("the store is unavailable while"))
        expect(waits.length).toBeGreaterThan(0)
        expect(waits.every((line) => line.includes("ECONNREFUSED") && line.includes(created.id))).toBe(true)
        expect(logs.some((line) => line.includes("the store answers again while"))).toBe(true)
        // Nothing the journal says is done was done again: every simulated resource was created once.
        const counts = Object.values(yield* creations(created.id))
        expect(counts.length).toBeGreaterThan(0)
        expect(counts.every((count) => count === 1)).toBe(true)
        const settled = yield* advanceUntilSettled(created.id)
        expect(settled.every((job) => job.status === "succeeded")).toBe(true)
        expect((yield* jobsOf(created.id)).every((job) => job.status === "succeeded")).toBe(true)
      }).pipe(Effect.provide(layer(makeWorld(), { store: outage })), Effect.provide(captureLogs(logs))),
    { timeout: 120_000 }
  )

  const broken: StoreFaults = { fault: undefined, failed: 0 }
  it.scoped(
    "a store that refuses for another reason ends the deployment failed, naming the cause",
    () =>
      Effect.gen(function* () {
        const orchestrator = yield* Orchestrator.Orchestrator
        const created = yield* orchestrator.create(request(1), "ops@omani.works")
        yield* advance(2)
        broken.fault = { reason: "Unknown", cause: Object.assign(new Error('relation "jobs" does not exist'), { code: "42P01" }) }
        yield* advance(1, 5)
        broken.fault = undefined
        const record = yield* advanceUntil(created.id, terminal)
        expect(record.status).toBe("failed")
        expect(record.error).toContain("internal error")
        expect(record.error).toContain("the store refused")
        expect(record.error).toContain('relation "jobs" does not exist')
      }).pipe(Effect.provide(layer(makeWorld(), { store: broken }))),
    { timeout: 120_000 }
  )
})
