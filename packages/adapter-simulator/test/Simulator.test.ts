import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Layer } from "effect"
import { timeline } from "../src/SimulatorCluster.js"
import { noFaults, parseFaults, type Faults } from "../src/SimulatorConfig.js"
import * as SimulatorStore from "../src/SimulatorStore.js"
import * as SimulatorWorld from "../src/SimulatorWorld.js"
import { bootstrapKit } from "../src/internal/bootstrapKit.js"

const worldLayer = (seed: number, faults: Partial<Faults> = {}) =>
  SimulatorWorld.layer({ speed: 1, seed, faults: { ...noFaults, ...faults } }).pipe(
    Layer.provide(Layer.succeed(SimulatorWorld.KubeconfigDelivery, { deliver: () => Effect.void })),
    Layer.provide(SimulatorStore.layerMemory())
  )

const cluster: SimulatorWorld.SimCluster = {
  regionKey: "fsn1",
  cloudRegion: "fsn1",
  primary: true,
  clusterName: "t1-mesh",
  clusterId: 7,
  loadBalancerIP: "198.51.100.1",
  bootAt: 0,
  kubeconfigDelivered: true,
  grants: [],
  meshPeers: []
}

const history = (seed: number, faults: Partial<Faults> = {}) =>
  Effect.map(SimulatorWorld.SimulatorWorld, (world) => timeline(world, "0123456789abcdef", cluster)).pipe(
    Effect.provide(worldLayer(seed, faults)),
    Effect.scoped
  )

describe("SimulatorConfig.parseFaults", () => {
  it("reads every fault, repeated keys included", () => {
    const faults = Either.getOrThrow(
      parseFaults("fail-chart=harbor, fail-chart=loki@nbg1,hang-chart=grafana,cloud-error-rate=0.25,kubeconfig-delay=20m,region-fail=hel1")
    )
    expect(faults.failCharts).toEqual(["harbor", "loki@nbg1"])
    expect(faults.hangCharts).toEqual(["grafana"])
    expect(faults.cloudErrorRate).toBe(0.25)
    expect(Duration.toMinutes(faults.kubeconfigDelay)).toBe(20)
    expect(faults.regionFail).toEqual(["hel1"])
    expect(Either.getOrThrow(parseFaults("kubeconfig-delay=never")).kubeconfigDelay).toEqual(Duration.infinity)
    const mesh = Either.getOrThrow(parseFaults("mesh-fault=hel1:90m,mesh-fault=nbg1"))
    expect(mesh.meshFaults.map((fault) => [fault.cloudRegion, Duration.toMinutes(fault.until)])).toEqual([
      ["hel1", 90],
      ["nbg1", Infinity]
    ])
    expect(Either.getOrThrow(parseFaults(""))).toEqual(noFaults)
  })

  it("refuses typos and out-of-range values with a message naming them", () => {
    for (const [text, fragment] of [
      ["fail-chrt=harbor", "fail-chrt"],
      ["cloud-error-rate=2", "0 to 1"],
      ["kubeconfig-delay=soon", "soon"],
      ["region-fail", "needs a value"],
      ["mesh-fault=hel1:soon", "soon"],
      ["mesh-fault=:5m", "cloud region"]
    ] as const) {
      const result = parseFaults(text)
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) expect(result.left.message).toContain(fragment)
    }
  })
})

describe("simulated cluster", () => {
  it.effect("is deterministic for a seed and differs across seeds", () =>
    Effect.gen(function* () {
      const a = yield* history(3)
      const b = yield* history(3)
      const c = yield* history(4)
      expect(JSON.stringify(a)).toBe(JSON.stringify(b))
      expect(JSON.stringify(a)).not.toBe(JSON.stringify(c))
    })
  )

  it.effect("converges the bootstrap kit in dependency order within 20 to 40 minutes at speed 1", () =>
    Effect.gen(function* () {
      for (const seed of [1, 2, 3, 4, 5]) {
        const entries = yield* history(seed)
        const readyAt = new Map(entries.map((entry) => [entry.release.name, entry.readyAt]))
        expect(entries).toHaveLength(bootstrapKit.length)
        for (const entry of entries) {
          for (const dependency of entry.release.dependsOn) expect(entry.readyAt).toBeGreaterThan(readyAt.get(dependency)!)
          const reasons = entry.moments.map((moment) => moment.conditions.find((c) => c.type === "Ready")?.reason)
          if (entry.release.dependsOn.length > 0) expect(reasons).toContain("DependencyNotReady")
          expect(reasons).toContain("Progressing")
        }
        const minutes = Math.max(...readyAt.values()) / 60_000
        expect(minutes).toBeGreaterThan(20)
        expect(minutes).toBeLessThan(40)
      }
    })
  )

  it.effect("a failing chart retries, then stalls; what depends on it never starts", () =>
    Effect.gen(function* () {
      const entries = yield* history(1, { failCharts: ["seaweedfs"] })
      const seaweed = entries.find((entry) => entry.release.name === "bp-seaweedfs")!
      const reasons = seaweed.moments.map((moment) => moment.conditions.find((c) => c.type === "Ready")?.reason)
      expect(reasons.filter((reason) => reason === "InstallFailed")).toHaveLength(2)
      const last = seaweed.moments[seaweed.moments.length - 1]!
      expect(last.conditions.some((c) => c.type === "Stalled" && c.status === "True")).toBe(true)
      expect(seaweed.readyAt).toBe(Number.POSITIVE_INFINITY)
      const harbor = entries.find((entry) => entry.release.name === "bp-harbor")!
      expect(harbor.readyAt).toBe(Number.POSITIVE_INFINITY)
      expect(harbor.moments.every((moment) => moment.conditions.every((c) => c.reason !== "Progressing"))).toBe(true)
    })
  )
})
