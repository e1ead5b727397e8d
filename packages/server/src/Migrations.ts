/** The one set of migrations, run on Postgres and on PGlite alike (SPEC §6). */
import * as Migrator from "@effect/sql/Migrator"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

const statements = (...sqls: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    for (const statement of sqls) yield* sql.unsafe(statement)
  })

export const initial = statements(
  `CREATE TABLE deployments (
    id text PRIMARY KEY,
    owner text NOT NULL,
    fqdn text NOT NULL,
    status text NOT NULL,
    spec jsonb NOT NULL,
    sealed_credentials text NOT NULL,
    results jsonb NOT NULL,
    error text,
    version integer NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    phase1_started_at bigint,
    finished_at bigint,
    adopted_at bigint
  )`,
  `CREATE INDEX deployments_owner ON deployments (owner, created_at DESC)`,
  `CREATE INDEX deployments_fqdn ON deployments (fqdn, status)`,
  `CREATE TABLE deployment_events (
    deployment_id text NOT NULL,
    seq bigint NOT NULL,
    event jsonb NOT NULL,
    PRIMARY KEY (deployment_id, seq)
  )`,
  `CREATE TABLE step_journal (
    deployment_id text NOT NULL,
    job_name text NOT NULL,
    at bigint NOT NULL,
    entry jsonb NOT NULL,
    PRIMARY KEY (deployment_id, job_name)
  )`,
  `CREATE TABLE jobs (
    deployment_id text NOT NULL,
    job_name text NOT NULL,
    job jsonb NOT NULL,
    PRIMARY KEY (deployment_id, job_name)
  )`,
  `CREATE TABLE executions (
    id text PRIMARY KEY,
    deployment_id text NOT NULL,
    job_name text NOT NULL,
    execution jsonb NOT NULL,
    started_at bigint NOT NULL
  )`,
  `CREATE INDEX executions_job ON executions (deployment_id, job_name, started_at DESC)`,
  `CREATE TABLE log_lines (
    execution_id text NOT NULL,
    line_number integer NOT NULL,
    at bigint NOT NULL,
    level text NOT NULL,
    message text NOT NULL,
    PRIMARY KEY (execution_id, line_number)
  )`,
  `CREATE TABLE flow_heads (
    deployment_id text PRIMARY KEY,
    seq bigint NOT NULL
  )`,
  `CREATE TABLE flow_events (
    deployment_id text NOT NULL,
    seq bigint NOT NULL,
    at bigint NOT NULL,
    message jsonb NOT NULL,
    PRIMARY KEY (deployment_id, seq)
  )`,
  `CREATE TABLE kubeconfigs (
    deployment_id text NOT NULL,
    region text NOT NULL,
    sealed text NOT NULL,
    received_at bigint NOT NULL,
    PRIMARY KEY (deployment_id, region)
  )`,
  `CREATE TABLE simulator_state (
    key text PRIMARY KEY,
    state jsonb NOT NULL,
    updated_at bigint NOT NULL
  )`
)

/** A value sealed under the key of the first server on this database: a server with another key refuses to start (`KeyCheck`). */
export const keyCheck = statements(
  `CREATE TABLE key_check (
    id integer PRIMARY KEY CHECK (id = 1),
    sealed text NOT NULL,
    created_at bigint NOT NULL
  )`
)

/**
 * Issue 11: which replica runs a deployment. `epoch` only grows (a release keeps it), `expires_at` is
 * unix ms in the database's clock; `holder` is NULL once released. Numbered 3 after the key check (2).
 */
export const leases = statements(
  `CREATE TABLE leases (
    deployment_id text PRIMARY KEY,
    holder text,
    epoch bigint NOT NULL,
    expires_at bigint NOT NULL
  )`,
  `CREATE INDEX leases_holder ON leases (holder)`
)

/**
 * Issue 11: the handover signing key (sealed under the server key) lives in the database, so every
 * replica signs with the same key and publishes the same JWKS. One row.
 */
export const handoverKey = statements(
  `CREATE TABLE handover_key (
    id integer PRIMARY KEY CHECK (id = 1),
    sealed text NOT NULL,
    created_at bigint NOT NULL
  )`
)

export const loader = Migrator.fromRecord({
  "1_initial": initial,
  "2_key_check": keyCheck,
  "3_leases": leases,
  "4_handover_key": handoverKey
})

export const run = Migrator.make({})({ loader, table: "sovereign_migrations" })
