/**
 * The persistence ports of core (DeploymentRepo, JobRepo, FlowEvents, Kubeconfigs) on `@effect/sql`,
 * one implementation for Postgres and PGlite. Changes are committed first and announced to in-process
 * subscribers afterwards, so a tail never sees what a crash could still lose.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { DeploymentRepo, FlowEvents, Job, JobRepo, Kubeconfigs, Secrets, Time } from "@sovereign/core"
import { Context, Effect, Either, Layer, Option, PubSub, Queue, Redacted, Schema, Stream } from "effect"
import * as SqlFaults from "./SqlFaults.js"
import { checkFence, isFenced } from "./SqlLeases.js"

type DeploymentRecord = DeploymentRepo.DeploymentRecord
type DeploymentEvent = DeploymentRepo.DeploymentEvent

/** In-process announcements of committed changes; one per server process. */
export interface AnnouncementsShape {
  readonly deploymentEvents: PubSub.PubSub<DeploymentEvent>
  readonly flowEvents: PubSub.PubSub<FlowEvents.FlowEvent>
  readonly kubeconfigs: PubSub.PubSub<{ readonly deploymentId: string; readonly regionKey: string }>
  /** Job changes, for streams that recompose the flow (e.g. the job projection benchmark). */
  readonly jobs: PubSub.PubSub<{ readonly deploymentId: string }>
  /** Another replica released a lease (the change feed): the supervisor scans at once. */
  readonly leases: PubSub.PubSub<void>
}

export class Announcements extends Context.Tag("@sovereign/server/Announcements")<Announcements, AnnouncementsShape>() {}

export const layerAnnouncements: Layer.Layer<Announcements> = Layer.effect(
  Announcements,
  Effect.all({
    deploymentEvents: PubSub.unbounded<DeploymentEvent>(),
    flowEvents: PubSub.unbounded<FlowEvents.FlowEvent>(),
    kubeconfigs: PubSub.unbounded<{ readonly deploymentId: string; readonly regionKey: string }>(),
    jobs: PubSub.sliding<{ readonly deploymentId: string }>(1024),
    leases: PubSub.sliding<void>(1)
  })
)

// ---------------------------------------------------------------------------------------------
// Changes between replicas (issue 11, item 4)

/** The channel every committed change is announced on; the tables stay the source of truth. */
export const changeChannel = "sovereign_changes"

/**
 * A change as announced to the other replicas (the NOTIFY payload, well under its 8,000 bytes): who
 * made it, what kind (`e` deployment events, `f` flow events, `k` a kubeconfig, `j` jobs), the
 * deployment, and for `e`/`f` the first sequence committed.
 */
export const Change = Schema.Struct({
  r: Schema.String,
  k: Schema.Literal("e", "f", "k", "j"),
  d: Schema.String,
  a: Schema.optional(Schema.Int),
  g: Schema.optional(Schema.String)
})
export type Change = typeof Change.Type
const decodeChange = Schema.decodeUnknownEither(Schema.parseJson(Change))

export interface ChangesShape {
  /** This replica's name in change payloads; `None` when nothing is shared (PGlite). */
  readonly replica: Option.Option<string>
  /** Inside a write transaction: tells the other replicas (PostgreSQL delivers NOTIFY at the commit). */
  readonly notify: (change: Omit<Change, "r">) => Effect.Effect<void, SqlError.SqlError>
  /** Committed deployment events of this process, announced in order without gaps. */
  readonly announceEvents: (deploymentId: string, events: ReadonlyArray<DeploymentEvent>) => Effect.Effect<void>
  /** Committed flow events of this process, announced in order without gaps. */
  readonly announceFlow: (deploymentId: string, events: ReadonlyArray<FlowEvents.FlowEvent>) => Effect.Effect<void>
  /** A change another replica committed (a NOTIFY payload): read from the tables and announced here. */
  readonly receive: (payload: string) => Effect.Effect<void>
  /** After the change feed (re)connected: re-reads whatever may have been missed while it was away. */
  readonly resync: Effect.Effect<void>
}

export class Changes extends Context.Tag("@sovereign/server/Changes")<Changes, ChangesShape>() {}

/**
 * Announcements in sequence order per deployment, whoever committed them: a local batch that does
 * not follow the last announced sequence (another replica committed in between) and every remote
 * wake-up read the missing range from the table first, so a subscriber never skips an event.
 */
const makeSequencer = <A extends { readonly seq: number }>(
  pubsub: PubSub.PubSub<A>,
  read: (deploymentId: string, afterSeq: number) => Effect.Effect<ReadonlyArray<A>, unknown>
) => {
  const last = new Map<string, number>()
  const locks = new Map<string, Effect.Semaphore>()
  const locked = <X>(deploymentId: string, effect: Effect.Effect<X>) => {
    let lock = locks.get(deploymentId)
    if (lock === undefined) {
      lock = Effect.unsafeMakeSemaphore(1)
      locks.set(deploymentId, lock)
    }
    return lock.withPermits(1)(effect)
  }
  const publishNew = (deploymentId: string, events: ReadonlyArray<A>) => {
    const known = last.get(deploymentId) ?? -1
    const fresh = events.filter((event) => event.seq > known)
    if (fresh.length === 0) return Effect.void
    last.set(deploymentId, fresh[fresh.length - 1]!.seq)
    return PubSub.publishAll(pubsub, fresh)
  }
  const readAfter = (deploymentId: string, afterSeq: number, fallback: ReadonlyArray<A>) =>
    read(deploymentId, afterSeq).pipe(
      Effect.catchAllCause((cause) => Effect.as(Effect.logWarning(`reading changes of ${deploymentId} failed`, cause), fallback))
    )
  return {
    local: (deploymentId: string, events: ReadonlyArray<A>) =>
      events.length === 0
        ? Effect.void
        : locked(
            deploymentId,
            Effect.gen(function* () {
              const known = last.get(deploymentId)
              const batch = known !== undefined && events[0]!.seq > known + 1 ? yield* readAfter(deploymentId, known, events) : events
              yield* publishNew(deploymentId, batch)
            })
          ),
    remote: (deploymentId: string, firstSeq: number) =>
      locked(
        deploymentId,
        Effect.gen(function* () {
          const known = last.get(deploymentId) ?? firstSeq - 1
          yield* publishNew(deploymentId, yield* readAfter(deploymentId, known, []))
        })
      ),
    resync: Effect.suspend(() =>
      Effect.forEach(
        [...last.keys()],
        (deploymentId) =>
          locked(
            deploymentId,
            Effect.flatMap(readAfter(deploymentId, last.get(deploymentId) ?? 0, []), (events) => publishNew(deploymentId, events))
          ),
        { discard: true, concurrency: 8 }
      )
    )
  }
}

/** The change announcements over the `SqlClient`; `replica` set (PostgreSQL) makes every write notify the others. */
export const layerChanges = (
  options: { readonly replica?: string } = {}
): Layer.Layer<Changes, never, SqlClient.SqlClient | Announcements> =>
  Layer.effect(
    Changes,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const announcements = yield* Announcements
      const events = makeSequencer(announcements.deploymentEvents, (deploymentId, afterSeq) =>
        Effect.flatMap(
          sql<{
            event: unknown
          }>`SELECT event FROM deployment_events WHERE deployment_id = ${deploymentId} AND seq > ${afterSeq} ORDER BY seq ASC`,
          (rows) => Effect.forEach(rows, (row) => decodeEvent(row.event))
        )
      )
      const flows = makeSequencer(announcements.flowEvents, (deploymentId, afterSeq) =>
        Effect.map(
          sql<{ seq: number; at: number; message: unknown }>`SELECT seq, at, message FROM flow_events
            WHERE deployment_id = ${deploymentId} AND seq > ${afterSeq} ORDER BY seq ASC`,
          (rows) => rows.map((row): FlowEvents.FlowEvent => ({ seq: row.seq, deploymentId, at: row.at, message: row.message }))
        )
      )
      const replica = Option.fromNullable(options.replica)
      const service: ChangesShape = {
        replica,
        notify: (change) =>
          Option.match(replica, {
            onNone: () => Effect.void,
            onSome: (r) => Effect.asVoid(sql`SELECT pg_notify(${changeChannel}, ${json({ r, ...change })})`)
          }),
        announceEvents: events.local,
        announceFlow: flows.local,
        receive: (payload) =>
          Effect.suspend(() => {
            const decoded = decodeChange(payload)
            if (decoded._tag === "Left") return Effect.logWarning("an unreadable change notification was ignored")
            const change = decoded.right
            if (Option.isSome(replica) && change.r === replica.value) return Effect.void
            switch (change.k) {
              case "e":
                return events.remote(change.d, change.a ?? 1)
              case "f":
                return flows.remote(change.d, change.a ?? 1)
              case "k":
                return PubSub.publish(announcements.kubeconfigs, { deploymentId: change.d, regionKey: change.g ?? "*" })
              case "j":
                return PubSub.publish(announcements.jobs, { deploymentId: change.d })
            }
          }).pipe(Effect.asVoid),
        resync: Effect.all(
          [
            events.resync,
            flows.resync,
            // Whoever awaits a kubeconfig looks again; the supervisor scans again.
            PubSub.publish(announcements.kubeconfigs, { deploymentId: "*", regionKey: "*" }),
            PubSub.publish(announcements.leases, undefined)
          ],
          { discard: true }
        )
      }
      return service
    })
  )

const json = (value: unknown) => JSON.stringify(value)

/**
 * What a write carries is checked against core's schemas before any statement runs (integer unix
 * milliseconds above all): a bad value is refused here, naming the field, never by the database.
 */
const checked =
  <A, I, E>(schema: Schema.Schema<A, I>, what: string, error: (message: string, cause: unknown) => E) =>
  (value: unknown) =>
    Schema.validate(schema)(value).pipe(
      Effect.asVoid,
      Effect.mapError((parse) => error(`${what} is refused before it reaches the database: ${parse.message}`, parse))
    )
const invalidRepo = (message: string, cause: unknown) => new DeploymentRepo.DeploymentRepoError({ reason: "Invalid", message, cause })
const NewEvent = DeploymentRepo.DeploymentEvent.pipe(Schema.omit("seq", "deploymentId"))
const checkEvents = checked(Schema.Array(NewEvent), "a deployment event", invalidRepo)
const checkRecord = checked(DeploymentRepo.DeploymentRecord, "the deployment", invalidRepo)
const checkJournal = checked(DeploymentRepo.JournalEntry, "a journal entry", invalidRepo)
const checkAt = checked(Time.UnixMillis, "the time of the change", invalidRepo)
const invalidJobs = (message: string, cause: unknown) => new JobRepo.JobRepoError({ reason: "Invalid", message, cause })
const checkJobs = checked(Schema.Array(Job.Job), "a job", invalidJobs)
const checkWriteTimes = checked(Schema.Array(Time.UnixMillis), "a job write's time", invalidJobs)
const checkLines = checked(Schema.Array(JobRepo.NewLogLine), "a log line", invalidJobs)
const checkFlowAt = checked(
  Time.UnixMillis,
  "the time of a flow event",
  (message, cause) => new FlowEvents.FlowEventsError({ reason: "Invalid", message, cause })
)
const checkReceivedAt = checked(
  Time.UnixMillis,
  "the arrival time of a kubeconfig",
  (message, cause) => new Kubeconfigs.KubeconfigError({ reason: "Invalid", message, cause })
)
const checkWrites = (writes: ReadonlyArray<JobRepo.JobWrite>) =>
  Effect.all(
    [
      checkJobs(writes.flatMap((write) => (write._tag === "Upsert" ? [write.job] : []))),
      checkWriteTimes(writes.flatMap((write) => (write._tag === "Start" || write._tag === "Finish" ? [write.at] : []))),
      checkLines(writes.flatMap((write) => (write._tag === "Log" ? write.lines : [])))
    ],
    { discard: true }
  )

/**
 * A single-statement write of a run: under a lease it becomes a transaction that checks the lease
 * first (`SqlLeases.checkFence`); outside a run it is the statement alone.
 */
const fencedStatement = <A, E, R, F>(sql: SqlClient.SqlClient, fenced: (message: string) => F, statement: Effect.Effect<A, E, R>) =>
  Effect.flatMap(isFenced, (underLease) =>
    underLease ? SqlFaults.transaction(sql)(Effect.zipRight(checkFence(sql, fenced), statement)) : statement
  )

/** Replay then live without gaps or duplicates: subscribe first, read the replay, skip what it covered. */
const replayThenLive = <A extends { readonly seq: number; readonly deploymentId: string }, E>(
  pubsub: PubSub.PubSub<A>,
  deploymentId: string,
  afterSeq: number,
  replay: (afterSeq: number) => Effect.Effect<ReadonlyArray<A>, E>
): Stream.Stream<A, E> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const subscription = yield* PubSub.subscribe(pubsub)
      const stored = yield* replay(afterSeq)
      let last = stored.length > 0 ? stored[stored.length - 1]!.seq : afterSeq
      const live = Stream.fromQueue(subscription).pipe(
        Stream.filter((event) => {
          if (event.deploymentId !== deploymentId || event.seq <= last) return false
          last = event.seq
          return true
        })
      )
      return Stream.concat(Stream.fromIterable(stored), live)
    })
  )

// ---------------------------------------------------------------------------------------------
// DeploymentRepo

const DeploymentRow = Schema.Struct({
  id: Schema.String,
  owner: Schema.String,
  status: DeploymentRepo.Status,
  spec: Schema.Unknown,
  sealed_credentials: Schema.String,
  results: Schema.Unknown,
  error: Schema.NullOr(Schema.String),
  version: Schema.Number,
  created_at: Schema.Number,
  updated_at: Schema.Number,
  phase1_started_at: Schema.NullOr(Schema.Number),
  finished_at: Schema.NullOr(Schema.Number),
  adopted_at: Schema.NullOr(Schema.Number)
})

const decodeRecord = Schema.decodeUnknown(DeploymentRepo.DeploymentRecord)
const decodeRow = Schema.decodeUnknown(DeploymentRow)
const decodeEvent = Schema.decodeUnknown(DeploymentRepo.DeploymentEvent)
const decodeJournal = Schema.decodeUnknown(DeploymentRepo.JournalEntry)

const repoError = (reason: typeof DeploymentRepo.DeploymentRepoErrorReason.Type, message: string) =>
  new DeploymentRepo.DeploymentRepoError({ reason, message })

/** A failed statement, classified by SQLSTATE (`SqlFaults`): Conflict, Unavailable (retryable) or Unknown. */
const unavailable = (error: SqlError.SqlError) => {
  const classified = SqlFaults.classify(error)
  return new DeploymentRepo.DeploymentRepoError({
    reason: SqlFaults.reasonOf(classified, "Unknown"),
    message: `the database failed: ${classified.detail}`,
    cause: error
  })
}
const repoFenced = (message: string) => repoError("Fenced", message)

const recordOfRow = (row: unknown) =>
  decodeRow(row).pipe(
    Effect.flatMap((r) =>
      decodeRecord({
        id: r.id,
        owner: r.owner,
        status: r.status,
        spec: r.spec,
        sealedCredentials: r.sealed_credentials,
        results: r.results,
        ...(r.error === null ? {} : { error: r.error }),
        version: r.version,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
        ...(r.phase1_started_at === null ? {} : { phase1StartedAt: r.phase1_started_at }),
        ...(r.finished_at === null ? {} : { finishedAt: r.finished_at }),
        ...(r.adopted_at === null ? {} : { adoptedAt: r.adopted_at })
      })
    ),
    Effect.mapError(
      (error) =>
        new DeploymentRepo.DeploymentRepoError({
          reason: "Unknown",
          message: `a stored deployment does not decode: ${error.message}`,
          cause: error
        })
    )
  )

const columnsOf = (record: DeploymentRecord) => ({
  id: record.id,
  owner: record.owner,
  fqdn: record.spec.sovereignFQDN,
  status: record.status,
  spec: json(record.spec),
  sealed_credentials: record.sealedCredentials,
  results: json(record.results),
  error: record.error ?? null,
  version: record.version,
  created_at: record.createdAt,
  updated_at: record.updatedAt,
  phase1_started_at: record.phase1StartedAt ?? null,
  finished_at: record.finishedAt ?? null,
  adopted_at: record.adoptedAt ?? null
})

export const makeDeploymentRepo = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const transaction = SqlFaults.transaction(sql)
  const announcements = yield* Announcements
  const feed = yield* Changes

  const appendIn = (id: string, events: ReadonlyArray<DeploymentRepo.NewDeploymentEvent>) =>
    Effect.gen(function* () {
      if (events.length === 0) return [] as ReadonlyArray<DeploymentEvent>
      const [head] = yield* sql<{ last: number | null }>`SELECT max(seq) AS last FROM deployment_events WHERE deployment_id = ${id}`
      const first = (head?.last ?? 0) + 1
      const numbered = events.map((event, index): DeploymentEvent => ({ ...event, seq: first + index, deploymentId: id }))
      // One multi-row insert: Phase 1 appends a whole chunk of component events at once.
      yield* sql`INSERT INTO deployment_events ${sql.insert(numbered.map((event) => ({ deployment_id: id, seq: event.seq, event: json(event) })))}`
      yield* feed.notify({ k: "e", d: id, a: first })
      return numbered
    })

  const writeRecord = (record: DeploymentRecord) => {
    const c = columnsOf(record)
    return sql`UPDATE deployments SET status = ${c.status}, results = ${c.results}::jsonb, error = ${c.error},
      version = ${c.version}, updated_at = ${c.updated_at}, phase1_started_at = ${c.phase1_started_at},
      finished_at = ${c.finished_at}, adopted_at = ${c.adopted_at}
      WHERE id = ${c.id}`
  }

  const lockFqdn = (fqdn: string) => sql`SELECT pg_advisory_xact_lock(hashtext(${fqdn}))`

  const service: DeploymentRepo.DeploymentRepoService = {
    create: (record, event) =>
      Effect.zipRight(
        Effect.zipRight(checkRecord({ ...record, version: 1, updatedAt: record.createdAt }), checkEvents([event])),
        transaction(
          Effect.gen(function* () {
            yield* checkFence(sql, repoFenced)
            yield* lockFqdn(record.spec.sovereignFQDN)
            const existing = yield* sql<{ id: string }>`SELECT id FROM deployments WHERE id = ${record.id}`
            if (existing.length > 0) return yield* repoError("Conflict", `deployment ${record.id} exists`)
            const holders = yield* sql<{ id: string; status: string }>`
              SELECT id, status FROM deployments
              WHERE fqdn = ${record.spec.sovereignFQDN} AND status IN ${sql.in(DeploymentRepo.inFlight)}`
            const holder = holders[0]
            if (holder !== undefined) {
              return yield* repoError(
                "Conflict",
                `${record.spec.sovereignFQDN} is already in flight as deployment ${holder.id} (${holder.status})`
              )
            }
            const stored: DeploymentRecord = { ...record, version: 1, updatedAt: record.createdAt }
            const c = columnsOf(stored)
            yield* sql`INSERT INTO deployments (id, owner, fqdn, status, spec, sealed_credentials, results, error, version,
              created_at, updated_at, phase1_started_at, finished_at, adopted_at)
              VALUES (${c.id}, ${c.owner}, ${c.fqdn}, ${c.status}, ${c.spec}::jsonb, ${c.sealed_credentials}, ${c.results}::jsonb,
              ${c.error}, ${c.version}, ${c.created_at}, ${c.updated_at}, ${c.phase1_started_at}, ${c.finished_at}, ${c.adopted_at})`
            const numbered = yield* appendIn(record.id, [event])
            return { stored, numbered }
          })
        ).pipe(
          Effect.catchTag("SqlError", (error) => Effect.fail(unavailable(error))),
          Effect.tap(({ numbered, stored }) => feed.announceEvents(stored.id, numbered)),
          Effect.map(({ stored }) => stored)
        )
      ),
    get: (id) =>
      sql`SELECT * FROM deployments WHERE id = ${id}`.pipe(
        Effect.catchTag("SqlError", (error) => Effect.fail(unavailable(error))),
        Effect.flatMap((rows) => (rows[0] === undefined ? Effect.succeedNone : Effect.asSome(recordOfRow(rows[0]))))
      ),
    list: (filter) =>
      Effect.gen(function* () {
        const conditions = [
          ...(filter.owner === undefined ? [] : [sql`owner = ${filter.owner}`]),
          ...(filter.statuses === undefined
            ? []
            : filter.statuses.length === 0
              ? [sql`false`]
              : [sql`status IN ${sql.in(filter.statuses)}`])
        ]
        const rows = yield* sql`SELECT * FROM deployments WHERE ${sql.and(conditions)} ORDER BY created_at DESC, id ASC`
        return yield* Effect.forEach(rows, recordOfRow)
      }).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(unavailable(error)))),
    update: (id, expectedVersion, changes, events, updatedAt) =>
      Effect.zipRight(
        Effect.zipRight(checkAt(updatedAt), checkEvents(events)),
        transaction(
          Effect.gen(function* () {
            yield* checkFence(sql, repoFenced)
            const rows = yield* sql`SELECT * FROM deployments WHERE id = ${id} FOR UPDATE`
            if (rows[0] === undefined) return yield* repoError("NotFound", `deployment ${id} not found`)
            const current = yield* recordOfRow(rows[0])
            if (current.version !== expectedVersion) {
              return yield* repoError("VersionConflict", `deployment ${id} is at version ${current.version}, not ${expectedVersion}`)
            }
            const { clear, ...fields } = changes
            const next: Record<string, unknown> = { ...current, ...fields, version: current.version + 1, updatedAt }
            for (const key of clear ?? []) delete next[key]
            const record = yield* decodeRecord(next).pipe(
              Effect.mapError((error) =>
                invalidRepo(`the changed deployment is refused before it reaches the database: ${error.message}`, error)
              )
            )
            yield* writeRecord(record)
            const numbered = yield* appendIn(id, events)
            return { record, events: numbered }
          })
        ).pipe(
          Effect.catchTag("SqlError", (error) => Effect.fail(unavailable(error))),
          Effect.tap(({ events }) => feed.announceEvents(id, events))
        )
      ),
    appendEvents: (id, events) =>
      Effect.zipRight(
        checkEvents(events),
        transaction(
          Effect.gen(function* () {
            yield* checkFence(sql, repoFenced)
            const rows = yield* sql`SELECT id FROM deployments WHERE id = ${id} FOR UPDATE`
            if (rows.length === 0) return yield* repoError("NotFound", `deployment ${id} not found`)
            return yield* appendIn(id, events)
          })
        ).pipe(
          Effect.catchTag("SqlError", (error) => Effect.fail(unavailable(error))),
          Effect.tap((numbered) => feed.announceEvents(id, numbered))
        )
      ),
    events: (id, afterSeq) => readEvents(id, afterSeq),
    tail: (id, afterSeq) => replayThenLive(announcements.deploymentEvents, id, afterSeq, (after) => readEvents(id, after)),
    recordStep: (entry) =>
      Effect.zipRight(
        checkJournal(entry),
        fencedStatement(
          sql,
          repoFenced,
          sql`INSERT INTO step_journal (deployment_id, job_name, at, entry) VALUES (${entry.deploymentId}, ${entry.jobName}, ${entry.at}, ${json(entry)}::jsonb)
        ON CONFLICT (deployment_id, job_name) DO UPDATE SET at = excluded.at, entry = excluded.entry`
        ).pipe(
          Effect.asVoid,
          Effect.catchTag("SqlError", (error) => Effect.fail(unavailable(error)))
        )
      ),
    journal: (id) =>
      sql<{ entry: unknown }>`SELECT entry FROM step_journal WHERE deployment_id = ${id} ORDER BY at ASC, job_name ASC`.pipe(
        Effect.catchTag("SqlError", (error) => Effect.fail(unavailable(error))),
        Effect.flatMap((rows) =>
          Effect.forEach(rows, (row) =>
            decodeJournal(row.entry).pipe(
              Effect.mapError(
                (error) =>
                  new DeploymentRepo.DeploymentRepoError({
                    reason: "Unknown",
                    message: `a journal entry does not decode: ${error.message}`,
                    cause: error
                  })
              )
            )
          )
        )
      ),
    remove: (id) =>
      transaction(
        Effect.all([
          checkFence(sql, repoFenced),
          sql`DELETE FROM leases WHERE deployment_id = ${id}`,
          sql`DELETE FROM deployment_events WHERE deployment_id = ${id}`,
          sql`DELETE FROM step_journal WHERE deployment_id = ${id}`,
          sql`DELETE FROM deployments WHERE id = ${id}`
        ])
      ).pipe(
        Effect.asVoid,
        Effect.catchTag("SqlError", (error) => Effect.fail(unavailable(error)))
      )
  }

  function readEvents(id: string, afterSeq: number) {
    return sql<{
      event: unknown
    }>`SELECT event FROM deployment_events WHERE deployment_id = ${id} AND seq > ${afterSeq} ORDER BY seq ASC`.pipe(
      Effect.catchTag("SqlError", (error) => Effect.fail(unavailable(error))),
      Effect.flatMap((rows) =>
        Effect.forEach(rows, (row) =>
          decodeEvent(row.event).pipe(
            Effect.mapError(
              (error) =>
                new DeploymentRepo.DeploymentRepoError({
                  reason: "Unknown",
                  message: `an event does not decode: ${error.message}`,
                  cause: error
                })
            )
          )
        )
      )
    )
  }

  return service
})

// ---------------------------------------------------------------------------------------------
// JobRepo

const decodeJob = Schema.decodeUnknown(Job.Job)
const decodeExecution = Schema.decodeUnknown(Job.Execution)

const jobError = (reason: typeof JobRepo.JobRepoErrorReason.Type, message: string) => new JobRepo.JobRepoError({ reason, message })
const jobUnavailable = (error: SqlError.SqlError) => {
  const classified = SqlFaults.classify(error)
  return new JobRepo.JobRepoError({
    reason: SqlFaults.reasonOf(classified, "Unknown"),
    message: `the database failed: ${classified.detail}`,
    cause: error
  })
}
const corrupt = (what: string) => (error: { readonly message: string }) =>
  new JobRepo.JobRepoError({ reason: "Unknown", message: `${what} does not decode: ${error.message}`, cause: error })
const jobFenced = (message: string) => jobError("Fenced", message)

export const makeJobRepo = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const transaction = SqlFaults.transaction(sql)
  const announcements = yield* Announcements
  const feed = yield* Changes

  const readJob = (deploymentId: string, jobName: string, forUpdate: boolean) =>
    (forUpdate
      ? sql<{ job: unknown }>`SELECT job FROM jobs WHERE deployment_id = ${deploymentId} AND job_name = ${jobName} FOR UPDATE`
      : sql<{ job: unknown }>`SELECT job FROM jobs WHERE deployment_id = ${deploymentId} AND job_name = ${jobName}`
    ).pipe(
      Effect.flatMap((rows) =>
        rows[0] === undefined ? Effect.succeedNone : Effect.asSome(decodeJob(rows[0].job).pipe(Effect.mapError(corrupt("a stored job"))))
      )
    )

  const writeJob = (job: Job.Job) =>
    sql`INSERT INTO jobs (deployment_id, job_name, job) VALUES (${job.deploymentId}, ${job.jobName}, ${json(job)}::jsonb)
      ON CONFLICT (deployment_id, job_name) DO UPDATE SET job = excluded.job`

  const upsertOne = (incoming: Job.Job) =>
    Effect.gen(function* () {
      yield* checkFence(sql, jobFenced)
      const job: Job.Job = { ...incoming, id: Job.jobId(incoming.deploymentId, incoming.jobName) }
      const stored = yield* readJob(job.deploymentId, job.jobName, true)
      const merged = Job.merge(Option.getOrUndefined(stored), job)
      yield* writeJob(merged)
      yield* feed.notify({ k: "j", d: merged.deploymentId })
      return merged
    })

  /**
   * A batch in two statements per deployment: read every stored job it touches (locked), fold the
   * incoming versions in order with `Job.merge`, write the results in one multi-row upsert.
   */
  const upsertBatch = (incoming: ReadonlyArray<Job.Job>) =>
    Effect.gen(function* () {
      yield* checkFence(sql, jobFenced)
      const results: Array<Job.Job> = []
      const byDeployment = new Map<string, Array<Job.Job>>()
      for (const job of incoming) {
        const list = byDeployment.get(job.deploymentId) ?? []
        list.push({ ...job, id: Job.jobId(job.deploymentId, job.jobName) })
        byDeployment.set(job.deploymentId, list)
      }
      for (const [deploymentId, jobs] of byDeployment) {
        const names = [...new Set(jobs.map((job) => job.jobName))]
        const rows = yield* sql<{
          job: unknown
        }>`SELECT job FROM jobs WHERE deployment_id = ${deploymentId} AND job_name IN ${sql.in(names)} FOR UPDATE`
        const current = new Map<string, Job.Job>()
        for (const row of rows) {
          const stored = yield* decodeJob(row.job).pipe(Effect.mapError(corrupt("a stored job")))
          current.set(stored.jobName, stored)
        }
        for (const job of jobs) {
          const merged = Job.merge(current.get(job.jobName), job)
          current.set(job.jobName, merged)
          results.push(merged)
        }
        const touched = names.map((name) => current.get(name)!)
        yield* sql`INSERT INTO jobs ${sql.insert(touched.map((job) => ({ deployment_id: job.deploymentId, job_name: job.jobName, job: json(job) })))}
          ON CONFLICT (deployment_id, job_name) DO UPDATE SET job = excluded.job`
        yield* feed.notify({ k: "j", d: deploymentId })
      }
      return results
    })

  const announce = (deploymentIds: Iterable<string>) =>
    Effect.forEach(new Set(deploymentIds), (deploymentId) => PubSub.publish(announcements.jobs, { deploymentId }), { discard: true })

  const readExecution = (executionId: string, forUpdate: boolean) =>
    (forUpdate
      ? sql<{ execution: unknown }>`SELECT execution FROM executions WHERE id = ${executionId} FOR UPDATE`
      : sql<{ execution: unknown }>`SELECT execution FROM executions WHERE id = ${executionId}`
    ).pipe(
      Effect.flatMap((rows) =>
        rows[0] === undefined
          ? Effect.succeedNone
          : Effect.asSome(decodeExecution(rows[0].execution).pipe(Effect.mapError(corrupt("a stored execution"))))
      )
    )

  const executionOf = (deploymentId: string, executionId: string, forUpdate: boolean) =>
    Effect.flatMap(readExecution(executionId, forUpdate), (found) =>
      Option.isSome(found) && found.value.deploymentId === deploymentId
        ? Effect.succeed(found.value)
        : Effect.fail(jobError("NotFound", `execution ${executionId} not found in deployment ${deploymentId}`))
    )

  /**
   * A list of writes in one transaction and a fixed number of statements, however long the list:
   * read (locked) the executions it refers to and the jobs it touches, fold the writes in memory with
   * core's `applyWrites`, then one multi-row upsert each for jobs and executions and one insert of
   * the log lines.
   */
  const recordWrites = (deploymentId: string, writes: ReadonlyArray<JobRepo.JobWrite>) =>
    Effect.gen(function* () {
      yield* checkFence(sql, jobFenced)
      const state: JobRepo.JobWriteState = { jobs: new Map(), executions: new Map() }
      const executionIds = JobRepo.executionsReadBy(writes)
      if (executionIds.length > 0) {
        const rows = yield* sql<{ execution: unknown }>`SELECT execution FROM executions WHERE id IN ${sql.in(executionIds)} FOR UPDATE`
        for (const row of rows) {
          const execution = yield* decodeExecution(row.execution).pipe(Effect.mapError(corrupt("a stored execution")))
          state.executions.set(execution.id, execution)
        }
      }
      const names = JobRepo.jobNamesReadBy(deploymentId, writes, state.executions.values())
      if (names.length > 0) {
        const rows = yield* sql<{
          job: unknown
        }>`SELECT job FROM jobs WHERE deployment_id = ${deploymentId} AND job_name IN ${sql.in(names)} FOR UPDATE`
        for (const row of rows) {
          const job = yield* decodeJob(row.job).pipe(Effect.mapError(corrupt("a stored job")))
          state.jobs.set(job.jobName, job)
        }
      }
      const applied = JobRepo.applyWrites(deploymentId, state, writes)
      if (Either.isLeft(applied)) return yield* applied.left
      const { jobs, executions, lines } = applied.right
      if (jobs.length > 0) {
        yield* sql`INSERT INTO jobs ${sql.insert(jobs.map((job) => ({ deployment_id: job.deploymentId, job_name: job.jobName, job: json(job) })))}
          ON CONFLICT (deployment_id, job_name) DO UPDATE SET job = excluded.job`
      }
      if (executions.length > 0) {
        const rows = executions.map((execution) => ({
          id: execution.id,
          deployment_id: execution.deploymentId,
          job_name: Job.jobNameOf(deploymentId, execution.jobId),
          execution: json(execution),
          started_at: execution.startedAt
        }))
        yield* sql`INSERT INTO executions ${sql.insert(rows)} ON CONFLICT (id) DO UPDATE SET execution = excluded.execution`
      }
      if (lines.length > 0) {
        const rows = lines.map(({ executionId, line }) => ({
          execution_id: executionId,
          line_number: line.lineNumber,
          at: line.timestamp,
          level: line.level,
          message: line.message
        }))
        yield* sql`INSERT INTO log_lines ${sql.insert(rows)}`
      }
      if (jobs.length > 0) yield* feed.notify({ k: "j", d: deploymentId })
      return jobs.length > 0
    })

  const record = (deploymentId: string, writes: ReadonlyArray<JobRepo.JobWrite>) =>
    (writes.length === 0
      ? Effect.succeed(false)
      : Effect.zipRight(
          checkWrites(writes),
          transaction(recordWrites(deploymentId, writes)) as Effect.Effect<boolean, SqlError.SqlError | JobRepo.JobRepoError>
        )
    ).pipe(
      Effect.catchTag("SqlError", (error) => Effect.fail(jobUnavailable(error))),
      Effect.flatMap((jobsChanged) => (jobsChanged ? announce([deploymentId]) : Effect.void))
    )

  const service: JobRepo.JobRepoService = {
    upsert: (job) =>
      Effect.zipRight(checkJobs([job]), transaction(upsertOne(job))).pipe(
        Effect.catchTag("SqlError", (error) => Effect.fail(jobUnavailable(error))),
        Effect.tap((stored) => announce([stored.deploymentId]))
      ),
    upsertMany: (jobs) =>
      (jobs.length === 0
        ? Effect.succeed<ReadonlyArray<Job.Job>>([])
        : (Effect.zipRight(checkJobs(jobs), transaction(upsertBatch(jobs))) as Effect.Effect<
            ReadonlyArray<Job.Job>,
            SqlError.SqlError | JobRepo.JobRepoError
          >)
      ).pipe(
        Effect.catchTag("SqlError", (error) => Effect.fail(jobUnavailable(error))),
        Effect.tap((stored) => announce(stored.map((job) => job.deploymentId)))
      ),
    list: (deploymentId) =>
      sql<{ job: unknown }>`SELECT job FROM jobs WHERE deployment_id = ${deploymentId} ORDER BY job_name COLLATE "C" ASC`.pipe(
        Effect.catchTag("SqlError", (error) => Effect.fail(jobUnavailable(error))),
        Effect.flatMap((rows) => Effect.forEach(rows, (row) => decodeJob(row.job).pipe(Effect.mapError(corrupt("a stored job")))))
      ),
    get: (deploymentId, jobNameOrId) =>
      Effect.gen(function* () {
        const jobName = Job.jobNameOf(deploymentId, jobNameOrId)
        const job = yield* readJob(deploymentId, jobName, false)
        if (Option.isNone(job)) return Option.none<JobRepo.JobWithExecutions>()
        const rows = yield* sql<{ execution: unknown }>`SELECT execution FROM executions
          WHERE deployment_id = ${deploymentId} AND job_name = ${jobName} ORDER BY started_at DESC, id DESC`
        const executions = yield* Effect.forEach(rows, (row) =>
          decodeExecution(row.execution).pipe(Effect.mapError(corrupt("a stored execution")))
        )
        return Option.some({ job: job.value, executions })
      }).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(jobUnavailable(error)))),
    startExecution: (deploymentId, jobName, executionId, at) =>
      record(deploymentId, [JobRepo.JobWrite.Start({ jobName, executionId, at })]).pipe(
        Effect.flatMap(() => executionOf(deploymentId, executionId, false)),
        Effect.catchTag("SqlError", (error) => Effect.fail(jobUnavailable(error)))
      ),
    finishExecution: (deploymentId, executionId, status, at) =>
      record(deploymentId, [JobRepo.JobWrite.Finish({ executionId, status, at })]),
    appendLog: (deploymentId, executionId, lines) => record(deploymentId, [JobRepo.JobWrite.Log({ executionId, lines })]),
    record,
    logs: (deploymentId, executionId, fromLine, limit) =>
      Effect.gen(function* () {
        const execution = yield* executionOf(deploymentId, executionId, false)
        const start = fromLine <= 0 ? 1 : fromLine
        const size = limit <= 0 ? 500 : Math.min(limit, 5000)
        const rows = yield* sql<{ line_number: number; at: number; level: string; message: string }>`
          SELECT line_number, at, level, message FROM log_lines
          WHERE execution_id = ${executionId} AND line_number >= ${start} ORDER BY line_number ASC LIMIT ${size}`
        const lines = yield* Effect.forEach(rows, (row) =>
          Schema.decodeUnknown(Job.LogLine)({
            lineNumber: row.line_number,
            timestamp: row.at,
            level: row.level,
            message: row.message
          }).pipe(Effect.mapError(corrupt("a log line")))
        )
        return { lines, total: execution.lineCount, executionFinished: execution.status !== "running" }
      }).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(jobUnavailable(error)))),
    remove: (deploymentId) =>
      transaction(
        Effect.all([
          checkFence(sql, jobFenced),
          sql`DELETE FROM log_lines WHERE execution_id IN (SELECT id FROM executions WHERE deployment_id = ${deploymentId})`,
          sql`DELETE FROM executions WHERE deployment_id = ${deploymentId}`,
          sql`DELETE FROM jobs WHERE deployment_id = ${deploymentId}`
        ])
      ).pipe(
        Effect.asVoid,
        Effect.catchTag("SqlError", (error) => Effect.fail(jobUnavailable(error)))
      )
  }
  return service
})

// ---------------------------------------------------------------------------------------------
// FlowEvents

const flowUnavailable = (error: SqlError.SqlError) => {
  const classified = SqlFaults.classify(error)
  return new FlowEvents.FlowEventsError({
    reason: SqlFaults.reasonOf(classified, "Unknown"),
    message: `the database failed: ${classified.detail}`,
    cause: error
  })
}
const flowFenced = (message: string) => new FlowEvents.FlowEventsError({ reason: "Fenced", message })

export const makeFlowEvents = (options: { readonly retention?: number } = {}) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const transaction = SqlFaults.transaction(sql)
    const announcements = yield* Announcements
    const feed = yield* Changes
    const retention = options.retention ?? FlowEvents.defaultRetention

    const latest = (deploymentId: string) =>
      Effect.map(sql<{ seq: number }>`SELECT seq FROM flow_heads WHERE deployment_id = ${deploymentId}`, (rows) => rows[0]?.seq ?? 0)

    const read = (deploymentId: string, afterSeq: number) =>
      Effect.map(
        sql<{ seq: number; at: number; message: unknown }>`SELECT seq, at, message FROM flow_events
          WHERE deployment_id = ${deploymentId} AND seq > ${afterSeq} ORDER BY seq ASC`,
        (rows) => rows.map((row): FlowEvents.FlowEvent => ({ seq: row.seq, deploymentId, at: row.at, message: row.message }))
      )

    const service: FlowEvents.FlowEventsService = {
      publish: (deploymentId, messages, at) =>
        Effect.zipRight(
          checkFlowAt(at),
          messages.length === 0
            ? Effect.succeed<ReadonlyArray<FlowEvents.FlowEvent>>([])
            : (transaction(
                Effect.gen(function* () {
                  yield* checkFence(sql, flowFenced)
                  const [head] = yield* sql<{ seq: number }>`
                  INSERT INTO flow_heads (deployment_id, seq) VALUES (${deploymentId}, ${messages.length})
                  ON CONFLICT (deployment_id) DO UPDATE SET seq = flow_heads.seq + ${messages.length}
                  RETURNING seq`
                  const last = head!.seq
                  const published = messages.map((message, index): FlowEvents.FlowEvent => ({
                    seq: last - messages.length + index + 1,
                    deploymentId,
                    at,
                    message
                  }))
                  yield* sql`INSERT INTO flow_events ${sql.insert(
                    published.map((event) => ({ deployment_id: deploymentId, seq: event.seq, at, message: json(event.message) }))
                  )}`
                  if (last > retention) {
                    yield* sql`DELETE FROM flow_events WHERE deployment_id = ${deploymentId} AND seq <= ${last - retention}`
                  }
                  yield* feed.notify({ k: "f", d: deploymentId, a: published[0]!.seq })
                  return published
                })
              ) as Effect.Effect<ReadonlyArray<FlowEvents.FlowEvent>, SqlError.SqlError>)
        ).pipe(
          Effect.catchTag("SqlError", (error) => Effect.fail(flowUnavailable(error))),
          Effect.tap((published) => feed.announceFlow(deploymentId, published))
        ),
      since: (deploymentId, afterSeq) =>
        Effect.gen(function* () {
          const last = yield* latest(deploymentId)
          const events = yield* read(deploymentId, afterSeq)
          const oldest = events[0]?.seq ?? last + 1
          if (afterSeq < last && afterSeq + 1 < oldest) return Option.none()
          return Option.some(events)
        }).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(flowUnavailable(error)))),
      latestSeq: (deploymentId) => latest(deploymentId).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(flowUnavailable(error)))),
      tail: (deploymentId, afterSeq) =>
        replayThenLive(announcements.flowEvents, deploymentId, afterSeq, (after) =>
          read(deploymentId, after).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(flowUnavailable(error))))
        ),
      remove: (deploymentId) =>
        transaction(
          Effect.all([
            checkFence(sql, flowFenced),
            sql`DELETE FROM flow_events WHERE deployment_id = ${deploymentId}`,
            sql`DELETE FROM flow_heads WHERE deployment_id = ${deploymentId}`
          ])
        ).pipe(
          Effect.asVoid,
          Effect.catchTag("SqlError", (error) => Effect.fail(flowUnavailable(error)))
        )
    }
    return service
  })

// ---------------------------------------------------------------------------------------------
// Kubeconfigs

const kubeconfigError = (reason: typeof Kubeconfigs.KubeconfigErrorReason.Type, message: string, region?: string) =>
  new Kubeconfigs.KubeconfigError({ reason, message, ...(region === undefined ? {} : { region }) })

export const makeKubeconfigs = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const announcements = yield* Announcements
  const feed = yield* Changes
  /** A stored kubeconfig: announced here, and to the other replicas (a call-back may land on any of them). */
  const arrived = (deploymentId: string, regionKey: string) =>
    Effect.zipRight(
      feed
        .notify({ k: "k", d: deploymentId, g: regionKey })
        .pipe(
          Effect.catchAll((error) =>
            Effect.logWarning("announcing a kubeconfig to the other replicas failed; they find it at their next resync", error)
          )
        ),
      PubSub.publish(announcements.kubeconfigs, { deploymentId, regionKey })
    )
  const secrets = yield* Secrets.Secrets
  const unavailableKc = (error: SqlError.SqlError) => {
    const classified = SqlFaults.classify(error)
    return new Kubeconfigs.KubeconfigError({
      reason: classified.fault === "Retryable" ? "Unavailable" : "Unknown",
      message: `the database failed: ${classified.detail}`,
      cause: error
    })
  }

  const lookup = (deploymentId: string, regionKey: string) =>
    sql<{ sealed: string }>`SELECT sealed FROM kubeconfigs WHERE deployment_id = ${deploymentId} AND region = ${regionKey}`.pipe(
      Effect.catchTag("SqlError", (error) => Effect.fail(unavailableKc(error))),
      Effect.flatMap((rows) =>
        rows[0] === undefined
          ? Effect.succeedNone
          : Effect.asSome(
              secrets.unseal(rows[0].sealed).pipe(Effect.mapError((error) => kubeconfigError("Unknown", error.message, regionKey)))
            )
      )
    )

  const service: Kubeconfigs.KubeconfigsService = {
    put: (deploymentId, regionKey, kubeconfig, receivedAt) =>
      Effect.gen(function* () {
        yield* checkReceivedAt(receivedAt)
        if (Redacted.value(kubeconfig).trim() === "") {
          return yield* kubeconfigError("Empty", "the kubeconfig is empty", regionKey)
        }
        const sealed = yield* secrets
          .seal(kubeconfig)
          .pipe(Effect.mapError((error) => kubeconfigError("Unknown", error.message, regionKey)))
        const inserted = yield* sql<{ region: string }>`INSERT INTO kubeconfigs (deployment_id, region, sealed, received_at)
          VALUES (${deploymentId}, ${regionKey}, ${sealed}, ${receivedAt})
          ON CONFLICT (deployment_id, region) DO NOTHING RETURNING region`.pipe(
          Effect.catchTag("SqlError", (error) => Effect.fail(unavailableKc(error)))
        )
        if (inserted.length === 0) {
          return yield* kubeconfigError("AlreadySet", `region ${regionKey} already delivered its kubeconfig`, regionKey)
        }
        yield* arrived(deploymentId, regionKey)
      }),
    replace: (deploymentId, regionKey, kubeconfig, receivedAt) =>
      Effect.gen(function* () {
        yield* checkReceivedAt(receivedAt)
        if (Redacted.value(kubeconfig).trim() === "") {
          return yield* kubeconfigError("Empty", "the kubeconfig is empty", regionKey)
        }
        const sealed = yield* secrets
          .seal(kubeconfig)
          .pipe(Effect.mapError((error) => kubeconfigError("Unknown", error.message, regionKey)))
        yield* sql`INSERT INTO kubeconfigs (deployment_id, region, sealed, received_at)
          VALUES (${deploymentId}, ${regionKey}, ${sealed}, ${receivedAt})
          ON CONFLICT (deployment_id, region) DO UPDATE SET sealed = EXCLUDED.sealed, received_at = EXCLUDED.received_at`.pipe(
          Effect.catchTag("SqlError", (error) => Effect.fail(unavailableKc(error)))
        )
        yield* arrived(deploymentId, regionKey)
      }),
    get: lookup,
    arrivals: (deploymentId) =>
      sql<{ region: string; received_at: number }>`SELECT region, received_at FROM kubeconfigs
        WHERE deployment_id = ${deploymentId} ORDER BY received_at ASC, region ASC`.pipe(
        Effect.map((rows) => rows.map((row) => ({ regionKey: row.region, receivedAt: row.received_at }))),
        Effect.catchTag("SqlError", (error) => Effect.fail(unavailableKc(error)))
      ),
    await: (deploymentId, regionKey) =>
      Effect.scoped(
        Effect.gen(function* () {
          const subscription = yield* PubSub.subscribe(announcements.kubeconfigs)
          while (true) {
            const found = yield* lookup(deploymentId, regionKey)
            if (Option.isSome(found)) return found.value
            let arrived = false
            while (!arrived) {
              const next = yield* Queue.take(subscription)
              // "*": the change feed reconnected and may have missed an arrival; look again.
              arrived =
                next.deploymentId === "*" ||
                (next.deploymentId === deploymentId && (next.regionKey === regionKey || next.regionKey === "*"))
            }
          }
        })
      ),
    remove: (deploymentId) =>
      fencedStatement(
        sql,
        (message) => kubeconfigError("Fenced", message),
        sql`DELETE FROM kubeconfigs WHERE deployment_id = ${deploymentId}`
      ).pipe(
        Effect.asVoid,
        Effect.catchTag("SqlError", (error) => Effect.fail(unavailableKc(error)))
      )
  }
  return service
})

/** Every persistence port on the `SqlClient` in context (with one set of announcements). */
export const layer = (
  options: { readonly flowRetention?: number; readonly replica?: string } = {}
): Layer.Layer<
  DeploymentRepo.DeploymentRepo | JobRepo.JobRepo | FlowEvents.FlowEvents | Kubeconfigs.Kubeconfigs | Announcements | Changes,
  never,
  SqlClient.SqlClient | Secrets.Secrets
> =>
  Layer.mergeAll(
    Layer.effect(DeploymentRepo.DeploymentRepo, makeDeploymentRepo),
    Layer.effect(JobRepo.JobRepo, makeJobRepo),
    Layer.effect(
      FlowEvents.FlowEvents,
      makeFlowEvents({ ...(options.flowRetention === undefined ? {} : { retention: options.flowRetention }) })
    ),
    Layer.effect(Kubeconfigs.Kubeconfigs, makeKubeconfigs)
  ).pipe(
    Layer.provideMerge(layerChanges(options.replica === undefined ? {} : { replica: options.replica })),
    Layer.provideMerge(layerAnnouncements)
  )
