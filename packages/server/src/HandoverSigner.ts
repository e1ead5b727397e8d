/**
 * The handover (SPEC 2.9): an RS256 key persisted (encrypted) in the database, its public JWKS,
 * and the `Handover` port: a 5-minute token for the owner.
 */
import { Deployment, DeploymentRepo, Handover, Secrets } from "@sovereign/core"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { SqlClient, type SqlError } from "@effect/sql"
import { Clock, Context, Effect, Layer, Redacted } from "effect"
import * as jose from "jose"
import { ServerConfig } from "./ServerConfig.js"

export const issuer = "sovereign"
export const tokenLifetimeSeconds = 5 * 60

export interface HandoverKeysShape {
  readonly jwks: { readonly keys: ReadonlyArray<Record<string, unknown>> }
  readonly sign: (claims: { readonly fqdn: string; readonly deploymentId: string; readonly owner: string }) => Effect.Effect<string>
}

export class HandoverKeys extends Context.Tag("@sovereign/server/HandoverKeys")<HandoverKeys, HandoverKeysShape>() {}

const keyFile = (dataDir: string) => path.join(dataDir, "handover-key.sealed")

/**
 * The signing key, shared by every replica on the database (issue 11): read from `handover_key`,
 * sealed under the server key. A database without one adopts the key an earlier single server kept
 * in its data directory, or a new one; when two replicas start at once the first insert wins and both
 * use the stored key, so every replica serves the same JWKS.
 */
export const layer: Layer.Layer<
  HandoverKeys,
  Secrets.SecretsError | SqlError.SqlError,
  ServerConfig | Secrets.Secrets | SqlClient.SqlClient
> = Layer.effect(
  HandoverKeys,
  Effect.gen(function* () {
    const config = yield* ServerConfig
    const secrets = yield* Secrets.Secrets
    const sql = yield* SqlClient.SqlClient
    const stored = () => Effect.map(sql<{ sealed: string }>`SELECT sealed FROM handover_key WHERE id = 1`, (rows) => rows[0]?.sealed)
    let sealed = yield* stored()
    if (sealed === undefined) {
      const file = keyFile(config.dataDir)
      const existing = yield* Effect.sync(() => (fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim() : undefined))
      const candidate =
        existing ??
        (yield* Effect.gen(function* () {
          const { privateKey } = yield* Effect.promise(() => jose.generateKeyPair("RS256", { modulusLength: 2048, extractable: true }))
          const jwk = yield* Effect.promise(() => jose.exportJWK(privateKey))
          return yield* secrets.seal(Redacted.make(JSON.stringify(jwk)))
        }))
      const at = yield* Clock.currentTimeMillis
      yield* sql`INSERT INTO handover_key (id, sealed, created_at) VALUES (1, ${candidate}, ${at}) ON CONFLICT (id) DO NOTHING`
      sealed = (yield* stored()) ?? candidate
    }
    const privateJwk = JSON.parse(Redacted.value(yield* secrets.unseal(sealed))) as jose.JWK
    return yield* makeKeys(privateJwk)
  })
)

export const makeKeys = (privateJwk: jose.JWK) =>
  Effect.gen(function* () {
    const key = yield* Effect.promise(() => jose.importJWK(privateJwk, "RS256"))
    const { n, e, kty } = privateJwk
    const kid = yield* Effect.promise(() => jose.calculateJwkThumbprint({ kty: kty!, n: n!, e: e! }))
    const publicJwk = { kty, n, e, use: "sig", alg: "RS256", kid }
    const service: HandoverKeysShape = {
      jwks: { keys: [publicJwk] },
      sign: ({ fqdn, deploymentId, owner }) =>
        Effect.promise(() =>
          new jose.SignJWT({
            email: owner,
            email_verified: true,
            role: "sovereign-admin",
            sovereign_fqdn: fqdn,
            deployment_id: deploymentId
          })
            .setProtectedHeader({ alg: "RS256", kid })
            .setIssuer(issuer)
            .setAudience(Deployment.consoleUrl(fqdn))
            .setSubject(owner)
            .setJti(randomUUID())
            .setIssuedAt()
            .setExpirationTime(`${tokenLifetimeSeconds}s`)
            .sign(key)
        )
    }
    return service
  })

/** A throwaway key, for tests. */
export const layerEphemeral: Layer.Layer<HandoverKeys> = Layer.effect(
  HandoverKeys,
  Effect.flatMap(
    Effect.promise(() => jose.generateKeyPair("RS256", { modulusLength: 2048, extractable: true })),
    ({ privateKey }) =>
      Effect.flatMap(
        Effect.promise(() => jose.exportJWK(privateKey)),
        makeKeys
      )
  )
)

export const handoverUrl = (fqdn: string, token: string) =>
  `${Deployment.consoleUrl(fqdn)}/auth/handover?token=${encodeURIComponent(token)}`

/**
 * The `Handover` port: tokens minted with the server key. The owner's access object in the cluster is
 * created by the orchestration itself (through `ClusterAccess`), so `prepare` has nothing left to do.
 */
export const layerHandover: Layer.Layer<Handover.Handover, never, HandoverKeys> = Layer.effect(
  Handover.Handover,
  Effect.map(HandoverKeys, (keys) => ({
    prepare: () => Effect.void,
    url: (deployment: DeploymentRepo.DeploymentRecord) =>
      Effect.map(keys.sign({ fqdn: deployment.spec.sovereignFQDN, deploymentId: deployment.id, owner: deployment.owner }), (token) =>
        handoverUrl(deployment.spec.sovereignFQDN, token)
      )
  }))
)
