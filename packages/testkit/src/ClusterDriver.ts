/**
 * How the ClusterWatch suite makes things happen in the cluster under the adapter: the driver port,
 * and a driver for the testkit's fake Kubernetes API server.
 */
import { Context, Effect, Layer, Option, Redacted } from "effect"
import * as FakeKubernetesApi from "./FakeKubernetesApi.js"

/** The desired state of one HelmRelease, as Flux's helm-controller would leave it. */
export interface ReleaseState {
  /** The Ready condition; absent = no Ready condition yet. */
  readonly ready?: { readonly status: "True" | "False" | "Unknown"; readonly reason: string; readonly message?: string }
  /** Adds `Stalled=True` (reason RetriesExceeded). */
  readonly stalled?: boolean
  readonly suspend?: boolean
  readonly dependsOn?: ReadonlyArray<string>
}

/** Fault operations; a driver that cannot inject faults leaves them out (the suite then says so). */
export interface ClusterFaults {
  /** Expire the watch history and end open watches with `410 Gone` (or the world's equivalent). */
  readonly forceGone: Effect.Effect<void>
  /** Cut every open connection without a goodbye. */
  readonly dropConnections: Effect.Effect<void>
  /** While silent, open watches deliver nothing (a hung watch); only a re-list can see changes. */
  readonly silenceWatches: (silent: boolean) => Effect.Effect<void>
}

export interface ClusterDriverService {
  /** What the adapter is given to reach the cluster. */
  readonly kubeconfig: Redacted.Redacted<string>
  /** The namespace the releases live in. */
  readonly namespace: string
  /** Creates or updates a release so that the next observation shows `state`. */
  readonly apply: (name: string, state: ReleaseState) => Effect.Effect<void>
  readonly remove: (name: string) => Effect.Effect<void>
  readonly faults: ClusterFaults | undefined
}

export class ClusterDriver extends Context.Tag("@sovereign/testkit/ClusterDriver")<ClusterDriver, ClusterDriverService>() {}

// ---------------------------------------------------------------------------------------------
// A driver for the testkit's fake Kubernetes API server

export const helmReleaseObject = (
  namespace: string,
  name: string,
  state: ReleaseState,
  generation: number
): FakeKubernetesApi.KubeObject => ({
  apiVersion: "helm.toolkit.fluxcd.io/v2",
  kind: "HelmRelease",
  metadata: { name, namespace, generation },
  spec: {
    interval: "10m",
    chart: { spec: { chart: name, sourceRef: { kind: "HelmRepository", name: "bootstrap" } } },
    suspend: state.suspend ?? false,
    dependsOn: (state.dependsOn ?? []).map((dependency) => ({ name: dependency }))
  },
  status: {
    observedGeneration: generation,
    conditions: [
      ...(state.ready === undefined
        ? []
        : [
            {
              type: "Ready",
              status: state.ready.status,
              reason: state.ready.reason,
              message: state.ready.message ?? "",
              lastTransitionTime: "2026-01-01T00:00:00Z"
            }
          ]),
      ...(state.stalled === true
        ? [{ type: "Stalled", status: "True", reason: "RetriesExceeded", message: "", lastTransitionTime: "2026-01-01T00:00:00Z" }]
        : [])
    ]
  }
})

/** Drives HelmReleases in a FakeKubernetesApi (status written as helm-controller would, generation kept observed). */
export const fakeKubernetesDriver = (fake: FakeKubernetesApi.FakeKubernetesApi, namespace = "flux-system"): ClusterDriverService => {
  const ref = (name: string) => ({ apiVersion: "helm.toolkit.fluxcd.io/v2", kind: "HelmRelease", namespace, name })
  return {
    kubeconfig: Redacted.make(fake.kubeconfig),
    namespace,
    apply: (name, state) =>
      Effect.gen(function* () {
        const existing = yield* fake.get(ref(name))
        const candidate = helmReleaseObject(namespace, name, state, 1)
        const generation = Option.match(existing, {
          onNone: () => 1,
          onSome: (object) =>
            (object.metadata.generation ?? 1) + (JSON.stringify(object["spec"]) === JSON.stringify(candidate["spec"]) ? 0 : 1)
        })
        yield* fake.put(helmReleaseObject(namespace, name, state, generation))
      }),
    remove: (name) => Effect.asVoid(fake.remove(ref(name))),
    faults: { forceGone: fake.forceGone, dropConnections: fake.dropConnections, silenceWatches: fake.silenceWatches }
  }
}

/** A ClusterDriver layer backed by a fresh FakeKubernetesApi (stopped with the layer). */
export const fakeKubernetesDriverLayer = (options: FakeKubernetesApi.FakeKubernetesApiOptions = {}): Layer.Layer<ClusterDriver> =>
  Layer.scoped(
    ClusterDriver,
    Effect.map(FakeKubernetesApi.make(options), (fake) => fakeKubernetesDriver(fake))
  )
