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
    results jsonb NOT NULL DEFAULT '{}'::jsonb,
    error text,
    postback_hash text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    finished_at bigint,
    version integer NOT NULL DEFAULT 1
  )`,
  `CREATE INDEX deployments_owner ON deployments (owner)`,
  `CREATE INDEX deployments_status ON deployments (status)`,
  `CREATE TABLE deployment_events (
    deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    at bigint NOT NULL,
    event jsonb NOT NULL,
    PRIMARY KEY (deployment_id, seq)
  )`,
  `CREATE TABLE jobs (
    deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    job_name text NOT NULL,
    job jsonb NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (deployment_id, job_name)
  )`,
  `CREATE TABLE executions (
    id text PRIMARY KEY,
    deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    job_name text NOT NULL,
    status text NOT NULL,
    started_at bigint NOT NULL,
    finished_at bigint,
    line_count integer NOT NULL DEFAULT 0
  )`,
  `CREATE INDEX executions_job ON executions (deployment_id, job_name)`,
  `CREATE TABLE log_lines (
    execution_id text NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    line_number integer NOT NULL,
    at bigint NOT NULL,
    level text NOT NULL,
    message text NOT NULL,
    PRIMARY KEY (execution_id, line_number)
  )`,
  `CREATE TABLE flow_events (
    deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    message jsonb NOT NULL,
    PRIMARY KEY (deployment_id, seq)
  )`,
  `CREATE TABLE kubeconfigs (
    deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    region text NOT NULL,
    sealed text NOT NULL,
    received_at bigint NOT NULL,
    PRIMARY KEY (deployment_id, region)
  )`,
  `CREATE TABLE step_journal (
    deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    step text NOT NULL,
    region text NOT NULL,
    status text NOT NULL,
    result jsonb,
    error text,
    updated_at bigint NOT NULL,
    PRIMARY KEY (deployment_id, step)
  )`,
  `CREATE TABLE simulator_state (
    key text PRIMARY KEY,
    state jsonb NOT NULL,
    updated_at bigint NOT NULL
  )`,
  `CREATE TABLE postback_uses (
    deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    region text NOT NULL,
    used_at bigint NOT NULL,
    PRIMARY KEY (deployment_id, region)
  )`
)

export const loader = Migrator.fromRecord({ "1_initial": initial })

export const run = Migrator.make({})({ loader, table: "sovereign_migrations" })
