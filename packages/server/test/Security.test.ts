/** Tokens, the server key and sealing (SPEC §7). */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Auth from "../src/Auth.js"
import * as SecretBox from "../src/SecretBox.js"
import * as ServerConfig from "../src/ServerConfig.js"
import { testToken } from "./support/tokens.js"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-security-"))
const configWith = (overrides: Partial<ServerConfig.ServerConfigShape>) => ServerConfig.layerWith(overrides)

describe("bearer tokens", () => {
  it.effect("map each configured token to its principal, and nothing else", () =>
    Effect.gen(function* () {
      const admin = testToken("admin")
      const operator = testToken("operator")
      const entries = yield* Auth.parseTokenList(`${admin}:admin:Root@Example.com, ${operator}:operator:op@example.com`)
      const authenticator = Auth.makeAuthenticator(entries, Option.none())
      expect(authenticator.authenticate(Redacted.make(admin))).toEqual(Option.some({ email: "root@example.com", role: "admin" }))
      expect(authenticator.authenticate(Redacted.make(operator))).toEqual(Option.some({ email: "op@example.com", role: "operator" }))
      expect(authenticator.authenticate(Redacted.make(operator.slice(0, -1)))).toEqual(Option.none())
      expect(authenticator.authenticate(Redacted.make(""))).toEqual(Option.none())
    })
  )

  it.effect("reject a malformed list without echoing the token", () =>
    Effect.gen(function* () {
      const good = testToken("long-enough")
      for (const list of ["short:admin:a@b.c", `${good}:root:a@b.c`, `${good}:admin:`]) {
        const error = yield* Effect.flip(Auth.parseTokenList(list))
        expect(error.message).not.toContain(good)
        expect(error.message).not.toContain("short")
      }
    })
  )

  it.effect("refuse tokens shorter than 32 characters or not random, saying how to make one", () =>
    Effect.gen(function* () {
      const tooShort = "0123456789abcdef0123456789abcde" // 31
      const repetitive = "abababababababababababababababababababab"
      for (const token of [tooShort, repetitive, "bench-admin-token-000"]) {
        const error = yield* Effect.flip(Auth.parseTokenList(`${token}:admin:a@b.c`))
        expect(error.message).toMatch(/32 random characters|does not look random/)
        expect(error.message).not.toContain(token)
      }
      expect((yield* Auth.parseTokenList(`${tooShort}f:admin:a@b.c`)).length).toBe(1)
    })
  )

  it.effect("without configured tokens, generate one admin token once, stored 0600", () =>
    Effect.gen(function* () {
      const dataDir = tempDir()
      const first = yield* Effect.provide(
        Auth.Authenticator,
        Auth.layer.pipe(Layer.provide(configWith({ dataDir, apiTokens: Option.none() })))
      )
      const generated = Option.getOrThrow(first.generated)
      expect(generated.created).toBe(true)
      expect(fs.statSync(generated.file).mode & 0o777).toBe(0o600)
      const second = yield* Effect.provide(
        Auth.Authenticator,
        Auth.layer.pipe(Layer.provide(configWith({ dataDir, apiTokens: Option.none() })))
      )
      expect(Option.getOrThrow(second.generated).created).toBe(false)
      expect(Redacted.value(Option.getOrThrow(second.generated).token)).toBe(Redacted.value(generated.token))
      expect(second.authenticate(generated.token)).toEqual(Option.some({ email: "admin@localhost", role: "admin" }))
    })
  )
})

describe("sealing under the server key", () => {
  it.effect("round-trips, is not the plaintext, and refuses tampering and another key", () =>
    Effect.gen(function* () {
      const box = SecretBox.makeService(SecretBox.keyFromString("b".repeat(64)))
      const sealed = yield* box.seal(Redacted.make("kubeconfig: very secret"))
      expect(sealed).not.toContain("very secret")
      expect(Redacted.value(yield* box.unseal(sealed))).toBe("kubeconfig: very secret")
      const tampered = sealed.slice(0, -4) + (sealed.endsWith("AAAA") ? "BBBB" : "AAAA")
      expect((yield* Effect.flip(box.unseal(tampered))).reason).toBe("KeyMismatch")
      const other = SecretBox.makeService(SecretBox.keyFromString("another passphrase"))
      expect((yield* Effect.flip(other.unseal(sealed))).reason).toBe("KeyMismatch")
      expect((yield* Effect.flip(box.unseal("plain text"))).reason).toBe("Corrupt")
    })
  )

  it.effect("derives one postback token per deployment and region, and verifies it", () =>
    Effect.gen(function* () {
      const box = SecretBox.makeService(SecretBox.keyFromString("c".repeat(64)))
      const token = yield* box.postbackToken("0123456789abcdef", "fsn1")
      expect(Redacted.value(token)).toMatch(/^[0-9a-f]{64}$/)
      expect(yield* box.verifyPostbackToken("0123456789abcdef", "fsn1", token)).toBe(true)
      expect(yield* box.verifyPostbackToken("0123456789abcdef", "hel1-1", token)).toBe(false)
      expect(yield* box.verifyPostbackToken("0123456789abcdee", "fsn1", token)).toBe(false)
      expect(yield* box.verifyPostbackToken("0123456789abcdef", "fsn1", Redacted.make("x"))).toBe(false)
      // Join secrets are fresh random values, not derived from anything.
      expect(Redacted.value(yield* box.generateSecret)).not.toBe(Redacted.value(yield* box.generateSecret))
    })
  )

  it.effect("generates the key file once (0600) when SOVEREIGN_SECRET_KEY is unset, and reads it back", () =>
    Effect.gen(function* () {
      const dataDir = tempDir()
      const load = Effect.provide(SecretBox.loadKey, configWith({ dataDir, secretKey: Option.none() }))
      const first = yield* load
      expect(fs.statSync(path.join(dataDir, "secret.key")).mode & 0o777).toBe(0o600)
      const sealed = SecretBox.seal(first, "hello")
      const again = yield* load
      expect(SecretBox.unseal(again, sealed)).toEqual({ ok: true, value: "hello" })
    })
  )
})
