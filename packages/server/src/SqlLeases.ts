/**
 * Core's `Leases` port on the `leases` table (issue 11): one row per deployment with the holding
 * replica, a fencing epoch that only ever grows, and an expiry in the database's own clock (replicas'
 * clocks never meet). A claim takes a free, released or expired lease with the next epoch in one
 * statement; the store's writes check the run's epoch inside their transaction (`fence`).
 *
 * Why our own table and not `@effect/cluster`: its runners own shards, not single entities, and
 * its open issues report one entity running on two runners during rolling deploys; a lease per
 * deployment with an epoch checked inside every write transaction gives the guarantee issue 11 asks
 * for with one table and no new infrastructure.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Leases } from "@sovereign/core"
import { randomBytes } from "node:crypto"
import * as os from "node:os"
import { Duration, Effect, FiberRef, Layer, Option, Stream } from "effect"
import * as SqlFaults from "./SqlFaults.js"

/** The database's clock in unix ms (never a replica's). */
const nowMs = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

/** The channel a release is announced on, so another replica claims at once rather than at its next scan. */
export const releaseChannel = "sovereign_leases"

const leaseError = (error: SqlError.SqlError) =>
  new Leases.LeaseError({ reason: "Unavailable", message: `the database failed: ${error.message}`, cause: error })

export interface SqlLeasesOptions {
  readonly ttl: Duration.Duration
  /** PGlite: this process is the only one on the data directory, so leases left by an earlier (crashed) start are freed at once. */
  readonly exclusive: boolean
  /** PostgreSQL: announce releases with NOTIFY (the change feed wakes the other replicas). */
  readonly notify: boolean
  /** Wake-ups from the change feed (releases elsewhere). */
  readonly wakeups?: Stream.Stream<void>
  readonly holder?: string
}

export const makeHolder = () => `${os.hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`

export const make = (options: SqlLeasesOptions) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const holder = options.holder ?? makeHolder()
    const ttlMs = Math.max(1, Math.round(Duration.toMillis(options.ttl)))
    if (options.exclusive) {
      yield* sql`UPDATE leases SET holder = NULL, expires_at = 0 WHERE holder IS NOT NULL`.pipe(Effect.mapError(leaseError))
    }
    const service: Leases.LeasesService = {
      holder,
      ttl: Duration.millis(ttlMs),
      claim: (deploymentId) =>
        sql<{ epoch: number }>`INSERT INTO leases (deployment_id, holder, epoch, expires_at)
          VALUES (${deploymentId}, ${holder}, 1, ${sql.literal(nowMs)} + ${ttlMs})
          ON CONFLICT (deployment_id) DO UPDATE SET holder = excluded.holder, epoch = leases.epoch + 1, expires_at = excluded.expires_at
          WHERE leases.holder IS NULL OR leases.expires_at < ${sql.literal(nowMs)}
          RETURNING epoch`.pipe(
          Effect.map((rows) =>
            rows[0] === undefined ? Option.none() : Option.some({ deploymentId, holder, epoch: Number(rows[0].epoch) })
          ),
          Effect.mapError(leaseError)
        ),
      renew: (leases) =>
        leases.length === 0
          ? Effect.succeed([])
          : sql<{ deployment_id: string; epoch: number }>`UPDATE leases SET expires_at = ${sql.literal(nowMs)} + ${ttlMs}
              WHERE holder = ${holder} AND deployment_id IN ${sql.in(leases.map((lease) => lease.deploymentId))}
              RETURNING deployment_id, epoch`.pipe(
              Effect.map((rows) => {
                const current = new Map(rows.map((row) => [row.deployment_id, Number(row.epoch)]))
                return leases.filter((lease) => current.get(lease.deploymentId) === lease.epoch)
              }),
              Effect.mapError(leaseError)
            ),
      release: (lease) =>
        SqlFaults.transaction(sql)(
          Effect.gen(function* () {
            yield* sql`UPDATE leases SET holder = NULL, expires_at = 0
              WHERE deployment_id = ${lease.deploymentId} AND holder = ${lease.holder} AND epoch = ${lease.epoch}`
            if (options.notify) yield* sql`SELECT pg_notify(${releaseChannel}, ${lease.deploymentId})`
          })
        ).pipe(Effect.mapError(leaseError)),
      unheld: (statuses) =>
        statuses.length === 0
          ? Effect.succeed([])
          : sql<{ id: string }>`SELECT d.id FROM deployments d LEFT JOIN leases l ON l.deployment_id = d.id
              WHERE d.status IN ${sql.in(statuses)}
              AND (l.deployment_id IS NULL OR l.holder IS NULL OR l.expires_at < ${sql.literal(nowMs)})
              ORDER BY d.created_at ASC, d.id ASC`.pipe(
              Effect.map((rows) => rows.map((row) => row.id)),
              Effect.mapError(leaseError)
            ),
      wakeups: options.wakeups ?? Stream.never
    }
    return service
  })

export const layer = (options: SqlLeasesOptions): Layer.Layer<Leases.Leases, Leases.LeaseError, SqlClient.SqlClient> =>
  Layer.effect(Leases.Leases, make(options))

/**
 * The fencing check of a write made by a run: inside the write's transaction, the run's lease row
 * must still carry its holder and epoch. `FOR SHARE` holds the row until the commit, so a claim (an
 * update of that row) waits for the write, and a write after a claim finds the new epoch and is
 * refused with `fenced()`. Outside a run (no fence) it checks nothing.
 */
export const checkFence = <E>(sql: SqlClient.SqlClient, fenced: (message: string) => E) =>
  Effect.flatMap(FiberRef.get(Leases.currentFence), (fence) => {
    if (Option.isNone(fence)) return Effect.void
    const lease = fence.value
    return Effect.flatMap(
      sql<{
        epoch: number
      }>`SELECT epoch FROM leases WHERE deployment_id = ${lease.deploymentId} AND holder = ${lease.holder} AND epoch = ${lease.epoch} FOR SHARE`,
      (rows) =>
        rows.length > 0
          ? Effect.void
          : Effect.fail(
              fenced(
                `the run of deployment ${lease.deploymentId} holds a stale lease (epoch ${lease.epoch}); another replica runs it now, so this write is refused`
              )
            )
    )
  })

/** Whether the current fiber runs under a lease (its writes need a transaction for the check). */
export const isFenced = Effect.map(FiberRef.get(Leases.currentFence), Option.isSome)
