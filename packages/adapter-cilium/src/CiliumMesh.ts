/**
 * The mesh port over Cilium ClusterMesh (SPEC 2.8): read every region and the Cilium it runs, plan
 * what Cilium's chart would render for that version and mode, and put it where it lasts — written
 * beside the release when the chart leaves the config to others, given to the release as values when
 * the chart renders it — writing only what differs and restarting only a workload whose aliases changed.
 */
import { MeshPlan, MeshProvider } from "@sovereign/core"
import type { Deployment } from "@sovereign/core"
import { Clock, DateTime, Duration, Effect, Either, Layer, Option, Schedule } from "effect"
import type { Config, ConfigError } from "effect"
import * as Yaml from "@sovereign/adapter-kubernetes/Yaml"
import * as Certificates from "./Certificates.js"
import { CiliumClusters } from "./CiliumCluster.js"
import type { CiliumCluster, HelmReleaseState, StoredSecret, WorkloadSpec } from "./CiliumCluster.js"
import * as KubernetesClusters from "./KubernetesClusters.js"
import * as RenderedConfig from "./RenderedConfig.js"

export interface CiliumMeshOptions {
  /** Deadline of every Kubernetes API request (default 30 s). */
  readonly requestTimeout?: Duration.DurationInput
  /** Regions read and written at once (default 4). */
  readonly concurrency?: number
  /** The Flux HelmRelease that installs Cilium (default `flux-system/bp-cilium`). */
  readonly helmRelease?: { readonly namespace: string; readonly name: string }
  /** How long a pass waits for that release to render Sovereign's values (default 2 minutes); the next pass looks again. */
  readonly releaseTimeout?: Duration.DurationInput
}

export const objectNames = {
  service: "clustermesh-apiserver",
  ca: "cilium-ca",
  config: "cilium-config",
  remoteCert: "clustermesh-apiserver-remote-cert",
  secret: MeshPlan.secretName,
  kvstoreMeshSecret: MeshPlan.kvstoreMeshSecretName,
  daemonSet: MeshPlan.agentWorkload.name,
  apiserver: MeshPlan.apiserverWorkload.name,
  /** The `valuesFrom` Secret Sovereign owns, next to the HelmRelease. */
  valuesSecret: "sovereign-clustermesh-values"
} as const

export const valuesKey = "values.yaml"
export const defaultHelmRelease = { namespace: "flux-system", name: "bp-cilium" } as const

export const secretLabels = {
  "app.kubernetes.io/managed-by": "sovereign",
  "app.kubernetes.io/part-of": "cilium-clustermesh"
} as const

/** What a pass knows of one region besides the plan input: the objects it will compare against. */
interface RegionRead {
  readonly input: MeshPlan.MeshRegionInput
  readonly cluster: CiliumCluster | undefined
  readonly secrets: Readonly<Record<string, StoredSecret | undefined>>
  readonly workloads: Readonly<Record<string, WorkloadSpec | undefined>>
  readonly release: HelmReleaseState | undefined
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
  cilium: undefined,
  unreachable: reason
})

const parseClusterId = (value: string | undefined): number | undefined =>
  value !== undefined && /^\s*\d+\s*$/.test(value) ? Number(value) : undefined

const parseYaml = (text: string | undefined): unknown => (text === undefined ? undefined : Either.getOrUndefined(Yaml.parse(text)))

const valueAt = (values: unknown, path: ReadonlyArray<string>): unknown => {
  let current = values
  for (const segment of path)
    current =
      typeof current === "object" && current !== null && !Array.isArray(current) ? (current as Record<string, unknown>)[segment] : undefined
  return current
}

const isOurs = (reference: Readonly<Record<string, unknown>>) =>
  reference["kind"] === "Secret" && reference["name"] === objectNames.valuesSecret

/**
 * Whether the release's values enable `clustermesh.config.enabled`: `spec.values` decides when it
 * says, else the last `valuesFrom` source that says (Flux merges them in order, `spec.values` last).
 */
const releaseRendersConfig = (cluster: CiliumCluster, release: HelmReleaseState, releaseNamespace: string) =>
  Effect.gen(function* () {
    const path = ["clustermesh", "config", "enabled"]
    const inline = valueAt(release.values, path)
    if (typeof inline === "boolean") return inline
    for (const reference of [...release.valuesFrom].reverse()) {
      if (isOurs(reference) || typeof reference["name"] !== "string" || reference["targetPath"] !== undefined) continue
      const key = typeof reference["valuesKey"] === "string" ? reference["valuesKey"] : valuesKey
      const text =
        reference["kind"] === "ConfigMap"
          ? Option.getOrUndefined(yield* cluster.configMap(reference["name"], releaseNamespace))?.[key]
          : Option.getOrUndefined(yield* cluster.secret(reference["name"], releaseNamespace))?.data[key]
      const said = valueAt(parseYaml(text), path)
      if (typeof said === "boolean") return said
    }
    return undefined
  })

/** The Cilium version and mode of a region, or why they cannot be told. */
const detect = (
  cluster: CiliumCluster,
  agent: WorkloadSpec | undefined,
  apiserver: WorkloadSpec | undefined,
  release: HelmReleaseState | undefined,
  clustermesh: StoredSecret | undefined,
  releaseRef: { readonly namespace: string; readonly name: string }
): Effect.Effect<{ readonly cilium: MeshPlan.CiliumSetup | undefined; readonly error?: string }, MeshProvider.MeshError> =>
  Effect.gen(function* () {
    if (agent === undefined)
      return { cilium: undefined, error: `DaemonSet kube-system/${objectNames.daemonSet} not found; is Cilium installed?` }
    const image = (agent.containers.find((container) => container.name === "cilium-agent") ?? agent.containers[0])?.image ?? ""
    const version = MeshPlan.parseCiliumVersion(image)
    if (version === undefined) return { cilium: undefined, error: `the Cilium version cannot be told from the agent image '${image}'` }
    const kvstoreMesh = apiserver?.containers.some((container) => container.name === "kvstoremesh") ?? false
    const helmOwner = clustermesh?.annotations["meta.helm.sh/release-name"]
    const valuesSay = release === undefined ? undefined : yield* releaseRendersConfig(cluster, release, releaseRef.namespace)
    const chartRendersConfig = valuesSay ?? helmOwner !== undefined
    const cilium = { version: MeshPlan.formatVersion(version), kvstoreMesh, chartRendersConfig }
    if (chartRendersConfig && release === undefined) {
      return {
        cilium: undefined,
        error: `${objectNames.secret} is rendered by the Helm release '${helmOwner ?? "?"}', but there is no Flux HelmRelease ${releaseRef.namespace}/${releaseRef.name} to give the peers to`
      }
    }
    return { cilium }
  })

/**
 * The region's client certificate for its peers: the chart-made `clustermesh-apiserver-remote-cert`
 * when present (checked against the region's CA), else one minted with CN=remote by the region's
 * own CA and stored under that name so every later pass hands out the same certificate.
 */
const remoteCertificate = (
  cluster: CiliumCluster,
  caCert: string | undefined,
  caKey: string | undefined,
  stored: Option.Option<StoredSecret>,
  now: number
): Effect.Effect<{ readonly cert?: string; readonly key?: string; readonly error?: string }, MeshProvider.MeshError> =>
  Effect.gen(function* () {
    const pairOf = (secret: Option.Option<StoredSecret>) =>
      Option.flatMap(secret, ({ data }) =>
        data["tls.crt"] !== undefined && data["tls.key"] !== undefined
          ? Option.some({ cert: data["tls.crt"], key: data["tls.key"] })
          : Option.none()
      )
    const existing = pairOf(stored)
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
    const usable = pairOf(yield* cluster.secret(objectNames.remoteCert))
    if (Option.isNone(usable)) return { error: `${objectNames.remoteCert} exists but holds no tls.crt and tls.key` }
    const problem = Certificates.checkRemote(usable.value, caCert, now)
    return problem === undefined ? usable.value : { error: problem }
  })

const readRegion = (
  cluster: CiliumCluster,
  region: Deployment.Region,
  now: number,
  releaseRef: { readonly namespace: string; readonly name: string }
) =>
  Effect.gen(function* () {
    const [service, ca, config, stored, clustermesh, kvstoremesh, agent, apiserver, release] = yield* Effect.all(
      [
        cluster.service(objectNames.service),
        cluster.secret(objectNames.ca),
        cluster.configMap(objectNames.config),
        cluster.secret(objectNames.remoteCert),
        cluster.secret(objectNames.secret),
        cluster.secret(objectNames.kvstoreMeshSecret),
        cluster.workload("DaemonSet", objectNames.daemonSet),
        cluster.workload("Deployment", objectNames.apiserver),
        cluster.helmRelease(releaseRef.namespace, releaseRef.name)
      ],
      { concurrency: "unbounded" }
    )
    const caData = Option.match(ca, { onNone: () => ({}) as Readonly<Record<string, string>>, onSome: (secret) => secret.data })
    const caCert = caData["ca.crt"] ?? caData["tls.crt"]
    const caKey = caData["ca.key"] ?? caData["tls.key"]
    const remote = yield* remoteCertificate(cluster, caCert, caKey, stored, now)
    const setup = yield* detect(
      cluster,
      Option.getOrUndefined(agent),
      Option.getOrUndefined(apiserver),
      Option.getOrUndefined(release),
      Option.getOrUndefined(clustermesh),
      releaseRef
    )
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
      cilium: setup.cilium,
      ciliumError: setup.error,
      remoteCertError: remote.error
    }
    return {
      input,
      cluster,
      secrets: {
        [objectNames.secret]: Option.getOrUndefined(clustermesh),
        [objectNames.kvstoreMeshSecret]: Option.getOrUndefined(kvstoremesh)
      },
      workloads: { DaemonSet: Option.getOrUndefined(agent), Deployment: Option.getOrUndefined(apiserver) },
      release: Option.getOrUndefined(release)
    } satisfies RegionRead
  })

const failure = (message: string) => new MeshProvider.MeshError({ reason: "Invalid", message })

/** Sovereign writes the config itself: the Secrets as the chart would render them, and before 1.20 the dialling workload's hostAliases. */
const applyDirectly = (cluster: CiliumCluster, read: RegionRead, regionPlan: MeshPlan.RegionPlan) =>
  Effect.gen(function* () {
    const target = regionPlan.rendered.hostAliases?.workload
    const targetSpec = target === undefined ? undefined : read.workloads[target.kind]
    if (target !== undefined && targetSpec === undefined) return yield* failure(`${target.kind} kube-system/${target.name} not found`)
    const changes = MeshPlan.diff(
      {
        secrets: Object.fromEntries(Object.entries(read.secrets).map(([name, secret]) => [name, secret?.data])),
        hostAliases: targetSpec?.hostAliases ?? []
      },
      regionPlan
    )
    for (const change of changes.secrets) {
      const created = change.create
        ? yield* cluster.createSecret(change.name, { type: "Opaque", data: change.data, labels: secretLabels })
        : false
      if (!created) yield* cluster.patchSecretData(change.name, change.patch)
    }
    if (changes.hostAliases !== undefined) {
      yield* cluster.replaceHostAliases(changes.hostAliases.workload.kind, changes.hostAliases.workload.name, changes.hostAliases.aliases)
      yield* Effect.logInfo(
        `replaced the hostAliases of ${changes.hostAliases.workload.kind} ${changes.hostAliases.workload.name}: it rolls out, nothing else restarts`
      )
    }
  })

/** What the release has rendered differs from what `rendered` says it should (empty when it matches). */
const renderedDifferences = (cluster: CiliumCluster, rendered: MeshPlan.Rendered) =>
  Effect.gen(function* () {
    const differences: Array<string> = []
    for (const [name, managed] of Object.entries(rendered.secrets)) {
      const data = Option.match(yield* cluster.secret(name), { onNone: () => undefined, onSome: (secret) => secret.data })
      differences.push(...RenderedConfig.differences(name, data, managed))
    }
    if (rendered.hostAliases !== undefined) {
      const { workload, aliases } = rendered.hostAliases
      const spec = yield* cluster.workload(workload.kind, workload.name)
      const actual = MeshPlan.normalizeHostAliases(Option.match(spec, { onNone: () => [], onSome: (found) => found.hostAliases }))
      if (JSON.stringify(actual) !== JSON.stringify(MeshPlan.normalizeHostAliases(aliases)))
        differences.push(`${workload.kind} ${workload.name} hostAliases`)
    }
    return differences
  })

class ReleasePending {
  readonly _tag = "ReleasePending"
}

/**
 * The chart renders the config: Sovereign gives the release its peers through a `valuesFrom` Secret
 * it owns and waits for helm-controller to render them, so the next reconcile keeps them rather than
 * undoing a write made beside the release.
 */
const applyThroughRelease = (
  cluster: CiliumCluster,
  read: RegionRead,
  regionPlan: MeshPlan.RegionPlan,
  setup: MeshPlan.CiliumSetup,
  options: { readonly releaseRef: { readonly namespace: string; readonly name: string }; readonly releaseTimeout: Duration.Duration }
) =>
  Effect.gen(function* () {
    const { releaseRef } = options
    const release = read.release
    const name = `HelmRelease ${releaseRef.namespace}/${releaseRef.name}`
    if (release === undefined) return yield* failure(`${name} not found`)
    if (valueAt(release.values, ["clustermesh", "config", "clusters"]) !== undefined) {
      return yield* failure(
        `${name} sets clustermesh.config.clusters in spec.values, which overrides the peers Sovereign gives through valuesFrom`
      )
    }
    const stored = yield* cluster.secret(objectNames.valuesSecret, releaseRef.namespace)
    const storedText = Option.getOrUndefined(stored)?.data[valuesKey]
    const entries = MeshPlan.desiredEntries(MeshPlan.peerEntriesOf(parseYaml(storedText)), regionPlan)
    const text = JSON.stringify(MeshPlan.helmValues(entries, setup), null, 2) + "\n"
    const expected = MeshPlan.render(entries, setup)
    let changed = false
    if (storedText !== text) {
      const created = Option.isNone(stored)
        ? yield* cluster.createSecret(
            objectNames.valuesSecret,
            { type: "Opaque", data: { [valuesKey]: text }, labels: secretLabels },
            releaseRef.namespace
          )
        : false
      if (!created) yield* cluster.patchSecretData(objectNames.valuesSecret, { [valuesKey]: text }, releaseRef.namespace)
      changed = true
    }
    const referenced = release.valuesFrom.some(isOurs)
    if (!changed && referenced && (yield* renderedDifferences(cluster, expected)).length === 0) return
    // Ask for a reconcile (adding the reference too, in the same patch) and wait until it is handled.
    const stamp = DateTime.formatIso(yield* DateTime.now)
    const token = stamp === release.requestedAt ? `${stamp}.1` : stamp
    yield* cluster.patchHelmRelease(releaseRef.namespace, releaseRef.name, {
      requestedAt: token,
      ...(referenced ? {} : { valuesFrom: [...release.valuesFrom, { kind: "Secret", name: objectNames.valuesSecret, valuesKey }] })
    })
    yield* Effect.logInfo(
      `gave ${name} its peers through Secret ${releaseRef.namespace}/${objectNames.valuesSecret}; waiting for it to reconcile`
    )
    const handled = yield* cluster.helmRelease(releaseRef.namespace, releaseRef.name).pipe(
      Effect.flatMap((found) =>
        Option.isSome(found) && found.value.lastHandledReconcileAt === token && found.value.observedGeneration === found.value.generation
          ? Effect.succeed(found.value)
          : Effect.fail(new ReleasePending())
      ),
      Effect.retry({
        schedule: Schedule.exponential("50 millis", 1.5).pipe(Schedule.either(Schedule.spaced("2 seconds"))),
        while: (error) => error instanceof ReleasePending
      }),
      Effect.timeoutFail({
        duration: options.releaseTimeout,
        onTimeout: () => failure(`${name} has not reconciled the peers Sovereign gave it within ${Duration.format(options.releaseTimeout)}`)
      }),
      Effect.catchIf(
        (error): error is ReleasePending => error instanceof ReleasePending,
        () => Effect.fail(failure(`${name} has not reconciled`))
      )
    )
    if (handled.ready?.status === "False") {
      return yield* failure(`${name} failed to reconcile: ${handled.ready.reason ?? "?"}: ${handled.ready.message ?? ""}`)
    }
    const differences = yield* renderedDifferences(cluster, expected)
    if (differences.length > 0)
      return yield* failure(`${name} reconciled, but renders other than the peers given: ${differences.join(", ")}`)
  })

const withApplyFailure = (regionPlan: MeshPlan.RegionPlan, error: MeshProvider.MeshError): MeshPlan.RegionPlan => ({
  ...regionPlan,
  error: `apply failed: ${error.message}`,
  peers: regionPlan.peers.map((peer) => (peer.configured ? { ...peer, configured: false, error: `apply failed: ${error.message}` } : peer))
})

export const make = (options: CiliumMeshOptions = {}) =>
  Effect.gen(function* () {
    const clusters = yield* CiliumClusters
    const concurrency = options.concurrency ?? 4
    const releaseRef = options.helmRelease ?? defaultHelmRelease
    const releaseTimeout = Duration.decode(options.releaseTimeout ?? Duration.minutes(2))

    const establish = (_deploymentId: Deployment.DeploymentId, regions: ReadonlyArray<MeshProvider.MeshRegion>) =>
      Effect.gen(function* () {
        if (regions.length < 2) return []
        const now = yield* Clock.currentTimeMillis
        const reads = yield* Effect.forEach(
          regions,
          ({ region, kubeconfig }) =>
            clusters.connect(kubeconfig).pipe(
              Effect.flatMap((cluster) => readRegion(cluster, region, now, releaseRef)),
              Effect.catchAll((error) =>
                Effect.succeed<RegionRead>({
                  input: unreachable(region, error.message),
                  cluster: undefined,
                  secrets: {},
                  workloads: {},
                  release: undefined
                })
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
              const read = reads[index]!
              const cluster = read.cluster
              const setup = regionPlan.cilium
              const applied =
                cluster === undefined || regionPlan.error !== undefined || setup === undefined
                  ? regionPlan
                  : yield* (
                      setup.chartRendersConfig
                        ? applyThroughRelease(cluster, read, regionPlan, setup, { releaseRef, releaseTimeout })
                        : applyDirectly(cluster, read, regionPlan)
                    ).pipe(
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
