/** Serves the API over Node's HTTP server, with its OpenAPI document. */
import { HttpApiBuilder, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { createServer } from "node:http"
import * as ConsoleAssets from "./ConsoleAssets.js"
import { ApiLive } from "./Http.js"
import * as HttpGuards from "./HttpGuards.js"
import * as SseFanout from "./SseFanout.js"

/**
 * The HTTP layer for the API and the web console; `listen` decides where (port 0 picks a free one),
 * `guards` the doors of `HttpGuards` (body timeout, uploads per client, the brake on failed
 * authentication), `consoleDir` where the console's files are (`ServerConfig.consoleDir`; default the
 * console package's build, see `ConsoleAssets`).
 */
export const layer = (
  listen: { readonly host: string; readonly port: number },
  guards: Partial<HttpGuards.GuardOptions> = {},
  consoleDir: string = ConsoleAssets.defaultDir
) => {
  const options = { ...HttpGuards.defaultGuards, ...guards }
  return HttpApiBuilder.serve(HttpGuards.middleware(options)).pipe(
    Layer.provide(ConsoleAssets.layer(consoleDir)),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/api/v1/openapi.json" })),
    Layer.provide(ApiLive),
    // Exposed, so metrics can count the stream clients.
    Layer.provideMerge(SseFanout.layer()),
    Layer.provideMerge(NodeHttpServer.layer(() => createServer(HttpGuards.nodeServerOptions(options)), listen))
  )
}

/** The address the server listens on, as a base URL. */
export const baseUrl = Effect.map(HttpServer.HttpServer, (server) => {
  const address = server.address
  return address._tag === "TcpAddress"
    ? `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname}:${address.port}`
    : `unix://${address.path}`
})
