/** The simulated world's documents in the server's database, so the world survives a restart as a real cloud would. */
import { SqlClient } from "@effect/sql"
import { SimulatorStore, SimulatorStoreError } from "@sovereign/adapter-simulator/SimulatorStore"
import { Clock, Duration, Effect, Layer, Option, Schedule } from "effect"
import * as SqlFaults from "./SqlFaults.js"

const failed = (what: string) => (error: { readonly message: string }) => new SimulatorStoreError({ message: `${what}: ${error.message}` })

/**
 * The simulated cloud does not go down with our database: a statement that failed for a retryable
 * reason (`SqlFaults`) is tried again, with capped jittered backoff, until the database answers.
 */
const ridesOutOutages = <A, R>(what: string, effect: Effect.Effect<A, import("@effect/sql").SqlError.SqlError, R>) =>
  effect.pipe(
    Effect.tapError((error) => {
      const classified = SqlFaults.classify(error)
      return classified.fault === "Retryable"
        ? Effect.logWarning(`the database is unavailable while ${what} (simulated world); waiting: ${classified.detail}`)
        : Effect.void
    }),
    Effect.retry({
      schedule: Schedule.exponential(Duration.millis(100)).pipe(Schedule.union(Schedule.spaced(Duration.seconds(5))), Schedule.jittered),
      while: (error) => SqlFaults.classify(error).fault === "Retryable"
    })
  )

/**
 * `shared` when other server processes use the same database (PostgreSQL with replicas): the world
 * then reads every document through instead of keeping a copy, so no replica shows or writes back a
 * stale one (a wipe on one replica undone by another's cached copy).
 */
export const layer = (options: { readonly shared: boolean }): Layer.Layer<SimulatorStore, never, SqlClient.SqlClient> =>
  Layer.effect(
    SimulatorStore,
    Effect.map(SqlClient.SqlClient, (sql) => ({
      shared: options.shared,
      // A change is not wrapped in a transaction: a statement retried inside one whose connection died
      // would retry forever (a deployment stranded by a database restart). Only the lease holder's run
      // changes a deployment's document; reading through (\`shared\`) is what keeps replicas from
      // showing or writing back a stale copy.
      exclusively: <A, E>(_key: string, effect: Effect.Effect<A, E>) => effect,
      load: (key: string) =>
        ridesOutOutages(
          "loading the world",
          sql<{ state: string }>`SELECT state::text AS state FROM simulator_state WHERE key = ${key}`
        ).pipe(
          Effect.map((rows) => Option.fromNullable(rows[0]?.state)),
          Effect.mapError(failed("loading the simulated world failed"))
        ),
      save: (key: string, document: string) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          ridesOutOutages(
            "saving the world",
            sql`INSERT INTO simulator_state (key, state, updated_at) VALUES (${key}, ${document}::jsonb, ${now})
          ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`
          )
        ).pipe(Effect.asVoid, Effect.mapError(failed("saving the simulated world failed"))),
      keys: (prefix: string) =>
        ridesOutOutages(
          "listing the world",
          sql<{ key: string }>`SELECT key FROM simulator_state WHERE starts_with(key, ${prefix}) ORDER BY key COLLATE "C"`
        ).pipe(
          Effect.map((rows) => rows.map((row) => row.key)),
          Effect.mapError(failed("listing the simulated world failed"))
        )
    }))
  )
