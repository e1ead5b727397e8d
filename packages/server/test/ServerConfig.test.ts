/**
 * One configuration (SPEC §8): every duration is read by core's one parser, in the form SPEC writes it
 * (`120m`, `30s`, `15s`) as well as `120 minutes`; `SOVEREIGN_DNS_SUBDOMAINS` is checked at start. A
 * refused value fails `ServerConfig.layer` (what `serve` builds first) with a message naming the variable.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Either, Option } from "effect"
import * as path from "node:path"
import * as ConsoleAssets from "../src/ConsoleAssets.js"
import * as ServerConfig from "../src/ServerConfig.js"

const load = (env: Record<string, string>) =>
  Effect.either(Effect.withConfigProvider(ServerConfig.config, ConfigProvider.fromMap(new Map(Object.entries(env)))))

const refusal = (env: Record<string, string>) =>
  Effect.map(load(env), (result) => (Either.isLeft(result) ? String(result.left) : "accepted"))

const durations = [
  ["SOVEREIGN_PHASE1_TIMEOUT", (config: ServerConfig.ServerConfigShape) => config.phase1Timeout],
  ["SOVEREIGN_BODY_TIMEOUT", (config: ServerConfig.ServerConfigShape) => config.bodyTimeout],
  ["SOVEREIGN_LEASE_TTL", (config: ServerConfig.ServerConfigShape) => config.leaseTtl],
  ["SOVEREIGN_KUBE_REQUEST_TIMEOUT", (config: ServerConfig.ServerConfigShape) => config.kubernetes.requestTimeout],
  ["SOVEREIGN_KUBE_RECONNECT_MAX_DELAY", (config: ServerConfig.ServerConfigShape) => config.kubernetes.reconnectMaxDelay],
  ["SOVEREIGN_KUBE_REACHABILITY_BUDGET", (config: ServerConfig.ServerConfigShape) => config.kubernetes.reachabilityBudget]
] as const

describe("ServerConfig", () => {
  it.effect("the defaults are SPEC §8's: 120m Phase-1 timeout, 30s body timeout, 15s lease, the kube durations", () =>
    Effect.gen(function* () {
      const config = yield* Effect.either(Effect.withConfigProvider(ServerConfig.config, ConfigProvider.fromMap(new Map())))
      if (Either.isLeft(config)) return expect.fail(String(config.left))
      expect(Duration.toMillis(config.right.phase1Timeout)).toBe(120 * 60_000)
      expect(Duration.toMillis(config.right.bodyTimeout)).toBe(30_000)
      expect(Duration.toMillis(config.right.leaseTtl)).toBe(15_000)
      expect(Duration.toMillis(config.right.kubernetes.reachabilityBudget)).toBe(10 * 60_000)
      expect(config.right.dnsSubdomains).toEqual(Option.none())
    })
  )

  for (const [name, read] of durations) {
    it.effect(`${name}: accepted as SPEC writes it (120m, 30s, 2h, 1500ms) and as Effect's '120 minutes'`, () =>
      Effect.gen(function* () {
        for (const [text, millis] of [
          ["120m", 7_200_000],
          ["30s", 30_000],
          ["2h", 7_200_000],
          ["1500ms", 1_500],
          ["120 minutes", 7_200_000],
          [" 15s ", 15_000]
        ] as const) {
          const result = yield* load({ [name]: text })
          if (Either.isLeft(result)) return expect.fail(`${name}=${text}: ${String(result.left)}`)
          expect(Duration.toMillis(read(result.right)), `${name}=${text}`).toBe(millis)
        }
      })
    )

    it.effect(`${name}: start refused with the variable named for a value that is no duration`, () =>
      Effect.gen(function* () {
        for (const text of ["soon", "120", "-5m", "0s", "12 parsecs"]) {
          const message = yield* refusal({ [name]: text })
          expect(message, `${name}=${text}`).toContain(name)
          expect(message).toContain(`'${text}'`)
        }
      })
    )
  }

  it.effect("SOVEREIGN_DNS_SUBDOMAINS: RFC 1123 names, comma or space separated, lowercased, duplicates dropped", () =>
    Effect.gen(function* () {
      const result = yield* load({ SOVEREIGN_DNS_SUBDOMAINS: "Console, docs  api,console,docs.internal" })
      if (Either.isLeft(result)) return expect.fail(String(result.left))
      expect(result.right.dnsSubdomains).toEqual(Option.some(["console", "docs", "api", "docs.internal"]))
    })
  )

  it.effect("SOVEREIGN_DNS_SUBDOMAINS: start refused with the variable and the bad names named", () =>
    Effect.gen(function* () {
      for (const [text, named] of [
        ["console,bad_label", "'bad_label'"],
        ["-lead", "'-lead'"],
        ["a..b", "'a..b'"],
        [" , ", "an empty list"],
        ["x".repeat(64), `'${"x".repeat(64)}'`]
      ] as const) {
        const message = yield* refusal({ SOVEREIGN_DNS_SUBDOMAINS: text })
        expect(message, text).toContain("SOVEREIGN_DNS_SUBDOMAINS")
        expect(message, text).toContain(named)
      }
    })
  )

  it.effect("the adapters' variables are read here too: HCLOUD_*, PDNS_*, the handover ones and SOVEREIGN_CONSOLE_DIR", () =>
    Effect.gen(function* () {
      const none = yield* load({})
      if (Either.isLeft(none)) return expect.fail(String(none.left))
      expect(none.right.consoleDir).toBe(ConsoleAssets.defaultDir)
      expect(none.right.powerDns.serverId).toBe("localhost")
      expect(none.right.clusterAccess).toEqual({ enabled: true, clusterRole: "cluster-admin" })
      const set = yield* load({
        SOVEREIGN_CONSOLE_DIR: "some/build",
        PDNS_API_URL: "http://127.0.0.1:8081",
        PDNS_SERVER_ID: "ns1",
        HCLOUD_ENDPOINT: "http://127.0.0.1:9000/v1",
        SOVEREIGN_HANDOVER_CLUSTER_ROLE: "view",
        SOVEREIGN_KUBE_TAIL_LOGS: "false"
      })
      if (Either.isLeft(set)) return expect.fail(String(set.left))
      expect(set.right.consoleDir).toBe(path.resolve("some/build"))
      expect(set.right.powerDns.apiUrl).toEqual(Option.some("http://127.0.0.1:8081"))
      expect(set.right.powerDns.serverId).toBe("ns1")
      expect(set.right.hetzner.endpoint).toEqual(Option.some("http://127.0.0.1:9000/v1"))
      expect(set.right.clusterAccess.clusterRole).toBe("view")
      expect(set.right.kubernetes.tailLogs).toBe(false)
    })
  )
})
