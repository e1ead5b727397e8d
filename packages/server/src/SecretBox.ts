/** The `Secrets` port on AES-256-GCM under the server key (SPEC §7): credentials and kubeconfigs at rest. */
import * as Secrets from "@sovereign/core/Secrets"
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from "node:crypto"
import * as path from "node:path"
import { Effect, Layer, Option, Redacted } from "effect"
import { readOrCreatePrivateFile } from "./internal/files.js"
import { ServerConfig } from "./ServerConfig.js"

const version = "v1"

/** A 32-byte key from `SOVEREIGN_SECRET_KEY`: 64 hex characters, base64 of 32 bytes, or a passphrase (SHA-256). */
export const keyFromString = (text: string): Buffer => {
  const trimmed = text.trim()
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, "hex")
  const base64 = Buffer.from(trimmed, "base64")
  if (base64.length === 32 && /^[A-Za-z0-9+/_-]+=*$/.test(trimmed)) return base64
  return createHash("sha256").update(trimmed, "utf8").digest()
}

export const seal = (key: Buffer, plaintext: string): string => {
  const iv = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", key, iv)
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()])
  return `${version}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64")}`
}

export const unseal = (key: Buffer, sealed: string): Either<string> => {
  if (!sealed.startsWith(`${version}:`)) return { ok: false, reason: "Corrupt" }
  const raw = Buffer.from(sealed.slice(version.length + 1), "base64")
  if (raw.length < 28) return { ok: false, reason: "Corrupt" }
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12))
    decipher.setAuthTag(raw.subarray(12, 28))
    return { ok: true, value: Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8") }
  } catch {
    return { ok: false, reason: "KeyMismatch" }
  }
}

type Either<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly reason: "Corrupt" | "KeyMismatch" }

export const makeService = (key: Buffer): Secrets.SecretsService => {
  const derive = (deploymentId: string, regionKey: string) => Secrets.derivePostbackToken(key, deploymentId, regionKey)
  return {
    seal: (plaintext) => Effect.sync(() => seal(key, Redacted.value(plaintext))),
    unseal: (sealed) =>
      Effect.suspend(() => {
        const opened = unseal(key, sealed)
        return opened.ok
          ? Effect.succeed(Redacted.make(opened.value))
          : Effect.fail(
              new Secrets.SecretsError({
                reason: opened.reason,
                message:
                  opened.reason === "KeyMismatch"
                    ? "a stored secret does not open under the server key (was SOVEREIGN_SECRET_KEY changed?)"
                    : "a stored secret is not a sealed blob"
              })
            )
      }),
    postbackToken: (deploymentId, regionKey) => Effect.sync(() => Redacted.make(derive(deploymentId, regionKey))),
    // Digests of equal length, compared in constant time: neither the token nor its length leaks by timing.
    verifyPostbackToken: (deploymentId, regionKey, presented) =>
      Effect.sync(() => {
        const expected = createHash("sha256").update(derive(deploymentId, regionKey)).digest()
        const actual = createHash("sha256").update(Redacted.value(presented)).digest()
        return timingSafeEqual(expected, actual)
      }),
    generateSecret: Effect.sync(() => Redacted.make(randomBytes(32).toString("hex")))
  }
}

/** The server key: `SOVEREIGN_SECRET_KEY`, else `<dataDir>/secret.key` (generated once, 0600). */
export const loadKey = Effect.gen(function* () {
  const config = yield* ServerConfig
  return Option.match(config.secretKey, {
    onSome: (secret) => keyFromString(Redacted.value(secret)),
    onNone: () =>
      keyFromString(readOrCreatePrivateFile(path.join(config.dataDir, "secret.key"), () => randomBytes(32).toString("hex") + "\n").contents)
  })
})

export const layer: Layer.Layer<Secrets.Secrets, never, ServerConfig> = Layer.effect(Secrets.Secrets, Effect.map(loadKey, makeService))

export const layerKey = (key: Buffer): Layer.Layer<Secrets.Secrets> => Layer.succeed(Secrets.Secrets, makeService(key))
