/**
 * Time is integer unix milliseconds everywhere (issue 11): one schema for every timestamp at every
 * boundary (ports, HTTP, SQL), so a fractional or non-finite value is refused where it is made, with a
 * message naming the field, and never reaches the database.
 */
import { Clock, Effect, Schema } from "effect"

/** A point in time: integer unix milliseconds. */
export const UnixMillis = Schema.Int.annotations({ description: "an integer (unix time in milliseconds)" })
export type UnixMillis = typeof UnixMillis.Type

/** A span of time: integer milliseconds, never negative. */
export const Millis = Schema.Int.pipe(Schema.nonNegative()).annotations({ description: "a non-negative integer (milliseconds)" })

/** The clock's time as integer milliseconds, whatever the installed clock yields (a scaled one may yield fractions). */
export const nowMillis: Effect.Effect<number> = Effect.map(Clock.currentTimeMillis, Math.floor)
