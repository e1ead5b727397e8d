/** The database: Postgres when `DATABASE_URL` is set, else embedded PGlite in the data directory; migrated on start. */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { Effect, Layer, Option } from "effect"
import { ensurePrivateDir, isProcessAlive } from "./internal/files.js"
import * as Migrations from "./Migrations.js"
import * as PgliteClient from "./PgliteClient.js"
import { ServerConfig } from "./ServerConfig.js"

// A fresh layer per database: a shared layer value would be memoised and migrate only the first one.
const migrate = () => Layer.effectDiscard(Migrations.run)

// The pg driver ships no types; only its type-parser registry is used here.
const pgTypes = (
  createRequire(import.meta.url)("pg") as {
    readonly types: { readonly getTypeParser: (oid: number, format?: string) => (value: string) => unknown }
  }
).types
const int8 = 20

/** BIGINT columns hold unix milliseconds: read them as numbers, as PGlite does. */
const types = {
  getTypeParser: (oid: number, format?: string) => (oid === int8 ? (value: string) => Number(value) : pgTypes.getTypeParser(oid, format))
}

/** Postgres at `url`, migrated. */
export const layerPostgres = (url: import("effect").Redacted.Redacted<string>) =>
  Layer.provideMerge(migrate(), PgClient.layer({ url, applicationName: "sovereign", types }))

/**
 * One process per PGlite directory: two would corrupt it. The lock file holds the owner's pid; a lock
 * whose process is gone (a crash) is taken over.
 */
const lockDirectory = (dataDir: string) =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const file = `${dataDir}.lock`
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          fs.writeFileSync(file, `${process.pid}\n`, { flag: "wx", mode: 0o600 })
          return Effect.succeed(file)
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") return Effect.die(error)
          const owner = Number(fs.readFileSync(file, "utf8").trim())
          if (Number.isInteger(owner) && owner > 0 && isProcessAlive(owner)) {
            return Effect.dieMessage(`another Sovereign server (pid ${owner}) uses ${dataDir}; stop it first`)
          }
          fs.rmSync(file, { force: true })
        }
      }
      return Effect.dieMessage(`cannot lock ${dataDir}`)
    }),
    (file) => Effect.sync(() => fs.rmSync(file, { force: true }))
  )

/** PGlite in `dataDir` (in memory when undefined), locked to this process and migrated. */
export const layerPglite = (dataDir: string | undefined) =>
  Layer.provideMerge(
    migrate(),
    Layer.unwrapScoped(
      Effect.gen(function* () {
        if (dataDir !== undefined) {
          ensurePrivateDir(dataDir)
          yield* lockDirectory(dataDir)
        }
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
