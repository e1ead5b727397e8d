/** The simulator passes every conformance suite it can be driven by (it is their reference implementation). */
import { CloudProviderSuite, ClusterWatchSuite, DnsProviderSuite, MeshProviderSuite } from "@sovereign/testkit"
import { Effect, Layer } from "effect"
import * as Simulator from "../src/Simulator.js"
import { drivenCluster } from "../src/SimulatorCluster.js"
import { observeCluster, reconcileRelease, seedCluster } from "../src/SimulatorMesh.js"
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

CloudProviderSuite.suite(
  "simulator",
  Layer.provideMerge(
    inspector,
    Layer.suspend(() => world())
  ),
  {
    regions: [
      { provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx32", workerSize: "cpx42", workerCount: 1 },
      { provider: "aws", cloudRegion: "eu-central-1", controlPlaneSize: "m6i.large", workerCount: 0 }
    ]
  }
)

DnsProviderSuite.suite("simulator", world(["conformance.test."]), { zone: "conformance.test." })

// The suite drives a simulated cluster whose releases it writes itself (no bootstrap kit runs in it).
const driver = Layer.effect(ClusterWatchSuite.ClusterDriver, drivenCluster("00000000c0ffee00"))
ClusterWatchSuite.suite("simulator", Layer.provideMerge(driver, world()), { faults: true })

// The mesh suite seeds each region's cluster objects (its Cilium, Service, certificates, cilium-config) and observes what its components see.
const meshDeployment = "0123456789abcdef"
const meshWorld = Layer.effect(
  MeshProviderSuite.MeshWorld,
  Effect.map(SimulatorWorld, (simulated) => ({
    seed: (region, seed) => seedCluster(meshDeployment, region, seed).pipe(Effect.provideService(SimulatorWorld, simulated)),
    observe: (regionKey) => observeCluster(meshDeployment, regionKey).pipe(Effect.provideService(SimulatorWorld, simulated)),
    reconcile: (regionKey) => reconcileRelease(meshDeployment, regionKey).pipe(Effect.provideService(SimulatorWorld, simulated))
  }))
)
MeshProviderSuite.suite(
  "simulator",
  Layer.provideMerge(
    meshWorld,
    Layer.suspend(() => world())
  ),
  { mintsRemoteCertificates: false }
)
