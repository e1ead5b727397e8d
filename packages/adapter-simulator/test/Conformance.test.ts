/** The simulator passes every conformance suite it can be driven by (it is their reference implementation). */
import { CloudProviderSuite, ClusterWatchSuite, DnsProviderSuite } from "@sovereign/testkit"
import { Effect, Layer } from "effect"
import * as Simulator from "../src/Simulator.js"
import { drivenCluster } from "../src/SimulatorCluster.js"
import { noFaults } from "../src/SimulatorConfig.js"
import * as SimulatorStore from "../src/SimulatorStore.js"
import { KubeconfigDelivery, SimulatorWorld } from "../src/SimulatorWorld.js"

/** A fresh world per use, fast enough for the suites' live clock (minutes become milliseconds). */
const world = (zones: ReadonlyArray<string> = []) =>
  Simulator.layer({ speed: 100_000, seed: 11, faults: noFaults, zones }).pipe(
    Layer.provide(Layer.succeed(KubeconfigDelivery, { deliver: () => Effect.void })),
    Layer.provide(Layer.suspend(() => SimulatorStore.layerMemory()))
  )

const inspector = Layer.effect(
  CloudProviderSuite.CloudInspector,
  Effect.map(SimulatorWorld, (simulated) => ({ resources: Effect.orDie(simulated.allResources) }))
)

CloudProviderSuite.run({
  name: "simulator",
  layer: Layer.provideMerge(inspector, Layer.suspend(() => world())),
  regions: [
    { provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx32", workerSize: "cpx42", workerCount: 1 },
    { provider: "aws", cloudRegion: "eu-central-1", controlPlaneSize: "m6i.large", workerCount: 0 }
  ]
})

DnsProviderSuite.run("simulator", { layer: world(["conformance.test."]), zone: "conformance.test." })

// The suite drives a simulated cluster whose releases it writes itself (no bootstrap kit runs in it).
const driver = Layer.effect(
  ClusterWatchSuite.ClusterDriver,
  Effect.map(drivenCluster("00000000c0ffee00"), (cluster) => ({ ...cluster, faults: undefined }))
)
ClusterWatchSuite.run("simulator", { layer: Layer.provideMerge(driver, world()), faults: false })
