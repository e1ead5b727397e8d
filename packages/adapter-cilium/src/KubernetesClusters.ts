/** `CiliumClusters` over adapter-kubernetes' verified client: reads, merge patches, Status errors mapped at the edge. */
import { MeshPlan, MeshProvider } from "@sovereign/core"
import type { ClusterWatch } from "@sovereign/core"
import * as KubeClient from "@sovereign/adapter-kubernetes/KubeClient"
import { Effect, Layer, Option, Schema } from "effect"
import type { ApiserverService, CiliumCluster, HelmReleaseState, StoredSecret, WorkloadKind, WorkloadSpec } from "./CiliumCluster.js"
import { CiliumClusters } from "./CiliumCluster.js"
import * as CiliumSchema from "./CiliumSchema.js"

const namespace = MeshPlan.namespace
const mergePatch = "application/merge-patch+json"
/** The annotation `flux reconcile` sets; helm-controller reconciles when it differs from `status.lastHandledReconcileAt`. */
export const requestedAtAnnotation = "reconcile.fluxcd.io/requestedAt"

type RequestOptions = Parameters<Parameters<KubeClient.KubeClient["request"]>[1]>[0]

/**
 * The client's patch calls default to JSON Patch; every patch here is a JSON merge patch, so the
 * Content-Type is set in front of the verified transport middleware the client hands us.
 */
const asMergePatch = (options: RequestOptions): RequestOptions => {
  const [first, ...rest] = options.middleware ?? []
  if (first === undefined) return options
  return {
    ...options,
    middleware: [
      {
        pre: (context) => {
          context.setHeaderParam("Content-Type", mergePatch)
          return first.pre(context)
        },
        post: (response) => first.post(response)
      },
      ...rest
    ]
  }
}

/** The port's error for a client error; messages are the client's own classified text (no kubeconfig, no bodies). */
export const fromKubeError = (error: KubeClient.KubeError): MeshProvider.MeshError =>
  new MeshProvider.MeshError({
    reason:
      error.reason === "Unreachable" || error.reason === "Timeout" || error.reason === "ServerError" || error.reason === "Conflict"
        ? "Unreachable"
        : error.reason === "Untrusted" || error.reason === "Unauthorized" || error.reason === "Forbidden"
          ? "Forbidden"
          : error.reason === "Unknown"
            ? "Unknown"
            : "Invalid",
    message: error.message
  })

export const fromClusterError = (error: ClusterWatch.ClusterError): MeshProvider.MeshError =>
  new MeshProvider.MeshError({
    reason:
      error.reason === "Unreachable"
        ? "Unreachable"
        : error.reason === "Unknown"
          ? "Unknown"
          : error.reason === "InvalidKubeconfig"
            ? "Invalid"
            : "Forbidden",
    message: error.message
  })

const decode = <A, I>(schema: Schema.Schema<A, I>, what: string, value: unknown) =>
  Schema.decodeUnknown(schema)(value).pipe(
    Effect.mapError((error) => new MeshProvider.MeshError({ reason: "Invalid", message: `${what}: unexpected object (${error.message})` }))
  )

const fromBase64 = (data: Readonly<Record<string, string>> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(data ?? {}).map(([key, value]) => [key, Buffer.from(value, "base64").toString("utf8")]))

const toBase64 = (data: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, "utf8").toString("base64")]))

/** The operations ClusterMesh needs in kube-system of one cluster. */
export const fromClient = (client: KubeClient.KubeClient): CiliumCluster => {
  const call = <A>(operation: string, run: (options: RequestOptions) => Promise<A>) =>
    Effect.mapError(client.request(operation, run), fromKubeError)

  /** A read that maps NotFound to None. */
  const read = <A>(operation: string, run: (options: RequestOptions) => Promise<A>) =>
    client.request(operation, run).pipe(
      Effect.map(Option.some),
      Effect.catchIf(
        (error) => error.reason === "NotFound",
        () => Effect.succeed(Option.none<A>())
      ),
      Effect.mapError(fromKubeError)
    )

  const decoded = <A, I, B>(found: Option.Option<B>, schema: Schema.Schema<A, I>, what: string) =>
    Option.match(found, {
      onNone: () => Effect.succeed(Option.none<A>()),
      onSome: (object) => Effect.map(decode(schema, what, object), Option.some)
    })

  const patchWorkload = (kind: WorkloadKind, name: string, body: unknown): Effect.Effect<void, KubeClient.KubeError> => {
    const operation = `PATCH ${kind} ${namespace}/${name}`
    return kind === "DaemonSet"
      ? Effect.asVoid(
          client.request(operation, (options) => client.apps.patchNamespacedDaemonSet({ name, namespace, body }, asMergePatch(options)))
        )
      : Effect.asVoid(
          client.request(operation, (options) => client.apps.patchNamespacedDeployment({ name, namespace, body }, asMergePatch(options)))
        )
  }

  const helmReleases = { group: "helm.toolkit.fluxcd.io", version: "v2", plural: "helmreleases" } as const

  return {
    service: (name) =>
      read(`GET Service ${namespace}/${name}`, (options) => client.core.readNamespacedService({ name, namespace }, options)).pipe(
        Effect.flatMap((found) => decoded(found, CiliumSchema.Service, `Service ${namespace}/${name}`)),
        Effect.map(
          Option.map((service): ApiserverService => {
            const ports = service.spec?.ports ?? []
            const ingress = service.status?.loadBalancer?.ingress ?? []
            return {
              type: service.spec?.type ?? "ClusterIP",
              loadBalancerIP: ingress.find((entry) => entry.ip !== undefined && entry.ip !== "")?.ip,
              port: ports[0]?.port ?? MeshPlan.defaultApiserverPort
            }
          })
        )
      ),
    secret: (name, inNamespace = namespace) =>
      read(`GET Secret ${inNamespace}/${name}`, (options) =>
        client.core.readNamespacedSecret({ name, namespace: inNamespace }, options)
      ).pipe(
        Effect.flatMap((found) => decoded(found, CiliumSchema.Secret, `Secret ${inNamespace}/${name}`)),
        Effect.map(
          Option.map((secret): StoredSecret => ({
            data: fromBase64(secret.data),
            labels: { ...secret.metadata?.labels },
            annotations: { ...secret.metadata?.annotations }
          }))
        )
      ),
    configMap: (name, inNamespace = namespace) =>
      read(`GET ConfigMap ${inNamespace}/${name}`, (options) =>
        client.core.readNamespacedConfigMap({ name, namespace: inNamespace }, options)
      ).pipe(
        Effect.flatMap((found) => decoded(found, CiliumSchema.ConfigMap, `ConfigMap ${inNamespace}/${name}`)),
        Effect.map(Option.map((configMap) => ({ ...configMap.data })))
      ),
    createSecret: (name, secret, inNamespace = namespace) =>
      client
        .request(`POST Secret ${inNamespace}/${name}`, (options) =>
          client.core.createNamespacedSecret(
            {
              namespace: inNamespace,
              body: {
                apiVersion: "v1",
                kind: "Secret",
                metadata: { name, namespace: inNamespace, labels: { ...secret.labels } },
                type: secret.type,
                data: toBase64(secret.data)
              }
            },
            options
          )
        )
        .pipe(
          Effect.as(true),
          Effect.catchIf(
            (error) => error.reason === "AlreadyExists",
            () => Effect.succeed(false)
          ),
          Effect.mapError(fromKubeError)
        ),
    patchSecretData: (name, patch, inNamespace = namespace) =>
      Effect.asVoid(
        call(`PATCH Secret ${inNamespace}/${name}`, (options) =>
          client.core.patchNamespacedSecret(
            {
              name,
              namespace: inNamespace,
              body: {
                data: Object.fromEntries(
                  Object.entries(patch).map(([key, value]) => [key, value === null ? null : Buffer.from(value, "utf8").toString("base64")])
                )
              }
            },
            asMergePatch(options)
          )
        )
      ),
    workload: (kind, name) =>
      read(`GET ${kind} ${namespace}/${name}`, (options) =>
        kind === "DaemonSet"
          ? client.apps.readNamespacedDaemonSet({ name, namespace }, options).then((found): unknown => found)
          : client.apps.readNamespacedDeployment({ name, namespace }, options).then((found): unknown => found)
      ).pipe(
        Effect.flatMap((found) => decoded(found, CiliumSchema.Workload, `${kind} ${namespace}/${name}`)),
        Effect.map(
          Option.map((found): WorkloadSpec => {
            const pod = found.spec?.template?.spec
            return {
              containers: (pod?.containers ?? []).map((container) => ({ name: container.name, image: container.image })),
              hostAliases: (pod?.hostAliases ?? []).map((alias) => ({ ip: alias.ip ?? "", hostnames: alias.hostnames ?? [] }))
            }
          })
        )
      ),
    // A JSON merge patch replaces the whole list, so a changed peer IP can never leave its old entry
    // behind (a strategic merge keyed by `ip` would add one and never converge).
    replaceHostAliases: (kind, name, aliases) =>
      Effect.mapError(
        patchWorkload(kind, name, {
          spec: {
            template: {
              spec: {
                hostAliases: aliases.length === 0 ? null : aliases.map((alias) => ({ ip: alias.ip, hostnames: [...alias.hostnames] }))
              }
            }
          }
        }),
        fromKubeError
      ),
    helmRelease: (inNamespace, name) =>
      read(`GET HelmRelease ${inNamespace}/${name}`, (options) =>
        client.custom.getNamespacedCustomObject({ ...helmReleases, namespace: inNamespace, name }, options).then((found): unknown => found)
      ).pipe(
        Effect.flatMap((found) => decoded(found, CiliumSchema.HelmRelease, `HelmRelease ${inNamespace}/${name}`)),
        Effect.map(
          Option.map((release): HelmReleaseState => {
            const ready = release.status?.conditions?.find((condition) => condition.type === "Ready")
            return {
              generation: release.metadata.generation ?? 1,
              values: release.spec?.values,
              valuesFrom: release.spec?.valuesFrom ?? [],
              requestedAt: release.metadata.annotations?.[requestedAtAnnotation],
              observedGeneration: release.status?.observedGeneration,
              lastHandledReconcileAt: release.status?.lastHandledReconcileAt,
              ready: ready === undefined ? undefined : { status: ready.status, reason: ready.reason, message: ready.message }
            }
          })
        )
      ),
    patchHelmRelease: (inNamespace, name, patch) =>
      Effect.asVoid(
        call(`PATCH HelmRelease ${inNamespace}/${name}`, (options) =>
          client.custom.patchNamespacedCustomObject(
            {
              ...helmReleases,
              namespace: inNamespace,
              name,
              body: {
                ...(patch.requestedAt === undefined ? {} : { metadata: { annotations: { [requestedAtAnnotation]: patch.requestedAt } } }),
                ...(patch.valuesFrom === undefined ? {} : { spec: { valuesFrom: patch.valuesFrom } })
              }
            },
            asMergePatch(options)
          )
        )
      )
  }
}

/** Clusters reached through kubeconfigs with adapter-kubernetes' verified client. */
export const layer = (options: KubeClient.KubeClientOptions = {}): Layer.Layer<CiliumClusters> =>
  Layer.succeed(CiliumClusters, {
    connect: (kubeconfig) => KubeClient.make(kubeconfig, options).pipe(Effect.mapError(fromClusterError), Effect.map(fromClient))
  })
