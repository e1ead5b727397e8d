/** The simulated world's documents in the server's database, so the world survives a restart as a real cloud would. */
import { SqlClient } from "@effect/sql"
import { SimulatorStore, SimulatorStoreError } from "@sovereign/adapter-simulator/SimulatorStore"
import { Clock, Effect, Layer, Option } from "effect"

const failed = (what: string) => (error: { readonly message: string }) =>
  new SimulatorStoreError({ message: `${what}: ${error.message}` })

export const layer: Layer.Layer<SimulatorStore, never, SqlClient.SqlClient> = Layer.effect(
  SimulatorStore,
  Effect.map(SqlClient.SqlClient, (sql) => ({
    load: (key: string) =>
      sql<{ state: string }>`SELECT state::text AS state FROM simulator_state WHERE key = ${key}`.pipe(
        Effect.map((rows) => Option.fromNullable(rows[0]?.state)),
        Effect.mapError(failed("loading the simulated world failed"))
      ),
    save: (key: string, document: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        sql`INSERT INTO simulator_state (key, state, updated_at) VALUES (${key}, ${document}::jsonb, ${now})
          ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`
      ).pipe(Effect.asVoid, Effect.mapError(failed("saving the simulated world failed"))),
    keys: (prefix: string) =>
      sql<{ key: string }>`SELECT key FROM simulator_state WHERE starts_with(key, ${prefix}) ORDER BY key COLLATE "C"`.pipe(
        Effect.map((rows) => rows.map((row) => row.key)),
        Effect.mapError(failed("listing the simulated world failed"))
      )
  }))
)
