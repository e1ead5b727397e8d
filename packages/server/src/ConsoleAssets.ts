/**
 * Serves the web console (`packages/console`, built into static files) at `/`, on the API's origin
 * (issue 12). Only GET and HEAD outside `/api/` that no route of the API answers: the API keeps every
 * path it has (`/api/v1/...`, `/healthz`, `/readyz`, and whatever top-level routes come later), and
 * any other path serves `index.html`, so a deep link (`/deployments/<id>`) opens the app there.
 *
 * The hashed assets are read once and kept in memory, the page on every request (a few hundred
 * bytes), so a new build is served without a restart; a missing build answers 503 with how to build
 * it, never a crash.
 */
import { HttpApiBuilder, HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Cause, Chunk, Effect, Exit, Predicate } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/**
 * Where the console's build lives unless `SOVEREIGN_CONSOLE_DIR` says otherwise: `packages/console/dist`,
 * found from this module's place, which is two levels below `packages/` both in the sources
 * (`packages/server/src`) and in the bundle `npm start` runs (`packages/server/dist`).
 */
export const defaultDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../console/dist")

const contentTypes: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".map": "application/json"
}

/** The page may load only from its own origin; it is never framed. */
const securityHeaders = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY"
}

interface Asset {
  readonly body: Uint8Array
  readonly contentType: string
}

/** Reads the build's files (not below `assets/`: those are looked up on demand, by exact name). */
export const makeStore = (dir: string) => {
  const cache = new Map<string, Asset | null>()
  const read = (relative: string): Asset | undefined => {
    const known = cache.get(relative)
    if (known !== undefined) return known ?? undefined
    const file = path.resolve(dir, relative)
    // Only files inside the build's directory, by a name without `..` or hidden parts.
    let asset: Asset | null = null
    if (file.startsWith(dir + path.sep) && !relative.split("/").some((part) => part === "" || part.startsWith("."))) {
      try {
        const body = fs.readFileSync(file)
        asset = { body, contentType: contentTypes[path.extname(file)] ?? "application/octet-stream" }
      } catch {
        asset = null
      }
    }
    // Hashed assets never change: cached once found (bounded; a miss is not cached, a new build's
    // names appear). The page is read again each time: a new build is served without a restart.
    if (asset !== null && relative !== "index.html" && cache.size < 256) cache.set(relative, asset)
    return asset ?? undefined
  }
  return { read, clear: () => cache.clear() }
}

const notBuilt = (dir: string) =>
  HttpServerResponse.text(
    `The web console is not built (looked in ${dir}). Run \`npm run build\` or \`npm start\`, or point SOVEREIGN_CONSOLE_DIR at a build.\n`,
    { status: 503, headers: { "cache-control": "no-store" } }
  )

/** The console's answer for a path outside the API. */
export const answer = (store: ReturnType<typeof makeStore>, dir: string, pathname: string): HttpServerResponse.HttpServerResponse => {
  const relative = decodeURIComponentSafe(pathname.replace(/^\/+/, ""))
  // Hashed file names under `assets/` never change: cache them for a year; the page itself never.
  if (relative.startsWith("assets/")) {
    const asset = store.read(relative)
    if (asset !== undefined) {
      return HttpServerResponse.uint8Array(asset.body, {
        contentType: asset.contentType,
        headers: { "cache-control": "public, max-age=31536000, immutable" }
      })
    }
    return HttpServerResponse.text("not found\n", { status: 404 })
  }
  const index = store.read("index.html")
  if (index === undefined) return notBuilt(dir)
  return HttpServerResponse.uint8Array(index.body, {
    contentType: index.contentType,
    headers: { "cache-control": "no-cache", ...securityHeaders }
  })
}

const decodeURIComponentSafe = (text: string) => {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

const isRouteNotFound = (cause: Cause.Cause<unknown>) =>
  Chunk.toReadonlyArray(Cause.failures(cause)).some((failure) => Predicate.isTagged(failure, "RouteNotFound"))

/**
 * The API's middleware that serves the console: the API answers first; a GET or HEAD outside `/api/`
 * that it does not know (no such route) gets the console instead. (An API middleware, not the
 * server's: the server's middleware sees an answer only after it was written.)
 */
export const wrap = (dir: string) => {
  const store = makeStore(dir)
  return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R | HttpServerRequest.HttpServerRequest> =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const pathname = request.url.split("?")[0] ?? "/"
      const candidate = (request.method === "GET" || request.method === "HEAD") && !pathname.startsWith("/api/") && pathname !== "/api"
      if (!candidate) return yield* app
      const exit = yield* Effect.exit(app)
      if (Exit.isSuccess(exit)) return exit.value.status === 404 ? answer(store, dir, pathname) : exit.value
      if (isRouteNotFound(exit.cause)) return answer(store, dir, pathname)
      return yield* exit
    })
}

/** The layer that adds the console's files in `dir` (`ServerConfig.consoleDir`) to the API. */
export const layer = (dir: string = defaultDir) => HttpApiBuilder.middleware(wrap(dir))
