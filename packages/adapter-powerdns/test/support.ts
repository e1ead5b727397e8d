/** Test wiring: a real pdns_server (stopped with the layer's scope) and the PowerDNS DnsProvider pointed at it. */
import { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { PowerDnsServer } from "@sovereign/testkit"
import { Context, Effect, Layer, Ref } from "effect"
import { PowerDnsProvider } from "../src/index.js"

/** Counts requests by method, so a test can assert that a second publish sends no PATCH. */
export class RequestLog extends Context.Tag("test/RequestLog")<RequestLog, Ref.Ref<ReadonlyArray<string>>>() {}

const countingHttpClient = Layer.effect(
  HttpClient.HttpClient,
  Effect.gen(function* () {
    const log = yield* RequestLog
    const client = yield* HttpClient.HttpClient
    return client.pipe(HttpClient.tapRequest((request) => Ref.update(log, (entries) => [...entries, `${request.method} ${request.url}`])))
  })
).pipe(Layer.provide(NodeHttpClient.layerUndici))

/** DnsProvider + the server handle + the request log, on a fresh PowerDNS holding `zones`. */
export const powerDnsWorld = (zones: ReadonlyArray<string>) => {
  const server = PowerDnsServer.layer({ zones })
  const log = Layer.effect(RequestLog, Ref.make<ReadonlyArray<string>>([]))
  const provider = Layer.unwrapEffect(
    Effect.map(PowerDnsServer.PowerDnsServerTag, (running) =>
      PowerDnsProvider.layer({ apiUrl: running.apiUrl, apiKey: running.apiKey, serverId: running.serverId })
    )
  )
  return provider.pipe(Layer.provideMerge(Layer.merge(server, countingHttpClient.pipe(Layer.provideMerge(log)))))
}
