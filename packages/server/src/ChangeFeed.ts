/**
 * The change feed between replicas (issue 11, item 4): one dedicated PostgreSQL connection per
 * replica LISTENs for what the others commit and fans it out in-process (`SqlStore.Changes`), so an
 * operator on replica B sees replica A's run live, a call-back landing on B reaches A's run, and a
 * lease released on A wakes B's supervisor at once. NOTIFY is only the wake-up: every change is read
 * from the tables, and after a lost connection (a database restart) everything is read again from
 * where each deployment's announcements stopped.
 */
import { Duration, Effect, Layer, PubSub, Queue, Redacted, Schedule, Stream } from "effect"
import { createRequire } from "node:module"
import { Announcements, changeChannel, Changes } from "./SqlStore.js"
import { releaseChannel } from "./SqlLeases.js"

interface Notification {
  readonly channel: string
  readonly payload?: string
}

interface ListenClient {
  connect(): Promise<void>
  query(text: string): Promise<unknown>
  end(): Promise<void>
  on(event: "notification", listener: (message: Notification) => void): void
  on(event: "error" | "end", listener: (error?: unknown) => void): void
  removeAllListeners(): void
}

// The pg driver ships no types; only its Client is used here.
const pg = createRequire(import.meta.url)("pg") as {
  readonly Client: new (options: { readonly connectionString: string; readonly application_name: string }) => ListenClient
}

/** Listens on `url` for as long as the layer lives, reconnecting with backoff. */
export const layer = (url: Redacted.Redacted<string>): Layer.Layer<never, never, Changes | Announcements> =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const changes = yield* Changes
      const announcements = yield* Announcements
      const inbox = yield* Queue.unbounded<Notification>()

      // Notifications are handled in order of arrival, several deployments at a time (each one's
      // announcements are sequenced by `Changes` itself).
      yield* Stream.fromQueue(inbox).pipe(
        Stream.mapEffect(
          (message) =>
            message.channel === releaseChannel ? PubSub.publish(announcements.leases, undefined) : changes.receive(message.payload ?? ""),
          { concurrency: 16, unordered: true }
        ),
        Stream.runDrain,
        Effect.forkScoped
      )

      const session = Effect.acquireRelease(
        Effect.tryPromise(async () => {
          const client = new pg.Client({ connectionString: Redacted.value(url), application_name: "sovereign-changes" })
          client.on("error", () => undefined)
          await client.connect()
          await client.query(`LISTEN ${changeChannel}`)
          await client.query(`LISTEN ${releaseChannel}`)
          return client
        }),
        (client) => Effect.promise(() => client.end().catch(() => undefined)).pipe(Effect.timeoutOption(Duration.seconds(1)))
      ).pipe(
        Effect.flatMap((client) =>
          Effect.gen(function* () {
            client.on("notification", (message) => Queue.unsafeOffer(inbox, message))
            yield* Effect.logInfo("the change feed listens")
            // Whatever was committed while no connection listened is read now.
            yield* changes.resync
            yield* Effect.async<void>((resume) => {
              client.on("error", () => resume(Effect.void))
              client.on("end", () => resume(Effect.void))
            })
            yield* Effect.logWarning("the change feed lost its connection; reconnecting")
          })
        ),
        Effect.scoped
      )

      yield* session.pipe(
        Effect.tapError((error) => Effect.logWarning("the change feed cannot connect yet; retrying", error)),
        Effect.retry(Schedule.exponential(Duration.millis(200)).pipe(Schedule.union(Schedule.spaced(Duration.seconds(2))))),
        Effect.forever,
        Effect.forkScoped
      )
    })
  )
