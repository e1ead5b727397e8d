/** The mesh port over Cilium ClusterMesh: read every region, plan, write only what differs, restart only on change (SPEC 2.8). */
import { MeshPlan, MeshProvider } from "@sovereign/core"
import type { Deployment } from "@sovereign/core"
import { Clock, DateTime, Effect, Either, Layer, Option } from "effect"
import type { Config, ConfigError, Duration } from "effect"
import * as Certificates from "./Certificates.js"
import { CiliumClusters } from "./CiliumCluster.js"
import type { CiliumCluster, WorkloadKind } from "./CiliumCluster.js"
import * as KubernetesClusters from "./KubernetesClusters.js"

export interface CiliumMeshOptions {
  /** Deadline of every Kubernetes API request (default 30 s). */
  readonly requestTimeout?: Duration.DurationInput
  /** Pod-template annotation whose change rolls a workload (default: the one `kubectl rollout restart` sets). */
  readonly restartAnnotation?: string
  /** Regions read and written at once (default 4). */
  readonly concurrency?: number
}

export const objectNames = {
  service: "clustermesh-apiserver",
  ca: "cilium-ca",
  config: "cilium-config",
  remoteCert: "clustermesh-apiserver-remote-cert",
  secret: MeshPlan.secretName,
  daemonSet: "cilium"
} as const

/** Restarted after a write so agents, operator and apiserver pick up peers and aliases. */
export const restartTargets: ReadonlyArray<{ readonly kind: WorkloadKind; readonly name: string }> = [
  { kind: "DaemonSet", name: "cilium" },
  { kind: "Deployment", name: "cilium-operator" },
  { kind: "Deployment", name: "clustermesh-apiserver" }
]

export const secretLabels = {
  "app.kubernetes.io/name": MeshPlan.secretName,
  "app.kubernetes.io/managed-by": "sovereign"
} as const

const defaultRestartAnnotation = "kubectl.kubernetes.io/restartedAt"

interface RegionRead {
  readonly input: MeshPlan.MeshRegionInput
  readonly cluster: CiliumCluster | undefined
}

const unreachable = (region: Deployment.Region, reason: string): MeshPlan.MeshRegionInput => ({
  regionKey: region.key,
  clusterName: region.clusterName,
  clusterId: region.clusterId,
  serviceType: undefined,
  loadBalancerIP: undefined,
  apiserverPort: MeshPlan.defaultApiserverPort,
  caCert: undefined,
  caKey: undefined,
  remoteCert: undefined,
  remoteKey: undefined,
  configuredClusterName: undefined,
  configuredClusterId: undefined,
  unreachable: reason
})

const parseClusterId = (value: string | undefined): number | undefined =>
  value !== undefined && /^\s*\d+\s*$/.test(value) ? Number(value) : undefined

/**
 * The region's client certificate for its peers: the chart-made `clustermesh-apiserver-remote-cert`
 * when present (checked against the region's CA), else one minted with CN=remote by the region's
 * own CA and stored under that name so every later pass hands out the same certificate.
 */
const remoteCertificate = (
  cluster: CiliumCluster,
  caCert: string | undefined,
  caKey: string | undefined,
  stored: Option.Option<Readonly<Record<string, string>>>,
  now: number
): Effect.Effect<{ readonly cert?: string; readonly key?: string; readonly error?: string }, MeshProvider.MeshError> =>
  Effect.gen(function* () {
    const existing = Option.flatMap(stored, (data) =>
      data["tls.crt"] !== undefined && data["tls.key"] !== undefined ? Option.some({ cert: data["tls.crt"], key: data["tls.key"] }) : Option.none()
    )
    if (Option.isSome(existing)) {
      const problem = caCert === undefined ? undefined : Certificates.checkRemote(existing.value, caCert, now)
      return problem === undefined ? existing.value : { error: problem }
    }
    if (caCert === undefined) return {}
    if (caKey === undefined) return { error: `${objectNames.remoteCert} is absent and ${objectNames.ca} has no key to mint one` }
    const authorityProblem = Certificates.checkAuthority({ cert: caCert, key: caKey })
    if (authorityProblem !== undefined) return { error: authorityProblem }
    const minted = Certificates.mintRemote({ cert: caCert, key: caKey }, now)
    if (Either.isLeft(minted)) return { error: minted.left }
    const created = yield* cluster.createSecret(objectNames.remoteCert, {
      type: "kubernetes.io/tls",
      data: { "tls.crt": minted.right.cert, "tls.key": minted.right.key, "ca.crt": caCert },
      labels: { "app.kubernetes.io/managed-by": "sovereign" }
    })
    if (created) {
      yield* Effect.logInfo("minted a CN=remote client certificate signed by the region's cilium-ca")
      return minted.right
    }
    // The Secret exists after all (stored meanwhile, or without tls.crt/tls.key): use what it holds,
    // so every pass agrees on one certificate, and never overwrite it.
    const raced = yield* cluster.secret(objectNames.remoteCert)
    const usable = Option.flatMap(raced, (data) =>
      data["tls.crt"] !== undefined && data["tls.key"] !== undefined ? Option.some({ cert: data["tls.crt"], key: data["tls.key"] }) : Option.none()
    )
    if (Option.isNone(usable)) return { error: `${objectNames.remoteCert} exists but holds no tls.crt and tls.key` }
    const problem = Certificates.checkRemote(usable.value, caCert, now)
    return problem === undefined ? usable.value : { error: problem }
  })

const readRegion = (cluster: CiliumCluster, region: Deployment.Region, now: number) =>
  Effect.gen(function* () {
    const [service, ca, config, stored] = yield* Effect.all(
      [
        cluster.service(objectNames.service),
        cluster.secret(objectNames.ca),
        cluster.configMap(objectNames.config),
        cluster.secret(objectNames.remoteCert)
      ],
      { concurrency: "unbounded" }
    )
    const caData = Option.getOrElse(ca, () => ({}) as Readonly<Record<string, string>>)
    const caCert = caData["ca.crt"] ?? caData["tls.crt"]
    const caKey = caData["ca.key"] ?? caData["tls.key"]
    const remote = yield* remoteCertificate(cluster, caCert, caKey, stored, now)
    const configData = Option.getOrUndefined(config)
    const input: MeshPlan.MeshRegionInput = {
      regionKey: region.key,
      clusterName: region.clusterName,
      clusterId: region.clusterId,
      serviceType: Option.getOrUndefined(Option.map(service, (found) => found.type)),
      loadBalancerIP: Option.getOrUndefined(Option.flatMap(service, (found) => Option.fromNullable(found.loadBalancerIP))),
      apiserverPort: Option.match(service, { onNone: () => MeshPlan.defaultApiserverPort, onSome: (found) => found.port }),
      caCert,
      caKey,
      remoteCert: remote.cert,
      remoteKey: remote.key,
      configuredClusterName: configData?.["cluster-name"],
      configuredClusterId: parseClusterId(configData?.["cluster-id"]),
      remoteCertError: remote.error
    }
    return input
  })

const applyRegion = (
  cluster: CiliumCluster,
  regionPlan: MeshPlan.RegionPlan,
  options: { readonly restartAnnotation: string }
): Effect.Effect<boolean, MeshProvider.MeshError> =>
  Effect.gen(function* () {
    const [secret, aliases] = yield* Effect.all([cluster.secret(objectNames.secret), cluster.hostAliases(objectNames.daemonSet)], {
      concurrency: "unbounded"
    })
    if (Option.isNone(aliases)) {
      return yield* new MeshProvider.MeshError({
        reason: "Invalid",
        message: `DaemonSet kube-system/${objectNames.daemonSet} not found; is Cilium installed?`,
        region: regionPlan.regionKey
      })
    }
    const changes = MeshPlan.diff({ secretData: Option.getOrUndefined(secret), hostAliases: aliases.value }, regionPlan)
    if (changes.secret !== undefined) {
      const created = changes.secret.create
        ? yield* cluster.createSecret(objectNames.secret, { type: "Opaque", data: changes.secret.data, labels: secretLabels })
        : false
      if (!created) yield* cluster.patchSecretData(objectNames.secret, changes.secret.data)
    }
    if (changes.hostAliases !== undefined) yield* cluster.replaceHostAliases(objectNames.daemonSet, changes.hostAliases)
    if (!MeshPlan.needsRestart(changes)) return false
    const at = DateTime.formatIso(yield* DateTime.now)
    // A failed restart is a warning, as in the original: the Secret is mounted and re-read by the agents,
    // and a hostAliases change rolls the DaemonSet by itself; the restart only hurries them along.
    yield* Effect.forEach(
      restartTargets,
      (target) =>
        cluster.restart(target.kind, target.name, options.restartAnnotation, at).pipe(
          Effect.catchAll((error) => Effect.logWarning(`restart of ${target.kind} ${target.name} failed: ${error.message}`))
        ),
      { discard: true }
    )
    yield* Effect.logInfo("cilium-clustermesh or hostAliases changed; restarted cilium, cilium-operator and clustermesh-apiserver")
    return true
  })

const withApplyFailure = (regionPlan: MeshPlan.RegionPlan, error: MeshProvider.MeshError): MeshPlan.RegionPlan => ({
  ...regionPlan,
  error: `apply failed: ${error.message}`,
  peers: regionPlan.peers.map((peer) => (peer.configured ? { ...peer, configured: false, error: `secret apply failed: ${error.message}` } : peer))
})

export const make = (options: CiliumMeshOptions = {}) =>
  Effect.gen(function* () {
    const clusters = yield* CiliumClusters
    const restartAnnotation = options.restartAnnotation ?? defaultRestartAnnotation
    const concurrency = options.concurrency ?? 4

    const establish = (_deploymentId: Deployment.DeploymentId, regions: ReadonlyArray<MeshProvider.MeshRegion>) =>
      Effect.gen(function* () {
        if (regions.length < 2) return []
        const now = yield* Clock.currentTimeMillis
        const reads = yield* Effect.forEach(
          regions,
          ({ region, kubeconfig }) =>
            clusters.connect(kubeconfig).pipe(
              Effect.flatMap((cluster) => Effect.map(readRegion(cluster, region, now), (input): RegionRead => ({ input, cluster }))),
              Effect.catchAll((error) =>
                Effect.succeed<RegionRead>({ input: unreachable(region, error.message), cluster: undefined })
              ),
              Effect.annotateLogs("region", region.key)
            ),
          { concurrency }
        )
        const plans = MeshPlan.plan(reads.map((read) => read.input))
        return yield* Effect.forEach(
          plans,
          (regionPlan, index) =>
            Effect.gen(function* () {
              const cluster = reads[index]!.cluster
              const applied =
                cluster === undefined || regionPlan.error !== undefined
                  ? regionPlan
                  : yield* applyRegion(cluster, regionPlan, { restartAnnotation }).pipe(
                      Effect.as(regionPlan),
                      Effect.catchAll((error) => Effect.succeed(withApplyFailure(regionPlan, error)))
                    )
              const readyAt = MeshPlan.isComplete(applied) ? yield* Clock.currentTimeMillis : undefined
              const status = MeshPlan.regionStatus(applied, readyAt)
              const failures = status.peers.filter((peer) => !peer.configured)
              if (status.error !== undefined || failures.length > 0) {
                yield* Effect.logWarning(
                  `region ${status.regionKey} wired ${status.peers.length - failures.length}/${status.peers.length} peers` +
                    (status.error === undefined ? "" : `: ${status.error}`) +
                    failures.map((peer) => `; ${peer.name || "(unnamed)"}: ${peer.error ?? "not configured"}`).join("")
                )
              }
              return status
            }).pipe(Effect.annotateLogs("region", regionPlan.regionKey)),
          { concurrency }
        )
      }).pipe(Effect.scoped, Effect.withSpan("CiliumMesh.establish"))

    return MeshProvider.MeshProvider.of({ establish })
  })

/** The mesh provider; needs `CiliumClusters` (see `KubernetesClusters.layer` for real clusters). */
export const layer = (options: CiliumMeshOptions = {}): Layer.Layer<MeshProvider.MeshProvider, never, CiliumClusters> =>
  Layer.effect(MeshProvider.MeshProvider, make(options))

/** The mesh provider over real clusters, reached with adapter-kubernetes' verified client. */
export const layerKubernetes = (options: CiliumMeshOptions = {}): Layer.Layer<MeshProvider.MeshProvider> =>
  layer(options).pipe(
    Layer.provide(KubernetesClusters.layer(options.requestTimeout === undefined ? {} : { requestTimeout: options.requestTimeout }))
  )

/** `layerKubernetes` with its options read from configuration. */
export const layerConfig = (config: Config.Config<CiliumMeshOptions>): Layer.Layer<MeshProvider.MeshProvider, ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(config, layerKubernetes))
