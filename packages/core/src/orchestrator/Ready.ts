/** After the ready outcome (SPEC 2.9, §4.5): handover once, the secondaries' watches to their end, and the mesh, level-triggered. */
import { Duration, Effect, Option } from "effect"
import type { DeploymentRecord } from "../DeploymentRepo.js"
import type { MeshRegionStatus } from "../MeshPlan.js"
import type { MeshRegion } from "../MeshProvider.js"
import { announce, load, mutate, now, regionsOf, type Environment, type FlowPublisher } from "./Environment.js"
import { unfinishedSecondaries, watchSecondaries } from "./Phase1.js"

/** Prepares the handover and announces `handover-ready` once per deployment (recorded as `results.handoverAt`). */
export const handover = (env: Environment, record: DeploymentRecord) =>
  Effect.gen(function*() {
    if (record.results.handoverAt !== undefined) return
    const primary = regionsOf(record)[0]!
    if (Option.isSome(env.access)) {
      const kubeconfig = yield* Effect.orDie(env.kubeconfigs.get(record.id, primary.key))
      if (Option.isSome(kubeconfig)) {
        const granted = yield* Effect.either(
          env.access.value.grantOwner(kubeconfig.value, { email: record.owner, role: "sovereign-admin", deploymentId: record.id })
        )
        if (granted._tag === "Left") {
          yield* announce(env, record.id, [{
            phase: "handover", level: "warn", type: "handover-warning",
            message: `The owner's access object could not be created in ${primary.key} (${granted.left.message}); the handover link still works.`
          }])
        }
      }
    }
    if (Option.isSome(env.handover)) {
      const prepared = yield* Effect.either(env.handover.value.prepare(record))
      if (prepared._tag === "Left") {
        yield* announce(env, record.id, [{ phase: "handover", level: "warn", type: "handover-warning", message: `Handover preparation failed: ${prepared.left.message}` }])
      }
    }
    const at = yield* now
    const consoleUrl = `https://console.${record.spec.sovereignFQDN}`
    yield* mutate(env, record.id, (current) =>
      current.results.handoverAt !== undefined || current.status !== "ready"
        ? undefined
        : {
          changes: { results: { ...current.results, handoverAt: at } },
          events: [{
            at, phase: "handover", level: "info", type: "handover-ready", component: consoleUrl,
            message: `Ready for handover: ${consoleUrl}/auth/handover (the link with its short-lived token is minted on request)`
          }]
        })
  })

const meshSummary = (statuses: ReadonlyArray<MeshRegionStatus>) =>
  statuses.map((s) => `${s.regionKey}: ${s.peers.filter((p) => p.configured).length}/${s.peers.length} peers${s.error === undefined ? "" : ` (${s.error})`}`).join("; ")

/**
 * Level-triggered ClusterMesh: a pass, then backoff while any region misses a peer, then a heal pass
 * every few minutes; runs until interrupted. Each change of the per-region picture is persisted and announced.
 */
export const meshLoop = (env: Environment, id: string) =>
  Effect.gen(function*() {
    if (Option.isNone(env.mesh)) return
    const mesh = env.mesh.value
    let delay = env.settings.meshRetryBase
    let lastSummary = ""
    while (true) {
      const record = yield* load(env, id)
      const regions: Array<MeshRegion> = []
      for (const region of regionsOf(record)) {
        const kubeconfig = yield* Effect.orDie(env.kubeconfigs.get(id, region.key))
        if (Option.isSome(kubeconfig)) regions.push({ region, kubeconfig: kubeconfig.value })
      }
      const pass = regions.length >= 2 ? yield* Effect.either(mesh.establish(record.id, regions)) : undefined
      let complete = false
      if (pass !== undefined && pass._tag === "Right") {
        const statuses = pass.right
        complete = regions.length === regionsOf(record).length &&
          statuses.every((s) => s.error === undefined && s.peers.length === regions.length - 1 && s.peers.every((p) => p.configured))
        const summary = meshSummary(statuses)
        if (summary !== lastSummary) {
          lastSummary = summary
          const at = yield* now
          yield* mutate(env, id, (current) => ({
            changes: { results: { ...current.results, mesh: statuses } },
            events: [{
              at, phase: "mesh", level: complete ? "info" : "warn", type: "mesh", state: complete ? "connected" : "connecting",
              message: complete ? `ClusterMesh connected: ${summary}` : `ClusterMesh not complete yet, retrying: ${summary}`
            }]
          }))
        }
      } else if (pass !== undefined && pass._tag === "Left") {
        const summary = `error: ${pass.left.message}`
        if (summary !== lastSummary) {
          lastSummary = summary
          yield* announce(env, id, [{ phase: "mesh", level: "warn", type: "mesh", state: "error", message: `ClusterMesh pass failed (${pass.left.message}); retrying with backoff` }])
        }
      }
      if (complete) {
        delay = env.settings.meshRetryBase
        yield* Effect.sleep(env.settings.meshHealInterval)
      } else {
        yield* Effect.sleep(delay)
        delay = Duration.min(Duration.times(delay, 2), env.settings.meshRetryCap)
      }
    }
  })

/** Everything a ready deployment still does; returns only when nothing is left (single region, mesh-less, all watched). */
export const whileReady = (env: Environment, record: DeploymentRecord, flow: FlowPublisher) =>
  Effect.gen(function*() {
    yield* handover(env, record)
    const current = yield* load(env, record.id)
    const meshed = regionsOf(current).length >= 2 && Option.isSome(env.mesh)
    yield* Effect.all(
      [
        unfinishedSecondaries(current).length > 0 ? watchSecondaries(env, current, flow) : Effect.void,
        meshed ? meshLoop(env, current.id) : Effect.void
      ],
      { concurrency: "unbounded", discard: true }
    )
  })
