/**
 * The ClusterWatch port over the Kubernetes API: Flux HelmReleases of one namespace and name
 * prefix, by list + watch from the list's resourceVersion, re-listing on `410 Gone` and on a
 * periodic resync, reconnecting with backoff; every release is reported on first sight.
 */
import { ClusterWatch, HelmRelease, Time } from "@sovereign/core"
import { Clock, Config, ConfigError, Duration, Effect, Either, Layer, Mailbox, Option, Schedule, Schema, Stream } from "effect"
import type { Redacted, Scope } from "effect"
import * as HelmControllerLog from "./HelmControllerLog.js"
import * as KubeClient from "./KubeClient.js"
import { HelmReleaseResource, helmReleaseApi, ObjectList, ResourceVersionOnly, Status, toObservation } from "./KubernetesSchema.js"

type ReleaseEvent = ClusterWatch.ReleaseEvent
const ReleaseEvent = ClusterWatch.ReleaseEvent
type Observation = HelmRelease.HelmReleaseObservation

export interface KubernetesClusterWatchOptions {
  /** Deadline of every list request (default 30 s). */
  readonly requestTimeout?: Duration.DurationInput
  /** Reachability probe before the first list (SPEC: probe with backoff before watching). */
  readonly reachability?: KubeClient.ReachabilityOptions
  /** First pause before a reconnect after an error; doubles per consecutive failure (default 500 ms). */
  readonly reconnectInitialDelay?: Duration.DurationInput
  /** Longest pause between reconnects (default 30 s). */
  readonly reconnectMaxDelay?: Duration.DurationInput
  /** Page size of the list (default 500). */
  readonly listPageSize?: number
  /** Follow the helm-controller's log and report lines that name a watched release (default true). */
  readonly tailLogs?: boolean
  /** Selects the helm-controller pod in the watched namespace (default `app=helm-controller`). */
  readonly logPodSelector?: string
  /** Pause before looking for the helm-controller pod again, when none runs or its log ended (default 5 s). */
  readonly logRetryDelay?: Duration.DurationInput
}

/** Whether two observations differ in anything but their resourceVersion. */
const sameObservation = (left: Observation, right: Observation): boolean => {
  const { resourceVersion: _left, ...a } = left
  const { resourceVersion: _right, ...b } = right
  return JSON.stringify(a) === JSON.stringify(b)
}

type WatchOutcome =
  /** The history before our resourceVersion is gone: re-list. */
  | { readonly _tag: "Gone" }
  /** The stream ended (server timeout, dropped connection, error); resume from `resourceVersion`. */
  | {
      readonly _tag: "Ended"
      readonly resourceVersion: string
      readonly error: KubeClient.KubeError | undefined
      readonly delivered: number
    }

const decodeRelease = Schema.decodeUnknownEither(HelmReleaseResource)
const decodeList = Schema.decodeUnknown(ObjectList)
const decodeResourceVersion = Schema.decodeUnknownOption(ResourceVersionOnly)
const decodeStatus = Schema.decodeUnknownOption(Status)
const decodeName = Schema.decodeUnknownOption(Schema.Struct({ metadata: Schema.Struct({ name: Schema.String }) }))

const isFatal = (error: KubeClient.KubeError): boolean =>
  error.reason === "Untrusted" || error.reason === "Unauthorized" || error.reason === "Forbidden"

type LoopSettings = Required<Omit<KubernetesClusterWatchOptions, "reachability" | "requestTimeout">>

/**
 * Follows the running helm-controller's log and reports the lines that name a watched release;
 * re-discovers the pod when none runs yet or its log ends. Ends quietly on a fatal error (the
 * watch itself reports those).
 */
const tailHelmControllerLogs = (
  client: KubeClient.KubeClient,
  options: ClusterWatch.WatchOptions,
  settings: LoopSettings,
  mailbox: Mailbox.Mailbox<ReleaseEvent, ClusterWatch.ClusterError>
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const { namespace, namePrefix } = options
    while (true) {
      const pods = yield* client
        .request(`list helm-controller pods in ${namespace}`, (requestOptions) =>
          client.core.listNamespacedPod({ namespace, labelSelector: settings.logPodSelector }, requestOptions)
        )
        .pipe(Effect.either)
      if (Either.isLeft(pods) && isFatal(pods.left)) return
      const pod = Either.isRight(pods) ? pods.right.items.find((candidate) => candidate.status?.phase === "Running") : undefined
      const podName = pod?.metadata?.name
      if (pod === undefined || podName === undefined) {
        yield* Effect.sleep(settings.logRetryDelay)
        continue
      }
      const container = pod.spec?.containers[0]?.name ?? "manager"
      const now = yield* Clock.currentTimeMillis
      const sinceTime = new Date(now).toISOString().replace(/\.\d+Z$/, "Z")
      const ended = yield* client.followLog(namespace, podName, container, sinceTime).pipe(
        Stream.runForEach((line) => {
          const parsed = HelmControllerLog.parse(line, namePrefix)
          if (parsed === undefined) return Effect.void
          return Effect.flatMap(Clock.currentTimeMillis, (at) =>
            mailbox.offer(
              ReleaseEvent.Log({ release: parsed.release, level: parsed.level, message: parsed.message, timestamp: parsed.timestamp ?? at })
            )
          )
        }),
        Effect.either
      )
      if (Either.isLeft(ended) && isFatal(ended.left)) return
      yield* Effect.sleep(settings.logRetryDelay)
    }
  })

/** One watch session: the list/watch loop writing into `mailbox` until interrupted or a fatal error. */
const session = (
  client: KubeClient.KubeClient,
  options: ClusterWatch.WatchOptions,
  settings: LoopSettings,
  mailbox: Mailbox.Mailbox<ReleaseEvent, ClusterWatch.ClusterError>
): Effect.Effect<never, KubeClient.KubeError, Scope.Scope> =>
  Effect.gen(function* () {
    const { namespace, namePrefix } = options
    const known = new Map<string, Observation>()
    let synced = false
    let failures = 0
    const path = `/apis/${helmReleaseApi.group}/${helmReleaseApi.version}/namespaces/${encodeURIComponent(namespace)}/${helmReleaseApi.plural}`

    const observe = (object: unknown): Effect.Effect<void> => {
      const name = Option.map(decodeName(object), (named) => named.metadata.name)
      // Releases outside the prefix are not ours to judge, malformed or not.
      if (Option.isSome(name) && !name.value.startsWith(namePrefix)) return Effect.void
      const decoded = decodeRelease(object)
      if (Either.isLeft(decoded)) {
        return Effect.logWarning(`skipping a HelmRelease that does not decode (${Option.getOrElse(name, () => "unnamed")})`)
      }
      const observation = toObservation(decoded.right, namespace)
      const previous = known.get(observation.name)
      known.set(observation.name, observation)
      if (previous !== undefined && sameObservation(previous, observation)) return Effect.void
      return Effect.asVoid(mailbox.offer(ReleaseEvent.Observed({ release: observation })))
    }

    const forget = (name: string): Effect.Effect<void> => {
      if (!known.delete(name)) return Effect.void
      return Effect.asVoid(mailbox.offer(ReleaseEvent.Deleted({ name })))
    }

    const backoff = Effect.suspend(() => {
      const delay = Duration.min(
        Duration.times(Duration.decode(settings.reconnectInitialDelay), 2 ** Math.min(failures, 20)),
        Duration.decode(settings.reconnectMaxDelay)
      )
      failures++
      return Effect.sleep(delay)
    })

    /** Lists every page; reports what is new or changed, and what vanished; returns the list's resourceVersion. */
    const relist: Effect.Effect<string, KubeClient.KubeError, Scope.Scope> = Effect.gen(function* () {
      const items: Array<unknown> = []
      let continueToken: string | undefined = undefined
      let resourceVersion = ""
      do {
        const token: string | undefined = continueToken
        const page: typeof ObjectList.Type = yield* client
          .request(`list HelmReleases in ${namespace}`, (requestOptions) =>
            client.custom.listNamespacedCustomObject(
              { ...helmReleaseApi, namespace, limit: settings.listPageSize, ...(token === undefined ? {} : { _continue: token }) },
              requestOptions
            )
          )
          .pipe(
            Effect.flatMap((body) =>
              decodeList(body).pipe(
                Effect.mapError(
                  () =>
                    new KubeClient.KubeError({
                      reason: "Invalid",
                      message: `list HelmReleases in ${namespace}: the response is not a list`
                    })
                )
              )
            )
          )
        items.push(...page.items)
        resourceVersion = page.metadata.resourceVersion ?? resourceVersion
        continueToken = page.metadata.continue === undefined || page.metadata.continue === "" ? undefined : page.metadata.continue
      } while (continueToken !== undefined)
      const present = new Set<string>()
      for (const item of items) {
        const name = decodeName(item)
        if (Option.isSome(name)) present.add(name.value.metadata.name)
        yield* observe(item)
      }
      for (const name of [...known.keys()]) if (!present.has(name)) yield* forget(name)
      if (!synced) {
        synced = true
        yield* mailbox.offer(ReleaseEvent.Synced())
        if (settings.tailLogs) yield* Effect.forkScoped(tailHelmControllerLogs(client, options, settings, mailbox))
      }
      return resourceVersion
    })

    const watchFrom = (resourceVersion: string): Effect.Effect<WatchOutcome> => {
      let current = resourceVersion
      let delivered = 0
      let gone = false
      return client.watch(path, { resourceVersion, allowWatchBookmarks: true }).pipe(
        Stream.runForEachWhile((event) =>
          Effect.gen(function* () {
            delivered++
            if (event.type === "ERROR") {
              const status = decodeStatus(event.object)
              const code = Option.isSome(status) ? status.value.code : undefined
              if (code === 410) {
                gone = true
                return false
              }
              return yield* Effect.fail(
                KubeClient.fromStatus(`watch HelmReleases in ${namespace}`, code ?? 500, Option.getOrUndefined(status))
              )
            }
            const version = decodeResourceVersion(event.object).pipe(
              Option.flatMap((object) => Option.fromNullable(object.metadata.resourceVersion))
            )
            if (Option.isSome(version)) current = version.value
            if (event.type === "ADDED" || event.type === "MODIFIED") yield* observe(event.object)
            else if (event.type === "DELETED") {
              const name = decodeName(event.object)
              if (Option.isSome(name) && name.value.metadata.name.startsWith(namePrefix)) yield* forget(name.value.metadata.name)
            }
            return true
          })
        ),
        Effect.match({
          onFailure: (error): WatchOutcome =>
            error.reason === "Gone" ? { _tag: "Gone" } : { _tag: "Ended", resourceVersion: current, error, delivered },
          onSuccess: (): WatchOutcome =>
            gone ? { _tag: "Gone" } : { _tag: "Ended", resourceVersion: current, error: undefined, delivered }
        })
      )
    }

    const relistWithRetry: Effect.Effect<string, KubeClient.KubeError, Scope.Scope> = relist.pipe(
      Effect.tapError((error) => (isFatal(error) ? Effect.void : Effect.logWarning(`${error.message}; retrying`))),
      Effect.retry({
        while: (error) => !isFatal(error),
        schedule: Schedule.exponential(settings.reconnectInitialDelay).pipe(Schedule.union(Schedule.spaced(settings.reconnectMaxDelay)))
      })
    )

    while (true) {
      let resourceVersion = yield* relistWithRetry
      const resyncAt = (yield* Effect.clockWith((clock) => clock.currentTimeMillis)) + Duration.toMillis(options.resyncInterval)
      while (true) {
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const remaining = resyncAt - now
        if (remaining <= 0) break
        const outcome = yield* watchFrom(resourceVersion).pipe(Effect.timeout(Duration.millis(remaining)), Effect.option)
        if (Option.isNone(outcome)) break // resync due: a silent watch must not hide convergence
        const result = outcome.value
        if (result._tag === "Gone") {
          yield* Effect.logInfo(`HelmRelease watch in ${namespace}: resourceVersion expired (410 Gone); re-listing`)
          break
        }
        if (result.error !== undefined && isFatal(result.error)) return yield* Effect.fail(result.error)
        resourceVersion = result.resourceVersion
        if (result.delivered > 0 && result.error === undefined) failures = 0
        if (result.error !== undefined) {
          yield* Effect.logWarning(`HelmRelease watch in ${namespace} ended: ${result.error.message}; reconnecting`)
          yield* backoff
        } else if (result.delivered === 0) {
          // The server closed an idle watch at once; pace the reconnects.
          yield* backoff
        }
      }
    }
  })

/** A ClusterWatch over the Kubernetes API. */
export const make = (settings: KubernetesClusterWatchOptions = {}): ClusterWatch.ClusterWatchService => {
  const loopSettings = {
    reconnectInitialDelay: settings.reconnectInitialDelay ?? Duration.millis(500),
    reconnectMaxDelay: settings.reconnectMaxDelay ?? Duration.seconds(30),
    listPageSize: settings.listPageSize ?? 500,
    tailLogs: settings.tailLogs ?? true,
    logPodSelector: settings.logPodSelector ?? "app=helm-controller",
    logRetryDelay: settings.logRetryDelay ?? Duration.seconds(5)
  }
  return {
    watch: (kubeconfig: Redacted.Redacted<string>, options: ClusterWatch.WatchOptions) =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const client = yield* KubeClient.make(
            kubeconfig,
            settings.requestTimeout === undefined ? {} : { requestTimeout: settings.requestTimeout }
          )
          const mailbox = yield* Mailbox.make<ReleaseEvent, ClusterWatch.ClusterError>()
          yield* client.awaitReachable(settings.reachability).pipe(
            Effect.zipRight(session(client, options, loopSettings, mailbox)),
            Effect.catchAll((error) => mailbox.fail(KubeClient.toClusterError(error))),
            Effect.forkScoped
          )
          return Mailbox.toStream(mailbox)
        })
      )
  }
}

export const layer = (settings: KubernetesClusterWatchOptions = {}): Layer.Layer<ClusterWatch.ClusterWatch> =>
  Layer.succeed(ClusterWatch.ClusterWatch, make(settings))

/** Settings from configuration, e.g. `KubernetesClusterWatch.config` (all optional). */
export const config: Config.Config<KubernetesClusterWatchOptions> = Config.all({
  requestTimeout: Time.durationConfig("SOVEREIGN_KUBE_REQUEST_TIMEOUT").pipe(Config.withDefault(Duration.seconds(30))),
  tailLogs: Config.boolean("SOVEREIGN_KUBE_TAIL_LOGS").pipe(Config.withDefault(true)),
  reconnectMaxDelay: Time.durationConfig("SOVEREIGN_KUBE_RECONNECT_MAX_DELAY").pipe(Config.withDefault(Duration.seconds(30))),
  reachability: Config.all({
    budget: Time.durationConfig("SOVEREIGN_KUBE_REACHABILITY_BUDGET").pipe(Config.withDefault(Duration.minutes(10)))
  })
})

export const layerConfig = (
  settings: Config.Config<KubernetesClusterWatchOptions> = config
): Layer.Layer<ClusterWatch.ClusterWatch, ConfigError.ConfigError> => Layer.effect(ClusterWatch.ClusterWatch, Effect.map(settings, make))
