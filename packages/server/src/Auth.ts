/** Operator authentication (SPEC §7): bearer tokens from configuration, each mapped to a principal. */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import * as path from "node:path"
import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { readOrCreatePrivateFile } from "./internal/files.js"
import { ServerConfig } from "./ServerConfig.js"

export const Role = Schema.Literal("admin", "operator")
export type Role = typeof Role.Type

export interface Principal {
  readonly email: string
  readonly role: Role
}

interface TokenEntry {
  readonly digest: Buffer
  readonly principal: Principal
}

export class InvalidTokenList extends Schema.TaggedError<InvalidTokenList>()("InvalidTokenList", {
  message: Schema.String
}) {}

const digestOf = (token: string) => createHash("sha256").update(token, "utf8").digest()

export const minimumTokenLength = 32

/**
 * Why a token is too weak to guard the API, if it is: at least 32 characters, and not a few characters
 * repeated (a random token of that length has many distinct ones). `openssl rand -hex 32` makes a good one.
 */
export const tokenProblem = (token: string): string | undefined => {
  if (token.length < minimumTokenLength)
    return `the token must have at least ${minimumTokenLength} random characters (e.g. openssl rand -hex 32)`
  if (new Set(token).size < 10) return "the token does not look random (too few distinct characters); use e.g. openssl rand -hex 32"
  if (/[\s,]/.test(token)) return "the token must not contain spaces or commas"
  return undefined
}

/** Parses `<token>:<role>:<email>,…`; the message of a failure never repeats a token. */
export const parseTokenList = (text: string): Effect.Effect<ReadonlyArray<TokenEntry>, InvalidTokenList> =>
  Effect.forEach(
    text
      .split(",")
      .map((entry) => entry.trim())
      .filter((entry) => entry !== ""),
    (entry, index) => {
      const [token, role, ...emailParts] = entry.split(":")
      const email = emailParts.join(":").trim().toLowerCase()
      const problem = token === undefined ? "the token is missing" : tokenProblem(token.trim())
      if (token === undefined || problem !== undefined) {
        return Effect.fail(new InvalidTokenList({ message: `SOVEREIGN_API_TOKENS entry ${index + 1}: ${problem}` }))
      }
      if (role !== "admin" && role !== "operator") {
        return Effect.fail(new InvalidTokenList({ message: `SOVEREIGN_API_TOKENS entry ${index + 1}: the role must be admin or operator` }))
      }
      if (!/^[^\s@]+@[^\s@]+$/.test(email)) {
        return Effect.fail(new InvalidTokenList({ message: `SOVEREIGN_API_TOKENS entry ${index + 1}: an e-mail address is required` }))
      }
      return Effect.succeed({ digest: digestOf(token.trim()), principal: { email, role } })
    }
  )

export interface AuthenticatorService {
  /** The principal a bearer token stands for; compares every configured token in constant time. */
  readonly authenticate: (token: Redacted.Redacted<string>) => Option.Option<Principal>
  /** Set when no token was configured and one was generated (`npm start` prints it once). */
  readonly generated: Option.Option<{ readonly token: Redacted.Redacted<string>; readonly file: string; readonly created: boolean }>
}

export class Authenticator extends Context.Tag("@sovereign/server/Authenticator")<Authenticator, AuthenticatorService>() {}

export const makeAuthenticator = (
  entries: ReadonlyArray<TokenEntry>,
  generated: AuthenticatorService["generated"]
): AuthenticatorService => ({
  generated,
  authenticate: (token) => {
    const presented = digestOf(Redacted.value(token).trim())
    let found: Principal | undefined
    for (const entry of entries) {
      if (timingSafeEqual(entry.digest, presented) && found === undefined) found = entry.principal
    }
    return Option.fromNullable(found)
  }
})

export const adminTokenFile = (dataDir: string) => path.join(dataDir, "admin-token")

export const layer: Layer.Layer<Authenticator, InvalidTokenList, ServerConfig> = Layer.effect(
  Authenticator,
  Effect.gen(function* () {
    const config = yield* ServerConfig
    if (Option.isSome(config.apiTokens)) {
      const entries = yield* parseTokenList(Redacted.value(config.apiTokens.value))
      if (entries.length > 0) return makeAuthenticator(entries, Option.none())
    }
    const file = adminTokenFile(config.dataDir)
    const { contents, created } = readOrCreatePrivateFile(file, () => `sov_${randomBytes(24).toString("hex")}\n`)
    const token = contents.trim()
    return makeAuthenticator(
      [{ digest: digestOf(token), principal: { email: "admin@localhost", role: "admin" } }],
      Option.some({ token: Redacted.make(token), file, created })
    )
  })
)

export const layerTokens = (tokens: ReadonlyArray<{ readonly token: string; readonly principal: Principal }>): Layer.Layer<Authenticator> =>
  Layer.succeed(
    Authenticator,
    makeAuthenticator(
      tokens.map(({ token, principal }) => ({ digest: digestOf(token), principal })),
      Option.none()
    )
  )

/** Operators act on their own deployments only; admins on all. */
export const canSee = (principal: Principal, owner: string): boolean =>
  principal.role === "admin" || principal.email === owner.toLowerCase()
