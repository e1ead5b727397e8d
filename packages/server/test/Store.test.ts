/** The repository suite: the same behaviour on Postgres, on PGlite, and (as a reference) in memory. */
import { DeploymentRepo, FlowEvents, JobRepo, Kubeconfigs, Secrets } from "@sovereign/core"
import * as Memory from "@sovereign/core/testing/Memory"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Fiber, Layer, Option, Redacted, Stream } from "effect"
import * as SecretBox from "../src/SecretBox.js"
import * as SqlStore from "../src/SqlStore.js"
import { backends } from "./support/databases.js"
import { acceptedEvent, installJob, newDeployment } from "./support/fixtures.js"

type Ports = DeploymentRepo.DeploymentRepo | JobRepo.JobRepo | FlowEvents.FlowEvents | Kubeconfigs.Kubeconfigs

const key = Buffer.alloc(32, 7)

const stores: ReadonlyArray<{ readonly name: string; readonly layer: Layer.Layer<Ports | Secrets.Secrets, unknown> }> = [
  ...backends.map((backend) => ({
    name: backend.name,
    layer: SqlStore.layer({ flowRetention: 5 }).pipe(Layer.provideMerge(SecretBox.layerKey(key)), Layer.provide(backend.layer))
  })),
  { name: "memory (reference)", layer: Memory.layer(Memory.makeState({ flowRetention: 5 })) }
]

let counter = 0
const freshId = () => (0x1000000000000000 + ++counter * 7919 + Math.floor(Math.random() * 1e9)).toString(16).slice(0, 16)

for (const store of stores) {
  describe(`repositories on ${store.name}`, () => {
    it.layer(store.layer, { timeout: 60_000 })((it) => {
      it.effect("creates a deployment once per in-flight FQDN, with its first event", () =>
        Effect.gen(function* () {
          const repo = yield* DeploymentRepo.DeploymentRepo
          const id = freshId()
          const created = yield* repo.create(newDeployment(id, { fqdn: "a1.omani.works" }), acceptedEvent)
          expect(created.version).toBe(1)
          const again = yield* Effect.flip(repo.create(newDeployment(freshId(), { fqdn: "a1.omani.works" }), acceptedEvent))
          expect(again.reason).toBe("Conflict")
          const sameId = yield* Effect.flip(repo.create(newDeployment(id, { fqdn: "a2.omani.works" }), acceptedEvent))
          expect(sameId.reason).toBe("Conflict")
          const events = yield* repo.events(id, 0)
          expect(events.map((event) => [event.seq, event.message])).toEqual([[1, "accepted"]])
          // Once the first is terminal, the FQDN can be requested again.
          yield* repo.update(id, 1, { status: "failed", error: "boom" }, [], 2_000)
          const second = yield* repo.create(newDeployment(freshId(), { fqdn: "a1.omani.works" }), acceptedEvent)
          expect(second.status).toBe("pending")
        })
      )

      it.effect("updates under an optimistic version, clears fields, numbers events", () =>
        Effect.gen(function* () {
          const repo = yield* DeploymentRepo.DeploymentRepo
          const id = freshId()
          yield* repo.create(newDeployment(id, { fqdn: "b1.omani.works" }), acceptedEvent)
          const { record, events } = yield* repo.update(
            id,
            1,
            { status: "failed", error: "the call-back never came", finishedAt: 5 },
            [{ at: 3, phase: "deployment", level: "error", message: "failed", state: "failed", type: "status" }],
            3
          )
          expect(record).toMatchObject({ version: 2, status: "failed", error: "the call-back never came", finishedAt: 5, updatedAt: 3 })
          expect(events.map((event) => event.seq)).toEqual([2])
          const stale = yield* Effect.flip(repo.update(id, 1, { status: "provisioning" }, [], 4))
          expect(stale.reason).toBe("VersionConflict")
          const retried = yield* repo.update(id, 2, { status: "provisioning", clear: ["error", "finishedAt"] }, [], 6)
          expect(retried.record.error).toBeUndefined()
          expect(retried.record.finishedAt).toBeUndefined()
          const stored = yield* repo.get(id)
          expect(Option.getOrThrow(stored)).toEqual(retried.record)
          const missing = yield* Effect.flip(repo.update("ffffffffffffffff", 1, {}, [], 1))
          expect(missing.reason).toBe("NotFound")
        })
      )

      it.effect("lists newest first, filtered by owner and status", () =>
        Effect.gen(function* () {
          const repo = yield* DeploymentRepo.DeploymentRepo
          const owner = `owner-${freshId()}@example.com`
          const older = freshId()
          const newer = freshId()
          yield* repo.create(
            newDeployment(older, { fqdn: `c${older}.example.com`.replace(/^c(\d)/, "c$1"), owner, createdAt: 10 }),
            acceptedEvent
          )
          yield* repo.create(newDeployment(newer, { fqdn: `d${newer}.example.com`, owner, createdAt: 20 }), acceptedEvent)
          const mine = yield* repo.list({ owner })
          expect(mine.map((record) => record.id)).toEqual([newer, older])
          const none = yield* repo.list({ owner, statuses: ["ready"] })
          expect(none).toEqual([])
        })
      )

      it.effect("tails: replay from a sequence number, then live events without gaps", () =>
        Effect.gen(function* () {
          const repo = yield* DeploymentRepo.DeploymentRepo
          const id = freshId()
          yield* repo.create(newDeployment(id, { fqdn: "e1.omani.works" }), acceptedEvent)
          yield* repo.appendEvents(id, [{ at: 2, phase: "provisioner", level: "info", message: "two" }])
          const subscribed = yield* Deferred.make<void>()
          const fiber = yield* repo.tail(id, 1).pipe(
            Stream.tap(() => Deferred.succeed(subscribed, undefined)),
            Stream.take(3),
            Stream.runCollect,
            Effect.fork
          )
          yield* Deferred.await(subscribed)
          yield* repo.appendEvents(id, [{ at: 3, phase: "provisioner", level: "info", message: "three" }])
          yield* repo.appendEvents(id, [{ at: 4, phase: "provisioner", level: "warn", message: "four" }])
          const seen = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
          expect(seen.map((event) => [event.seq, event.message])).toEqual([
            [2, "two"],
            [3, "three"],
            [4, "four"]
          ])
        })
      )

      it.effect("keeps the step journal as an upsert per job", () =>
        Effect.gen(function* () {
          const repo = yield* DeploymentRepo.DeploymentRepo
          const id = freshId()
          yield* repo.create(newDeployment(id, { fqdn: "f1.omani.works" }), acceptedEvent)
          const entry = {
            deploymentId: id,
            jobName: "network",
            region: "fsn1",
            step: "network",
            status: "running" as const,
            attempts: 1,
            at: 1
          }
          yield* repo.recordStep(entry)
          yield* repo.recordStep({
            ...entry,
            status: "succeeded",
            at: 2,
            result: { resources: [{ kind: "network", id: "n1", name: "f1-net", region: "fsn1", labels: { a: "b" } }], log: ["created"] }
          })
          yield* repo.recordStep({ ...entry, jobName: "hel1-1:network", region: "hel1-1", at: 2 })
          const journal = yield* repo.journal(id)
          expect(journal.map((e) => [e.jobName, e.status])).toEqual([
            ["hel1-1:network", "running"],
            ["network", "succeeded"]
          ])
          expect(journal[1]!.result?.resources[0]?.name).toBe("f1-net")
          yield* repo.remove(id)
          expect(yield* repo.get(id)).toEqual(Option.none())
          expect(yield* repo.journal(id)).toEqual([])
        })
      )

      it.effect("merges jobs by the rules of SPEC 2.4 and runs executions with their logs", () =>
        Effect.gen(function* () {
          const jobs = yield* JobRepo.JobRepo
          const id = freshId()
          yield* jobs.upsertMany([installJob(id, "cilium", "pending", ["flux"]), installJob(id, "flux", "pending")])
          const execution = yield* jobs.startExecution(id, "install-cilium", `exec-${id}`, 100)
          expect(execution.status).toBe("running")
          // An event without dependencies and with `pending` neither erases the deps nor un-starts the job.
          const merged = yield* jobs.upsert(installJob(id, "cilium", "pending"))
          expect(merged.dependsOn).toEqual(["install-flux"])
          expect(merged.status).toBe("running")
          yield* jobs.appendLog(id, execution.id, [
            { timestamp: 101, level: "INFO", message: "one" },
            { timestamp: 102, level: "WARN", message: "two" }
          ])
          yield* jobs.appendLog(id, execution.id, [{ timestamp: 103, level: "INFO", message: "three" }])
          yield* jobs.finishExecution(id, execution.id, "succeeded", 150)
          yield* jobs.finishExecution(id, execution.id, "failed", 160)
          const page = yield* jobs.logs(id, execution.id, 2, 1)
          expect(page).toEqual({
            lines: [{ lineNumber: 2, timestamp: 102, level: "WARN", message: "two" }],
            total: 3,
            executionFinished: true
          })
          const found = Option.getOrThrow(yield* jobs.get(id, `${id}:install-cilium`))
          expect(found.job).toMatchObject({
            status: "succeeded",
            startedAt: 100,
            finishedAt: 150,
            durationMs: 50,
            latestExecutionId: execution.id
          })
          expect(found.executions.map((e) => [e.status, e.lineCount])).toEqual([["succeeded", 3]])
          expect((yield* jobs.list(id)).map((job) => job.jobName)).toEqual(["install-cilium", "install-flux"])
          const unknown = yield* Effect.flip(jobs.logs(id, "nope", 1, 10))
          expect(unknown.reason).toBe("NotFound")
          yield* jobs.remove(id)
          expect(yield* jobs.list(id)).toEqual([])
        })
      )

      it.effect("records a list of writes in order and atomically: as the single calls would, or not at all", () =>
        Effect.gen(function* () {
          const jobs = yield* JobRepo.JobRepo
          const { Upsert, Start, Log, Finish } = JobRepo.JobWrite
          const line = (timestamp: number, message: string) => ({ timestamp, level: "INFO" as const, message })
          // A failed attempt, then a retry that succeeds: two executions of one job in one list.
          const life = (id: string): ReadonlyArray<JobRepo.JobWrite> => [
            Upsert({ job: installJob(id, "flux", "pending") }),
            Upsert({ job: installJob(id, "cilium", "running", ["flux"]) }),
            Start({ jobName: "install-cilium", executionId: `a-${id}`, at: 100 }),
            Log({ executionId: `a-${id}`, lines: [line(101, "one"), line(102, "two")] }),
            Finish({ executionId: `a-${id}`, status: "failed", at: 120 }),
            Start({ jobName: "install-cilium", executionId: `b-${id}`, at: 130 }),
            Log({ executionId: `b-${id}`, lines: [line(131, "three")] }),
            Finish({ executionId: `b-${id}`, status: "succeeded", at: 150 }),
            Finish({ executionId: `a-${id}`, status: "succeeded", at: 160 })
          ]
          const single = freshId()
          for (const write of life(single)) {
            if (write._tag === "Upsert") yield* jobs.upsert(write.job)
            else if (write._tag === "Start") yield* jobs.startExecution(single, write.jobName, write.executionId, write.at)
            else if (write._tag === "Log") yield* jobs.appendLog(single, write.executionId, write.lines)
            else yield* jobs.finishExecution(single, write.executionId, write.status, write.at)
          }
          const batched = freshId()
          yield* jobs.record(batched, life(batched))
          const view = (id: string) =>
            Effect.gen(function* () {
              const found = Option.getOrThrow(yield* jobs.get(id, "install-cilium"))
              const logs = yield* Effect.forEach(found.executions, (execution) => jobs.logs(id, execution.id, 1, 10))
              return JSON.parse(JSON.stringify({ found, logs, list: yield* jobs.list(id) }).replaceAll(id, "<id>"))
            })
          const expected = yield* view(single)
          expect(yield* view(batched)).toEqual(expected)
          expect(expected.found.job).toMatchObject({ status: "succeeded", startedAt: 100, finishedAt: 150, latestExecutionId: "b-<id>" })
          expect(expected.found.executions.map((e: { status: string; lineCount: number }) => [e.status, e.lineCount])).toEqual([
            ["succeeded", 1],
            ["failed", 2]
          ])

          // One write names an execution that does not exist: NotFound, and nothing of the list is stored.
          const before = yield* view(batched)
          const refused = yield* Effect.flip(
            jobs.record(batched, [
              Upsert({ job: installJob(batched, "harbor", "running") }),
              Log({ executionId: `b-${batched}`, lines: [line(170, "four")] }),
              Log({ executionId: "nope", lines: [line(171, "five")] })
            ])
          )
          expect(refused.reason).toBe("NotFound")
          expect(yield* view(batched)).toEqual(before)
          expect(yield* Effect.flip(jobs.record(batched, [Start({ jobName: "install-nope", executionId: "c", at: 1 })]))).toMatchObject({
            reason: "NotFound"
          })
          yield* jobs.record(batched, [])
        })
      )

      it.effect("numbers flow events, trims beyond retention, and says when a reader fell behind", () =>
        Effect.gen(function* () {
          const flow = yield* FlowEvents.FlowEvents
          const id = freshId()
          expect(yield* flow.latestSeq(id)).toBe(0)
          expect(yield* flow.since(id, 0)).toEqual(Option.some([]))
          yield* flow.publish(id, [{ type: "a" }, { type: "b" }, { type: "c" }], 1)
          // The tail has subscribed once it delivered its first replayed event.
          const subscribed = yield* Deferred.make<void>()
          const fiber = yield* flow.tail(id, 0).pipe(
            Stream.tap(() => Deferred.succeed(subscribed, undefined)),
            Stream.take(7),
            Stream.runCollect,
            Effect.fork
          )
          yield* Deferred.await(subscribed)
          yield* flow.publish(id, [{ type: "d" }, { type: "e" }, { type: "f" }, { type: "g" }], 2)
          const seen = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
          expect(seen.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5, 6, 7])
          expect(seen[3]!.message).toEqual({ type: "d" })
          expect(yield* flow.latestSeq(id)).toBe(7)
          expect(yield* flow.since(id, 1)).toEqual(Option.none())
          const recent = Option.getOrThrow(yield* flow.since(id, 4))
          expect(recent.map((event) => event.seq)).toEqual([5, 6, 7])
          expect(yield* flow.since(id, 7)).toEqual(Option.some([]))
        })
      )

      it.effect("stores each region's kubeconfig once, sealed, and wakes whoever awaits it", () =>
        Effect.gen(function* () {
          const kubeconfigs = yield* Kubeconfigs.Kubeconfigs
          const id = freshId()
          const waiting = yield* Effect.fork(kubeconfigs.await(id, "hel1-1"))
          yield* kubeconfigs.put(id, "fsn1", Redacted.make("apiVersion: v1\nkind: Config # fsn1"), 10)
          yield* kubeconfigs.put(id, "hel1-1", Redacted.make("apiVersion: v1\nkind: Config # hel1"), 11)
          expect(Redacted.value(yield* Fiber.join(waiting))).toContain("hel1")
          const twice = yield* Effect.flip(kubeconfigs.put(id, "fsn1", Redacted.make("other"), 12))
          expect(twice.reason).toBe("AlreadySet")
          const empty = yield* Effect.flip(kubeconfigs.put(id, "nbg1-2", Redacted.make("  "), 12))
          expect(empty.reason).toBe("Empty")
          expect(Redacted.value(Option.getOrThrow(yield* kubeconfigs.get(id, "fsn1")))).toContain("fsn1")
          expect((yield* kubeconfigs.arrivals(id)).map((arrival) => arrival.regionKey)).toEqual(["fsn1", "hel1-1"])
          yield* kubeconfigs.remove(id)
          expect(yield* kubeconfigs.get(id, "fsn1")).toEqual(Option.none())
        })
      )
    })
  })
}
