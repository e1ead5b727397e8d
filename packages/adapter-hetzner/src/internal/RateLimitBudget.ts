/**
 * One client-side token bucket per Hetzner project, kept in step with the RateLimit-* response
 * headers; the buckets live in the scope of the client layer that uses them (no process-global state).
 */
import { Clock, Duration, Effect, Metric } from "effect"
import type { Scope } from "effect"

/** The server exports it as `sovereign_cloud_ratelimit_remaining{provider="hetzner"}` (no description: the key must match its own). */
const remainingGauge = Metric.gauge("sovereign_cloud_ratelimit_remaining").pipe(Metric.tagged("provider", "hetzner"))

/** What one response said about the project's budget. */
export interface RateLimitHeaders {
  readonly limit: number
  readonly remaining: number
  /** Unix seconds at which the budget is full again. */
  readonly reset: number
}

interface State {
  tokens: number
  limit: number
  /** Tokens regained per millisecond. */
  refillPerMs: number
  updatedAt: number
  /** Whether a response has told us the real budget yet. */
  known: boolean
  inFlight: number
}

export interface RateLimitBudget {
  /** Waits (on the Clock) until one request may be sent without exceeding the budget, and takes it. */
  readonly acquire: Effect.Effect<void>
  /** Reconciles with a response's headers; ends the request's in-flight accounting. */
  readonly observe: (headers: RateLimitHeaders | undefined) => Effect.Effect<void>
  /** Snapshot for tests and logs. */
  readonly snapshot: Effect.Effect<{ readonly tokens: number; readonly limit: number; readonly known: boolean }>
}

/** Longest single sleep while waiting, so a response that refills the budget is noticed soon. */
const maxWaitSliceMs = 250
/** Hetzner refills one request per second; assumed until a response says otherwise. */
const defaultRefillPerMs = 1 / 1000

const makeTracked = () => {
  // A single probe request is allowed before the headers are known; its answer sets the real budget.
  const state: State = { tokens: 1, limit: 1, refillPerMs: defaultRefillPerMs, updatedAt: Number.NaN, known: false, inFlight: 0 }
  const mutex = Effect.unsafeMakeSemaphore(1)

  const refill = (now: number) => {
    if (!Number.isNaN(state.updatedAt) && now > state.updatedAt) {
      state.tokens = Math.min(state.limit, state.tokens + (now - state.updatedAt) * state.refillPerMs)
    }
    state.updatedAt = now
  }

  // Holding the mutex while sleeping makes waiters queue in order instead of racing for tokens.
  const acquire = mutex.withPermits(1)(
    Effect.gen(function* () {
      while (true) {
        const now = yield* Clock.currentTimeMillis
        refill(now)
        if (state.tokens >= 1) {
          state.tokens -= 1
          state.inFlight += 1
          return
        }
        const waitMs = Math.ceil((1 - state.tokens) / state.refillPerMs)
        yield* Effect.sleep(Duration.millis(Math.max(1, Math.min(waitMs, maxWaitSliceMs))))
      }
    })
  )

  const observe = (headers: RateLimitHeaders | undefined) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      state.inFlight = Math.max(0, state.inFlight - 1)
      refill(now)
      if (headers === undefined) {
        // No answer from the API: the probe token is given back, a known budget stays as spent.
        if (!state.known) state.tokens = Math.min(1, state.tokens + 1)
        return
      }
      const resetMs = headers.reset * 1000
      if (headers.remaining < headers.limit && resetMs > now) {
        // Reset is rounded up to whole seconds, so this rate is never above the real one.
        state.refillPerMs = (headers.limit - headers.remaining) / (resetMs - now)
      }
      yield* Metric.set(remainingGauge, headers.remaining)
      state.limit = headers.limit
      // Requests still in flight may not have been counted by the API yet: assume they were not.
      const trusted = headers.remaining - state.inFlight
      state.tokens = state.known ? Math.min(state.tokens, trusted) : trusted
      state.known = true
    })

  const budget: RateLimitBudget = {
    acquire,
    observe,
    snapshot: Effect.sync(() => ({ tokens: state.tokens, limit: state.limit, known: state.known }))
  }
  return { budget, lastUsed: () => state.updatedAt, inFlight: () => state.inFlight }
}

/** The budgets of the projects (tokens) one client layer talks to. */
export interface Budgets {
  /** The budget of one project: every client of the same endpoint and token draws from it. */
  readonly get: (key: string) => RateLimitBudget
  /** Drops the budgets not used for `idleMs` (by then the API has refilled them entirely). */
  readonly evictIdle: (now: number, idleMs: number) => void
  readonly size: () => number
}

export const makeBudgets = (): Budgets => {
  const budgets = new Map<string, { readonly budget: RateLimitBudget; readonly lastUsed: () => number; readonly inFlight: () => number }>()
  return {
    get: (key) => {
      const existing = budgets.get(key)
      if (existing !== undefined) return existing.budget
      const tracked = makeTracked()
      budgets.set(key, tracked)
      return tracked.budget
    },
    evictIdle: (now, idleMs) => {
      for (const [key, tracked] of budgets) {
        const lastUsed = tracked.lastUsed()
        if (tracked.inFlight() === 0 && (Number.isNaN(lastUsed) || now - lastUsed >= idleMs)) budgets.delete(key)
      }
    },
    size: () => budgets.size
  }
}

/**
 * Hetzner refills 3,600 requests an hour: a budget unused that long is full again, and a fresh one
 * (which learns the real budget from its first answer) serves as well.
 */
export const idleEviction = Duration.hours(1)

/**
 * Budgets for as long as the scope lives (a client layer's): one per project, kept while in use and
 * swept when idle, so a long-running server does not keep a budget for every token it ever saw.
 */
export const scoped: Effect.Effect<Budgets, never, Scope.Scope> = Effect.gen(function* () {
  const budgets = makeBudgets()
  const idleMs = Duration.toMillis(idleEviction)
  yield* Effect.forkScoped(
    Effect.forever(
      Effect.sleep(Duration.minutes(10)).pipe(
        Effect.zipRight(Clock.currentTimeMillis),
        Effect.map((now) => budgets.evictIdle(now, idleMs))
      )
    )
  )
  return budgets
})
