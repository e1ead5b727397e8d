/** A Clock whose time runs `factor` times faster than real time, for tests that talk to real servers over sockets. */
import { Clock, Duration, Effect } from "effect"

/**
 * TestClock cannot drive code that waits on real sockets; a scaled clock can: a 1 s backoff under
 * factor 1000 takes 1 ms of real time, and every party that reads this clock (client and fake) agrees.
 */
export const make = (factor: number, epochMillis = Date.UTC(2026, 0, 1)): Clock.Clock => {
  const realStart = performance.now()
  const currentMillis = () => epochMillis + (performance.now() - realStart) * factor
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => Math.floor(currentMillis()),
    currentTimeMillis: Effect.sync(() => Math.floor(currentMillis())),
    unsafeCurrentTimeNanos: () => BigInt(Math.floor(currentMillis() * 1_000_000)),
    currentTimeNanos: Effect.sync(() => BigInt(Math.floor(currentMillis() * 1_000_000))),
    sleep: (duration: Duration.Duration) =>
      Effect.async<void>((resume) => {
        const timer = setTimeout(() => resume(Effect.void), Duration.toMillis(duration) / factor)
        return Effect.sync(() => clearTimeout(timer))
      })
  }
}
