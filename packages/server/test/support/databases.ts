/** Test databases: a freshly created Postgres database (dropped afterwards) and a PGlite in a temp dir. */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { randomBytes } from "node:crypto"
import { Effect, Layer, Redacted } from "effect"
import * as Database from "../../src/Database.js"

export const postgresAdminUrl = process.env.SOVEREIGN_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const withAdmin = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.scoped(
    Effect.flatMap(Layer.build(PgClient.layer({ url: Redacted.make(postgresAdminUrl), maxConnections: 1 })), (context) =>
      f(context.unsafeMap.get(SqlClient.SqlClient.key) as SqlClient.SqlClient)
    )
  )

/** A migrated Postgres database of its own, dropped when the layer is released. */
export const postgres: Layer.Layer<SqlClient.SqlClient, unknown> = Layer.unwrapScoped(
  Effect.gen(function* () {
    const name = `sovereign_test_${randomBytes(6).toString("hex")}`
    yield* Effect.acquireRelease(
      withAdmin((sql) => sql.unsafe(`CREATE DATABASE ${name}`)),
      () => withAdmin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).pipe(Effect.ignore)
    )
    const url = new URL(postgresAdminUrl)
    url.pathname = `/${name}`
    return Database.layerPostgres(Redacted.make(url.toString()))
  })
)

/** A migrated PGlite in a temporary directory, removed when the layer is released. */
export const pglite: Layer.Layer<SqlClient.SqlClient, unknown> = Layer.unwrapScoped(
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-pglite-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    return Database.layerPglite(path.join(dir, "pgdata"))
  })
)

export const backends = [
  { name: "postgres", layer: postgres },
  { name: "pglite", layer: pglite }
] as const
