/** The rate-limit budgets live in a scope (a client layer's), one per project, and idle ones are swept. */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, TestClock } from "effect"
import * as RateLimitBudget from "../src/internal/RateLimitBudget.js"

describe("RateLimitBudget budgets", () => {
  it.effect("one budget per project key; another set of budgets (another layer) shares nothing", () =>
    Effect.gen(function* () {
      const budgets = RateLimitBudget.makeBudgets()
      expect(budgets.get("endpoint#a")).toBe(budgets.get("endpoint#a"))
      expect(budgets.get("endpoint#b")).not.toBe(budgets.get("endpoint#a"))
      expect(RateLimitBudget.makeBudgets().get("endpoint#a")).not.toBe(budgets.get("endpoint#a"))
    })
  )

  it.effect("a budget idle for an hour is dropped; one in use, or with a request in flight, is kept", () =>
    Effect.gen(function* () {
      const budgets = RateLimitBudget.makeBudgets()
      const idle = budgets.get("idle")
      const busy = budgets.get("busy")
      const inFlight = budgets.get("in-flight")
      yield* idle.acquire
      yield* idle.observe({ limit: 3600, remaining: 3599, reset: 1 })
      yield* inFlight.acquire // never answered
      yield* TestClock.adjust(Duration.minutes(59))
      yield* busy.acquire
      yield* busy.observe({ limit: 3600, remaining: 3599, reset: 3600 })
      yield* TestClock.adjust(Duration.minutes(2))
      budgets.evictIdle(61 * 60_000, Duration.toMillis(RateLimitBudget.idleEviction))
      expect(budgets.size()).toBe(2)
      expect(budgets.get("busy")).toBe(busy)
      expect(budgets.get("in-flight")).toBe(inFlight)
      expect(budgets.get("idle")).not.toBe(idle)
    })
  )

  it.scoped("the scoped budgets sweep themselves while the scope lives", () =>
    Effect.gen(function* () {
      const budgets = yield* RateLimitBudget.scoped
      const budget = budgets.get("project")
      yield* budget.acquire
      yield* budget.observe({ limit: 3600, remaining: 3599, reset: 1 })
      expect(budgets.size()).toBe(1)
      yield* TestClock.adjust(Duration.minutes(70))
      expect(budgets.size()).toBe(0)
    })
  )
})
