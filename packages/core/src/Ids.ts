/** The identity port: deployment and execution ids from random bytes (SPEC 2.2, SPEC §3). */
import { Context, Effect, Layer, Random } from "effect"
import { deploymentIdFromBytes, type DeploymentId } from "./Deployment.js"

export interface IdsService {
  /** 16 lowercase hex characters from 8 random bytes. Never repeats within one store. */
  readonly deploymentId: Effect.Effect<DeploymentId>
  /** An execution id (16 lowercase hex characters); unique per job execution. */
  readonly executionId: Effect.Effect<string>
}

export class Ids extends Context.Tag("@sovereign/core/Ids")<Ids, IdsService>() {}

const hex = (bytes: Uint8Array): string => deploymentIdFromBytes(bytes)

/**
 * Ids from the platform's cryptographic random source (`globalThis.crypto`, no import needed), drawn
 * 4 KiB at a time: one call per 8 bytes cost ~20 µs, which Phase 1 paid for every release event.
 */
export const layerCrypto: Layer.Layer<Ids> = Layer.sync(Ids, () => {
  const pool = new Uint8Array(4096)
  let offset = pool.length
  const next = Effect.sync(() => {
    if (offset === pool.length) {
      globalThis.crypto.getRandomValues(pool)
      offset = 0
    }
    offset += 8
    return hex(pool.subarray(offset - 8, offset))
  })
  return { deploymentId: next, executionId: next }
})

const randomHex: Effect.Effect<string> = Effect.map(Effect.all(Array.from({ length: 8 }, () => Random.nextIntBetween(0, 256))), (values) =>
  hex(Uint8Array.from(values))
)

/** Ids from Effect's `Random` service: deterministic under a seeded `Random` in tests. */
export const layerRandom: Layer.Layer<Ids> = Layer.succeed(Ids, {
  deploymentId: randomHex,
  executionId: randomHex
})
