/**
 * The secrets port: seal a deployment's credentials for storage and derive its postback tokens (SPEC §7).
 *
 * Postback token decision: one token per REGION, DERIVED as
 * `HMAC-SHA256(server key, "postback:" + deploymentId + ":" + regionKey)`, 64 hex characters (32 bytes).
 * A region's token never opens another region (the key is part of the MAC), nothing about it is kept
 * at rest (not even a hash: there is nothing to steal from the database), a resumed Phase 0 renders
 * the same cloud-init again, and verification compares SHA-256 digests in constant time. What a token
 * opens, and for how long, is decided by core's call-back window (`orchestrator/Callback.ts`), not by
 * the token. Rotating the server key invalidates every outstanding token.
 *
 * A region's k3s join secret is a separate random value (`generateSecret`), sealed with the credentials.
 */
import { Context, Effect, Either, Layer, Random, Redacted, Schema } from "effect"
import { Credentials, type DeploymentId } from "./Deployment.js"
import { sha256 } from "./internal/sha256.js"

export const SecretsErrorReason = Schema.Literal("Corrupt", "KeyMismatch", "Unknown")

export class SecretsError extends Schema.TaggedError<SecretsError>()("SecretsError", {
  reason: SecretsErrorReason,
  message: Schema.String
}) {
  get isRetryable(): boolean {
    return false
  }
}

export interface SecretsService {
  /** Encrypts (AES-256-GCM in production) into an opaque, storable string. Never logs the input. */
  readonly seal: (plaintext: Redacted.Redacted<string>) => Effect.Effect<string, SecretsError>
  /** Inverse of `seal`; fails `Corrupt`/`KeyMismatch` when the blob was tampered with or sealed under another key. */
  readonly unseal: (sealed: string) => Effect.Effect<Redacted.Redacted<string>, SecretsError>
  /** Deterministic per deployment and region (see the module comment): the same value on every call and after a restart. */
  readonly postbackToken: (deploymentId: DeploymentId, regionKey: string) => Effect.Effect<Redacted.Redacted<string>>
  /** Constant-time comparison of a presented token against the region's derived one. */
  readonly verifyPostbackToken: (
    deploymentId: DeploymentId,
    regionKey: string,
    presented: Redacted.Redacted<string>
  ) => Effect.Effect<boolean>
  /** 32 fresh random bytes as 64 hex characters (a k3s join secret). */
  readonly generateSecret: Effect.Effect<Redacted.Redacted<string>>
}

export class Secrets extends Context.Tag("@sovereign/core/Secrets")<Secrets, SecretsService>() {}

const encodeCredentials = Schema.encodeSync(Schema.parseJson(Credentials))
const decodeCredentials = Schema.decodeUnknownEither(Schema.parseJson(Credentials))

/** What a deployment keeps sealed: the request's credentials and each region's k3s join secret. */
export interface DeploymentSecrets {
  readonly credentials: Credentials
  /** Region key → join secret; empty for a deployment sealed by an older server. */
  readonly clusterJoinSecrets: Readonly<Record<string, Redacted.Redacted<string>>>
}

const SealedSecrets = Schema.Struct({
  credentials: Credentials,
  clusterJoinSecrets: Schema.Record({ key: Schema.String, value: Schema.Redacted(Schema.String) })
})
const encodeSecrets = Schema.encodeSync(Schema.parseJson(SealedSecrets))
const decodeSecrets = Schema.decodeUnknownEither(Schema.parseJson(SealedSecrets))

/** Seals credentials and join secrets together (what `DeploymentRepo.create` stores as `sealedCredentials`). */
export const sealDeploymentSecrets = (secrets: DeploymentSecrets): Effect.Effect<string, SecretsError, Secrets> =>
  Effect.flatMap(Secrets, (service) => service.seal(Redacted.make(encodeSecrets(secrets))))

/** Opens what `sealDeploymentSecrets` (or, without join secrets, the older `sealCredentials`) sealed. */
export const unsealDeploymentSecrets = (sealed: string): Effect.Effect<DeploymentSecrets, SecretsError, Secrets> =>
  Effect.flatMap(Secrets, (service) =>
    Effect.flatMap(service.unseal(sealed), (plain) => {
      const text = Redacted.value(plain)
      const current = decodeSecrets(text)
      if (Either.isRight(current)) return Effect.succeed(current.right)
      return Either.match(decodeCredentials(text), {
        onLeft: () => Effect.fail(new SecretsError({ reason: "Corrupt", message: "sealed credentials do not decode" })),
        onRight: (credentials) => Effect.succeed({ credentials, clusterJoinSecrets: {} })
      })
    })
  )

/** Seals a request's credentials map (what `DeploymentRepo.create` stores as `sealedCredentials`). */
export const sealCredentials = (credentials: Credentials): Effect.Effect<string, SecretsError, Secrets> =>
  Effect.flatMap(Secrets, (secrets) => secrets.seal(Redacted.make(encodeCredentials(credentials))))

export const unsealCredentials = (sealed: string): Effect.Effect<Credentials, SecretsError, Secrets> =>
  Effect.flatMap(Secrets, (secrets) =>
    Effect.flatMap(secrets.unseal(sealed), (plain) =>
      Either.match(decodeCredentials(Redacted.value(plain)), {
        onLeft: () => Effect.fail(new SecretsError({ reason: "Corrupt", message: "sealed credentials do not decode" })),
        onRight: Effect.succeed
      })
    )
  )

// ---------------------------------------------------------------------------------------------
// Pure helpers an implementation may use (no I/O, no node:crypto)

const utf8 = (text: string) => new TextEncoder().encode(text)
const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")

/** HMAC-SHA256 (RFC 2104) over the pure SHA-256 of core. */
export const hmacSha256 = (key: Uint8Array, message: Uint8Array): Uint8Array => {
  const block = 64
  const normalised = key.length > block ? sha256(key) : key
  const padded = new Uint8Array(block)
  padded.set(normalised)
  const inner = new Uint8Array(block + message.length)
  const outer = new Uint8Array(block + 32)
  for (let i = 0; i < block; i++) {
    inner[i] = padded[i]! ^ 0x36
    outer[i] = padded[i]! ^ 0x5c
  }
  inner.set(message, block)
  outer.set(sha256(inner), block)
  return sha256(outer)
}

/** The postback token derivation every implementation must use, so tokens survive a change of store. */
export const derivePostbackToken = (serverKey: Uint8Array, deploymentId: DeploymentId, regionKey: string): string =>
  toHex(hmacSha256(serverKey, utf8(`postback:${deploymentId}:${regionKey}`)))

/** SHA-256 of a token, hex; what SPEC §7 allows to be stored. */
export const tokenHash = (token: string): string => toHex(sha256(utf8(token)))

export const constantTimeEqual = (a: string, b: string): boolean => {
  let difference = a.length ^ b.length
  for (let i = 0; i < Math.max(a.length, b.length); i++) difference |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0)
  return difference === 0
}

/**
 * In-memory, NOT encrypting: sealing is a reversible encoding with a marker, so tests can check that
 * sealed blobs never equal the plaintext. For tests and the embedded simulator only.
 */
export const layerMemory = (serverKey: string = "sovereign-test-key"): Layer.Layer<Secrets> => {
  const key = utf8(serverKey)
  const marker = "memsealed:"
  return Layer.succeed(Secrets, {
    seal: (plaintext) =>
      Effect.sync(() => marker + Array.from(utf8(Redacted.value(plaintext)), (b) => (b ^ 0x5a).toString(16).padStart(2, "0")).join("")),
    unseal: (sealed) =>
      sealed.startsWith(marker) && /^[0-9a-f]*$/.test(sealed.slice(marker.length)) && sealed.length % 2 === 0
        ? Effect.sync(() => {
            const body = sealed.slice(marker.length)
            const bytes = new Uint8Array(body.length / 2)
            for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(body.slice(i * 2, i * 2 + 2), 16) ^ 0x5a
            return Redacted.make(new TextDecoder().decode(bytes))
          })
        : Effect.fail(new SecretsError({ reason: "Corrupt", message: "not a sealed blob" })),
    postbackToken: (deploymentId, regionKey) => Effect.sync(() => Redacted.make(derivePostbackToken(key, deploymentId, regionKey))),
    verifyPostbackToken: (deploymentId, regionKey, presented) =>
      Effect.sync(() =>
        constantTimeEqual(tokenHash(derivePostbackToken(key, deploymentId, regionKey)), tokenHash(Redacted.value(presented)))
      ),
    generateSecret: Effect.map(Effect.all(Array.from({ length: 32 }, () => Random.nextIntBetween(0, 256))), (bytes) =>
      Redacted.make(toHex(Uint8Array.from(bytes)))
    )
  })
}
