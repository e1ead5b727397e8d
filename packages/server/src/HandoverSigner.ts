/**
 * The handover (SPEC 2.9): an RS256 key persisted (encrypted) in the data directory, its public JWKS,
 * and the `Handover` port: a 5-minute token for the owner.
 */
import { Deployment, DeploymentRepo, Handover, Secrets } from "@sovereign/core"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer, Redacted } from "effect"
import * as jose from "jose"
import { writePrivateFile } from "./internal/files.js"
import { ServerConfig } from "./ServerConfig.js"

export const issuer = "sovereign"
export const tokenLifetimeSeconds = 5 * 60

export interface HandoverKeysShape {
  readonly jwks: { readonly keys: ReadonlyArray<Record<string, unknown>> }
  readonly sign: (claims: { readonly fqdn: string; readonly deploymentId: string; readonly owner: string }) => Effect.Effect<string>
}

export class HandoverKeys extends Context.Tag("@sovereign/server/HandoverKeys")<HandoverKeys, HandoverKeysShape>() {}

const keyFile = (dataDir: string) => path.join(dataDir, "handover-key.sealed")

/** Loads the signing key from the data directory (sealed under the server key), generating it once. */
export const layer: Layer.Layer<HandoverKeys, Secrets.SecretsError, ServerConfig | Secrets.Secrets> = Layer.effect(
  HandoverKeys,
  Effect.gen(function* () {
    const config = yield* ServerConfig
    const secrets = yield* Secrets.Secrets
    const file = keyFile(config.dataDir)
    const existing = yield* Effect.sync(() => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined))
    let privateJwk: jose.JWK
    if (existing !== undefined) {
      privateJwk = JSON.parse(Redacted.value(yield* secrets.unseal(existing.trim()))) as jose.JWK
    } else {
      const { privateKey } = yield* Effect.promise(() => jose.generateKeyPair("RS256", { modulusLength: 2048, extractable: true }))
      privateJwk = yield* Effect.promise(() => jose.exportJWK(privateKey))
      const sealed = yield* secrets.seal(Redacted.make(JSON.stringify(privateJwk)))
      yield* Effect.sync(() => writePrivateFile(file, sealed + "\n"))
    }
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
          new jose.SignJWT({ email: owner, email_verified: true, role: "sovereign-admin", sovereign_fqdn: fqdn, deployment_id: deploymentId })
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
    ({ privateKey }) => Effect.flatMap(Effect.promise(() => jose.exportJWK(privateKey)), makeKeys)
  )
)

export const handoverUrl = (fqdn: string, token: string) => `${Deployment.consoleUrl(fqdn)}/auth/handover?token=${encodeURIComponent(token)}`

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
