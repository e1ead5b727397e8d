/** The orchestration program against hand-written fakes: no simulator, so core's own contract is visible. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, Stream, TestClock } from "effect"
import { CloudError, CloudProvider, type CloudProviderService } from "../src/CloudProvider.js"
import { ClusterWatch, ReleaseEvent } from "../src/ClusterWatch.js"
import { DeploymentRepo } from "../src/DeploymentRepo.js"
import { JobRepo } from "../src/JobRepo.js"
import { Kubeconfigs } from "../src/Kubeconfigs.js"
import * as Orchestrator from "../src/Orchestrator.js"
import * as Memory from "../src/testing/Memory.js"
import { request } from "./support/requests.js"

/** A cloud with two steps; `failStep` makes one fail permanently; the kubeconfig is "called back" by the test. */
const fakeCloud = (options: { readonly failStep?: string; readonly refuseRegion?: string } = {}): CloudProviderService => ({
  provider: "fake",
  capabilities: { resumable: true },
  validate: (spec) =>
    Effect.succeed(
      spec.regions.flatMap((region, index) =>
        region.cloudRegion === options.refuseRegion ? [{ path: `regions.${index}.cloudRegion`, message: "no such region" }] : []
      )
    ),
  plan: (deployment) =>
    Effect.succeed(
      deployment.regions.flatMap((region) => [
        { name: "network", displayName: "Network", region: region.key, dependsOn: [] },
        { name: "servers", displayName: "Servers", region: region.key, dependsOn: ["network"] }
      ])
    ),
  apply: (_deployment, step) =>
    step.name === options.failStep
      ? Effect.fail(
          new CloudError({
            reason: "QuotaExceeded",
            message: "server limit reached",
            provider: "fake",
            region: step.region,
            step: step.name
          })
        )
      : Effect.succeed({ resources: [], log: [`${step.name} done`] }),
  outputs: (deployment) =>
    Effect.succeed(
      deployment.regions.map((region) => ({ regionKey: region.key, controlPlaneIPs: ["192.0.2.1"], loadBalancerIP: "192.0.2.2" }))
    ),
  inventory: () => Effect.succeed([]),
  purge: () => Effect.succeed({ deleted: [], remaining: [], errors: [] })
})

/** A cluster whose two releases are already installed. */
const readyCluster = Layer.succeed(ClusterWatch, {
  watch: () =>
    Stream.concat(
      Stream.fromIterable(
        ["bp-base", "bp-app"]
          .map((name): ReleaseEvent =>
            ReleaseEvent.Observed({
              release: {
                name,
                namespace: "flux-system",
                generation: 1,
                observedGeneration: 1,
                suspend: false,
                conditions: [{ type: "Ready", status: "True", reason: "InstallSucceeded", message: "ok" }],
                dependsOn: name === "bp-app" ? ["bp-base"] : []
              }
            })
          )
          .concat([ReleaseEvent.Synced()])
      ),
      Stream.never
    )
})

const layer = (cloud: CloudProviderService) =>
  Orchestrator.layer.pipe(
    Layer.provideMerge(
      Layer.mergeAll(Memory.layer(Memory.makeState()), Layer.succeed(CloudProvider, cloud), readyCluster, Orchestrator.layerSettings())
    )
  )

const settle = (minutes: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < minutes * 2; i++) {
      yield* TestClock.adjust("30 seconds")
      for (let j = 0; j < 5; j++) yield* Effect.yieldNow()
    }
  })

const statusOf = (id: string) => Effect.flatMap(DeploymentRepo, (repo) => Effect.map(Effect.orDie(repo.get(id)), Option.getOrThrow))

describe("Orchestrator (core, against fakes)", () => {
  it.scoped("the adapter's issues are a 400 naming the field; nothing is stored", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const error = yield* Effect.flip(orchestrator.create(request, "ops@example.com"))
      expect(error._tag).toBe("InvalidRequest")
      if (error._tag === "InvalidRequest") expect(error.issues).toEqual([{ path: "regions.0.cloudRegion", message: "no such region" }])
      expect(yield* Effect.flatMap(DeploymentRepo, (repo) => Effect.orDie(repo.list({})))).toEqual([])
    }).pipe(Effect.provide(layer(fakeCloud({ refuseRegion: "r1" }))))
  )

  it.scoped("waits for the call-back, then watches the cluster to ready", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request, "ops@example.com")
      yield* settle(1)
      expect((yield* statusOf(created.id)).status).toBe("provisioning")
      yield* Effect.flatMap(Kubeconfigs, (k) => k.put(created.id, "r1", Redacted.make("apiVersion: v1"), 0))
      yield* settle(1)
      const record = yield* statusOf(created.id)
      expect(record.status).toBe("ready")
      const jobs = yield* Effect.flatMap(JobRepo, (repo) => Effect.orDie(repo.list(created.id)))
      // Every step is a job, the handover too (this core has no DNS, mesh or cluster access to take steps with).
      expect(jobs.map((job) => `${job.jobName}:${job.status}`).sort()).toEqual([
        "handover-token:succeeded",
        "install-app:succeeded",
        "install-base:succeeded",
        "network:succeeded",
        "servers:succeeded"
      ])
      expect(jobs.find((job) => job.jobName === "handover-token")).toMatchObject({
        parentId: `${created.id}:handover`,
        region: "r1",
        dependsOn: ["bootstrap-kit"]
      })
      expect(jobs.find((job) => job.jobName === "install-app")?.dependsOn).toEqual(["install-base"])
      expect(jobs.find((job) => job.jobName === "servers")?.dependsOn).toEqual(["network"])
    }).pipe(Effect.provide(layer(fakeCloud())))
  )

  it.scoped("a deployment from before its steps were jobs shows what its results say was done, with an execution", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request, "ops@example.com")
      yield* settle(1)
      yield* Effect.flatMap(Kubeconfigs, (k) => k.put(created.id, "r1", Redacted.make("apiVersion: v1"), 0))
      yield* settle(1)
      const ready = yield* statusOf(created.id)
      expect(ready.results.handoverAt).toBeTypeOf("number")
      // The job store as an older server left it: no lifecycle job at all.
      yield* Effect.flatMap(JobRepo, (repo) => Effect.orDie(repo.remove(created.id)))
      yield* orchestrator.start(created.id)
      yield* orchestrator.join(created.id)
      const handover = Option.getOrThrow(yield* Effect.flatMap(JobRepo, (repo) => Effect.orDie(repo.get(created.id, "handover-token"))))
      expect(handover.job).toMatchObject({ status: "succeeded", finishedAt: ready.results.handoverAt })
      expect(handover.executions.map((execution) => execution.status)).toEqual(["succeeded"])
      // and the handover is not announced twice
      const events = yield* Effect.flatMap(DeploymentRepo, (repo) => Effect.orDie(repo.events(created.id, 0)))
      expect(events.filter((event) => event.type === "handover-ready")).toHaveLength(1)
    }).pipe(Effect.provide(layer(fakeCloud())))
  )

  it.scoped("a permanent cloud error fails the step and the deployment, saying what to do next", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request, "ops@example.com")
      yield* settle(1)
      const record = yield* statusOf(created.id)
      expect(record.status).toBe("failed")
      expect(record.error).toContain("Step servers failed in region r1")
      expect(record.error).toContain("server limit reached")
      expect(record.error).toContain(`/api/v1/deployments/${created.id}/retry`)
      const servers = Option.getOrThrow(yield* Effect.flatMap(JobRepo, (repo) => Effect.orDie(repo.get(created.id, "servers"))))
      expect(servers.job.status).toBe("failed")
      expect(servers.executions[0]?.status).toBe("failed")
      // The handover never ran and never will (until a retry): failed, saying so, without an execution.
      const handover = Option.getOrThrow(yield* Effect.flatMap(JobRepo, (repo) => Effect.orDie(repo.get(created.id, "handover-token"))))
      expect(handover.job).toMatchObject({ status: "failed", reason: "not run: the deployment is failed; a retry runs it" })
      expect(handover.executions).toEqual([])
    }).pipe(Effect.provide(layer(fakeCloud({ failStep: "servers" }))))
  )
})
