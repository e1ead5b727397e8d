/**
 * The change feed between replicas (issue 11, item 4): two stores on one PostgreSQL database, each
 * with its own connection pool and change feed, as two replicas have. What replica A commits reaches
 * replica B's tails live, in order and without gaps (also when both write to the same deployment), a
 * kubeconfig stored by A wakes B's await, and B resumes after any sequence (Last-Event-ID).
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { DeploymentRepo, FlowEvents, Kubeconfigs } from "@sovereign/core"
import { describe, expect, it } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import { Chunk, Context, Effect, Fiber, Layer, Redacted, Stream } from "effect"
import * as ChangeFeed from "../src/ChangeFeed.js"
import * as Database from "../src/Database.js"
import * as SecretBox from "../src/SecretBox.js"
import * as SqlStore from "../src/SqlStore.js"
import { postgresAdminUrl } from "./support/databases.js"
import { acceptedEvent, newDeployment } from "./support/fixtures.js"

type Ports = DeploymentRepo.DeploymentRepo | FlowEvents.FlowEvents | Kubeconfigs.Kubeconfigs

const admin = (statement: string) =>
  Effect.scoped(
    Effect.flatMap(Layer.build(PgClient.layer({ url: Redacted.make(postgresAdminUrl), maxConnections: 1 })), (context) =>
      Context.get(context, SqlClient.SqlClient).unsafe(statement)
    )
  )

/** A replica's store: its own pool on the database, its own announcements and change feed. */
const replica = (url: string, name: string): Layer.Layer<Ports, unknown> =>
  ChangeFeed.layer(Redacted.make(url)).pipe(
    Layer.provideMerge(SqlStore.layer({ replica: name })),
    Layer.provideMerge(SecretBox.layerKey(Buffer.alloc(32, 5))),
    Layer.provideMerge(Database.layerPostgres(Redacted.make(url)))
  )

describe("the change feed between two replicas on one PostgreSQL", () => {
  it.live(
    "B sees what A commits, in order and without gaps, a kubeconfig stored by A wakes B, and B resumes after any sequence",
    () =>
      Effect.gen(function* () {
        const name = `sovereign_feed_${randomBytes(6).toString("hex")}`
        yield* Effect.acquireRelease(admin(`CREATE DATABASE ${name}`), () =>
          Effect.ignore(admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
        )
        const url = new URL(postgresAdminUrl)
        url.pathname = `/${name}`
        // Migrated once, before either replica starts (two concurrent migrations would race).
        yield* Effect.scoped(Layer.build(Database.layerPostgres(Redacted.make(url.toString()))))
        const a = Context.get(yield* Layer.build(replica(url.toString(), "replica-a")), DeploymentRepo.DeploymentRepo)
        const contextB = yield* Layer.build(replica(url.toString(), "replica-b"))
        const b = Context.get(contextB, DeploymentRepo.DeploymentRepo)
        const contextA = yield* Layer.build(replica(url.toString(), "replica-a2"))
        const flowA = Context.get(contextA, FlowEvents.FlowEvents)
        const kubeconfigsA = Context.get(contextA, Kubeconfigs.Kubeconfigs)
        const flowB = Context.get(contextB, FlowEvents.FlowEvents)
        const kubeconfigsB = Context.get(contextB, Kubeconfigs.Kubeconfigs)

        const id = randomBytes(8).toString("hex")
        yield* a.create(newDeployment(id, { fqdn: `f${id}.omani.works` }), acceptedEvent)
        // B follows the deployment's events and its flow from the start; A and B both write events.
        const events = yield* b.tail(id, 0).pipe(Stream.take(41), Stream.runCollect, Effect.fork)
        const flows = yield* flowB.tail(id, 0).pipe(Stream.take(20), Stream.runCollect, Effect.fork)
        const arrival = yield* kubeconfigsB.await(id, "fsn1").pipe(Effect.fork)
        yield* Effect.forEach(
          Array.from({ length: 20 }, (_, index) => index),
          (index) =>
            Effect.all(
              [
                a.appendEvents(id, [{ at: 10 + index, phase: "deployment", level: "info", message: `a ${index}` }]),
                b.appendEvents(id, [{ at: 10 + index, phase: "deployment", level: "info", message: `b ${index}` }]),
                flowA.publish(id, [{ index }], 10 + index)
              ],
              { concurrency: "unbounded" }
            ),
          { discard: true }
        )
        yield* kubeconfigsA.put(id, "fsn1", Redacted.make("apiVersion: v1\nkind: Config\n"), 99)

        const seen = Chunk.toReadonlyArray(yield* Fiber.join(events))
        expect(seen.map((event) => event.seq)).toEqual(Array.from({ length: 41 }, (_, index) => index + 1))
        expect(seen.filter((event) => event.message.startsWith("a ")).length).toBe(20)
        const published = Chunk.toReadonlyArray(yield* Fiber.join(flows))
        expect(published.map((event) => event.seq)).toEqual(Array.from({ length: 20 }, (_, index) => index + 1))
        expect(Redacted.value(yield* Fiber.join(arrival))).toContain("kind: Config")

        // Last-Event-ID on the other replica: everything after it, from the table.
        const resumed = yield* b.tail(id, 30).pipe(Stream.take(11), Stream.runCollect)
        expect(Chunk.toReadonlyArray(resumed).map((event) => event.seq)).toEqual(Array.from({ length: 11 }, (_, index) => index + 31))
      }).pipe(Effect.scoped),
    { timeout: 120_000 }
  )
})
