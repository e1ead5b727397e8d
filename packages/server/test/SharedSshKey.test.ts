/**
 * Operators use one SSH key for many platforms (issue 11): five deployments with the same key,
 * submitted at the same moment, run by the orchestrator through the real Hetzner adapter against one
 * fake Hetzner project, all reach `ready`; one key is uploaded and no create races another. (Here
 * the orchestrator's scheduling rarely makes two look-ups meet; the race itself, in one process and
 * across processes, is forced by adapter-hetzner's `HetznerCloud.test.ts`.)
 */
import { HttpClient } from "@effect/platform"
import { HetznerCloud } from "@sovereign/adapter-hetzner"
import { ClusterWatch, DeploymentRepo, Kubeconfigs, Orchestrator } from "@sovereign/core"
import * as Memory from "@sovereign/core/testing/Memory"
import { FakeHetznerApi } from "@sovereign/testkit"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, Schedule, Stream } from "effect"
import * as BootstrapKit from "@sovereign/testkit/BootstrapKit"
import { requestJson } from "./support/fixtures.js"

/** A cluster whose every release of the kit is installed: what the watch of a converged cluster reports. */
const convergedWatch: ClusterWatch.ClusterWatchService = {
  watch: () =>
    Stream.concat(
      Stream.fromIterable([
        ...BootstrapKit.releases.map((release, index) =>
          ClusterWatch.ReleaseEvent.Observed({
            release: {
              name: release.name,
              namespace: release.namespace,
              generation: 1,
              observedGeneration: 1,
              suspend: false,
              conditions: [{ type: "Ready", status: "True", reason: "InstallSucceeded", message: "Helm install succeeded" }],
              dependsOn: release.dependsOn,
              resourceVersion: String(index + 1)
            }
          })
        ),
        ClusterWatch.ReleaseEvent.Synced()
      ]),
      Stream.never
    )
}

const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHdlbGxrbm93bnRlc3RrZXk ops@omani.works"

describe("one SSH key, five deployments, one Hetzner project", () => {
  it.live(
    "all five reach ready; one key is uploaded; the fake answered no uniqueness_error",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const fake = yield* FakeHetznerApi.make({ token: "hcloud-secret-token-do-not-leak" })
          const cloud = HetznerCloud.layer({ token: Redacted.make(fake.token), client: { endpoint: fake.endpoint } }).pipe(
            Layer.provide(Layer.succeed(HttpClient.HttpClient, fake.httpClient))
          )
          const world = Layer.mergeAll(cloud, Layer.succeed(ClusterWatch.ClusterWatch, convergedWatch), Orchestrator.layerSettings({}))
          const layer = Orchestrator.layer.pipe(Layer.provideMerge(world), Layer.provideMerge(Memory.layer(Memory.makeState())))
          yield* Effect.gen(function* () {
            const orchestrator = yield* Orchestrator.Orchestrator
            const repo = yield* DeploymentRepo.DeploymentRepo
            const kubeconfigs = yield* Kubeconfigs.Kubeconfigs
            const created = yield* Effect.forEach(
              [0, 1, 2, 3, 4],
              (index) => orchestrator.create({ ...requestJson(`key${index}.omani.works`, 3), sshPublicKey: key }, "ops@omani.works"),
              { concurrency: "unbounded" }
            )
            // Each control plane "calls back" once its region's Phase 0 is done (cloud-init's PUT, here straight into the store).
            const delivered = new Set<string>()
            yield* Effect.gen(function* () {
              const records = yield* Effect.forEach(created, (record) => Effect.map(repo.get(record.id), Option.getOrThrow))
              for (const record of records) {
                for (const region of record.results.regions) {
                  const name = `${record.id}/${region.regionKey}`
                  if (region.phase0 !== "succeeded" || delivered.has(name)) continue
                  delivered.add(name)
                  yield* kubeconfigs.put(
                    record.id,
                    region.regionKey,
                    Redacted.make(`apiVersion: v1\nkind: Config\n# ${name}\n`),
                    Date.now()
                  )
                }
              }
              return records.map((record) => record.status)
            }).pipe(
              Effect.repeat({
                schedule: Schedule.spaced("200 millis"),
                until: (now) => now.every((status) => ["ready", "failed", "partial-failure"].includes(status))
              }),
              Effect.timeout("240 seconds")
            )
            const records = yield* Effect.forEach(created, (record) => Effect.map(repo.get(record.id), Option.getOrThrow))
            expect(records.map((record) => [record.status, record.error])).toEqual(records.map(() => ["ready", undefined]))
            const resources = yield* fake.resources
            expect(resources.filter((resource) => resource.kind === "ssh_keys")).toHaveLength(1)
            const requests = yield* fake.requests
            expect(requests.filter((request) => request.status === 409 && request.path === "/ssh_keys").length).toBe(0)
          }).pipe(Effect.provide(layer))
        })
      ),
    { timeout: 300_000 }
  )
})
