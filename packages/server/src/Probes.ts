/**
 * The probes `/livez` and `/readyz` as Kubernetes' own API server has them: a registry of named checks
 * per probe, each answering ok or a reason; `?verbose` lists every check with its result.
 */
import { SqlClient } from "@effect/sql"
import * as Orchestrator from "@sovereign/core/Orchestrator"
import { Clock, Context, Data, Duration, Effect, Layer, Option, Ref } from "effect"
import { Control } from "./Control.js"
import * as Migrations from "./Migrations.js"

export type ProbeName = "livez" | "readyz"

/** Why a check does not pass, in words an operator reads in `?verbose`. */
export class CheckFailed extends Data.TaggedError("CheckFailed")<{ readonly reason: string }> {}

export interface Check<R = never> {
  readonly name: string
  readonly run: Effect.Effect<void, CheckFailed, R>
}

/** What the built-in checks read: the store and the runtime's face. */
type BuiltInNeeds = SqlClient.SqlClient | Control

export interface CheckResult {
  readonly name: string
  readonly ok: boolean
  readonly reason?: string
}

export interface ProbesService {
  /** Registers a check (a later one with the same name replaces it). */
  readonly add: (probe: ProbeName, check: Check) => Effect.Effect<void>
  readonly checks: (probe: ProbeName) => Effect.Effect<ReadonlyArray<Check>>
}

export class Probes extends Context.Tag("@sovereign/server/Probes")<Probes, ProbesService>() {}

export const make: Effect.Effect<ProbesService> = Effect.map(
  Ref.make<Record<ProbeName, ReadonlyArray<Check>>>({ livez: [], readyz: [] }),
  (registry) => ({
    add: (probe, check) =>
      Ref.update(registry, (all) => ({ ...all, [probe]: [...all[probe].filter((existing) => existing.name !== check.name), check] })),
    checks: (probe) => Effect.map(Ref.get(registry), (all) => all[probe])
  })
)

/** An empty registry; the server's own checks are built in (see `run`), others add theirs. */
export const layer: Layer.Layer<Probes> = Layer.effect(Probes, make)

/** Registers `check` under `probe` in the `Probes` of the context. */
export const add = (probe: ProbeName, check: Check): Effect.Effect<void, never, Probes> =>
  Effect.flatMap(Probes, (probes) => probes.add(probe, check))

/** A check may not hang a probe: Kubernetes gives up after its own timeout, so do we, with a reason. */
export const checkTimeout = Duration.seconds(2)

const store: Check<BuiltInNeeds> = {
  name: "store",
  run: Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 1`).pipe(
    Effect.mapError((error) => new CheckFailed({ reason: `the database is unreachable: ${error.message}` })),
    Effect.asVoid
  )
}

const migrations: Check<BuiltInNeeds> = {
  name: "migrations",
  run: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const known = yield* Migrations.loader
    const latest = Math.max(0, ...known.map(([id]) => id))
    const rows = yield* sql<{ readonly latest: number | null }>`SELECT max(migration_id) AS latest FROM sovereign_migrations`
    const applied = Number(rows[0]?.latest ?? 0)
    if (applied < latest) return yield* new CheckFailed({ reason: `migration ${applied} of ${latest} applied` })
  }).pipe(
    Effect.catchTags({
      SqlError: (error) => Effect.fail(new CheckFailed({ reason: `the migrations cannot be read: ${error.message}` })),
      MigrationError: (error) => Effect.fail(new CheckFailed({ reason: error.message }))
    })
  )
}

const resumed: Check<BuiltInNeeds> = {
  name: "deployments-resumed",
  run: Effect.flatMap(Control, (control) => control.ready).pipe(
    Effect.flatMap((ready) => (ready ? Effect.void : Effect.fail(new CheckFailed({ reason: "resuming deployments after start-up" }))))
  )
}

/** With replicas (the orchestrator runs under leases): whether the leases this replica holds renew. */
const leaseCheck = (orchestrator: Orchestrator.OrchestratorService): Check => ({
  name: "leases",
  run: Effect.flatMap(
    orchestrator.leaseHealth,
    Option.match({
      onNone: () => Effect.void,
      onSome: (health) =>
        health.renewing
          ? Effect.void
          : Effect.flatMap(Clock.currentTimeMillis, (now) =>
              Effect.fail(
                new CheckFailed({
                  reason: `leases are not renewing (${health.held} held; last renewal ${Math.round((now - health.lastRenewalAt) / 1000)} s ago)`
                })
              )
            )
    })
  )
})

/** `leases`, when the context's orchestrator runs under leases; nothing otherwise. */
const leaseChecks: Effect.Effect<ReadonlyArray<Check>> = Effect.serviceOption(Orchestrator.Orchestrator).pipe(
  Effect.flatMap(
    Option.match({
      onNone: () => Effect.succeed([]),
      onSome: (orchestrator) => Effect.map(orchestrator.leaseHealth, (health) => (Option.isSome(health) ? [leaseCheck(orchestrator)] : []))
    })
  )
)

/**
 * The server's own checks: `livez` passes while the process serves; `readyz` needs the store, its
 * schema, the resumed runtime and, with replicas, renewing leases.
 */
const builtIn = (probe: ProbeName): Effect.Effect<ReadonlyArray<Check<BuiltInNeeds>>> =>
  probe === "livez"
    ? Effect.succeed([{ name: "ping", run: Effect.void }])
    : Effect.map(leaseChecks, (leases) => [store, migrations, resumed, ...leases])

const runCheck = <R>(check: Check<R>): Effect.Effect<CheckResult, never, R> =>
  check.run.pipe(
    Effect.timeoutFail({
      duration: checkTimeout,
      onTimeout: () => new CheckFailed({ reason: `no answer within ${Duration.format(checkTimeout)}` })
    }),
    Effect.match({
      onFailure: (failure) => ({ name: check.name, ok: false, reason: failure.reason }),
      onSuccess: () => ({ name: check.name, ok: true })
    })
  )

/** Runs every check of `probe`, concurrently, in registration order. */
export const run = (probe: ProbeName) =>
  Effect.gen(function* () {
    const registered = yield* Effect.serviceOption(Probes).pipe(
      Effect.flatMap(Option.match({ onNone: () => Effect.succeed([] as ReadonlyArray<Check>), onSome: (probes) => probes.checks(probe) }))
    )
    const names = new Set(registered.map((check) => check.name))
    const checks: ReadonlyArray<Check<BuiltInNeeds>> = [...(yield* builtIn(probe)).filter((check) => !names.has(check.name)), ...registered]
    return yield* Effect.forEach(checks, runCheck, { concurrency: "unbounded" })
  })

/** Kubernetes' verbose form: `[+]name ok` / `[-]name failed: reason`, then `<probe> check passed|failed`. */
export const renderVerbose = (probe: ProbeName, results: ReadonlyArray<CheckResult>): string => {
  const lines = results.map((result) => (result.ok ? `[+]${result.name} ok` : `[-]${result.name} failed: ${result.reason ?? "failed"}`))
  const passed = results.every((result) => result.ok)
  return `${lines.join("\n")}\n${probe} check ${passed ? "passed" : "failed"}\n`
}
