/**
 * Fencing (issue 11): whatever the interleaving of claims, expiries, releases and writes by two
 * replicas, a write made under a lease epoch that is not the deployment's current one is refused
 * (`Fenced`) and stores nothing; a write under the current epoch is stored. On PostgreSQL and PGlite.
 */
import { DeploymentRepo, FlowEvents, JobRepo, Leases } from "@sovereign/core"
import { describe, expect, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Duration, Effect, Either, Layer, Option } from "effect"
import * as fc from "fast-check"
import * as SecretBox from "../src/SecretBox.js"
import * as SqlLeases from "../src/SqlLeases.js"
import * as SqlStore from "../src/SqlStore.js"
import { backends } from "./support/databases.js"
import { acceptedEvent, installJob, newDeployment } from "./support/fixtures.js"

const key = Buffer.alloc(32, 9)
let counter = 0
const freshId = () => (0x2000000000000000 + ++counter * 7919 + Math.floor(Math.random() * 1e9)).toString(16).slice(0, 16)

type Command =
  | { readonly _tag: "Claim"; readonly replica: number }
  | { readonly _tag: "Expire" }
  | { readonly _tag: "Release"; readonly lease: number }
  | { readonly _tag: "Write"; readonly lease: number; readonly port: "event" | "update" | "step" | "job" | "flow" }

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ _tag: fc.constant("Claim" as const), replica: fc.integer({ min: 0, max: 1 }) }),
  fc.constant({ _tag: "Expire" as const }),
  fc.record({ _tag: fc.constant("Release" as const), lease: fc.nat(8) }),
  fc.record({
    _tag: fc.constant("Write" as const),
    lease: fc.nat(8),
    port: fc.constantFrom("event" as const, "update" as const, "step" as const, "job" as const, "flow" as const)
  })
)

for (const backend of backends) {
  describe(`fencing on ${backend.name}`, () => {
    const layer = SqlStore.layer().pipe(Layer.provideMerge(SecretBox.layerKey(key)), Layer.provideMerge(backend.layer))
    it.layer(layer, { timeout: 240_000 })((it) => {
      it.effect("refuses every write under a stale epoch, whatever the interleaving", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const repo = yield* DeploymentRepo.DeploymentRepo
          const jobs = yield* JobRepo.JobRepo
          const flow = yield* FlowEvents.FlowEvents
          const replicas = [
            yield* SqlLeases.make({ ttl: Duration.minutes(5), exclusive: false, notify: false, holder: "replica-a" }),
            yield* SqlLeases.make({ ttl: Duration.minutes(5), exclusive: false, notify: false, holder: "replica-b" })
          ]
          const property = fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 25 }), (commands) =>
            Effect.runPromise(
              Effect.gen(function* () {
                const id = freshId()
                yield* repo.create(newDeployment(id, { fqdn: `f${id}.omani.works` }), acceptedEvent)
                yield* jobs.upsert(installJob(id, "cilium", "pending"))
                const leases: Array<Leases.Lease> = []
                /** The model: the lease that may write now (the last claim, unless released since). */
                let current: Leases.Lease | undefined
                for (const step of commands) {
                  switch (step._tag) {
                    case "Claim": {
                      const claimed = yield* replicas[step.replica]!.claim(id)
                      // A claim succeeds exactly when no live lease is held.
                      expect(Option.isSome(claimed)).toBe(current === undefined)
                      if (Option.isSome(claimed)) {
                        expect(claimed.value.epoch).toBe((leases[leases.length - 1]?.epoch ?? 0) + 1)
                        leases.push(claimed.value)
                        current = claimed.value
                      }
                      break
                    }
                    case "Expire": {
                      // A frozen holder: its lease runs out (the row stays; a claim takes it over).
                      yield* sql`UPDATE leases SET expires_at = 0 WHERE deployment_id = ${id}`
                      // An expired lease still fences nobody out until it is claimed: its epoch is the latest.
                      if (current !== undefined) {
                        const again = yield* replicas[current.holder === "replica-a" ? 1 : 0]!.claim(id)
                        expect(Option.isSome(again)).toBe(true)
                        if (Option.isSome(again)) {
                          leases.push(again.value)
                          current = again.value
                        }
                      }
                      break
                    }
                    case "Release": {
                      const lease = leases[step.lease % Math.max(1, leases.length)]
                      if (lease === undefined) break
                      yield* replicas[lease.holder === "replica-a" ? 0 : 1]!.release(lease)
                      if (current !== undefined && current.epoch === lease.epoch) current = undefined
                      break
                    }
                    case "Write": {
                      const lease = leases[step.lease % Math.max(1, leases.length)]
                      if (lease === undefined) break
                      const before = yield* snapshot(sql, id)
                      const written = yield* Effect.either(
                        write(step.port, id).pipe(Effect.locally(Leases.currentFence, Option.some(lease)))
                      )
                      const allowed = current !== undefined && current.epoch === lease.epoch
                      if (allowed) {
                        expect(Either.isRight(written)).toBe(true)
                      } else {
                        expect(Either.isLeft(written) && (written.left as { reason: string }).reason).toBe("Fenced")
                        expect(yield* snapshot(sql, id)).toEqual(before)
                      }
                      break
                    }
                  }
                }
              })
            )
          )
          const write = (port: "event" | "update" | "step" | "job" | "flow", id: string) =>
            Effect.gen(function* () {
              switch (port) {
                case "event":
                  return yield* repo.appendEvents(id, [{ at: 5, phase: "deployment", level: "info", message: "progress" }])
                case "update": {
                  const record = Option.getOrThrow(yield* Effect.orDie(repo.get(id)))
                  return yield* repo.update(id, record.version, { results: { regions: [] } }, [], 6)
                }
                case "step":
                  return yield* repo.recordStep({
                    deploymentId: id,
                    jobName: "network",
                    region: "fsn1",
                    step: "network",
                    status: "running",
                    attempts: 1,
                    at: 7
                  })
                case "job":
                  return yield* jobs.upsert(installJob(id, "cilium", "running"))
                case "flow":
                  return yield* flow.publish(id, [{ v: 1 }], 8)
              }
            }) as Effect.Effect<unknown, { readonly reason: string }>
          yield* Effect.promise(() => fc.assert(property, { numRuns: backend.name === "pglite" ? 40 : 80 }))
        })
      )

      it.effect("writes racing a take-over: those of the old epoch stop at the claim and never resume", () =>
        Effect.gen(function* () {
          const repo = yield* DeploymentRepo.DeploymentRepo
          const a = yield* SqlLeases.make({ ttl: Duration.minutes(5), exclusive: false, notify: false, holder: "replica-a" })
          const b = yield* SqlLeases.make({ ttl: Duration.minutes(5), exclusive: false, notify: false, holder: "replica-b" })
          const sql = yield* SqlClient.SqlClient
          const id = freshId()
          yield* repo.create(newDeployment(id, { fqdn: `f${id}.omani.works` }), acceptedEvent)
          const old = Option.getOrThrow(yield* a.claim(id))
          // A keeps writing while its lease runs out and B takes the deployment over.
          const writer = Effect.forEach(
            Array.from({ length: 40 }, (_, index) => index),
            (index) => Effect.either(repo.appendEvents(id, [{ at: 9, phase: "deployment", level: "info", message: `from a ${index}` }]))
          ).pipe(Effect.locally(Leases.currentFence, Option.some(old)))
          const takeOver = Effect.zipRight(sql`UPDATE leases SET expires_at = 0 WHERE deployment_id = ${id}`, b.claim(id))
          const [results, claimed] = yield* Effect.all([writer, takeOver], { concurrency: "unbounded" })
          expect(Option.isSome(claimed)).toBe(true)
          const firstRefused = results.findIndex(Either.isLeft)
          const refusedAfter = firstRefused === -1 ? [] : results.slice(firstRefused)
          expect(refusedAfter.every((result) => Either.isLeft(result) && result.left.reason === "Fenced")).toBe(true)
          const refused = yield* Effect.flip(
            repo
              .appendEvents(id, [{ at: 10, phase: "deployment", level: "info", message: "late" }])
              .pipe(Effect.locally(Leases.currentFence, Option.some(old)))
          )
          expect(refused.reason).toBe("Fenced")
          const stored = (yield* repo.events(id, 0)).filter((event) => event.message.startsWith("from a"))
          expect(stored.length).toBe(firstRefused === -1 ? 40 : firstRefused)
        })
      )
    })
  })
}

const snapshot = (sql: SqlClient.SqlClient, id: string) =>
  Effect.all([
    sql`SELECT seq, event FROM deployment_events WHERE deployment_id = ${id} ORDER BY seq`,
    sql`SELECT version, results FROM deployments WHERE id = ${id}`,
    sql`SELECT job_name, entry FROM step_journal WHERE deployment_id = ${id}`,
    sql`SELECT job_name, job FROM jobs WHERE deployment_id = ${id}`,
    sql`SELECT seq FROM flow_events WHERE deployment_id = ${id}`
  ])
