/** @sovereign/adapter-simulator: a realistic, deterministic, fault-injectable world implementing every port of Sovereign. */
export * as Simulator from "./Simulator.js"
export * as SimulatorCloud from "./SimulatorCloud.js"
export * as SimulatorCluster from "./SimulatorCluster.js"
export * as SimulatorConfig from "./SimulatorConfig.js"
export * as SimulatorDns from "./SimulatorDns.js"
export * as SimulatorMesh from "./SimulatorMesh.js"
export * as SimulatorStore from "./SimulatorStore.js"
export * as SimulatorWorld from "./SimulatorWorld.js"
