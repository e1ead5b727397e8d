/**
 * After the ready outcome (SPEC 2.9, §4.5), every step a job: the owner's access per region, the
 * handover once, DNS if it is still unpublished, the secondaries' watches to their end, and the mesh
 * of each region once its bootstrap kit converged, level-triggered.
 */
import { Duration, Effect, Option, Queue } from "effect"
import type { Region } from "../Deployment.js"
import type { DeploymentRecord } from "../DeploymentRepo.js"
import * as Lifecycle from "../Lifecycle.js"
import type { MeshRegionStatus } from "../MeshPlan.js"
import type { MeshRegion } from "../MeshProvider.js"
import { publishDns } from "./Dns.js"
import { announce, load, mutate, now, regionsOf, retrySchedule, type Environment, type FlowPublisher } from "./Environment.js"
import { closeRunning, jobsOf, record as recordWrites, runStep, type StepOutcome } from "./Lifecycle.js"
import { reportSecondary, unfinishedSecondaries, watchRegion } from "./Phase1.js"
import { storeCall } from "./StoreWait.js"

/** Whether a `ready` deployment still has work after a restart (its run is resumed). */
export const needsWork = (env: Environment, record: DeploymentRecord): boolean =>
  record.results.handoverAt === undefined || regionsOf(record).length >= 2 || (record.results.dns === undefined && Option.isSome(env.dns))

/**
 * The owner's access object in one region (the `handover-access` job of that region): waits for the
 * region's kubeconfig (a secondary may call back late), then grants, retrying what is retryable.
 * A failure is a warning event too: the handover link works without it.
 */
export const ownerAccess = (env: Environment, record: DeploymentRecord, flow: FlowPublisher, region: Region) =>
  Effect.gen(function* () {
    if (Option.isNone(env.access)) return
    const access = env.access.value
    const kubeconfig = yield* env.kubeconfigs
      .await(record.id, region.key)
      .pipe(
        (effect) => storeCall(env, `awaiting the kubeconfig of ${record.id}/${region.key}`, effect),
        Effect.timeoutOption(env.settings.kubeconfigArrivalTimeout)
      )
    const job = Lifecycle.job({ deploymentId: record.id, region, step: "handover-access" })
    yield* runStep(env, record, flow, job, (log) =>
      Effect.gen(function* () {
        if (Option.isNone(kubeconfig)) {
          const reason = `region ${region.key} never called back with its kubeconfig: the owner has no access object there`
          yield* log.error(reason)
          return { status: "failed", reason } satisfies StepOutcome
        }
        yield* log.info(`Granting ${record.owner} the role sovereign-admin in the cluster of ${region.key}`)
        let attempts = 0
        const granted = yield* access
          .grantOwner(kubeconfig.value, { email: record.owner, role: "sovereign-admin", deploymentId: record.id })
          .pipe(
            Effect.tapError((error) =>
              Effect.zipRight(
                Effect.sync(() => void attempts++),
                error.isRetryable
                  ? log.warn(`attempt ${attempts}: ${error.reason}: ${error.message} (will retry with backoff)`)
                  : Effect.void
              )
            ),
            Effect.retry({ schedule: retrySchedule(env.settings), while: (error) => error.isRetryable }),
            Effect.either
          )
        if (granted._tag === "Left") {
          yield* announce(env, record.id, [
            {
              phase: "handover",
              level: "warn",
              type: "handover-warning",
              region: region.key,
              message: `The owner's access object could not be created in ${region.key} (${granted.left.message}); the handover link still works.`
            }
          ])
          yield* log.error(`${granted.left.reason}: ${granted.left.message}`)
          return {
            status: "failed",
            reason: `the owner's access object could not be created: ${granted.left.message}`
          } satisfies StepOutcome
        }
        yield* log.info(`The owner's access object exists in ${region.key}`)
        return { status: "succeeded" } satisfies StepOutcome
      })
    )
  })

/**
 * The handover, once per deployment (recorded as `results.handoverAt`): the owner's access in the
 * primary region, then the `handover-token` job, which prepares the handover and announces
 * `handover-ready`. Returns whether it ran (false when it had happened before).
 */
export const handover = (env: Environment, record: DeploymentRecord, flow: FlowPublisher) =>
  Effect.gen(function* () {
    if (record.results.handoverAt !== undefined) return false
    const primary = regionsOf(record)[0]!
    yield* ownerAccess(env, record, flow, primary)
    const job = Lifecycle.job({ deploymentId: record.id, region: primary, step: "handover-token" })
    const consoleUrl = `https://console.${record.spec.sovereignFQDN}`
    yield* runStep(env, record, flow, job, (log) =>
      Effect.gen(function* () {
        yield* log.info(`Preparing the handover of ${record.spec.sovereignFQDN} to ${record.owner}`)
        let problem: string | undefined
        if (Option.isSome(env.handover)) {
          const prepared = yield* env.handover.value
            .prepare(record)
            .pipe(Effect.retry({ schedule: retrySchedule(env.settings), while: (error) => error.isRetryable }), Effect.either)
          if (prepared._tag === "Left") {
            problem = prepared.left.message
            yield* announce(env, record.id, [
              { phase: "handover", level: "warn", type: "handover-warning", message: `Handover preparation failed: ${problem}` }
            ])
            yield* log.error(`Handover preparation failed: ${problem}`)
          }
        }
        const at = yield* now
        yield* mutate(env, record.id, (current) =>
          current.results.handoverAt !== undefined || current.status !== "ready"
            ? undefined
            : {
                changes: { results: { ...current.results, handoverAt: at } },
                events: [
                  {
                    at,
                    phase: "handover",
                    level: "info",
                    type: "handover-ready",
                    component: consoleUrl,
                    message: `Ready for handover: ${consoleUrl}/auth/handover (the link with its short-lived token is minted on request)`
                  }
                ]
              }
        )
        yield* log.info(`Ready for handover: ${consoleUrl}/auth/handover (the link with its short-lived token is minted on request)`)
        return problem === undefined
          ? ({ status: "succeeded" } satisfies StepOutcome)
          : ({ status: "failed", reason: `handover preparation failed: ${problem}; the handover link still works` } satisfies StepOutcome)
      })
    )
    return true
  })

/** Whether a region may join the mesh now, never will (as things stand), or not yet. */
type Eligibility = { readonly _tag: "Eligible" } | { readonly _tag: "Excluded"; readonly reason: string } | { readonly _tag: "Waiting" }

/** A region joins the mesh once its bootstrap kit converged: the primary with the ready outcome, a secondary with its own. */
const eligibility = (record: DeploymentRecord, region: Region): Eligibility => {
  if (region.primary) return { _tag: "Eligible" }
  const result = record.results.regions.find((r) => r.regionKey === region.key)
  const state = result?.phase1?.state
  if (state === "ready") return { _tag: "Eligible" }
  if (state === "failed" || state === "degraded") {
    return { _tag: "Excluded", reason: `not meshed: the bootstrap kit of ${region.key} did not converge (${state})` }
  }
  return { _tag: "Waiting" }
}

const overallSummary = (statuses: ReadonlyArray<MeshRegionStatus>) =>
  statuses
    .map(
      (s) =>
        `${s.regionKey}: ${s.peers.filter((p) => p.configured).length}/${s.peers.length} peers${s.error === undefined ? "" : ` (${s.error})`}`
    )
    .join("; ")

const fingerprintOf = (statuses: ReadonlyArray<MeshRegionStatus> | undefined) =>
  (statuses ?? []).map((status) => Lifecycle.meshFingerprint(status)).join("\n")

/**
 * Level-triggered ClusterMesh over the regions whose bootstrap kit converged: a pass, then backoff
 * while any of them misses a peer, then a heal pass every few minutes (earlier when a region joins);
 * runs until interrupted. Each region's `cutover-mesh` job shows what the passes did
 * (`Lifecycle.meshStep`); each change of the per-region picture is persisted and announced.
 */
export const meshLoop = (env: Environment, id: string, flow: FlowPublisher, joined: Queue.Dequeue<void>) =>
  Effect.gen(function* () {
    if (Option.isNone(env.mesh)) return
    const mesh = env.mesh.value
    const attempts = Lifecycle.meshAttempts(env.settings.meshRetryBase, env.settings.meshRetryCap)
    const memory = new Map<string, Lifecycle.MeshMemory>()
    let delay = env.settings.meshRetryBase
    const initial = yield* load(env, id)
    let lastFingerprint = fingerprintOf(initial.results.mesh)
    let lastSummary = initial.results.mesh === undefined ? "" : overallSummary(initial.results.mesh)
    while (true) {
      const record = yield* load(env, id)
      const all = regionsOf(record)
      const verdicts = all.map((region) => ({ region, eligibility: eligibility(record, region) }))
      const eligible: Array<MeshRegion> = []
      for (const { region, eligibility } of verdicts) {
        if (eligibility._tag !== "Eligible") continue
        const kubeconfig = yield* storeCall(env, `reading a kubeconfig of deployment ${id}`, env.kubeconfigs.get(id, region.key))
        if (Option.isSome(kubeconfig)) eligible.push({ region, kubeconfig: kubeconfig.value })
      }
      const waiting = verdicts.filter((v) => v.eligibility._tag === "Waiting").length
      const pass = eligible.length >= 2 ? yield* Effect.either(mesh.establish(record.id, eligible)) : undefined

      // What the pass says about each region.
      const observations = new Map<string, Lifecycle.MeshObservation>()
      for (const { region, eligibility } of verdicts) {
        if (eligibility._tag === "Excluded") observations.set(region.key, { _tag: "Excluded", reason: eligibility.reason })
      }
      if (pass === undefined) {
        if (waiting === 0) {
          const others = verdicts.flatMap((v) => (v.eligibility._tag === "Excluded" ? [v.eligibility.reason] : []))
          for (const { region } of eligible) {
            observations.set(region.key, {
              _tag: "Excluded",
              reason: `no other region can join the mesh (${others.join("; ") || "none is left"})`
            })
          }
        }
      } else if (pass._tag === "Left") {
        for (const { region } of eligible)
          observations.set(region.key, { _tag: "Retrying", reason: `the mesh pass could not run: ${pass.left.message}` })
      } else {
        for (const { region } of eligible) {
          const status = pass.right.find((s) => s.regionKey === region.key)
          const previous = record.results.mesh?.find((s) => s.regionKey === region.key)
          observations.set(region.key, Lifecycle.meshObservationOf(status, eligible.length - 1, previous))
        }
      }

      // Each region's job.
      if (observations.size > 0) {
        const jobs = new Map((yield* jobsOf(env, id)).map((job) => [job.jobName, job]))
        const at = yield* now
        const writes = []
        for (const region of all) {
          const observation = observations.get(region.key)
          if (observation === undefined) continue
          const planned = Lifecycle.job({ deploymentId: id, region, step: "cutover-mesh" })
          const step = Lifecycle.meshStep({
            job: jobs.get(planned.jobName) ?? planned,
            observation,
            memory: memory.get(region.key),
            attempts,
            at,
            executionId: yield* env.ids.executionId
          })
          memory.set(region.key, step.memory)
          writes.push(...step.writes)
        }
        if (writes.length > 0) {
          yield* recordWrites(env, id, writes)
          yield* flow.publish
        }
      }

      // The per-region picture, persisted when it changed.
      let settled = false
      if (pass !== undefined && pass._tag === "Right") {
        const statuses = pass.right
        settled = [...observations.values()].every((o) => o._tag !== "Retrying")
        const complete = settled && waiting === 0 && eligible.length === all.length
        const fingerprint = fingerprintOf(statuses)
        const summary = overallSummary(statuses)
        if (fingerprint !== lastFingerprint) {
          lastFingerprint = fingerprint
          const at = yield* now
          const announceIt = summary !== lastSummary
          lastSummary = summary
          yield* mutate(env, id, (current) => ({
            changes: { results: { ...current.results, mesh: statuses } },
            events: announceIt
              ? [
                  {
                    at,
                    phase: "mesh",
                    level: settled ? "info" : "warn",
                    type: "mesh",
                    state: complete ? "connected" : "connecting",
                    message: complete
                      ? `ClusterMesh connected: ${summary}`
                      : settled
                        ? `ClusterMesh connected so far: ${summary}`
                        : `ClusterMesh not complete yet, retrying: ${summary}`
                  }
                ]
              : []
          }))
        }
      } else if (pass !== undefined && pass._tag === "Left") {
        const summary = `error: ${pass.left.message}`
        if (summary !== lastSummary) {
          lastSummary = summary
          yield* announce(env, id, [
            {
              phase: "mesh",
              level: "warn",
              type: "mesh",
              state: "error",
              message: `ClusterMesh pass failed (${pass.left.message}); retrying with backoff`
            }
          ])
        }
      } else {
        settled = true // nothing to mesh yet, or nothing left to mesh with
      }

      // Backoff while a region misses a peer; otherwise a heal pass later, or as soon as a region joins.
      const wait = settled ? env.settings.meshHealInterval : delay
      delay = settled ? env.settings.meshRetryBase : Duration.min(Duration.times(delay, 2), env.settings.meshRetryCap)
      yield* Effect.raceFirst(Effect.sleep(wait), Queue.take(joined))
    }
  }).pipe(
    // Stopped (the owner finalised, a wipe, a shutdown): no mesh execution of this process stays running.
    Effect.onInterrupt(() =>
      closeRunning(
        env,
        id,
        (job) => Lifecycle.stepOf(job.jobName) === "cutover-mesh",
        "interrupted: the mesh loop stopped (the deployment changed status or the server is stopping)"
      )
    )
  )

/**
 * Everything a ready deployment still does; returns only when nothing is left (single region,
 * mesh-less, every region watched, every lifecycle step done).
 */
export const whileReady = (env: Environment, record: DeploymentRecord, flow: FlowPublisher) =>
  Effect.gen(function* () {
    const handedOver = yield* handover(env, record, flow)
    const current = yield* load(env, record.id)
    const regions = regionsOf(current)
    const meshed = regions.length >= 2 && Option.isSome(env.mesh)
    const joined = yield* Queue.sliding<void>(1)
    // The owner's access everywhere it is not yet (the primary's was just attempted by the handover).
    const jobs = yield* jobsOf(env, current.id)
    const accessDone = (region: Region) =>
      (handedOver && region.primary) ||
      jobs.some((job) => job.jobName === Lifecycle.jobName(region, "handover-access") && job.status === "succeeded")
    const accessTodo = Option.isSome(env.access) ? regions.filter((region) => !accessDone(region)) : []
    // Each secondary is watched to its end; a region whose bootstrap kit converges joins the mesh at once.
    const watches = Effect.forEach(
      unfinishedSecondaries(current),
      (region) =>
        watchRegion(env, current, region, flow, env.settings.kubeconfigArrivalTimeout).pipe(
          Effect.flatMap((verdict) => reportSecondary(env, current, region, verdict)),
          Effect.zipRight(Queue.offer(joined, undefined))
        ),
      { concurrency: "unbounded", discard: true }
    )
    yield* Effect.all(
      [
        watches,
        Effect.forEach(accessTodo, (region) => ownerAccess(env, current, flow, region), { concurrency: "unbounded", discard: true }),
        // DNS that Phase 1 did not get to publish (it ended first, or every attempt failed) is tried once more.
        current.results.dns === undefined ? publishDns(env, current.id, flow) : Effect.void,
        meshed ? meshLoop(env, current.id, flow, joined) : Effect.void
      ],
      { concurrency: "unbounded", discard: true }
    )
  })
