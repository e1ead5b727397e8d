import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Database from "../src/Database.js"
import { backends } from "./support/databases.js"

for (const backend of backends) {
  describe(`Database on ${backend.name}`, () => {
    it.layer(backend.layer, { timeout: 60_000 })((it) => {
      it.effect("runs the migrations and keeps transactions atomic and serialised", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const tables = yield* sql<{ tableName: string }>`
            SELECT table_name AS "tableName" FROM information_schema.tables
            WHERE table_schema = current_schema() ORDER BY table_name`
          expect(tables.map((row) => row.tableName)).toEqual(
            expect.arrayContaining([
              "deployments",
              "deployment_events",
              "jobs",
              "executions",
              "log_lines",
              "flow_events",
              "kubeconfigs",
              "step_journal",
              "simulator_state"
            ])
          )
          yield* sql`INSERT INTO simulator_state (key, state, updated_at) VALUES ('counter', ${JSON.stringify({ n: 0 })}::jsonb, ${Date.now()})`
          // Twenty concurrent read-modify-write transactions: serialised, none lost.
          yield* Effect.forEach(
            Array.from({ length: 20 }),
            () =>
              sql.withTransaction(
                Effect.gen(function* () {
                  const [row] = yield* sql<{ state: { n: number } }>`SELECT state FROM simulator_state WHERE key = 'counter' FOR UPDATE`
                  yield* sql`UPDATE simulator_state SET state = ${JSON.stringify({ n: row!.state.n + 1 })}::jsonb WHERE key = 'counter'`
                })
              ),
            { concurrency: "unbounded", discard: true }
          )
          const failed = yield* sql
            .withTransaction(
              Effect.zipRight(
                sql`UPDATE simulator_state SET state = '{"n": -1}'::jsonb WHERE key = 'counter'`,
                Effect.fail("abort" as const)
              )
            )
            .pipe(Effect.flip)
          expect(failed).toBe("abort")
          const [row] = yield* sql<{
            state: { n: number }
            updatedAt: number
          }>`SELECT state, updated_at AS "updatedAt" FROM simulator_state WHERE key = 'counter'`
          expect(row!.state.n).toBe(20)
          expect(typeof row!.updatedAt).toBe("number")
        })
      )
    })
  })
}

describe("PGlite data directory", () => {
  it.scoped(
    "is used by one server at a time; a crashed owner's lock is taken over",
    () =>
      Effect.gen(function* () {
        const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-lock-")), "pgdata")
        fs.mkdirSync(path.dirname(dir), { recursive: true })
        // A lock left by a process that no longer exists does not block.
        fs.writeFileSync(`${dir}.lock`, "999999999\n")
        yield* Layer.build(Database.layerPglite(dir))
        expect(fs.readFileSync(`${dir}.lock`, "utf8").trim()).toBe(String(process.pid))
        const second = yield* Effect.exit(Effect.scoped(Layer.build(Database.layerPglite(dir))))
        expect(Exit.isFailure(second) && Cause.pretty(second.cause)).toContain("another Sovereign server")
      }),
    { timeout: 120_000 }
  )
})
