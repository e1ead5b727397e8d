/** An `SqlClient` over an embedded PGlite database: the pg dialect of `@effect/sql`, one connection, transactions serialised. */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import { PGlite } from "@electric-sql/pglite"
import { Context, Effect, Layer, Stream } from "effect"
import * as v8 from "node:v8"

export interface PgliteClientOptions {
  /** Directory of the database files; in memory when absent. */
  readonly dataDir?: string | undefined
}

/** The PGlite instance, for code that needs what only it offers (a checkpoint before a clean exit). */
export class Pglite extends Context.Tag("@sovereign/server/Pglite")<Pglite, PGlite>() {}

const int8 = 20
// BIGINT columns hold unix milliseconds; read them as numbers on both drivers.
const parsers = { [int8]: (value: string) => Number(value) }

/**
 * PGlite's own start parameters, with smaller buffers: an embedded control-plane database holds a
 * few megabytes, and 128 MB of shared buffers would double the server's resident memory.
 */
const startParams = [
  "--single",
  "-F",
  "-O",
  "-j",
  "-c",
  "search_path=public",
  "-c",
  "exit_on_error=false",
  "-c",
  "log_checkpoints=false",
  "-c",
  "max_worker_processes=0",
  "-c",
  "max_parallel_workers=0",
  "-c",
  "max_parallel_workers_per_gather=0",
  "-c",
  "io_method=sync",
  "-c",
  "max_parallel_maintenance_workers=0",
  "-c",
  "shared_buffers=16MB",
  "-c",
  "work_mem=2MB",
  "-c",
  "maintenance_work_mem=8MB",
  "-c",
  "temp_buffers=2MB"
]

/**
 * PGlite is PostgreSQL compiled to a 9 MB WebAssembly module. By default V8 compiles it twice: quickly
 * (Liftoff) and then, in background threads, again with TurboFan for hot functions; those threads leave
 * ~60 MB of malloc arenas behind and compete for the CPU during start-up. With Liftoff only, the server
 * idles ~60 MB smaller, opens the database sooner, and our queries (short, I/O-bound) run as fast or
 * faster (measured: 2,500-2,900 vs 2,100 single-row upserts/s). The flag is process-wide and only
 * affects WebAssembly compiled after it is set; PGlite is the only WebAssembly this process runs.
 */
let baselineCompilerOnly = false
const useBaselineWasmCompiler = () => {
  if (baselineCompilerOnly) return
  baselineCompilerOnly = true
  v8.setFlagsFromString("--liftoff-only")
}

const toSqlError = (message: string) => (cause: unknown) => new SqlError({ cause, message })

export const make = (options: PgliteClientOptions) =>
  Effect.gen(function* () {
    const db = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => {
          useBaselineWasmCompiler()
          return PGlite.create(options.dataDir, { parsers, startParams })
        },
        catch: toSqlError("PGlite: failed to open the database")
      }),
      (db) => Effect.promise(() => db.close()).pipe(Effect.timeoutOption(5000), Effect.ignore)
    )
    // One PGlite connection is shared by every fiber: a transaction holds it for its whole scope,
    // and a statement outside any transaction waits for the transaction to finish.
    const lock = yield* Effect.makeSemaphore(1)

    const runQuery = (sql: string, params: ReadonlyArray<unknown>) =>
      params.length === 0 && sql.includes(";")
        ? Effect.tryPromise({
            try: () => db.exec(sql),
            catch: toSqlError("Failed to execute statement")
          }).pipe(Effect.map((results) => (results.at(-1)?.rows ?? []) as ReadonlyArray<any>))
        : Effect.tryPromise({
            try: () => db.query(sql, params as Array<unknown>),
            catch: toSqlError("Failed to execute statement")
          }).pipe(Effect.map((result) => result.rows as ReadonlyArray<any>))

    const makeConnection = (guard: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>): Connection => ({
      execute: (sql, params, transformRows) =>
        guard(transformRows ? Effect.map(runQuery(sql, params), transformRows) : runQuery(sql, params)),
      executeRaw: (sql, params) =>
        guard(
          Effect.tryPromise({
            try: () => db.query(sql, params as Array<unknown>),
            catch: toSqlError("Failed to execute statement")
          })
        ),
      executeValues: (sql, params) =>
        guard(
          Effect.tryPromise({
            try: () => db.query<Array<unknown>>(sql, params as Array<unknown>, { rowMode: "array" }),
            catch: toSqlError("Failed to execute statement")
          }).pipe(Effect.map((result) => result.rows))
        ),
      executeUnprepared: (sql, params, transformRows) =>
        guard(transformRows ? Effect.map(runQuery(sql, params), transformRows) : runQuery(sql, params)),
      executeStream: (sql, params, transformRows) =>
        Stream.fromIterableEffect(guard(transformRows ? Effect.map(runQuery(sql, params), transformRows) : runQuery(sql, params)))
    })

    const outside = makeConnection(lock.withPermits(1))
    const insideTransaction = makeConnection((effect) => effect)
    const transactionAcquirer = Effect.as(
      Effect.acquireRelease(lock.take(1), () => lock.release(1)),
      insideTransaction
    )

    const client = yield* SqlClient.make({
      acquirer: Effect.succeed(outside),
      transactionAcquirer,
      compiler: PgClient.makeCompiler(),
      spanAttributes: [["db.system.name", "postgresql"]]
    })
    return { client, db }
  })

/** `SqlClient` (pg dialect) backed by PGlite. */
export const layer = (options: PgliteClientOptions): Layer.Layer<SqlClient.SqlClient | Pglite, SqlError> =>
  Layer.scopedContext(
    Effect.map(make(options), ({ client, db }) => Context.make(SqlClient.SqlClient, client).pipe(Context.add(Pglite, db)))
  ).pipe(Layer.provide(Reactivity.layer))
