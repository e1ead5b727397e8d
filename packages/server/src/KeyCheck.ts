/**
 * A replica with the wrong key refuses to start (issue 11): the database keeps a value sealed under
 * the key of the first server that used it (`key_check`, migration `2_key_check`), and every server
 * opens it at start-up. A server whose key does not open it stops with what to set, instead of
 * starting and failing the deployments of the replicas that share the database.
 */
import { SqlClient } from "@effect/sql"
import * as Secrets from "@sovereign/core/Secrets"
import { Clock, Effect, Layer, Option, Redacted, Schema } from "effect"
import * as path from "node:path"
import { ServerConfig, type ServerConfigShape } from "./ServerConfig.js"

/** What the key check holds, sealed. Never a secret: only whether it opens matters. */
export const checkText = "sovereign key check v1"

export class KeyCheckFailed extends Schema.TaggedError<KeyCheckFailed>()("KeyCheckFailed", {
  reason: Schema.Literal("KeyMismatch", "Unavailable"),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

const mismatch = (config: ServerConfigShape, what: string) =>
  new KeyCheckFailed({
    reason: "KeyMismatch",
    message:
      `${what} cannot be opened with this server's key, so the database belongs to servers with another key. ` +
      (Option.isSome(config.secretKey)
        ? "Set SOVEREIGN_SECRET_KEY to the key the other servers on this database use (every replica needs the same one); "
        : `This server uses the generated key in ${path.join(config.dataDir, "secret.key")}: set SOVEREIGN_SECRET_KEY to the key the other servers on this database use (every replica needs the same one); `) +
      "it does not start with another key, so it cannot fail their deployments."
  })

const unavailable = (cause: unknown) =>
  new KeyCheckFailed({ reason: "Unavailable", message: "the key check could not be read from the database", cause })

/**
 * Opens the stored key check, or stores it when the database has none yet: a database that already
 * holds deployments (created before the check existed) is checked against one of their sealed credentials.
 */
export const verify = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const secrets = yield* Secrets.Secrets
  const config = yield* ServerConfig
  const stored = () =>
    Effect.map(sql<{ sealed: string }>`SELECT sealed FROM key_check WHERE id = 1`, (rows) => Option.fromNullable(rows[0]?.sealed)).pipe(
      Effect.mapError(unavailable)
    )
  const opens = (sealed: string) =>
    secrets.unseal(sealed).pipe(
      Effect.map((opened) => Redacted.value(opened)),
      Effect.option
    )
  let found = yield* stored()
  if (Option.isNone(found)) {
    const older = yield* sql<{
      sealed_credentials: string
    }>`SELECT sealed_credentials FROM deployments ORDER BY created_at DESC LIMIT 1`.pipe(Effect.mapError(unavailable))
    if (older[0] !== undefined && Option.isNone(yield* opens(older[0].sealed_credentials))) {
      return yield* mismatch(config, "The newest deployment's sealed credentials")
    }
    const sealed = yield* secrets.seal(Redacted.make(checkText)).pipe(Effect.mapError(unavailable))
    const at = yield* Clock.currentTimeMillis
    // Two servers starting on a fresh database: the first insert wins, and both then check that one.
    yield* sql`INSERT INTO key_check (id, sealed, created_at) VALUES (1, ${sealed}, ${at}) ON CONFLICT (id) DO NOTHING`.pipe(
      Effect.mapError(unavailable)
    )
    found = yield* stored()
  }
  const text = yield* opens(Option.getOrThrow(found))
  if (Option.isNone(text) || text.value !== checkText) return yield* mismatch(config, "The database's key check (table key_check)")
})

/** Verifies the key at start-up; the layer fails (the server does not start) when it does not match. */
export const layer: Layer.Layer<never, KeyCheckFailed, SqlClient.SqlClient | Secrets.Secrets | ServerConfig> = Layer.effectDiscard(verify)
