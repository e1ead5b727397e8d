/**
 * Store faults are waits, not failures (issue 11): every store call of a run goes through `storeCall`,
 * which waits out an unavailable store with capped, jittered exponential backoff (logging the cause at
 * each wait) and turns anything else into a defect, because a store that answers "no" for a reason
 * other than an outage means an invariant of ours is broken (the run then ends `failed`, naming it).
 */
import { Cause, Duration, Effect, Schedule } from "effect"
import type { OrchestratorSettings } from "./Environment.js"

/** What every store port's error has in common: a reason, a message, and the driver's cause when there is one. */
export interface StoreFailure {
  readonly _tag: string
  readonly reason: string
  readonly message: string
  readonly cause?: unknown
}

/** An outage of the store (connection lost, shut down, serialization failure, deadlock, busy): the same call succeeds later. */
export const isOutage = (error: StoreFailure): boolean => error.reason === "Unavailable"

/** A store error that is not an outage reached a run: the defect that ends it, with the store's words and cause. */
export class StoreInvariantBroken extends Error {
  readonly _tag = "StoreInvariantBroken"
  constructor(
    readonly what: string,
    readonly error: StoreFailure
  ) {
    super(`${what}: the store refused (${error._tag} ${error.reason}): ${error.message}${describeCause(error.cause, error.message)}`, {
      cause: error
    })
    this.name = "StoreInvariantBroken"
  }
}

/** The innermost cause (the driver's or the socket's own words), unless the message already says it. */
const describeCause = (cause: unknown, message = ""): string => {
  if (cause === undefined || cause === null) return ""
  if (Cause.isCause(cause)) return ` (cause: ${Cause.pretty(cause).split("\n")[0]})`
  let innermost: unknown = cause
  for (let depth = 0; depth < 5; depth++) {
    const next: unknown = typeof innermost === "object" && innermost !== null && "cause" in innermost ? innermost.cause : undefined
    if (next === undefined || next === null) break
    innermost = next
  }
  const text = typeof innermost === "object" && innermost !== null && "message" in innermost ? String(innermost.message) : String(innermost)
  const code =
    typeof innermost === "object" && innermost !== null && "code" in innermost && typeof innermost.code === "string"
      ? `${innermost.code} `
      : ""
  return message.includes(text) ? "" : ` (cause: ${code}${text})`
}

/** Capped (`storeRetryCap`), jittered exponential backoff from `storeRetryBase`, for as long as the store is out. */
export const outageSchedule = (settings: Pick<OrchestratorSettings, "storeRetryBase" | "storeRetryCap">) =>
  Schedule.exponential(settings.storeRetryBase).pipe(Schedule.union(Schedule.spaced(settings.storeRetryCap)), Schedule.jittered)

/**
 * Retries `effect` while its error is a store outage, logging each wait with its cause; any other
 * error is left to the caller (e.g. `VersionConflict`, which `mutate` answers by reading again).
 */
export const waitOutOutages =
  <E extends StoreFailure>(settings: Pick<OrchestratorSettings, "storeRetryBase" | "storeRetryCap">, what: string) =>
  <A, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => {
      let waits = 0
      return effect.pipe(
        Effect.tapError((error) =>
          isOutage(error)
            ? Effect.logWarning(
                `the store is unavailable while ${what}; waiting (wait ${++waits}, backoff up to ${Duration.format(settings.storeRetryCap)}) before trying again: ${error.message}${describeCause(error.cause, error.message)}`
              )
            : Effect.void
        ),
        Effect.retry({ schedule: outageSchedule(settings), while: isOutage }),
        Effect.tap(() => (waits > 0 ? Effect.logInfo(`the store answers again while ${what}, after ${waits} wait(s)`) : Effect.void))
      )
    })

/**
 * A store call of a run: outages are waited out; any other store error is a broken invariant, a
 * defect carrying the store's message and cause (the run's supervisor ends the deployment `failed` with it).
 */
export const storeCall = <A, E extends StoreFailure, R>(
  env: { readonly settings: Pick<OrchestratorSettings, "storeRetryBase" | "storeRetryCap"> },
  what: string,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, never, R> =>
  effect.pipe(
    waitOutOutages<E>(env.settings, what),
    Effect.catchAll((error) => Effect.die(new StoreInvariantBroken(what, error)))
  )
