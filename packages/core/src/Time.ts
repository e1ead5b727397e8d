/**
 * Time is integer unix milliseconds everywhere (issue 11): one schema for every timestamp at every
 * boundary (ports, HTTP, SQL), so a fractional or non-finite value is refused where it is made, with a
 * message naming the field, and never reaches the database.
 */
import { Clock, Config, ConfigError, Duration, Effect, Either, Option, Schema } from "effect"

/** A point in time: integer unix milliseconds. */
export const UnixMillis = Schema.Int.annotations({ description: "an integer (unix time in milliseconds)" })
export type UnixMillis = typeof UnixMillis.Type

/** A span of time: integer milliseconds, never negative. */
export const Millis = Schema.Int.pipe(Schema.nonNegative()).annotations({ description: "a non-negative integer (milliseconds)" })

/** The clock's time as integer milliseconds, whatever the installed clock yields (a scaled one may yield fractions). */
export const nowMillis: Effect.Effect<number> = Effect.map(Clock.currentTimeMillis, Math.floor)

const shortDuration = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/
const shortUnits = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

/**
 * A configured duration (SPEC §8): `120m`, `2h`, `90s`, `500ms`, `1d` as SPEC writes them, or Effect's
 * `120 minutes`; none for anything else or for zero (no configured duration means "never").
 */
export const parseDuration = (text: string): Option.Option<Duration.Duration> => {
  const trimmed = text.trim()
  const match = shortDuration.exec(trimmed)
  const parsed =
    match === null
      ? Duration.decodeUnknown(trimmed)
      : Option.some(Duration.millis(Number(match[1]) * shortUnits[match[2] as keyof typeof shortUnits]))
  return Option.filter(parsed, (duration) => Duration.isFinite(duration) && Duration.greaterThan(duration, Duration.zero))
}

/**
 * The configuration form of {@link parseDuration}: the one way a duration is read from the environment,
 * refused with a message naming the variable and the accepted forms.
 */
export const durationConfig = (name: string): Config.Config<Duration.Duration> =>
  Config.string(name).pipe(
    Config.mapOrFail((text) =>
      Option.match(parseDuration(text), {
        onNone: () =>
          Either.left(
            ConfigError.InvalidData([], `${name} must be a positive duration such as 120m, 2h, 90s or 120 minutes, not '${text}'`)
          ),
        onSome: Either.right
      })
    )
  )
