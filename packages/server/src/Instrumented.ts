/**
 * Core's ports as the orchestrator sees them in the server: each adapter call a span (with
 * `deployment.id` and `step`) and counted in `Telemetry`'s metrics; the ports' behaviour is unchanged.
 */
import type { CloudProvider, ClusterWatch, DnsProvider, MeshProvider } from "@sovereign/core"
import { DeploymentRepo, HelmRelease, JobRepo } from "@sovereign/core"
import { Cause, Context, Effect, Exit, Layer, Metric, Stream } from "effect"
import * as Telemetry from "./Telemetry.js"

const countCloud =
  (provider: string) =>
  <A>(exit: Exit.Exit<A, CloudProvider.CloudError>) =>
    Exit.isInterrupted(exit)
      ? Effect.void
      : Metric.increment(
          Metric.tagged(Metric.tagged(Telemetry.cloudRequests, "provider", provider), "code", Exit.isSuccess(exit) ? "ok" : errorCode(exit))
        )

const errorCode = <A>(exit: Exit.Exit<A, { readonly reason: string }>) =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.reason : "defect"

export const cloud = (service: CloudProvider.CloudProviderService): CloudProvider.CloudProviderService => {
  const call = <A>(operation: string, effect: Effect.Effect<A, CloudProvider.CloudError>, attributes: Record<string, string>) =>
    effect.pipe(
      Effect.onExit((exit) => countCloud(service.provider)(exit)),
      Effect.withSpan(`cloud.${operation}`, { kind: "client", attributes: { "cloud.provider": service.provider, ...attributes } })
    )
  return {
    ...service,
    validate: (spec) => call("validate", service.validate(spec), {}),
    plan: (deployment) => call("plan", service.plan(deployment), { "deployment.id": deployment.id }),
    // One log line per applied step, like a controller's reconcile line; the run's annotations add `deploymentId` and `step`.
    apply: (deployment, step) =>
      call("apply", service.apply(deployment, step), { "deployment.id": deployment.id, step: step.name, region: step.region }).pipe(
        Effect.tapError((error) => Effect.logWarning(`cloud step ${step.name} failed in ${step.region}`, Cause.fail(error))),
        Effect.tap(() => Effect.logInfo(`cloud step ${step.name} applied in ${step.region}`))
      ),
    outputs: (deployment) => call("outputs", service.outputs(deployment), { "deployment.id": deployment.id }),
    inventory: (deployment) => call("inventory", service.inventory(deployment), { "deployment.id": deployment.id }),
    purge: (deployment) => call("purge", service.purge(deployment), { "deployment.id": deployment.id })
  }
}

const releaseState = (event: ClusterWatch.ReleaseEvent): string | undefined => {
  switch (event._tag) {
    case "Observed":
      return HelmRelease.deriveState(event.release).state
    case "Deleted":
      return "deleted"
    default:
      return undefined
  }
}

export const watch = (service: ClusterWatch.ClusterWatchService): ClusterWatch.ClusterWatchService => ({
  watch: (kubeconfig, options) =>
    service.watch(kubeconfig, options).pipe(
      Stream.tap((event) => {
        const state = releaseState(event)
        return state === undefined ? Effect.void : Metric.increment(Metric.tagged(Telemetry.releaseEvents, "state", state))
      }),
      Stream.withSpan("cluster.watch", { kind: "client", attributes: { namespace: options.namespace } })
    )
})

export const access = (service: ClusterWatch.ClusterAccessService): ClusterWatch.ClusterAccessService => ({
  grantOwner: (kubeconfig, owner) =>
    service
      .grantOwner(kubeconfig, owner)
      .pipe(Effect.withSpan("cluster.grantOwner", { kind: "client", attributes: { "deployment.id": owner.deploymentId } }))
})

export const dns = (service: DnsProvider.DnsProviderService): DnsProvider.DnsProviderService => ({
  zones: () => service.zones().pipe(Effect.withSpan("dns.zones", { kind: "client" })),
  records: (zone) => service.records(zone).pipe(Effect.withSpan("dns.records", { kind: "client", attributes: { zone } })),
  apply: (zone, changes) =>
    service.apply(zone, changes).pipe(
      Effect.tap(() =>
        Effect.all(
          [
            Metric.incrementBy(Metric.tagged(Telemetry.dnsChanges, "action", "create"), changes.create.length),
            Metric.incrementBy(Metric.tagged(Telemetry.dnsChanges, "action", "update"), changes.update.length),
            Metric.incrementBy(Metric.tagged(Telemetry.dnsChanges, "action", "delete"), changes.delete.length)
          ],
          { discard: true }
        )
      ),
      Effect.withSpan("dns.apply", { kind: "client", attributes: { zone } })
    )
})

export const mesh = (service: MeshProvider.MeshProviderService): MeshProvider.MeshProviderService => ({
  establish: (deploymentId, regions) =>
    service
      .establish(deploymentId, regions)
      .pipe(Effect.withSpan("mesh.establish", { kind: "client", attributes: { "deployment.id": deploymentId } }))
})

// ---------------------------------------------------------------------------------------------
// The store as the orchestrator uses it

const countStoreError = <A, E extends { readonly reason: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.tapError(effect, (error) => Metric.increment(Metric.tagged(Telemetry.storeErrors, "reason", error.reason)))

type Phase = "phase0" | "phase1" | "wipe"

const phaseOf = (status: DeploymentRepo.Status): Phase | undefined =>
  status === "pending" || status === "provisioning"
    ? "phase0"
    : status === "phase1-watching"
      ? "phase1"
      : status === "wiping"
        ? "wipe"
        : undefined

/**
 * Counts failed store calls; measures steps from their "running" journal entry to their outcome, and
 * phases from the status change that entered them to the one that left (what this process saw).
 */
export const deploymentRepo = (service: DeploymentRepo.DeploymentRepoService): DeploymentRepo.DeploymentRepoService => {
  const stepStarts = new Map<string, number>()
  const phaseStarts = new Map<string, { readonly phase: Phase; readonly at: number }>()
  const enter = (id: string, status: DeploymentRepo.Status, at: number) =>
    Effect.suspend(() => {
      const previous = phaseStarts.get(id)
      const next = phaseOf(status)
      if (previous !== undefined && previous.phase === next) return Effect.void
      if (next === undefined) phaseStarts.delete(id)
      else phaseStarts.set(id, { phase: next, at })
      return previous === undefined
        ? Effect.void
        : Metric.update(Metric.tagged(Telemetry.phaseDuration, "phase", previous.phase), Math.max(0, at - previous.at) / 1000)
    })
  const wrapped: DeploymentRepo.DeploymentRepoService = {
    ...service,
    create: (record, event) =>
      countStoreError(service.create(record, event)).pipe(Effect.tap((created) => enter(created.id, created.status, created.createdAt))),
    get: (id) => countStoreError(service.get(id)),
    list: (filter) => countStoreError(service.list(filter)),
    update: (id, expectedVersion, changes, events, updatedAt) =>
      countStoreError(service.update(id, expectedVersion, changes, events, updatedAt)).pipe(
        Effect.tap(({ record }) => (changes.status === undefined ? Effect.void : enter(id, record.status, updatedAt)))
      ),
    appendEvents: (id, events) => countStoreError(service.appendEvents(id, events)),
    events: (id, afterSeq) => countStoreError(service.events(id, afterSeq)),
    recordStep: (entry) =>
      countStoreError(service.recordStep(entry)).pipe(
        Effect.tap(() =>
          Effect.suspend(() => {
            const key = `${entry.deploymentId}/${entry.jobName}`
            if (entry.status === "running") {
              stepStarts.set(key, entry.at)
              return Effect.void
            }
            const startedAt = stepStarts.get(key)
            stepStarts.delete(key)
            return Effect.all(
              [
                Metric.increment(Metric.tagged(Metric.tagged(Telemetry.stepTotal, "step", entry.step), "result", entry.status)),
                startedAt === undefined
                  ? Effect.void
                  : Metric.update(Metric.tagged(Telemetry.stepDuration, "step", entry.step), Math.max(0, entry.at - startedAt) / 1000)
              ],
              { discard: true }
            )
          })
        )
      ),
    journal: (id) => countStoreError(service.journal(id))
  }
  return wrapped
}

export const jobRepo = (service: JobRepo.JobRepoService): JobRepo.JobRepoService => {
  const wrapped = { ...service } as Record<string, unknown>
  for (const [name, member] of Object.entries(service)) {
    if (typeof member === "function") {
      wrapped[name] = (...args: ReadonlyArray<unknown>) => {
        const result = (member as (...args: ReadonlyArray<unknown>) => unknown)(...args)
        return Effect.isEffect(result) ? countStoreError(result as Effect.Effect<unknown, JobRepo.JobRepoError>) : result
      }
    }
  }
  return wrapped as unknown as JobRepo.JobRepoService
}

/** The store ports of the context, instrumented, for the layers built on them (the orchestrator). */
export const storeLayer: Layer.Layer<
  DeploymentRepo.DeploymentRepo | JobRepo.JobRepo,
  never,
  DeploymentRepo.DeploymentRepo | JobRepo.JobRepo
> = Layer.effectContext(
  Effect.gen(function* () {
    const repo = yield* DeploymentRepo.DeploymentRepo
    const jobs = yield* JobRepo.JobRepo
    return Context.make(DeploymentRepo.DeploymentRepo, deploymentRepo(repo)).pipe(Context.add(JobRepo.JobRepo, jobRepo(jobs)))
  })
)
