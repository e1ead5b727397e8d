/** The whole simulated world as layers: every port Sovereign needs from the outside, over one store. */
import type { CloudProvider } from "@sovereign/core/CloudProvider"
import type { ClusterAccess, ClusterWatch } from "@sovereign/core/ClusterWatch"
import type { DnsProvider } from "@sovereign/core/DnsProvider"
import { Kubeconfigs } from "@sovereign/core/Kubeconfigs"
import type { MeshProvider } from "@sovereign/core/MeshProvider"
import { Clock, Effect, Layer } from "effect"
import * as SimulatorCloud from "./SimulatorCloud.js"
import * as SimulatorCluster from "./SimulatorCluster.js"
import { defaultOptions, type SimulatorOptions } from "./SimulatorConfig.js"
import * as SimulatorDns from "./SimulatorDns.js"
import * as SimulatorMesh from "./SimulatorMesh.js"
import type { SimulatorStore } from "./SimulatorStore.js"
import * as SimulatorWorld from "./SimulatorWorld.js"

export type Ports =
  | CloudProvider
  | ClusterWatch
  | ClusterAccess
  | DnsProvider
  | MeshProvider
  | SimulatorWorld.SimulatorWorld
  | SimulatorCluster.DrivenReleases

export interface LayerOptions extends Partial<SimulatorOptions> {
  /** DNS zones that exist from the start (parent domains of simulated deployments are added as they come). */
  readonly zones?: ReadonlyArray<string>
}

/** Every simulated port over a store (`SimulatorStore`) and a call-back channel (`KubeconfigDelivery`). */
export const layer = (options: LayerOptions = {}): Layer.Layer<Ports, never, SimulatorStore | SimulatorWorld.KubeconfigDelivery> => {
  const resolved: SimulatorOptions = {
    speed: options.speed ?? defaultOptions.speed,
    seed: options.seed ?? defaultOptions.seed,
    faults: options.faults ?? defaultOptions.faults
  }
  const ports = Layer.mergeAll(
    SimulatorCloud.layer,
    SimulatorCluster.layer,
    SimulatorDns.layer(options.zones === undefined ? {} : { zones: options.zones }),
    SimulatorMesh.layer
  )
  return Layer.provideMerge(ports, SimulatorWorld.layer(resolved))
}

/** Call-backs delivered straight into a `Kubeconfigs` store (tests, embedding without HTTP). A repeat is not an error. */
export const deliverToKubeconfigs: Layer.Layer<SimulatorWorld.KubeconfigDelivery, never, Kubeconfigs> = Layer.effect(
  SimulatorWorld.KubeconfigDelivery,
  Effect.map(Kubeconfigs, (kubeconfigs) => ({
    deliver: (delivery) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        kubeconfigs.put(delivery.deploymentId, delivery.regionKey, delivery.kubeconfig, now).pipe(
          Effect.catchIf(
            (error) => error.reason === "AlreadySet",
            () => Effect.void
          )
        )
      )
  }))
)
