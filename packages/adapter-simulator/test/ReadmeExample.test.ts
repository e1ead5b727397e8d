// The README's composition, kept compiling and running.
import { describe, expect, it } from "@effect/vitest"
import { Orchestrator } from "@sovereign/core"
import * as Memory from "@sovereign/core/testing/Memory"
import { Effect, Layer } from "effect"
import { Simulator, SimulatorStore } from "../src/index.js"
import { advanceUntil, request } from "./harness.js"

describe("README example", () => {
  it.scoped("composes the orchestrator over the simulator and in-memory stores", () =>
    Effect.gen(function*() {
      const state = Memory.makeState()
      const world = Simulator.layer({ speed: 60, seed: 7 }).pipe(
        Layer.provide(Simulator.deliverToKubeconfigs),
        Layer.provide(SimulatorStore.layerMemory())
      )
      const app = Orchestrator.layer.pipe(
        Layer.provideMerge(world),
        Layer.provideMerge(Layer.mergeAll(Memory.layer(state), Orchestrator.layerSettings()))
      )
      const status = yield* Effect.gen(function*() {
        const orchestrator = yield* Orchestrator.Orchestrator
        const created = yield* orchestrator.create(request(1), "ops@omani.works")
        return (yield* advanceUntil(created.id, ["ready", "failed"], 60, 5)).status
      }).pipe(Effect.provide(app))
      expect(status).toBe("ready")
    }))
})
