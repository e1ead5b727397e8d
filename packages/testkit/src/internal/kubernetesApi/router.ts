/**
 * The HTTP side: the bearer token, the injected faults (failing and hanging requests), the request
 * log, paths to resources (`/api/v1/namespaces/{ns}/pods/{name}/status`, `/apis/{group}/{version}/…`)
 * and the verbs on them: list (selectors, `limit`/`continue`), watch, get, create (`generateName`),
 * update with optimistic concurrency, the three PATCH dialects, delete; status-subresource rules.
 */
import { randomBytes } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Effect } from "effect"
import type { KubeMetadata, KubeObject, RequestRecord } from "../../FakeKubernetesApi.js"
import { type Json, jsonMergePatch, jsonPatch, PatchError, strategicMergePatch } from "../../kubernetes/Patch.js"
import type { PodLogs } from "./logs.js"
import { selectorOf } from "./selectors.js"
import { Signal } from "./signal.js"
import {
  alreadyExists,
  badRequest,
  conflict,
  expired,
  type JsonObject,
  methodNotAllowed,
  noSuchResource,
  notFound,
  reasonOfCode,
  StatusFailure
} from "./status.js"
import { apiVersionOf, keyOf, type ObjectStore, type ResourceType, resourceTypes, withoutGeneration, withoutKeys } from "./store.js"
import type { Watches } from "./watch.js"

interface Route {
  readonly resource: ResourceType
  readonly namespace: string | undefined
  readonly name: string | undefined
  readonly subresource: string | undefined
}

const route = (segments: ReadonlyArray<string>): Route | "version" | "discovery" | undefined => {
  if (segments.length === 1 && segments[0] === "version") return "version"
  let group: string
  let version: string
  let rest: ReadonlyArray<string>
  if (segments[0] === "api") {
    if (segments.length === 1) return "discovery"
    group = ""
    version = segments[1]!
    rest = segments.slice(2)
  } else if (segments[0] === "apis") {
    if (segments.length < 3) return "discovery"
    group = segments[1]!
    version = segments[2]!
    rest = segments.slice(3)
  } else return undefined
  const find = (plural: string | undefined) =>
    resourceTypes.find((type) => type.group === group && type.version === version && type.plural === plural)
  if (rest[0] === "namespaces" && rest.length >= 3) {
    const resource = find(rest[2])
    if (resource === undefined || !resource.namespaced || rest.length > 5) return undefined
    return { resource, namespace: rest[1], name: rest[3], subresource: rest[4] }
  }
  const resource = find(rest[0])
  if (resource === undefined || rest.length > 3) return undefined
  if (resource.namespaced && rest.length > 1) return undefined
  return { resource, namespace: undefined, name: rest[1], subresource: rest[2] }
}

const sendJson = (response: ServerResponse, code: number, body: unknown): void => {
  const text = JSON.stringify(body)
  response.writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
  response.end(text)
}

const readBody = (request: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    request.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > 10 * 1024 * 1024) reject(new StatusFailure(413, "RequestEntityTooLarge", "request body too large"))
      else chunks.push(chunk)
    })
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    request.on("error", reject)
  })

const parseJsonBody = (text: string): Json => {
  try {
    return JSON.parse(text) as Json
  } catch {
    throw badRequest("the request body is not valid JSON")
  }
}

const asObject = (value: Json): KubeObject => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw badRequest("the request body is not an object")
  const metadata = (value as JsonObject)["metadata"]
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) throw badRequest("metadata is required")
  return value as unknown as KubeObject
}

/** The body's object checked against the URL (apiVersion, kind, namespace, name) and completed from it. */
const objectFromBody = (route: Route, body: KubeObject, name: string | undefined): KubeObject => {
  const apiVersion = apiVersionOf(route.resource)
  if (body.apiVersion !== undefined && body.apiVersion !== apiVersion)
    throw badRequest(`apiVersion ${String(body.apiVersion)} does not match ${apiVersion}`)
  if (body.kind !== undefined && body.kind !== route.resource.kind)
    throw badRequest(`kind ${String(body.kind)} does not match ${route.resource.kind}`)
  if (route.resource.namespaced && body.metadata.namespace !== undefined && body.metadata.namespace !== route.namespace) {
    throw badRequest("the namespace of the provided object does not match the namespace sent on the request")
  }
  if (name !== undefined && body.metadata.name !== undefined && body.metadata.name !== name) {
    throw badRequest("the name of the object does not match the name on the URL")
  }
  return {
    ...body,
    apiVersion,
    kind: route.resource.kind,
    metadata: {
      ...body.metadata,
      name: name ?? body.metadata.name,
      ...(route.resource.namespaced && route.namespace !== undefined ? { namespace: route.namespace } : {})
    }
  }
}

const applyPatch = (route: Route, existing: KubeObject, contentType: string, patch: Json): KubeObject => {
  const type = contentType.split(";")[0]!.trim()
  try {
    switch (type) {
      case "application/json-patch+json":
        return jsonPatch(existing as unknown as Json, patch) as unknown as KubeObject
      case "application/merge-patch+json":
        return jsonMergePatch(existing as unknown as Json, patch) as unknown as KubeObject
      case "application/strategic-merge-patch+json":
        if (route.resource.custom) {
          throw new StatusFailure(
            415,
            "UnsupportedMediaType",
            `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`
          )
        }
        return strategicMergePatch(existing as unknown as Json, patch) as unknown as KubeObject
      default:
        throw new StatusFailure(
          415,
          "UnsupportedMediaType",
          `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`
        )
    }
  } catch (error) {
    if (error instanceof PatchError) throw new StatusFailure(422, "Invalid", error.message)
    throw error
  }
}

export class Router {
  readonly requestLog: Array<RequestRecord> = []
  private readonly logged = new Signal()
  private readonly hanging = new Set<ServerResponse>()
  private hang = false
  private failures: { count: number; code: number } = { count: 0, code: 503 }

  constructor(
    private readonly token: string,
    private readonly store: ObjectStore,
    private readonly watches: Watches,
    private readonly logs: PodLogs
  ) {}

  /** The next `count` requests fail with `code`. */
  failNext(count: number, code: number): void {
    this.failures = { count, code }
  }

  /** While hanging, new requests are accepted but never answered; ending it destroys the hung ones. */
  hangRequests(hang: boolean): void {
    this.hang = hang
    if (!hang) for (const response of this.hanging) response.destroy()
  }

  awaitRequests(predicate: (request: RequestRecord) => boolean, count: number): Effect.Effect<void> {
    return this.logged.until(() => this.requestLog.filter(predicate).length >= count)
  }

  close(): void {
    for (const response of this.hanging) response.destroy()
  }

  readonly handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? "/", "https://fake")
    const method = request.method ?? "GET"
    const isWatch = url.searchParams.get("watch") === "true" || url.searchParams.get("watch") === "1"
    const record = (status: number) => {
      this.requestLog.push({
        method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams.entries()),
        contentType: request.headers["content-type"],
        status,
        watch: isWatch
      })
      this.logged.notify()
    }
    if (this.hang) {
      this.hanging.add(response)
      response.on("close", () => this.hanging.delete(response))
      record(0)
      return
    }
    try {
      if (request.headers.authorization !== `Bearer ${this.token}`) throw new StatusFailure(401, "Unauthorized", "Unauthorized")
      if (this.failures.count > 0) {
        this.failures = { ...this.failures, count: this.failures.count - 1 }
        throw new StatusFailure(this.failures.code, reasonOfCode(this.failures.code), `injected failure (${this.failures.code})`)
      }
      const target = route(url.pathname.split("/").filter((segment) => segment !== ""))
      if (target === undefined) throw noSuchResource()
      if (target === "version") {
        sendJson(response, 200, { major: "1", minor: "31", gitVersion: "v1.31.0-fake", platform: "linux/amd64" })
        record(200)
        return
      }
      if (target === "discovery") {
        sendJson(response, 200, { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [] })
        record(200)
        return
      }
      record(await this.handleResource(target, method, url.searchParams, request, response))
    } catch (error) {
      const failure =
        error instanceof StatusFailure
          ? error
          : new StatusFailure(500, "InternalError", error instanceof Error ? error.message : String(error))
      if (!response.headersSent) sendJson(response, failure.code, failure.toStatus())
      else response.end()
      record(failure.code)
    }
  }

  private async handleResource(
    route: Route,
    method: string,
    query: URLSearchParams,
    request: IncomingMessage,
    response: ServerResponse
  ): Promise<number> {
    const { resource, namespace, name } = route
    if (route.subresource === "log" && resource.plural === "pods" && name !== undefined && method === "GET") {
      if (!this.store.has(resource, namespace, name)) throw notFound(resource, name)
      this.logs.serve(namespace, name, query, response)
      return 200
    }
    if (route.subresource !== undefined && route.subresource !== "status") throw noSuchResource()
    if (name === undefined) {
      if (method === "GET") {
        if (query.get("watch") === "true" || query.get("watch") === "1") {
          this.watches.open(route, query, response)
          return 200
        }
        sendJson(response, 200, this.list(route, query))
        return 200
      }
      if (method === "POST") {
        sendJson(response, 201, this.create(route, await readBody(request)))
        return 201
      }
      if (method === "DELETE") throw methodNotAllowed("deletecollection is not supported by the fake")
      throw methodNotAllowed(`${method} is not allowed`)
    }
    const existing = this.store.get(resource, namespace, name)
    switch (method) {
      case "GET": {
        if (existing === undefined) throw notFound(resource, name)
        sendJson(response, 200, existing)
        return 200
      }
      case "PUT": {
        const body = objectFromBody(route, asObject(parseJsonBody(await readBody(request))), name)
        if (existing === undefined) throw notFound(resource, name)
        sendJson(response, 200, this.update(route, existing, body))
        return 200
      }
      case "PATCH": {
        const patch = parseJsonBody(await readBody(request))
        if (existing === undefined) throw notFound(resource, name)
        const patched = applyPatch(route, existing, request.headers["content-type"] ?? "", patch)
        const candidate = objectFromBody(route, asObject(patched as unknown as Json), name)
        sendJson(response, 200, this.update(route, existing, candidate))
        return 200
      }
      case "DELETE": {
        await readBody(request)
        if (existing === undefined) throw notFound(resource, name)
        this.store.remove(resource, namespace, name)
        const body = {
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Success",
          details: { name, group: resource.group, kind: resource.plural, uid: existing.metadata.uid }
        }
        sendJson(response, 200, body)
        return 200
      }
      default:
        throw methodNotAllowed(`${method} is not allowed`)
    }
  }

  private list(route: Route, query: URLSearchParams): JsonObject {
    const matches = selectorOf(query)
    const compacted = this.store.compactedResourceVersion
    const requested = query.get("resourceVersion")
    if (query.get("resourceVersionMatch") === "Exact" && requested !== null && Number(requested) < compacted) {
      throw expired(`too old resource version: ${requested} (${compacted})`)
    }
    let items = this.store.list(route.resource, route.namespace).filter(matches)
    let listResourceVersion = this.store.resourceVersion
    const continueToken = query.get("continue")
    if (continueToken !== null && continueToken !== "") {
      let decoded: { readonly rv: number; readonly after: string }
      try {
        decoded = JSON.parse(Buffer.from(continueToken, "base64url").toString("utf8")) as { rv: number; after: string }
      } catch {
        throw badRequest("invalid continue token")
      }
      if (decoded.rv < compacted) {
        throw expired(
          "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."
        )
      }
      listResourceVersion = decoded.rv
      items = items.filter((object) => keyOf(route.resource, object.metadata.namespace, object.metadata.name) > decoded.after)
    }
    const limit = Number(query.get("limit") ?? "0")
    let next: string | undefined
    if (limit > 0 && items.length > limit) {
      items = items.slice(0, limit)
      const last = items[items.length - 1]!
      next = Buffer.from(
        JSON.stringify({ rv: listResourceVersion, after: keyOf(route.resource, last.metadata.namespace, last.metadata.name) })
      ).toString("base64url")
    }
    return {
      apiVersion: apiVersionOf(route.resource),
      kind: `${route.resource.kind}List`,
      metadata: { resourceVersion: String(listResourceVersion), ...(next === undefined ? {} : { continue: next }) },
      items: items as unknown as Json
    }
  }

  private create(route: Route, text: string): KubeObject {
    const { resource, namespace } = route
    if (resource.namespaced && namespace === undefined) throw methodNotAllowed("create requires a namespace")
    const body = objectFromBody(route, asObject(parseJsonBody(text)), undefined)
    let objectName = body.metadata.name
    if ((objectName === undefined || objectName === "") && typeof body.metadata["generateName"] === "string") {
      objectName = `${body.metadata["generateName"]}${randomBytes(3).toString("hex").slice(0, 5)}`
    }
    if (objectName === undefined || objectName === "")
      throw new StatusFailure(422, "Invalid", "metadata.name: Required value: name or generateName is required")
    if (this.store.has(resource, namespace, objectName)) throw alreadyExists(resource, objectName)
    const fresh = resource.statusSubresource ? (withoutKeys(body, ["status"]) as KubeObject) : body
    const metadata = { ...fresh.metadata, name: objectName }
    delete (metadata as { resourceVersion?: string }).resourceVersion
    delete (metadata as { generation?: number }).generation
    return this.store.write(resource, { ...fresh, metadata }, undefined)
  }

  /** Writes `candidate` over `existing` with the rules of the main resource or of `/status`. */
  private update(route: Route, existing: KubeObject, candidate: KubeObject): KubeObject {
    const requested = candidate.metadata.resourceVersion
    if (requested !== undefined && requested !== "" && requested !== existing.metadata.resourceVersion)
      throw conflict(route.resource, existing.metadata.name)
    let next: KubeObject
    if (route.subresource === "status") {
      const kept = withoutKeys(existing, ["status"]) as KubeObject
      next = "status" in candidate ? { ...kept, status: candidate["status"] } : kept
    } else if (route.resource.statusSubresource) {
      const kept = withoutKeys(candidate, ["status"]) as KubeObject
      next = "status" in existing ? { ...kept, status: existing["status"] } : kept
    } else next = candidate
    const metadata: KubeMetadata = {
      ...withoutGeneration(route.subresource === "status" ? existing.metadata : next.metadata),
      name: existing.metadata.name
    }
    return this.store.write(route.resource, { ...next, metadata }, existing)
  }
}
