/** The few Kubernetes operations ClusterMesh needs in one region (`kube-system` and the Cilium HelmRelease), as a small service. */
import type { MeshPlan } from "@sovereign/core"
import type { MeshError } from "@sovereign/core/MeshProvider"
import { Context } from "effect"
import type { Effect, Option, Redacted, Scope } from "effect"

export interface ApiserverService {
  readonly type: string
  /** The first `status.loadBalancer.ingress[]` entry with an `ip`. */
  readonly loadBalancerIP: string | undefined
  readonly port: number
}

/** Secret data decoded to text (PEM and YAML are ASCII). */
export type SecretData = Readonly<Record<string, string>>

export interface StoredSecret {
  readonly data: SecretData
  readonly labels: Readonly<Record<string, string>>
  readonly annotations: Readonly<Record<string, string>>
}

export type WorkloadKind = MeshPlan.WorkloadKind

/** What the mesh reads of a DaemonSet's or Deployment's pod template. */
export interface WorkloadSpec {
  readonly containers: ReadonlyArray<{ readonly name: string; readonly image: string | undefined }>
  readonly hostAliases: ReadonlyArray<MeshPlan.HostAlias>
}

/** One `spec.valuesFrom[]` entry of a HelmRelease, as stored (unknown fields kept, so a rewrite loses nothing). */
export type ValuesReference = Readonly<Record<string, unknown>>

/** What the mesh reads of a Flux HelmRelease. */
export interface HelmReleaseState {
  readonly generation: number
  /** `spec.values`, as stored. */
  readonly values: unknown
  readonly valuesFrom: ReadonlyArray<ValuesReference>
  /** `metadata.annotations["reconcile.fluxcd.io/requestedAt"]`. */
  readonly requestedAt: string | undefined
  readonly observedGeneration: number | undefined
  readonly lastHandledReconcileAt: string | undefined
  /** The `Ready` condition, when the controller has set one. */
  readonly ready: { readonly status: string; readonly reason: string | undefined; readonly message: string | undefined } | undefined
}

/** One region's cluster. Absent objects are `None`; everything else is a MeshError. Namespaces default to `kube-system`. */
export interface CiliumCluster {
  readonly service: (name: string) => Effect.Effect<Option.Option<ApiserverService>, MeshError>
  readonly secret: (name: string, namespace?: string) => Effect.Effect<Option.Option<StoredSecret>, MeshError>
  readonly configMap: (name: string, namespace?: string) => Effect.Effect<Option.Option<Readonly<Record<string, string>>>, MeshError>
  /** Creates a Secret; `false` when one already exists (someone else won the race). */
  readonly createSecret: (
    name: string,
    secret: { readonly type: string; readonly data: SecretData; readonly labels: Readonly<Record<string, string>> },
    namespace?: string
  ) => Effect.Effect<boolean, MeshError>
  /** A JSON merge patch of `data`: the given keys are set, `null` ones removed, other keys stay. */
  readonly patchSecretData: (
    name: string,
    patch: Readonly<Record<string, string | null>>,
    namespace?: string
  ) => Effect.Effect<void, MeshError>
  readonly workload: (kind: WorkloadKind, name: string) => Effect.Effect<Option.Option<WorkloadSpec>, MeshError>
  /** Replaces the pod template's whole hostAliases list (never merged by `ip`); a rollout follows. */
  readonly replaceHostAliases: (
    kind: WorkloadKind,
    name: string,
    aliases: ReadonlyArray<MeshPlan.HostAlias>
  ) => Effect.Effect<void, MeshError>
  readonly helmRelease: (namespace: string, name: string) => Effect.Effect<Option.Option<HelmReleaseState>, MeshError>
  /** Sets `spec.valuesFrom` (the whole list) and/or asks Flux to reconcile now (`reconcile.fluxcd.io/requestedAt`). */
  readonly patchHelmRelease: (
    namespace: string,
    name: string,
    patch: { readonly valuesFrom?: ReadonlyArray<ValuesReference>; readonly requestedAt?: string }
  ) => Effect.Effect<void, MeshError>
}

/** Opens the cluster a kubeconfig points at; the connection lives as long as the scope. */
export interface CiliumClustersService {
  readonly connect: (kubeconfig: Redacted.Redacted<string>) => Effect.Effect<CiliumCluster, MeshError, Scope.Scope>
}

export class CiliumClusters extends Context.Tag("@sovereign/adapter-cilium/CiliumClusters")<CiliumClusters, CiliumClustersService>() {}
