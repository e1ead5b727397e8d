/**
 * The kubeconfig call-back (SPEC §4.2, issue 16): when a region's postback token opens anything, and
 * what a delivered kubeconfig must be before it is stored: our Schema, a real CA, and a server that is
 * the region's own control plane. A refused call-back stores nothing and spends nothing.
 */
import { Duration, Effect, Option, Redacted, Schedule } from "effect"
import type { Region } from "../Deployment.js"
import type { DeploymentRecord } from "../DeploymentRepo.js"
import * as Kubeconfig from "../Kubeconfig.js"
import { cloudDeployment, now, type Environment } from "./Environment.js"

/** Whether a region's postback token opens its call-back now (the kubeconfig still to come). */
export type CallbackWindow =
  | { readonly _tag: "Open" }
  /** The deployment has not started building the region; the control plane cannot exist yet. */
  | { readonly _tag: "NotYet"; readonly message: string }
  /** The region's Phase 0 ended without its kubeconfig (failed, or gave up waiting): a retry re-opens it. */
  | { readonly _tag: "Ended"; readonly message: string }
  /** Wiping, wiped or handed over: nothing opens it again. */
  | { readonly _tag: "Closed"; readonly message: string }

const closedStatuses = new Set(["wiping", "wiped", "adopted"])

/**
 * The call-back window of a region whose kubeconfig is not stored yet. Pure; the caller also checks
 * that the region's control plane exists (the cloud reports its address).
 */
export const callbackWindow = (record: DeploymentRecord, regionKey: string): CallbackWindow => {
  if (closedStatuses.has(record.status)) return { _tag: "Closed", message: `the deployment is ${record.status}` }
  if (record.status === "pending") return { _tag: "NotYet", message: `the control plane of ${regionKey} does not exist yet` }
  const retry = `POST /api/v1/deployments/${record.id}/retry re-opens the call-back`
  if (record.status === "failed" || record.status === "partial-failure") {
    return { _tag: "Ended", message: `the deployment is ${record.status}; ${retry}` }
  }
  const result = record.results.regions.find((region) => region.regionKey === regionKey)
  if (result?.phase0 === "failed") return { _tag: "Ended", message: `Phase 0 of ${regionKey} failed; ${retry}` }
  if (result?.phase1?.state === "failed" || result?.phase1?.state === "degraded") {
    return { _tag: "Ended", message: `region ${regionKey} stopped waiting for its kubeconfig; ${retry}` }
  }
  return { _tag: "Open" }
}

/** Why a call-back (or an owner's replacement) was not taken; `reason` decides the answer, never the text. */
export type CallbackRefusal =
  | { readonly _tag: "NotFound"; readonly message: string }
  | { readonly _tag: "NotOpen"; readonly message: string }
  | { readonly _tag: "Closed"; readonly message: string }
  | { readonly _tag: "AlreadySet"; readonly message: string }
  | { readonly _tag: "Unavailable"; readonly message: string }
  | { readonly _tag: "Refused"; readonly refused: Kubeconfig.KubeconfigRefused }

const shortRetry = Schedule.exponential(Duration.millis(200)).pipe(Schedule.intersect(Schedule.recurs(3)))

/**
 * The region's control-plane and load-balancer addresses: what the cloud reports now (the call-back
 * may come before Phase 0 recorded its outputs), else what Phase 0 recorded. `None`: the cloud knows
 * no control plane of the region yet.
 */
export const regionAddresses = (env: Environment, record: DeploymentRecord, region: Region) =>
  Effect.gen(function* () {
    const recorded = record.results.regions.find((r) => r.regionKey === region.key)
    const fromRecord = [...(recorded?.controlPlaneIPs ?? []), ...(recorded?.loadBalancerIP === undefined ? [] : [recorded.loadBalancerIP])]
    const live = yield* cloudDeployment(env, record).pipe(
      Effect.flatMap((deployment) =>
        env.cloud.outputs(deployment).pipe(Effect.retry({ schedule: shortRetry, while: (error) => error.isRetryable }))
      ),
      Effect.either
    )
    if (live._tag === "Left") {
      if (fromRecord.length > 0) return Option.some(fromRecord)
      return yield* Effect.fail<CallbackRefusal>({
        _tag: "Unavailable",
        message: `the cloud could not report the addresses of ${region.key}: ${live.left.message}`
      })
    }
    const output = live.right.find((o) => o.regionKey === region.key)
    if (output === undefined || output.controlPlaneIPs.length === 0) return Option.none<ReadonlyArray<string>>()
    const addresses = [...output.controlPlaneIPs, ...(output.loadBalancerIP === "" ? [] : [output.loadBalancerIP])]
    return Option.some([...new Set([...addresses, ...fromRecord])])
  })

/**
 * Takes a region's kubeconfig. `replace` is the owner's repair path (authenticated, not the postback
 * token): it skips the single use and the window, but never the document, CA and server checks.
 */
export const arrive = (
  env: Environment,
  record: DeploymentRecord,
  region: Region,
  document: Redacted.Redacted<unknown>,
  options: { readonly replace: boolean }
) =>
  Effect.gen(function* () {
    if (closedStatuses.has(record.status))
      return yield* Effect.fail<CallbackRefusal>({ _tag: "Closed", message: `the deployment is ${record.status}` })
    if (!options.replace) {
      const stored = yield* env.kubeconfigs
        .get(record.id, region.key)
        .pipe(Effect.mapError((error): CallbackRefusal => ({ _tag: "Unavailable", message: error.message })))
      if (Option.isSome(stored))
        return yield* Effect.fail<CallbackRefusal>({ _tag: "AlreadySet", message: `region ${region.key} already delivered its kubeconfig` })
      const window = callbackWindow(record, region.key)
      if (window._tag === "Closed") return yield* Effect.fail<CallbackRefusal>({ _tag: "Closed", message: window.message })
      if (window._tag !== "Open") return yield* Effect.fail<CallbackRefusal>({ _tag: "NotOpen", message: window.message })
    }
    const addresses = yield* regionAddresses(env, record, region)
    if (Option.isNone(addresses)) {
      return yield* Effect.fail<CallbackRefusal>({ _tag: "NotOpen", message: `the control plane of ${region.key} does not exist yet` })
    }
    const kubeconfig = yield* Kubeconfig.admit(Redacted.value(document), {
      addresses: addresses.value,
      fqdn: record.spec.sovereignFQDN
    }).pipe(
      Effect.mapError((refused): CallbackRefusal => ({ _tag: "Refused", refused })),
      Effect.provideService(Kubeconfig.KubeconfigInspector, env.inspector)
    )
    const at = yield* now
    const normalised = Kubeconfig.render(kubeconfig)
    const store = options.replace
      ? env.kubeconfigs.replace(record.id, region.key, normalised, at)
      : env.kubeconfigs.put(record.id, region.key, normalised, at)
    yield* store.pipe(
      Effect.mapError((error): CallbackRefusal =>
        error.reason === "AlreadySet" ? { _tag: "AlreadySet", message: error.message } : { _tag: "Unavailable", message: error.message }
      )
    )
    yield* env.repo
      .appendEvents(record.id, [
        {
          at,
          phase: "kubeconfig",
          level: "info",
          type: "kubeconfig",
          region: region.key,
          message: options.replace
            ? `The owner replaced the kubeconfig of ${region.key} (server ${kubeconfig.cluster.server})`
            : `The control plane of ${region.key} called back with its kubeconfig (server ${kubeconfig.cluster.server})`
        }
      ])
      .pipe(Effect.mapError((error): CallbackRefusal => ({ _tag: "Unavailable", message: error.message })))
  })
