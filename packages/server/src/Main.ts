/** The whole server as layers: configuration, database, store, world, orchestrator, HTTP; and `serve`, which runs it. */
import * as Ids from "@sovereign/core/Ids"
import { Console, Effect, Layer, Option, Redacted } from "effect"
import * as Adapters from "./Adapters.js"
import * as Auth from "./Auth.js"
import * as Database from "./Database.js"
import * as HandoverSigner from "./HandoverSigner.js"
import * as HttpServer from "./HttpServer.js"
import * as KeyCheck from "./KeyCheck.js"
import { ensurePrivateDir } from "./internal/files.js"
import * as Runtime from "./Runtime.js"
import * as SecretBox from "./SecretBox.js"
import * as ServerConfig from "./ServerConfig.js"
import * as SqlStore from "./SqlStore.js"

/** Everything below HTTP: store, keys, world and orchestrator, over a `ServerConfig`. */
export const coreLayer = Layer.unwrapEffect(
  Effect.flatMap(ServerConfig.ServerConfig, (config) =>
    // The data directory holds the key, the admin token and PGlite: 0700 before anything is read or written there.
    Effect.try({
      try: () => ensurePrivateDir(config.dataDir),
      catch: (error) => new Error(`the data directory ${config.dataDir} cannot be made private (0700): ${error instanceof Error ? error.message : String(error)}`)
    })
  ).pipe(Effect.zipRight(ServerConfig.ServerConfig), Effect.map(() => {
    // The key is checked against the database before anything else reads it (a wrong key refuses to start).
    const keyed = Layer.merge(SecretBox.layer, Database.layer).pipe((keys) => KeyCheck.layer.pipe(Layer.provideMerge(keys)))
    const storage = SqlStore.layer().pipe(Layer.provideMerge(keyed))
    const handover = HandoverSigner.layerHandover.pipe(Layer.provideMerge(HandoverSigner.layer))
    const world = Adapters.layer
    const orchestration = Runtime.controlLayer.pipe(
      Layer.provideMerge(Runtime.orchestratorLayer),
      Layer.provideMerge(Runtime.resumedLayer),
      Layer.provideMerge(world),
      Layer.provideMerge(handover),
      Layer.provideMerge(Ids.layerCrypto)
    )
    return orchestration.pipe(Layer.provideMerge(Auth.layer), Layer.provideMerge(storage))
  }))
)

/** The HTTP server over `coreLayer`, listening where the configuration says. */
export const serverLayer = Layer.unwrapEffect(
  Effect.map(ServerConfig.ServerConfig, (config) =>
    HttpServer.layer({ host: config.host, port: config.port }, { bodyTimeout: config.bodyTimeout }).pipe(Layer.provideMerge(coreLayer))
  )
)

/** Prints where the server listens and how to authenticate, then resumes every unfinished deployment. */
export const announceAndResume = Effect.gen(function* () {
  const url = yield* HttpServer.baseUrl
  const authenticator = yield* Auth.Authenticator
  const config = yield* ServerConfig.ServerConfig
  yield* Console.log(`Sovereign is listening on ${url}`)
  yield* Console.log(`  API         ${url}/api/v1  (OpenAPI: ${url}/api/v1/openapi.json)`)
  yield* Console.log(`  world       cloud=${config.cloud} dns=${config.dns} watch=${config.watch} mesh=${config.mesh}${config.cloud === "simulator" ? ` speed=${config.simSpeed}` : ""}`)
  yield* Console.log(`  database    ${Option.isSome(config.databaseUrl) ? "PostgreSQL (DATABASE_URL)" : `PGlite in ${config.dataDir}`}`)
  // The token is printed once, when it is made; later starts name the file only, so logs never keep it.
  yield* Option.match(authenticator.generated, {
    onNone: () => Console.log("  tokens      from SOVEREIGN_API_TOKENS"),
    onSome: (generated) =>
      generated.created
        ? Console.log(`  admin token ${Redacted.value(generated.token)}  (generated now, stored in ${generated.file}; printed this once)`)
        : Console.log(`  admin token in ${generated.file}`)
  })
  yield* Console.log(`Next: npx sovereign deploy examples/deployment.json --follow`)
  yield* Runtime.resumeAll
})

/** `sovereign serve`: runs until interrupted (SIGTERM/SIGINT close every scope: fibers stop, the database closes). */
export const serve = Layer.launch(
  Layer.effectDiscard(announceAndResume).pipe(Layer.provideMerge(serverLayer), Layer.provide(ServerConfig.layer))
)
