/**
 * The one place SQL errors are classified (issue 11), by SQLSTATE for PostgreSQL (`pg`) and PGlite
 * alike, by the socket's errno when the connection itself failed: a unique violation is a Conflict;
 * lost connections, shutdowns, serialization failures, deadlocks and a busy server are Retryable
 * (the same statement succeeds once the store answers); everything else (schema, data, syntax) is
 * NonRetryable. Every port maps the classification to its own error, keeping the driver's error as `cause`.
 */
import type { SqlError } from "@effect/sql"
import { Cause, Chunk, Effect, Option } from "effect"

export type Fault = "Conflict" | "Retryable" | "NonRetryable"

export interface Classified {
  readonly fault: Fault
  /** The SQLSTATE (e.g. `57P01`) or errno (e.g. `ECONNREFUSED`) the decision rests on, when there is one. */
  readonly code: string | undefined
  /** The driver's own words, with the code: for messages and logs. */
  readonly detail: string
}

/** SQLSTATEs of a transient condition: the same statement (or transaction) succeeds when tried again. */
const retryableStates = new Set([
  "40001", // serialization_failure
  "40P01", // deadlock_detected
  "55P03", // lock_not_available
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (starting up, shutting down, in recovery)
  "57P05", // idle_session_timeout
  "53000", // insufficient_resources
  "53100", // disk_full
  "53200", // out_of_memory
  "53300", // too_many_connections
  "58000", // system_error
  "58030", // io_error
  "25006", // read_only_sql_transaction (a fail-over left us on a standby for a moment)
  "25P03" // idle_in_transaction_session_timeout
])

/** Socket errors: the server is not (yet) there. */
const retryableErrnos = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ECONNABORTED"
])

/** What `pg` says when a connection died without an SQLSTATE. */
const lostConnection =
  /connection terminated|connection error|not queryable|terminating connection|server closed the connection|timeout exceeded when trying to connect|connection timeout|socket hang up|client was closed|cannot use a pool after calling end/i

const fieldOf = (value: unknown, field: string): unknown =>
  typeof value === "object" && value !== null && field in value ? (value as Record<string, unknown>)[field] : undefined

/** The classification of a SQLSTATE alone (5 characters; class `08` is a connection exception). */
export const faultOfSqlState = (state: string): Fault => {
  if (state === "23505") return "Conflict"
  if (state.startsWith("08") || retryableStates.has(state)) return "Retryable"
  return "NonRetryable"
}

/** Follows `cause` links (an SqlError wraps the driver's error, which may wrap a socket error). */
const chain = (error: unknown): ReadonlyArray<unknown> => {
  const out: Array<unknown> = []
  let current: unknown = error
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    out.push(current)
    current = fieldOf(current, "cause")
  }
  return out
}

const messageOf = (value: unknown): string => {
  const message = fieldOf(value, "message")
  return typeof message === "string" ? message : String(value)
}

/** Classifies any error a SQL call can end with (an `SqlError` from `@effect/sql`, or a raw driver error). */
export const classify = (error: SqlError.SqlError | unknown): Classified => {
  const links = chain(error)
  const words = links
    .map(messageOf)
    .filter((message, index, all) => message !== "" && all.indexOf(message) === index)
    .join(": ")
  for (const link of links) {
    const code = fieldOf(link, "code")
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) {
      return { fault: faultOfSqlState(code), code, detail: `SQLSTATE ${code}: ${words}` }
    }
  }
  for (const link of links) {
    const code = fieldOf(link, "code")
    if (typeof code === "string" && retryableErrnos.has(code)) return { fault: "Retryable", code, detail: `${code}: ${words}` }
    const errors = fieldOf(link, "errors")
    // Node's AggregateError (a host name resolving to several addresses, all refusing).
    if (Array.isArray(errors) && errors.some((inner) => retryableErrnos.has(String(fieldOf(inner, "code"))))) {
      return { fault: "Retryable", code: String(fieldOf(errors[0], "code")), detail: words }
    }
  }
  if (links.some((link) => lostConnection.test(messageOf(link)))) return { fault: "Retryable", code: undefined, detail: words }
  return { fault: "NonRetryable", code: undefined, detail: words }
}

/** The port reason of a classification: ports spell "retryable" as `Unavailable`. */
export const reasonOf = <R extends string>(classified: Classified, nonRetryable: R): "Conflict" | "Unavailable" | R =>
  classified.fault === "Conflict" ? "Conflict" : classified.fault === "Retryable" ? "Unavailable" : nonRetryable

export const isSqlError = (value: unknown): value is SqlError.SqlError =>
  typeof value === "object" && value !== null && "_tag" in value && value._tag === "SqlError"

/**
 * `sql.withTransaction`, whose COMMIT and ROLLBACK failures (a connection lost mid-transaction)
 * `@effect/sql` raises as defects, with those made failures again: a lost connection is an outage to
 * wait out, not a bug. The transaction's own failure wins over a failed rollback; other defects stay defects.
 */
export const transaction =
  (sql: { readonly withTransaction: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SqlError.SqlError, R> }) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError.SqlError, R> =>
    sql.withTransaction(self).pipe(
      Effect.catchAllCause((cause) => {
        const defects = Chunk.toReadonlyArray(Cause.defects(cause))
        if (defects.length === 0 || !defects.every(isSqlError) || Cause.isInterrupted(cause)) return Effect.failCause(cause)
        const failure = Cause.failureOption(cause)
        return Option.isSome(failure) ? Effect.fail(failure.value) : Effect.fail(defects[0] as SqlError.SqlError)
      })
    )
