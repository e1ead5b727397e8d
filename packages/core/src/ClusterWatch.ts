/** The cluster-watch port: a region's Flux HelmReleases as a stream of observations (SPEC 2.6). */
import { Context, Data, Duration, Schema } from "effect"
import type { Effect, Redacted, Stream } from "effect"
import type { HelmReleaseObservation } from "./HelmRelease.js"
import type { LogLevel } from "./Job.js"

export const ClusterErrorReason = Schema.Literal("InvalidKubeconfig", "Untrusted", "Unreachable", "Forbidden", "Unknown")
export type ClusterErrorReason = typeof ClusterErrorReason.Type

export class ClusterError extends Schema.TaggedError<ClusterError>()("ClusterError", {
  reason: ClusterErrorReason,
  message: Schema.String
}) {
  get isRetryable(): boolean {
    return this.reason === "Unreachable"
  }
}

export type ReleaseEvent = Data.TaggedEnum<{
  /** The current state of one release; every release is observed at least once after attach. */
  Observed: { readonly release: HelmReleaseObservation }
  /** The release was deleted; it leaves the census. */
  Deleted: { readonly name: string }
  /** The initial list has been delivered (sent once per watch, after the first list). */
  Synced: {}
  /** A helm-controller log line, attributed to a release when it names one. */
  Log: { readonly release: string | undefined; readonly level: LogLevel; readonly message: string; readonly timestamp: number }
}>
export const ReleaseEvent = Data.taggedEnum<ReleaseEvent>()

export interface WatchOptions {
  readonly namespace: string
  readonly namePrefix: string
  /** Full re-list period, so a silent watch cannot hide convergence. */
  readonly resyncInterval: Duration.Duration
}

export const defaultWatchOptions: WatchOptions = {
  namespace: "flux-system",
  namePrefix: "bp-",
  resyncInterval: Duration.minutes(2)
}

export interface ClusterWatchService {
  /**
   * Lists, then watches, reconnecting and re-listing on its own; fails only for what retrying cannot
   * fix (an untrusted server, an invalid kubeconfig). Interrupting the stream stops the watch.
   */
  readonly watch: (kubeconfig: Redacted.Redacted<string>, options: WatchOptions) => Stream.Stream<ReleaseEvent, ClusterError>
}

export class ClusterWatch extends Context.Tag("@sovereign/core/ClusterWatch")<ClusterWatch, ClusterWatchService>() {}

export interface ClusterAccessService {
  /** Creates the owner's access object in the cluster; AlreadyExists is success. */
  readonly grantOwner: (
    kubeconfig: Redacted.Redacted<string>,
    owner: { readonly email: string; readonly role: string; readonly deploymentId: string }
  ) => Effect.Effect<void, ClusterError>
}

/** Cluster-side handover objects (SPEC 2.9). */
export class ClusterAccess extends Context.Tag("@sovereign/core/ClusterAccess")<ClusterAccess, ClusterAccessService>() {}
