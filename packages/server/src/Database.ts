/** The database: Postgres when `DATABASE_URL` is set, else embedded PGlite in the data directory; migrated on start. */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { createRequire } from "node:module"
import * as path from "node:path"
import { Effect, Layer, Option } from "effect"
import { ensurePrivateDir } from "./internal/files.js"
import * as Migrations from "./Migrations.js"
import * as PgliteClient from "./PgliteClient.js"
import { ServerConfig } from "./ServerConfig.js"

// A fresh layer per database: a shared layer value would be memoised and migrate only the first one.
const migrate = () => Layer.effectDiscard(Migrations.run)

// The pg driver ships no types; only its type-parser registry is used here.
const pgTypes = (createRequire(import.meta.url)("pg") as {
  readonly types: { readonly getTypeParser: (oid: number, format?: string) => (value: string) => unknown }
}).types
const int8 = 20

/** BIGINT columns hold unix milliseconds: read them as numbers, as PGlite does. */
const types = {
  getTypeParser: (oid: number, format?: string) =>
    oid === int8 ? (value: string) => Number(value) : pgTypes.getTypeParser(oid, format)
}

/** Postgres at `url`, migrated. */
export const layerPostgres = (url: import("effect").Redacted.Redacted<string>) =>
  Layer.provideMerge(migrate(), PgClient.layer({ url, applicationName: "sovereign", types }))

/** PGlite in `dataDir` (in memory when undefined), migrated. */
export const layerPglite = (dataDir: string | undefined) =>
  Layer.provideMerge(
    migrate(),
    Layer.unwrapEffect(
      Effect.sync(() => {
        if (dataDir !== undefined) ensurePrivateDir(dataDir)
        return PgliteClient.layer({ dataDir })
      })
    )
  )

export const layer: Layer.Layer<SqlClient.SqlClient, unknown, ServerConfig> = Layer.unwrapEffect(
  Effect.map(ServerConfig, (config) =>
    Option.match(config.databaseUrl, {
      onSome: (url) => layerPostgres(url) as Layer.Layer<SqlClient.SqlClient, unknown>,
      onNone: () => layerPglite(path.join(config.dataDir, "pgdata")) as Layer.Layer<SqlClient.SqlClient, unknown>
    })
  )
)
