/** Lets a test wait for a condition on the fake's state (open watches, logged requests, log followers). */
import { Effect } from "effect"

export class Signal {
  private readonly waiters = new Set<() => void>()

  /** Re-checks every waiting condition; call after each change they may depend on. */
  notify(): void {
    for (const waiter of [...this.waiters]) waiter()
  }

  /** Completes once `ready()` holds (now or after a later `notify`). */
  until(ready: () => boolean): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      const check = () => {
        if (ready()) {
          this.waiters.delete(check)
          resume(Effect.void)
        }
      }
      this.waiters.add(check)
      check()
      return Effect.sync(() => void this.waiters.delete(check))
    })
  }
}
