/** The simulator ships the kit as code (it does no file I/O); it must stay the project's fixture, release for release. */
import { describe, expect, it } from "@effect/vitest"
import { BootstrapKit } from "@sovereign/testkit"
import { bootstrapKit } from "../src/internal/bootstrapKit.js"

describe("the simulator's bootstrap kit", () => {
  it("is the testkit fixture: same releases, order, namespaces and dependencies", () => {
    expect(BootstrapKit.releases).toHaveLength(35)
    expect(bootstrapKit).toEqual(BootstrapKit.releases)
  })
})
