/**
 * The simulated clusters: Flux reconciles the bootstrap kit in dependency order from the moment a
 * region's control plane boots, with per-chart durations, retries and the faults asked for. The
 * whole timeline is a pure function of the seed and the boot time, so a restarted host (or a late
 * watcher) sees exactly the history a real cluster would have kept.
 */
import { ClusterAccess, ClusterError, ClusterWatch, ReleaseEvent } from "@sovereign/core/ClusterWatch"
import type { ClusterWatchService, WatchOptions } from "@sovereign/core/ClusterWatch"
import type { Condition, HelmReleaseObservation } from "@sovereign/core/HelmRelease"
import { Chunk, Clock, Context, Duration, Effect, Layer, Option, PubSub, Redacted, Stream } from "effect"
import { bootstrapKit, type KitRelease } from "./internal/bootstrapKit.js"
import { chartFails, chartHangs } from "./SimulatorConfig.js"
import { clusterOfKubeconfig, SimulatorWorld, type SimCluster, type SimulatorWorldService } from "./SimulatorWorld.js"

interface Moment {
  readonly at: number
  readonly conditions: ReadonlyArray<Condition>
  readonly observedGeneration?: number
  readonly log?: { readonly level: "INFO" | "ERROR"; readonly message: string }
}

export interface ReleaseTimeline {
  readonly release: KitRelease
  readonly moments: ReadonlyArray<Moment>
  /** Unix ms at which Ready=True, or Infinity when it never is. */
  readonly readyAt: number
}

const ready = (status: "True" | "False" | "Unknown", reason: string, message: string): Condition => ({
  type: "Ready",
  status,
  reason,
  message
})

const chartVersion = (world: SimulatorWorldService, name: string) =>
  `1.${world.drawInt(0, 9, name, "minor")}.${world.drawInt(0, 20, name, "patch")}`

const formatDuration = (millis: number) => {
  const seconds = Math.round(millis / 1000)
  return `${Math.floor(seconds / 60)}m${seconds % 60}s`
}

/** The reconciliation history of every release of one cluster. */
export const timeline = (
  world: SimulatorWorldService,
  deploymentId: string,
  cluster: SimCluster,
  kit: ReadonlyArray<KitRelease> = bootstrapKit
): ReadonlyArray<ReleaseTimeline> => {
  const seconds = (n: number) => Duration.toMillis(world.scaled(Duration.seconds(n)))
  const appearAt = cluster.bootAt + seconds(60)
  const byName = new Map(kit.map((release) => [release.name, release]))
  const done = new Map<string, ReleaseTimeline>()
  const build = (release: KitRelease): ReleaseTimeline => {
    const known = done.get(release.name)
    if (known !== undefined) return known
    const dependencies = release.dependsOn.flatMap((name) => {
      const dependency = byName.get(name)
      return dependency === undefined ? [] : [build(dependency)]
    })
    const dependenciesReadyAt = Math.max(appearAt, ...dependencies.map((d) => d.readyAt))
    const moments: Array<Moment> = [{ at: appearAt, conditions: [] }]
    const draw = (...parts: ReadonlyArray<string | number>) => world.draw(deploymentId, cluster.regionKey, release.name, ...parts)
    const installSeconds = (attempt: number) => world.drawInt(150, 330, deploymentId, cluster.regionKey, release.name, "install", attempt)
    const version = chartVersion(world, release.name)
    const chart = release.name.replace(/^bp-/, "")
    const waitingOn = dependencies.find((d) => d.readyAt > appearAt + seconds(5))
    if (waitingOn !== undefined) {
      moments.push({
        at: appearAt + seconds(5),
        conditions: [
          ready("False", "DependencyNotReady", `dependency '${waitingOn.release.namespace}/${waitingOn.release.name}' is not ready`)
        ],
        observedGeneration: 1
      })
    }
    let readyAt = Number.POSITIVE_INFINITY
    if (Number.isFinite(dependenciesReadyAt)) {
      let at = Math.max(appearAt + seconds(5), dependenciesReadyAt + seconds(10))
      const progressing = (): Moment => ({
        at,
        conditions: [
          ready("Unknown", "Progressing", "Reconciliation in progress"),
          { type: "Reconciling", status: "True", reason: "Progressing", message: "Reconciliation in progress" }
        ],
        observedGeneration: 1,
        log: {
          level: "INFO",
          message: `release ${release.namespace}/${release.name}: installing chart ${chart}@${version} into ${release.targetNamespace}`
        }
      })
      const installFailed = (): Moment => ({
        at,
        conditions: [
          ready(
            "False",
            "InstallFailed",
            `Helm install failed for release ${release.targetNamespace}/${chart} with chart ${chart}@${version}: context deadline exceeded`
          )
        ],
        observedGeneration: 1,
        log: { level: "ERROR", message: `release ${release.namespace}/${release.name}: Helm install failed: context deadline exceeded` }
      })
      const started = at
      moments.push(progressing())
      if (chartHangs(world.options.faults, release.name, cluster.cloudRegion)) {
        // Progressing for ever: neither a failure nor progress.
      } else if (chartFails(world.options.faults, release.name, cluster.cloudRegion)) {
        for (let attempt = 1; attempt <= 3; attempt++) {
          at += seconds(installSeconds(attempt))
          if (attempt < 3) {
            moments.push(installFailed())
            at += seconds(60)
            moments.push(progressing())
          } else {
            moments.push({
              at,
              conditions: [
                ready("False", "RetriesExceeded", `Failed to install after ${attempt} attempt(s): context deadline exceeded`),
                { type: "Stalled", status: "True", reason: "RetriesExceeded", message: `Failed to install after ${attempt} attempt(s)` }
              ],
              observedGeneration: 1,
              log: {
                level: "ERROR",
                message: `release ${release.namespace}/${release.name}: install retries exhausted, giving up (Stalled)`
              }
            })
          }
        }
      } else {
        if (draw("flaky") < 0.12) {
          at += seconds(Math.round(installSeconds(1) / 2))
          moments.push(installFailed())
          at += seconds(45)
          moments.push(progressing())
        }
        at += seconds(installSeconds(2))
        readyAt = at
        moments.push({
          at,
          conditions: [
            ready(
              "True",
              "InstallSucceeded",
              `Helm install succeeded for release ${release.targetNamespace}/${chart}.v1 with chart ${chart}@${version}`
            )
          ],
          observedGeneration: 1,
          log: {
            level: "INFO",
            message: `release ${release.namespace}/${release.name}: reconciliation finished in ${formatDuration(at - started)}, next run in 10m0s`
          }
        })
      }
    }
    const result: ReleaseTimeline = { release, moments, readyAt }
    done.set(release.name, result)
    return result
  }
  return kit.map(build)
}

const observationAt = (entry: ReleaseTimeline, index: number): HelmReleaseObservation => {
  const moment = entry.moments[index]!
  return {
    name: entry.release.name,
    namespace: entry.release.namespace,
    generation: 1,
    ...(moment.observedGeneration === undefined ? {} : { observedGeneration: moment.observedGeneration }),
    suspend: false,
    conditions: moment.conditions,
    dependsOn: entry.release.dependsOn,
    resourceVersion: String(index + 1)
  }
}

/** Index of the moment in force at `now`, or -1 before the release exists. */
const momentIndexAt = (entry: ReleaseTimeline, now: number): number => {
  let index = -1
  entry.moments.forEach((moment, i) => {
    if (moment.at <= now) index = i
  })
  return index
}

/** A release a driver wrote into a driven cluster, with a per-cluster sequence number. */
interface DrivenChange {
  readonly cluster: string
  readonly seq: number
  readonly name: string
  readonly release: HelmReleaseObservation | undefined
}

interface DrivenCluster {
  seq: number
  readonly releases: Map<string, { readonly seq: number; readonly release: HelmReleaseObservation }>
}

/** The releases written by drivers, per driven cluster (`<deploymentId>/<regionKey>`); shared by watch and driver. */
export class DrivenReleases extends Context.Tag("@sovereign/adapter-simulator/DrivenReleases")<
  DrivenReleases,
  {
    readonly clusters: Map<string, DrivenCluster>
    readonly changes: PubSub.PubSub<DrivenChange>
    /** Clusters whose open watches deliver nothing (a hung watch): only a re-list shows changes. */
    readonly silenced: Set<string>
    /** A cluster key here makes its open watches reconnect and re-list (a 410 Gone, a dropped connection). */
    readonly relists: PubSub.PubSub<string>
  }
>() {}

const drivenReleasesLayer = Layer.effect(
  DrivenReleases,
  Effect.all({ changes: PubSub.unbounded<DrivenChange>(), relists: PubSub.unbounded<string>() }).pipe(
    Effect.map(({ changes, relists }) => ({ clusters: new Map<string, DrivenCluster>(), changes, silenced: new Set<string>(), relists }))
  )
)

export const make = Effect.gen(function* () {
  const world = yield* SimulatorWorld
  const driven = yield* DrivenReleases

  const clusterOf = (kubeconfig: Parameters<ClusterWatchService["watch"]>[0]) =>
    Effect.gen(function* () {
      const target = clusterOfKubeconfig(kubeconfig)
      if (Option.isNone(target)) {
        return yield* new ClusterError({ reason: "InvalidKubeconfig", message: "the kubeconfig does not name a simulated cluster" })
      }
      const current = yield* world
        .read(target.value.deploymentId)
        .pipe(Effect.mapError((error) => new ClusterError({ reason: "Unreachable", message: error.message })))
      const cluster = Option.flatMapNullable(current, (w) => w.clusters[target.value.regionKey])
      if (Option.isNone(cluster)) {
        return yield* new ClusterError({
          reason: "Unreachable",
          message: `cluster ${target.value.regionKey} of deployment ${target.value.deploymentId} does not exist (deleted?)`
        })
      }
      return { deploymentId: target.value.deploymentId, cluster: cluster.value }
    })

  const watch = (
    kubeconfig: Parameters<ClusterWatchService["watch"]>[0],
    options: WatchOptions
  ): Stream.Stream<ReleaseEvent, ClusterError> =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const { deploymentId, cluster } = yield* clusterOf(kubeconfig)
        if (cluster.driven === true) return yield* drivenWatch(`${deploymentId}/${cluster.regionKey}`, options)
        const entries = timeline(world, deploymentId, cluster).filter(
          (entry) => entry.release.namespace === options.namespace && entry.release.name.startsWith(options.namePrefix)
        )
        const start = yield* Clock.currentTimeMillis
        const initial = entries.flatMap((entry) => {
          const index = momentIndexAt(entry, start)
          return index < 0 ? [] : [ReleaseEvent.Observed({ release: observationAt(entry, index) })]
        })
        const changes = Stream.unfoldChunkEffect(start, (after) =>
          Effect.gen(function* () {
            const next = Math.min(...entries.flatMap((entry) => entry.moments.filter((m) => m.at > after).map((m) => m.at)))
            if (!Number.isFinite(next)) return yield* Effect.never
            const now = yield* Clock.currentTimeMillis
            if (next > now) yield* Effect.sleep(Duration.millis(next - now))
            const events: Array<ReleaseEvent> = []
            for (const entry of entries) {
              entry.moments.forEach((moment, index) => {
                if (moment.at > after && moment.at <= next) {
                  if (moment.log !== undefined) {
                    events.push(
                      ReleaseEvent.Log({
                        release: entry.release.name,
                        level: moment.log.level,
                        message: moment.log.message,
                        timestamp: moment.at
                      })
                    )
                  }
                  events.push(ReleaseEvent.Observed({ release: observationAt(entry, index) }))
                }
              })
            }
            return Option.some([Chunk.fromIterable(events), next] as const)
          })
        )
        return Stream.concat(Stream.fromIterable([...initial, ReleaseEvent.Synced()]), changes)
      })
    )

  /**
   * A driven cluster's watch behaves like a real informer: list, Synced, then live changes; it
   * re-lists on a forced reconnect and every `resyncInterval`, reporting only what it has not
   * reported yet (per release never older than what it already said), so nothing is lost or reordered.
   */
  const drivenWatch = (key: string, options: WatchOptions) =>
    Effect.gen(function* () {
      const matches = (name: string, namespace: string) => namespace === options.namespace && name.startsWith(options.namePrefix)
      const changes = yield* PubSub.subscribe(driven.changes)
      const relists = yield* PubSub.subscribe(driven.relists)
      const seen = new Map<string, number>()
      const deleted = new Set<string>()
      const relist = (): Array<ReleaseEvent> => {
        const state = driven.clusters.get(key)
        const current = state?.releases ?? new Map<string, { readonly seq: number; readonly release: HelmReleaseObservation }>()
        const out: Array<ReleaseEvent> = []
        for (const [name, entry] of current) {
          if (!matches(entry.release.name, entry.release.namespace) || entry.seq <= (seen.get(name) ?? 0)) continue
          seen.set(name, entry.seq)
          deleted.delete(name)
          out.push(ReleaseEvent.Observed({ release: entry.release }))
        }
        for (const name of seen.keys()) {
          if (current.has(name) || deleted.has(name)) continue
          deleted.add(name)
          seen.set(name, state?.seq ?? 0)
          out.push(ReleaseEvent.Deleted({ name }))
        }
        return out
      }
      const live = Stream.fromQueue(changes).pipe(
        Stream.filter((change) => change.cluster === key && !driven.silenced.has(key)),
        Stream.mapConcat((change): Array<ReleaseEvent> => {
          if (change.seq <= (seen.get(change.name) ?? 0)) return []
          if (change.release === undefined) {
            if (!matches(change.name, options.namespace) || deleted.has(change.name) || !seen.has(change.name)) return []
            seen.set(change.name, change.seq)
            deleted.add(change.name)
            return [ReleaseEvent.Deleted({ name: change.name })]
          }
          if (!matches(change.release.name, change.release.namespace)) return []
          seen.set(change.name, change.seq)
          deleted.delete(change.name)
          return [ReleaseEvent.Observed({ release: change.release })]
        })
      )
      const forced = Stream.fromQueue(relists).pipe(Stream.filter((cluster) => cluster === key))
      const periodic = Stream.tick(options.resyncInterval).pipe(Stream.drop(1))
      const resyncs = Stream.merge(forced, periodic).pipe(Stream.mapConcat(() => relist()))
      const first: Array<ReleaseEvent> = [...relist(), ReleaseEvent.Synced()]
      return Stream.concat(Stream.fromIterable(first), Stream.merge(live, resyncs))
    })

  const access = {
    grantOwner: (
      kubeconfig: Parameters<ClusterWatchService["watch"]>[0],
      owner: { readonly email: string; readonly role: string; readonly deploymentId: string }
    ) =>
      Effect.gen(function* () {
        const { deploymentId, cluster } = yield* clusterOf(kubeconfig)
        const grant = `${owner.email}:${owner.role}`
        yield* world
          .modify(deploymentId, "", (current) => {
            const c = current.clusters[cluster.regionKey]
            if (c === undefined || c.grants.includes(grant)) return [undefined, current]
            return [
              undefined,
              { ...current, clusters: { ...current.clusters, [cluster.regionKey]: { ...c, grants: [...c.grants, grant] } } }
            ]
          })
          .pipe(Effect.mapError((error) => new ClusterError({ reason: "Unreachable", message: error.message })))
      })
  }
  return { watch: { watch } satisfies ClusterWatchService, access }
})

/** The observation a driver's desired state produces (what helm-controller would leave in the status). */
const drivenObservation = (namespace: string, name: string, state: DriverReleaseState, generation: number): HelmReleaseObservation => ({
  name,
  namespace,
  generation,
  observedGeneration: generation,
  suspend: state.suspend ?? false,
  conditions: [
    ...(state.ready === undefined
      ? []
      : [{ type: "Ready", status: state.ready.status, reason: state.ready.reason, message: state.ready.message ?? "" }]),
    ...(state.stalled === true ? [{ type: "Stalled", status: "True" as const, reason: "RetriesExceeded", message: "" }] : [])
  ],
  dependsOn: state.dependsOn ?? [],
  resourceVersion: "0"
})

/** What a test driver may write into a driven cluster (the shape of testkit's ClusterWatchSuite.ReleaseState). */
export interface DriverReleaseState {
  readonly ready?: { readonly status: "True" | "False" | "Unknown"; readonly reason: string; readonly message?: string }
  readonly stalled?: boolean
  readonly suspend?: boolean
  readonly dependsOn?: ReadonlyArray<string>
}

/**
 * A cluster in the simulated world whose releases a test writes directly (the conformance suites'
 * driver): returns its kubeconfig and apply/remove operations.
 */
export const drivenCluster = (deploymentId: string, regionKey = "driven", namespace = "flux-system") =>
  Effect.gen(function* () {
    const world = yield* SimulatorWorld
    const driven = yield* DrivenReleases
    const cluster: SimCluster = {
      regionKey,
      cloudRegion: "sim",
      primary: true,
      clusterName: `${regionKey}-cluster`,
      clusterId: 1,
      loadBalancerIP: "192.0.2.10",
      bootAt: 0,
      kubeconfigDelivered: true,
      grants: [],
      meshPeers: [],
      driven: true
    }
    yield* Effect.orDie(
      world.modify(deploymentId, "driven", (current) => [
        undefined,
        { ...current, clusters: { ...current.clusters, [regionKey]: cluster } }
      ])
    )
    const key = `${deploymentId}/${regionKey}`
    const state = (): DrivenCluster => {
      let found = driven.clusters.get(key)
      if (found === undefined) {
        found = { seq: 0, releases: new Map() }
        driven.clusters.set(key, found)
      }
      return found
    }
    const publish = (change: Omit<DrivenChange, "seq" | "cluster">) =>
      Effect.suspend(() => {
        const current = state()
        const seq = ++current.seq
        if (change.release === undefined) current.releases.delete(change.name)
        else current.releases.set(change.name, { seq, release: change.release })
        return PubSub.publish(driven.changes, { ...change, seq, cluster: key })
      })
    return {
      kubeconfig: Redacted.make(world.kubeconfigOf(deploymentId, cluster)),
      namespace,
      faults: {
        forceGone: Effect.asVoid(PubSub.publish(driven.relists, key)),
        dropConnections: Effect.asVoid(PubSub.publish(driven.relists, key)),
        silenceWatches: (silent: boolean) => Effect.sync(() => void (silent ? driven.silenced.add(key) : driven.silenced.delete(key)))
      },
      apply: (name: string, desired: DriverReleaseState) =>
        Effect.suspend(() => {
          const previous = state().releases.get(name)?.release
          const candidate = drivenObservation(namespace, name, desired, 1)
          const sameSpec =
            previous !== undefined &&
            previous.suspend === candidate.suspend &&
            previous.dependsOn.join(",") === candidate.dependsOn.join(",")
          const generation = previous === undefined ? 1 : previous.generation + (sameSpec ? 0 : 1)
          return publish({ name, release: drivenObservation(namespace, name, desired, generation) })
        }).pipe(Effect.asVoid),
      remove: (name: string) => Effect.asVoid(publish({ name, release: undefined }))
    }
  })

/** The watch and the access port over one world (and one hub of driven releases, also provided). */
export const layer: Layer.Layer<ClusterWatch | ClusterAccess | DrivenReleases, never, SimulatorWorld> = Layer.provideMerge(
  Layer.effectContext(Effect.map(make, (m) => Context.make(ClusterWatch, m.watch).pipe(Context.add(ClusterAccess, m.access)))),
  drivenReleasesLayer
)
