/**
 * Where the simulated world keeps its state: one JSON document per key (`deployment/<id>`, `dns`).
 * The server implements it in its database, so the world survives a restart of the hosting process
 * exactly as a real cloud would.
 */
import { Context, Effect, Layer, Option, Schema } from "effect"

export class SimulatorStoreError extends Schema.TaggedError<SimulatorStoreError>()("SimulatorStoreError", {
  message: Schema.String
}) {
  get isRetryable(): boolean {
    return true
  }
}

export interface SimulatorStoreService {
  readonly load: (key: string) => Effect.Effect<Option.Option<string>, SimulatorStoreError>
  /** Replaces the document atomically. */
  readonly save: (key: string, document: string) => Effect.Effect<void, SimulatorStoreError>
  /** Keys starting with `prefix`, sorted. */
  readonly keys: (prefix: string) => Effect.Effect<ReadonlyArray<string>, SimulatorStoreError>
  /**
   * Whether other processes change the documents too (several server replicas on one database):
   * then the world keeps no copy between calls and changes a document only under `exclusively`.
   */
  readonly shared: boolean
  /** Runs `effect` (a load, a change and a save of `key`) while no other process changes `key`. */
  readonly exclusively: <A, E>(key: string, effect: Effect.Effect<A, E>) => Effect.Effect<A, E | SimulatorStoreError>
}

export class SimulatorStore extends Context.Tag("@sovereign/adapter-simulator/SimulatorStore")<SimulatorStore, SimulatorStoreService>() {}

/** A store over a plain Map the caller owns: keep the Map to "restart" the world in a test. */
export const layerMemory = (documents: Map<string, string> = new Map()): Layer.Layer<SimulatorStore> =>
  Layer.succeed(SimulatorStore, {
    load: (key) => Effect.sync(() => Option.fromNullable(documents.get(key))),
    save: (key, document) => Effect.sync(() => void documents.set(key, document)),
    keys: (prefix) => Effect.sync(() => [...documents.keys()].filter((key) => key.startsWith(prefix)).sort()),
    shared: false,
    exclusively: (_key, effect) => effect
  })
