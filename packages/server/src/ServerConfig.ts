/** The server's configuration, read from the environment (SPEC §8). */
import { DnsPlan, Time } from "@sovereign/core"
import * as path from "node:path"
import * as ConsoleAssets from "./ConsoleAssets.js"
import { Config, ConfigError, Context, Duration, Effect, Either, Layer, Option, Redacted } from "effect"

export type CloudMode = "simulator" | "hetzner"
export type DnsMode = "simulator" | "powerdns" | "none"
export type MeshMode = "simulator" | "cilium"
export type WatchMode = "simulator" | "kubernetes"
export type LogFormat = "json" | "pretty"

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
  /**
   * Where `/metrics` is served: a port of its own (default 9464, 0 picks a free one), never the API
   * port, so a scraper needs no API token and the API's doors stay as they are; none when `off`.
   */
  readonly metricsPort: Option.Option<number>
  /** `json`: one JSON object per log line (for collectors); `pretty`: the readable form. */
  readonly logFormat: LogFormat
  /** OTLP/HTTP endpoint for traces (`OTEL_EXPORTER_OTLP_ENDPOINT`); no tracer at all when unset. */
  readonly otlpEndpoint: Option.Option<string>
  /**
   * `SOVEREIGN_LEASE_TTL` (default 15 s): how long a replica's lease on a deployment lasts without a
   * heartbeat; a killed or frozen replica's deployments are taken over after at most this long.
   */
  readonly leaseTtl: Duration.Duration
  /** With `SOVEREIGN_WATCH=kubernetes`: the watch's settings (`SOVEREIGN_KUBE_*`). */
  readonly kubernetes: KubernetesSettings
  /** With `SOVEREIGN_WATCH=kubernetes`: the owner's ClusterRoleBinding at handover (`SOVEREIGN_HANDOVER_CLUSTER_*`). */
  readonly clusterAccess: { readonly enabled: boolean; readonly clusterRole: string }
  /** With `SOVEREIGN_CLOUD=hetzner`: `HCLOUD_TOKEN` (requests may bring their own) and `HCLOUD_ENDPOINT`. */
  readonly hetzner: { readonly token: Option.Option<Redacted.Redacted<string>>; readonly endpoint: Option.Option<string> }
  /** With `SOVEREIGN_DNS=powerdns`: `PDNS_API_URL` and `PDNS_API_KEY` (both required then), `PDNS_SERVER_ID`. */
  readonly powerDns: {
    readonly apiUrl: Option.Option<string>
    readonly apiKey: Option.Option<Redacted.Redacted<string>>
    readonly serverId: string
  }
  /** `SOVEREIGN_CONSOLE_DIR`: the web console's build (default the console package's, see `ConsoleAssets`). */
  readonly consoleDir: string
}

export interface KubernetesSettings {
  readonly requestTimeout: Duration.Duration
  readonly reconnectMaxDelay: Duration.Duration
  readonly reachabilityBudget: Duration.Duration
  readonly tailLogs: boolean
}

export class ServerConfig extends Context.Tag("@sovereign/server/ServerConfig")<ServerConfig, ServerConfigShape>() {}

const optionalRedacted = (name: string) =>
  Config.option(Config.redacted(name)).pipe(Config.map(Option.filter((value) => Redacted.value(value).trim() !== "")))

const optionalString = (name: string) => Config.option(Config.string(name)).pipe(Config.map(Option.filter((value) => value.trim() !== "")))

/** A duration (SPEC §8: `120m`, `30s` or `120 minutes`, through core's one parser) with its default. */
const duration = (name: string, fallback: Duration.Duration) => Time.durationConfig(name).pipe(Config.withDefault(fallback))

/** `SOVEREIGN_DNS_SUBDOMAINS`: comma or space separated DNS names (RFC 1123), refused at start otherwise. */
const subdomains = optionalString("SOVEREIGN_DNS_SUBDOMAINS").pipe(
  Config.mapOrFail((text) => {
    if (Option.isNone(text)) return Either.right(Option.none())
    const names = DnsPlan.parseSubdomains(text.value)
    const bad = names.filter((name) => !DnsPlan.isSubdomain(name))
    return names.length === 0 || bad.length > 0
      ? Either.left(
          ConfigError.InvalidData(
            ["SOVEREIGN_DNS_SUBDOMAINS"],
            `SOVEREIGN_DNS_SUBDOMAINS must list DNS names such as console,auth,gitea (RFC 1123: lowercase letters, digits and '-', ` +
              `dot-separated), not ${bad.length === 0 ? "an empty list" : bad.map((name) => `'${name}'`).join(", ")}`
          )
        )
      : Either.right(Option.some(names))
  })
)

/** The port OpenTelemetry's Prometheus exporter uses by convention. */
export const defaultMetricsPort = 9464

/** Every environment variable the server reads, its adapters' included (the Kubernetes manifests are checked against it). */
export const variables = [
  "SOVEREIGN_HOST",
  "SOVEREIGN_PORT",
  "SOVEREIGN_DATA_DIR",
  "DATABASE_URL",
  "SOVEREIGN_API_TOKENS",
  "SOVEREIGN_SECRET_KEY",
  "SOVEREIGN_PUBLIC_URL",
  "SOVEREIGN_CLOUD",
  "SOVEREIGN_DNS",
  "SOVEREIGN_MESH",
  "SOVEREIGN_WATCH",
  "SOVEREIGN_SIM_SPEED",
  "SOVEREIGN_SIM_SEED",
  "SOVEREIGN_SIM_FAULTS",
  "SOVEREIGN_PHASE1_TIMEOUT",
  "SOVEREIGN_READY_SENTINEL",
  "SOVEREIGN_DNS_SUBDOMAINS",
  "SOVEREIGN_BODY_TIMEOUT",
  "SOVEREIGN_METRICS_PORT",
  "SOVEREIGN_LOG_FORMAT",
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "SOVEREIGN_LEASE_TTL",
  "SOVEREIGN_KUBE_REQUEST_TIMEOUT",
  "SOVEREIGN_KUBE_RECONNECT_MAX_DELAY",
  "SOVEREIGN_KUBE_REACHABILITY_BUDGET",
  "SOVEREIGN_KUBE_TAIL_LOGS",
  "SOVEREIGN_HANDOVER_CLUSTER_ACCESS",
  "SOVEREIGN_HANDOVER_CLUSTER_ROLE",
  "HCLOUD_TOKEN",
  "HCLOUD_ENDPOINT",
  "PDNS_API_URL",
  "PDNS_API_KEY",
  "PDNS_SERVER_ID",
  "SOVEREIGN_CONSOLE_DIR"
] as const

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
  phase1Timeout: duration("SOVEREIGN_PHASE1_TIMEOUT", Duration.minutes(120)),
  readySentinel: Config.option(Config.string("SOVEREIGN_READY_SENTINEL")),
  dnsSubdomains: subdomains,
  bodyTimeout: duration("SOVEREIGN_BODY_TIMEOUT", Duration.seconds(30)),
  metricsPort: Config.string("SOVEREIGN_METRICS_PORT").pipe(
    Config.withDefault(String(defaultMetricsPort)),
    Config.validate({
      message: "SOVEREIGN_METRICS_PORT must be a port (0-65535, 0 picks a free one) or off",
      validation: (value) => value.trim() === "off" || (/^\d{1,5}$/.test(value.trim()) && Number(value) <= 65535)
    }),
    Config.map((value) => (value.trim() === "off" ? Option.none() : Option.some(Number(value.trim()))))
  ),
  logFormat: Config.literal("json", "pretty")("SOVEREIGN_LOG_FORMAT").pipe(Config.withDefault("pretty" as const)),
  otlpEndpoint: optionalString("OTEL_EXPORTER_OTLP_ENDPOINT"),
  leaseTtl: duration("SOVEREIGN_LEASE_TTL", Duration.seconds(15)).pipe(
    Config.validate({
      message: "SOVEREIGN_LEASE_TTL must be a duration of at least 1 second (e.g. 15 seconds)",
      validation: (ttl) => Duration.greaterThanOrEqualTo(ttl, Duration.seconds(1))
    })
  ),
  kubernetes: Config.all({
    requestTimeout: duration("SOVEREIGN_KUBE_REQUEST_TIMEOUT", Duration.seconds(30)),
    reconnectMaxDelay: duration("SOVEREIGN_KUBE_RECONNECT_MAX_DELAY", Duration.seconds(30)),
    reachabilityBudget: duration("SOVEREIGN_KUBE_REACHABILITY_BUDGET", Duration.minutes(10)),
    tailLogs: Config.boolean("SOVEREIGN_KUBE_TAIL_LOGS").pipe(Config.withDefault(true))
  }),
  clusterAccess: Config.all({
    enabled: Config.boolean("SOVEREIGN_HANDOVER_CLUSTER_ACCESS").pipe(Config.withDefault(true)),
    clusterRole: Config.string("SOVEREIGN_HANDOVER_CLUSTER_ROLE").pipe(Config.withDefault("cluster-admin"))
  }),
  hetzner: Config.all({ token: optionalRedacted("HCLOUD_TOKEN"), endpoint: optionalString("HCLOUD_ENDPOINT") }),
  powerDns: Config.all({
    apiUrl: optionalString("PDNS_API_URL"),
    apiKey: optionalRedacted("PDNS_API_KEY"),
    serverId: Config.string("PDNS_SERVER_ID").pipe(Config.withDefault("localhost"))
  }),
  consoleDir: optionalString("SOVEREIGN_CONSOLE_DIR").pipe(
    Config.map(Option.match({ onNone: () => ConsoleAssets.defaultDir, onSome: (dir) => path.resolve(dir.trim()) }))
  )
})

export const layer: Layer.Layer<ServerConfig, import("effect/ConfigError").ConfigError> = Layer.effect(ServerConfig, config)

export const layerWith = (overrides: Partial<ServerConfigShape>): Layer.Layer<ServerConfig, import("effect/ConfigError").ConfigError> =>
  Layer.effect(
    ServerConfig,
    Effect.map(config, (loaded) => ({ ...loaded, ...overrides }))
  )

/** The base URL a control plane reaches this server at. */
export const publicUrlOf = (config: ServerConfigShape): string =>
  Option.getOrElse(config.publicUrl, () => `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${config.port}`)
