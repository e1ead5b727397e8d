/** The whole server as layers: configuration, database, store, world, orchestrator, HTTP; and `serve`, which runs it. */
import * as Ids from "@sovereign/core/Ids"
import { Cause, Console, Effect, Layer, Option, Redacted, Stream } from "effect"
import * as Adapters from "./Adapters.js"
import * as Auth from "./Auth.js"
import * as ChangeFeed from "./ChangeFeed.js"
import * as Database from "./Database.js"
import * as HandoverSigner from "./HandoverSigner.js"
import * as HttpServer from "./HttpServer.js"
import * as KeyCheck from "./KeyCheck.js"
import { ensurePrivateDir } from "./internal/files.js"
import * as Logging from "./Logging.js"
import * as Probes from "./Probes.js"
import * as Telemetry from "./Telemetry.js"
import * as Tracing from "./Tracing.js"
import * as Runtime from "./Runtime.js"
import * as SecretBox from "./SecretBox.js"
import * as ServerConfig from "./ServerConfig.js"
import * as SqlLeases from "./SqlLeases.js"
import * as SqlStore from "./SqlStore.js"

/** Everything below HTTP: store, keys, world and orchestrator, over a `ServerConfig`. */
export const coreLayer = Layer.unwrapEffect(
  Effect.flatMap(ServerConfig.ServerConfig, (config) =>
    // The data directory holds the key, the admin token and PGlite: 0700 before anything is read or written there.
    Effect.try({
      try: () => ensurePrivateDir(config.dataDir),
      catch: (error) =>
        new Error(
          `the data directory ${config.dataDir} cannot be made private (0700): ${error instanceof Error ? error.message : String(error)}`
        )
    })
  ).pipe(
    Effect.zipRight(ServerConfig.ServerConfig),
    Effect.map((config) => {
      // The key is checked against the database before anything else reads it (a wrong key refuses to start).
      const keyed = Layer.merge(SecretBox.layer, Database.layer).pipe((keys) => KeyCheck.layer.pipe(Layer.provideMerge(keys)))
      // Replicas (issue 11): on PostgreSQL every replica shares the deployments; writes notify the
      // others and one LISTEN connection (the change feed) brings their changes here. Leases on every
      // database: PGlite has one process per data directory and frees a crashed start's leases at once.
      const replica = SqlLeases.makeHolder()
      const store = SqlStore.layer(Option.isSome(config.databaseUrl) ? { replica } : {})
      const leases = Layer.unwrapEffect(
        Effect.map(SqlStore.Announcements, (announcements) =>
          SqlLeases.layer({
            ttl: config.leaseTtl,
            exclusive: Option.isNone(config.databaseUrl),
            notify: Option.isSome(config.databaseUrl),
            holder: replica,
            wakeups: Stream.fromPubSub(announcements.leases)
          })
        )
      )
      const feed = Option.match(config.databaseUrl, { onNone: () => Layer.empty, onSome: ChangeFeed.layer })
      const storage = Layer.mergeAll(leases, feed).pipe(Layer.provideMerge(store), Layer.provideMerge(keyed))
      const handover = HandoverSigner.layerHandover.pipe(Layer.provideMerge(HandoverSigner.layer))
      const world = Adapters.layer
      const orchestration = Runtime.controlLayer.pipe(
        Layer.provideMerge(Runtime.orchestratorLayer),
        Layer.provideMerge(Runtime.resumedLayer),
        Layer.provideMerge(world),
        Layer.provideMerge(handover),
        Layer.provideMerge(Ids.layerCrypto)
      )
      return orchestration.pipe(Layer.provideMerge(Auth.layer), Layer.provideMerge(Probes.layer), Layer.provideMerge(storage))
    })
  )
)

/** The HTTP server over `coreLayer`, listening where the configuration says. */
export const serverLayer = Layer.unwrapEffect(
  Effect.map(ServerConfig.ServerConfig, (config) =>
    HttpServer.layer({ host: config.host, port: config.port }, { bodyTimeout: config.bodyTimeout }, config.consoleDir).pipe(
      Layer.provideMerge(Telemetry.serverLayer({ host: config.host, port: config.metricsPort })),
      Layer.provideMerge(coreLayer)
    )
  )
)

/** Prints where the server listens and how to authenticate, then resumes every unfinished deployment. */
export const announceAndResume = Effect.gen(function* () {
  const url = yield* HttpServer.baseUrl
  const authenticator = yield* Auth.Authenticator
  const config = yield* ServerConfig.ServerConfig
  const metrics = yield* Telemetry.MetricsAddress
  const json = config.logFormat === "json"
  // With JSON logs every line is a log entry a collector keeps, so the generated token is never among them.
  const say = (line: string) => (json ? Effect.logInfo(line.trim()) : Console.log(line))
  yield* say(`Sovereign is listening on ${url}`)
  yield* say(`  API         ${url}/api/v1  (OpenAPI: ${url}/api/v1/openapi.json)`)
  yield* say(`  probes      ${url}/livez  ${url}/readyz  (?verbose lists the checks)`)
  yield* say(
    `  metrics     ${Option.match(metrics, { onNone: () => "off (SOVEREIGN_METRICS_PORT=off)", onSome: (address) => address.url })}`
  )
  yield* say(`  traces      ${Option.getOrElse(config.otlpEndpoint, () => "off (set OTEL_EXPORTER_OTLP_ENDPOINT)")}`)
  yield* say(
    `  world       cloud=${config.cloud} dns=${config.dns} watch=${config.watch} mesh=${config.mesh}${config.cloud === "simulator" ? ` speed=${config.simSpeed}` : ""}`
  )
  yield* say(`  database    ${Option.isSome(config.databaseUrl) ? "PostgreSQL (DATABASE_URL)" : `PGlite in ${config.dataDir}`}`)
  // The token is printed once, when it is made; later starts name the file only, so logs never keep it.
  yield* Option.match(authenticator.generated, {
    onNone: () => say("  tokens      from SOVEREIGN_API_TOKENS"),
    onSome: (generated) =>
      generated.created && !json
        ? say(`  admin token ${Redacted.value(generated.token)}  (generated now, stored in ${generated.file}; printed this once)`)
        : say(`  admin token in ${generated.file}`)
  })
  if (!json) yield* say(`Next: npx sovereign deploy examples/deployment.json --follow`)
  yield* Runtime.resumeAll
})

/** Logs in the configured format and the tracer (none without OTEL_EXPORTER_OTLP_ENDPOINT), under everything else. */
export const observabilityLayer = Layer.unwrapEffect(
  Effect.map(ServerConfig.ServerConfig, (config) =>
    Layer.mergeAll(Logging.layer(config.logFormat), Tracing.layer({ endpoint: config.otlpEndpoint }))
  )
)

/**
 * `sovereign serve`: runs until interrupted (SIGTERM/SIGINT close every scope: fibers stop, the database
 * closes). A start that fails is logged here, in the configured format (one JSON line with its cause
 * under SOVEREIGN_LOG_FORMAT=json), so `bin.ts` turns the runtime's own error report off.
 */
export const serve = Effect.gen(function* () {
  const format = yield* ServerConfig.config.pipe(
    Effect.map((config) => config.logFormat),
    Effect.orElseSucceed(() => "pretty" as const)
  )
  return yield* Layer.launch(
    Layer.effectDiscard(announceAndResume).pipe(
      Layer.provideMerge(serverLayer),
      Layer.provide(observabilityLayer),
      Layer.provide(ServerConfig.layer)
    )
  ).pipe(
    Effect.tapErrorCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("the server stopped", cause))),
    Effect.provide(Logging.layer(format))
  )
})
