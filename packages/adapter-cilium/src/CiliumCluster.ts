/** The few Kubernetes operations ClusterMesh needs in one region's `kube-system`, as a small service. */
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

export type WorkloadKind = "DaemonSet" | "Deployment"

/** One region's cluster, namespace `kube-system`. Absent objects are `None`; everything else is a MeshError. */
export interface CiliumCluster {
  readonly service: (name: string) => Effect.Effect<Option.Option<ApiserverService>, MeshError>
  readonly secret: (name: string) => Effect.Effect<Option.Option<SecretData>, MeshError>
  readonly configMap: (name: string) => Effect.Effect<Option.Option<Readonly<Record<string, string>>>, MeshError>
  /** Creates a Secret; `false` when one already exists (someone else won the race). */
  readonly createSecret: (
    name: string,
    secret: { readonly type: string; readonly data: SecretData; readonly labels: Readonly<Record<string, string>> }
  ) => Effect.Effect<boolean, MeshError>
  /** Stores exactly these keys' values (a merge patch of `data`; other keys stay). */
  readonly patchSecretData: (name: string, data: SecretData) => Effect.Effect<void, MeshError>
  /** The DaemonSet's pod-template hostAliases; `None` when the DaemonSet is absent. */
  readonly hostAliases: (daemonSet: string) => Effect.Effect<Option.Option<ReadonlyArray<MeshPlan.HostAlias>>, MeshError>
  /** Replaces the whole hostAliases list (never merged by `ip`). */
  readonly replaceHostAliases: (daemonSet: string, aliases: ReadonlyArray<MeshPlan.HostAlias>) => Effect.Effect<void, MeshError>
  /** Sets the pod-template restart annotation; `false` when the workload does not exist. */
  readonly restart: (kind: WorkloadKind, name: string, annotation: string, at: string) => Effect.Effect<boolean, MeshError>
}

/** Opens the cluster a kubeconfig points at; the connection lives as long as the scope. */
export interface CiliumClustersService {
  readonly connect: (kubeconfig: Redacted.Redacted<string>) => Effect.Effect<CiliumCluster, MeshError, Scope.Scope>
}

export class CiliumClusters extends Context.Tag("@sovereign/adapter-cilium/CiliumClusters")<
  CiliumClusters,
  CiliumClustersService
>() {}
