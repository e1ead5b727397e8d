/**
 * The ClusterAccess port over the Kubernetes API (SPEC 2.9): the owner's access object is a
 * ClusterRoleBinding of the owner (a User named by email) to a cluster role, created idempotently.
 */
import { createHash } from "node:crypto"
import { ClusterWatch } from "@sovereign/core"
import { Config, ConfigError, Duration, Effect, Layer, Schedule } from "effect"
import type { Redacted } from "effect"
import * as KubeClient from "./KubeClient.js"

export interface KubernetesClusterAccessOptions {
  /** When false, grantOwner does nothing (the cluster-side handover is configurable). Default true. */
  readonly enabled?: boolean
  /** The ClusterRole bound to the owner (default `cluster-admin`). */
  readonly clusterRole?: string
  /** Prefix of the binding's name (default `sovereign-owner-`). */
  readonly namePrefix?: string
  /** Deadline of each request (default 30 s). */
  readonly requestTimeout?: Duration.DurationInput
}

export const managedByLabel = "app.kubernetes.io/managed-by"
export const deploymentLabel = "sovereign.dev/deployment-id"

/** The binding's name: stable for one deployment, owner and role, so a repeated grant finds its own object. */
export const bindingName = (
  namePrefix: string,
  owner: { readonly email: string; readonly deploymentId: string },
  clusterRole: string
): string =>
  `${namePrefix}${createHash("sha256").update(`${owner.deploymentId}\n${owner.email.toLowerCase()}\n${clusterRole}`).digest("hex").slice(0, 16)}`

/** Label values allow `[A-Za-z0-9._-]` up to 63 characters. */
const labelValue = (value: string): string =>
  value
    .replace(/[^A-Za-z0-9._-]/g, "-")
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "")

export const make = (options: KubernetesClusterAccessOptions = {}): ClusterWatch.ClusterAccessService => {
  const enabled = options.enabled ?? true
  const clusterRole = options.clusterRole ?? "cluster-admin"
  const namePrefix = options.namePrefix ?? "sovereign-owner-"
  return {
    grantOwner: (kubeconfig: Redacted.Redacted<string>, owner) =>
      !enabled
        ? Effect.void
        : Effect.scoped(
            Effect.gen(function* () {
              const client = yield* KubeClient.make(
                kubeconfig,
                options.requestTimeout === undefined ? {} : { requestTimeout: options.requestTimeout }
              )
              const name = bindingName(namePrefix, owner, clusterRole)
              const body = {
                apiVersion: "rbac.authorization.k8s.io/v1",
                kind: "ClusterRoleBinding",
                metadata: {
                  name,
                  labels: { [managedByLabel]: "sovereign", [deploymentLabel]: labelValue(owner.deploymentId) },
                  annotations: { "sovereign.dev/owner": owner.email, "sovereign.dev/role": owner.role }
                },
                roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole },
                subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: owner.email }]
              }
              yield* client
                .request(`create ClusterRoleBinding ${name}`, (requestOptions) =>
                  client.rbac.createClusterRoleBinding({ body }, requestOptions)
                )
                .pipe(
                  Effect.asVoid,
                  Effect.catchIf(
                    (error) => error.reason === "AlreadyExists",
                    () => Effect.void
                  ),
                  Effect.retry({
                    while: (error) => error.isRetryable,
                    schedule: Schedule.exponential(Duration.millis(200)).pipe(Schedule.intersect(Schedule.recurs(3)))
                  }),
                  Effect.mapError(KubeClient.toClusterError)
                )
            })
          )
  }
}

export const layer = (options: KubernetesClusterAccessOptions = {}): Layer.Layer<ClusterWatch.ClusterAccess> =>
  Layer.succeed(ClusterWatch.ClusterAccess, make(options))

export const config: Config.Config<KubernetesClusterAccessOptions> = Config.all({
  enabled: Config.boolean("SOVEREIGN_HANDOVER_CLUSTER_ACCESS").pipe(Config.withDefault(true)),
  clusterRole: Config.string("SOVEREIGN_HANDOVER_CLUSTER_ROLE").pipe(Config.withDefault("cluster-admin"))
})

export const layerConfig = (
  settings: Config.Config<KubernetesClusterAccessOptions> = config
): Layer.Layer<ClusterWatch.ClusterAccess, ConfigError.ConfigError> => Layer.effect(ClusterWatch.ClusterAccess, Effect.map(settings, make))
