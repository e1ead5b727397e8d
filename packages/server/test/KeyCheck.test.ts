/**
 * A replica with the wrong key refuses to start (issue 11): the first server stores a key check in
 * the database; a server with another key stops with what to set, before it touches a deployment.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as KeyCheck from "../src/KeyCheck.js"
import * as SecretBox from "../src/SecretBox.js"
import * as ServerConfig from "../src/ServerConfig.js"
import { backends } from "./support/databases.js"

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-keycheck-"))
const check = (key: Buffer, fromEnvironment: boolean) =>
  Effect.exit(
    Layer.build(
      KeyCheck.layer.pipe(
        Layer.provide(SecretBox.layerKey(key)),
        Layer.provide(
          ServerConfig.layerWith({ dataDir, secretKey: fromEnvironment ? Option.some(Redacted.make(key.toString("hex"))) : Option.none() })
        )
      )
    ).pipe(Effect.scoped)
  )

for (const backend of backends) {
  describe(`key check on ${backend.name}`, () => {
    it.layer(backend.layer, { timeout: 60_000 })((it) => {
      it.effect("the first key is stored; the same key starts again; another key refuses, saying what to set", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const first = Buffer.alloc(32, 1)
          const other = Buffer.alloc(32, 2)
          expect(Exit.isSuccess(yield* check(first, true))).toBe(true)
          expect((yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM key_check`)[0]!.n).toBe(1)
          expect(Exit.isSuccess(yield* check(first, true))).toBe(true)
          const refused = yield* check(other, true)
          expect(Exit.isFailure(refused)).toBe(true)
          const text = Exit.isFailure(refused) ? Cause.pretty(refused.cause) : ""
          expect(text).toContain("KeyCheckFailed")
          expect(text).toContain("Set SOVEREIGN_SECRET_KEY to the key the other servers on this database use")
          // A server on a generated key is told which file it used.
          const generated = yield* check(other, false)
          expect(Exit.isFailure(generated) ? Cause.pretty(generated.cause) : "").toContain(path.join(dataDir, "secret.key"))
        })
      )

      it.effect("a database from before the key check is checked against its deployments' sealed credentials", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          yield* sql`DELETE FROM key_check`
          const owner = Buffer.alloc(32, 5)
          const sealed = SecretBox.seal(owner, JSON.stringify({ credentials: {} }))
          yield* sql`INSERT INTO deployments (id, owner, fqdn, status, spec, sealed_credentials, results, version, created_at, updated_at)
            VALUES ('00000000000000aa', 'a@example.com', 'k.omani.works', 'ready', '{}'::jsonb, ${sealed}, '{}'::jsonb, 1, 1, 1)`
          const refused = yield* check(Buffer.alloc(32, 6), true)
          expect(Exit.isFailure(refused) ? Cause.pretty(refused.cause) : "").toContain(
            "The newest deployment's sealed credentials cannot be opened"
          )
          expect((yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM key_check`)[0]!.n).toBe(0)
          expect(Exit.isSuccess(yield* check(owner, true))).toBe(true)
        })
      )
    })
  })
}
