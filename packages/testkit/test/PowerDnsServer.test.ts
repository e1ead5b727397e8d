import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { existsSync } from "node:fs"
import { start } from "../src/PowerDnsServer.js"

describe("PowerDnsServer", () => {
  it.live("serves the API with the zones asked for, and is gone (process and files) once its scope closes", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const server = yield* start({ zones: ["one.test."] }).pipe(Scope.extend(scope))
      const zones = yield* server.request("GET", "/zones")
      expect(zones.status).toBe(200)
      expect(JSON.parse(zones.body)).toEqual([expect.objectContaining({ name: "one.test." })])
      expect(existsSync(server.directory)).toBe(true)
      yield* Scope.close(scope, Exit.void)
      const after = yield* Effect.either(server.request("GET", "/zones"))
      expect(after._tag).toBe("Left")
      expect(existsSync(server.directory)).toBe(false)
    })
  )
})
