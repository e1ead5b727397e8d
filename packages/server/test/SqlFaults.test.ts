/**
 * SQL errors are classified in one place (issue 11): the real errors of PostgreSQL and PGlite, and a
 * refused connection, land in Conflict / Retryable / NonRetryable, and the ports keep the driver's
 * error as their cause.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { DeploymentRepo, JobRepo } from "@sovereign/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import * as SecretBox from "../src/SecretBox.js"
import * as SqlFaults from "../src/SqlFaults.js"
import * as SqlStore from "../src/SqlStore.js"
import { backends } from "./support/databases.js"
import { acceptedEvent, installJob, newDeployment } from "./support/fixtures.js"
import { freePort } from "./support/process.js"

describe("SQLSTATE classification", () => {
  it("maps SQLSTATEs and socket errors to a fault", () => {
    const table: ReadonlyArray<readonly [unknown, SqlFaults.Fault]> = [
      [{ code: "23505", message: "duplicate key value violates unique constraint" }, "Conflict"],
      [{ code: "40001", message: "could not serialize access" }, "Retryable"],
      [{ code: "40P01", message: "deadlock detected" }, "Retryable"],
      [{ code: "57P01", message: "terminating connection due to administrator command" }, "Retryable"],
      [{ code: "57P03", message: "the database system is starting up" }, "Retryable"],
      [{ code: "08006", message: "connection failure" }, "Retryable"],
      [{ code: "53300", message: "too many clients" }, "Retryable"],
      [{ code: "42P01", message: "relation does not exist" }, "NonRetryable"],
      [{ code: "42703", message: "column does not exist" }, "NonRetryable"],
      [{ code: "22P02", message: "invalid input syntax for type bigint" }, "NonRetryable"],
      [{ code: "23502", message: "null value violates not-null constraint" }, "NonRetryable"],
      [
        { message: "Failed to acquire connection", cause: { code: "ECONNREFUSED", message: "connect ECONNREFUSED 127.0.0.1:1" } },
        "Retryable"
      ],
      [{ message: "Failed to execute statement", cause: new Error("Connection terminated unexpectedly") }, "Retryable"],
      [{ message: "Failed to execute statement", cause: new Error("something else entirely") }, "NonRetryable"]
    ]
    for (const [error, fault] of table) expect([error, SqlFaults.classify(error).fault]).toEqual([error, fault])
    expect(SqlFaults.classify({ message: "Failed", cause: { code: "40P01", message: "deadlock detected" } }).detail).toContain(
      "SQLSTATE 40P01"
    )
  })

  for (const backend of backends) {
    describe(`on ${backend.name}`, () => {
      it.layer(backend.layer, { timeout: 60_000 })((it) => {
        it.effect("a unique violation is a Conflict; a schema or data error is NonRetryable", () =>
          Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            yield* sql`INSERT INTO flow_heads (deployment_id, seq) VALUES ('fault-test', 1)`
            const unique = yield* Effect.flip(sql`INSERT INTO flow_heads (deployment_id, seq) VALUES ('fault-test', 2)`)
            expect(SqlFaults.classify(unique)).toMatchObject({ fault: "Conflict", code: "23505" })
            const missing = yield* Effect.flip(sql`SELECT * FROM no_such_table`)
            expect(SqlFaults.classify(missing)).toMatchObject({ fault: "NonRetryable", code: "42P01" })
            const fraction = yield* Effect.flip(
              sql`INSERT INTO flow_heads (deployment_id, seq) VALUES ('fault-test-2', ${"1796171589099.5"})`
            )
            expect(SqlFaults.classify(fraction)).toMatchObject({ fault: "NonRetryable", code: "22P02" })
          })
        )
      })
    })
  }

  for (const backend of backends) {
    describe(`integer milliseconds on ${backend.name}`, () => {
      const layer = SqlStore.layer().pipe(Layer.provideMerge(SecretBox.layerKey(Buffer.alloc(32, 4))), Layer.provideMerge(backend.layer))
      it.layer(layer, { timeout: 60_000 })((it) => {
        it.effect("a fractional timestamp is refused by the port, naming the field, before any statement runs", () =>
          Effect.gen(function* () {
            const repo = yield* DeploymentRepo.DeploymentRepo
            const jobs = yield* JobRepo.JobRepo
            const id = "00000000000000f1"
            yield* repo.create(newDeployment(id, { fqdn: "ms.omani.works" }), acceptedEvent)
            yield* jobs.upsert(installJob(id, "cilium", "pending"))
            yield* jobs.startExecution(id, "install-cilium", "e-ms-1", 1_000)
            // The value the issue saw: a scaled clock's fraction on its way into log_lines.
            const line = yield* Effect.flip(jobs.appendLog(id, "e-ms-1", [{ timestamp: 1796171589099.5, level: "INFO", message: "x" }]))
            expect(line.reason).toBe("Invalid")
            expect(line.message).toContain("timestamp")
            expect(line.message).toContain("Expected an integer (unix time in milliseconds), actual 1796171589099.5")
            expect(line.message).not.toContain("SQLSTATE")
            const update = yield* Effect.flip(repo.update(id, 1, { status: "failed" }, [], 2_000.25))
            expect(update).toMatchObject({ reason: "Invalid" })
            const event = yield* Effect.flip(repo.appendEvents(id, [{ ...acceptedEvent, at: Number.NaN }]))
            expect(event.message).toContain("at")
            expect((yield* repo.get(id)).pipe(Option.getOrThrow).version).toBe(1)
          })
        )
      })
    })
  }

  it.live(
    "a refused connection is Retryable, and a port's error keeps the driver's cause",
    () =>
      Effect.gen(function* () {
        const port = yield* Effect.promise(freePort)
        const sql = yield* Effect.scoped(
          Layer.build(
            PgClient.layer({ url: Redacted.make(`postgres://postgres@127.0.0.1:${port}/none`), connectTimeout: "2 seconds" })
          ).pipe(
            Effect.map((context) => context.unsafeMap.get(SqlClient.SqlClient.key) as SqlClient.SqlClient),
            Effect.flip
          )
        )
        expect(SqlFaults.classify(sql)).toMatchObject({ fault: "Retryable" })
      }),
    { timeout: 30_000 }
  )

  it.live(
    "an administrator's termination of the session is Retryable at the port, with its cause",
    () =>
      Effect.gen(function* () {
        const layer = SqlStore.layer().pipe(
          Layer.provideMerge(SecretBox.layerKey(Buffer.alloc(32, 3))),
          Layer.provideMerge(backends[0].layer)
        )
        yield* Effect.scoped(
          Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            const jobs = yield* JobRepo.JobRepo
            const repo = yield* DeploymentRepo.DeploymentRepo
            // Inside a transaction the statement runs on the connection the transaction terminates; the
            // failed ROLLBACK that @effect/sql raises as a defect is a failure again.
            const error = yield* Effect.flip(
              SqlFaults.transaction(sql)(Effect.zipRight(sql`SELECT pg_terminate_backend(pg_backend_pid())`, sql`SELECT 1`))
            )
            expect(SqlFaults.classify(error).fault).toBe("Retryable")
            // The pool hands out a fresh connection afterwards: the ports answer.
            expect(yield* jobs.list("no-such-deployment")).toEqual([])
            const broken = yield* Effect.flip(repo.list({ statuses: [] }).pipe(Effect.zipRight(repo.events("x".repeat(16), Number.NaN))))
            expect(broken).toMatchObject({ _tag: "DeploymentRepoError", reason: "Unknown" })
            expect(broken.message).toContain("SQLSTATE 22P02")
            expect(SqlFaults.classify(broken.cause).code).toBe("22P02")
          }).pipe(Effect.provide(layer))
        )
      }),
    { timeout: 60_000 }
  )
})
