/** The server's configuration, read from the environment (SPEC §8). */
import { Config, Context, Duration, Effect, Layer, Option, Redacted } from "effect"

export type CloudMode = "simulator" | "hetzner"
export type DnsMode = "simulator" | "powerdns" | "none"
export type MeshMode = "simulator" | "cilium"
export type WatchMode = "simulator" | "kubernetes"

export interface ServerConfigShape {
  readonly host: string
  readonly port: number
  readonly dataDir: string
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
  readonly apiTokens: Option.Option<Redacted.Redacted<string>>
  readonly secretKey: Option.Option<Redacted.Redacted<string>>
  /** Base URL cloud-init calls back; defaults to the listening address. */
  readonly publicUrl: Option.Option<string>
  readonly cloud: CloudMode
  readonly dns: DnsMode
  readonly mesh: MeshMode
  readonly watch: WatchMode
  readonly simSpeed: number
  readonly simSeed: number
  readonly simFaults: string
  readonly phase1Timeout: Duration.Duration
  readonly readySentinel: Option.Option<string>
  readonly dnsSubdomains: Option.Option<ReadonlyArray<string>>
  /** How long a client may take to send a whole request (a stalled body is answered 408 and closed). */
  readonly bodyTimeout: Duration.Duration
}

export class ServerConfig extends Context.Tag("@sovereign/server/ServerConfig")<ServerConfig, ServerConfigShape>() {}

const optionalRedacted = (name: string) =>
  Config.option(Config.redacted(name)).pipe(
    Config.map(Option.filter((value) => Redacted.value(value).trim() !== ""))
  )

const optionalString = (name: string) =>
  Config.option(Config.string(name)).pipe(Config.map(Option.filter((value) => value.trim() !== "")))

export const config: Config.Config<ServerConfigShape> = Config.all({
  host: Config.string("SOVEREIGN_HOST").pipe(Config.withDefault("127.0.0.1")),
  port: Config.port("SOVEREIGN_PORT").pipe(Config.withDefault(8080)),
  dataDir: Config.string("SOVEREIGN_DATA_DIR").pipe(Config.withDefault("./.sovereign")),
  databaseUrl: optionalRedacted("DATABASE_URL"),
  apiTokens: optionalRedacted("SOVEREIGN_API_TOKENS"),
  secretKey: optionalRedacted("SOVEREIGN_SECRET_KEY"),
  publicUrl: optionalString("SOVEREIGN_PUBLIC_URL"),
  cloud: Config.literal("simulator", "hetzner")("SOVEREIGN_CLOUD").pipe(Config.withDefault("simulator" as const)),
  dns: Config.literal("simulator", "powerdns", "none")("SOVEREIGN_DNS").pipe(Config.withDefault("simulator" as const)),
  mesh: Config.literal("simulator", "cilium")("SOVEREIGN_MESH").pipe(Config.withDefault("simulator" as const)),
  watch: Config.literal("simulator", "kubernetes")("SOVEREIGN_WATCH").pipe(Config.withDefault("simulator" as const)),
  simSpeed: Config.number("SOVEREIGN_SIM_SPEED").pipe(
    Config.withDefault(1),
    Config.validate({ message: "SOVEREIGN_SIM_SPEED must be a positive number", validation: (speed) => speed > 0 })
  ),
  simSeed: Config.integer("SOVEREIGN_SIM_SEED").pipe(Config.withDefault(1)),
  simFaults: Config.string("SOVEREIGN_SIM_FAULTS").pipe(Config.withDefault("")),
  phase1Timeout: Config.duration("SOVEREIGN_PHASE1_TIMEOUT").pipe(Config.withDefault(Duration.minutes(120))),
  readySentinel: Config.option(Config.string("SOVEREIGN_READY_SENTINEL")),
  dnsSubdomains: optionalString("SOVEREIGN_DNS_SUBDOMAINS").pipe(
    Config.map(Option.map((list) => list.split(",").map((name) => name.trim()).filter((name) => name !== "")))
  ),
  bodyTimeout: Config.duration("SOVEREIGN_BODY_TIMEOUT").pipe(
    Config.withDefault(Duration.seconds(30)),
    Config.validate({ message: "SOVEREIGN_BODY_TIMEOUT must be a positive duration", validation: (duration) => Duration.greaterThan(duration, Duration.zero) })
  )
})

export const layer: Layer.Layer<ServerConfig, import("effect/ConfigError").ConfigError> = Layer.effect(ServerConfig, config)

export const layerWith = (overrides: Partial<ServerConfigShape>): Layer.Layer<ServerConfig, import("effect/ConfigError").ConfigError> =>
  Layer.effect(ServerConfig, Effect.map(config, (loaded) => ({ ...loaded, ...overrides })))

/** The base URL a control plane reaches this server at. */
export const publicUrlOf = (config: ServerConfigShape): string =>
  Option.getOrElse(config.publicUrl, () => `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${config.port}`)
