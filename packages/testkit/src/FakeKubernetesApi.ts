/**
 * A protocol-faithful fake Kubernetes API server over HTTPS with its own CA, for the real
 * `@kubernetes/client-node`: list/watch with a global resourceVersion, chunked watch streams with
 * bookmarks, `410 Gone`, the three PATCH dialects, real `Status` errors, a bearer token, and fault
 * controls (dropped connections, forced compaction, silent watches, failing or hanging requests).
 */
import { randomBytes, randomUUID } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import { createServer, type Server } from "node:https"
import type { Socket } from "node:net"
import { Duration, Effect, Option } from "effect"
import type { Scope } from "effect"
import { deepEqual, type Json, jsonMergePatch, jsonPatch, PatchError, strategicMergePatch } from "./kubernetes/Patch.js"
import { type CertificateAuthority, makeCertificateAuthority, makeServerCertificate } from "./kubernetes/Tls.js"

export type { CertificateAuthority } from "./kubernetes/Tls.js"
export { makeCertificateAuthority, makeServerCertificate } from "./kubernetes/Tls.js"
export { jsonMergePatch, jsonPatch, strategicMergePatch } from "./kubernetes/Patch.js"

// ---------------------------------------------------------------------------------------------
// Public types

export interface KubeMetadata {
  readonly name: string
  readonly namespace?: string
  readonly labels?: Readonly<Record<string, string>>
  readonly annotations?: Readonly<Record<string, string>>
  readonly resourceVersion?: string
  readonly generation?: number
  readonly uid?: string
  readonly creationTimestamp?: string
  readonly [key: string]: unknown
}

/** Any Kubernetes object as JSON. */
export interface KubeObject {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: KubeMetadata
  readonly [key: string]: unknown
}

export interface ObjectRef {
  readonly apiVersion: string
  readonly kind: string
  readonly namespace?: string
  readonly name: string
}

export interface RequestRecord {
  readonly method: string
  readonly path: string
  readonly query: Readonly<Record<string, string>>
  readonly contentType: string | undefined
  readonly status: number
  readonly watch: boolean
}

export interface FakeKubernetesApiOptions {
  /** Bearer token the server accepts (default: random). */
  readonly token?: string
  /** DNS names in the server certificate (default `localhost`). */
  readonly dnsNames?: ReadonlyArray<string>
  /** IP addresses in the server certificate (default `127.0.0.1`). Pass `[]` to force a server-name override. */
  readonly ipAddresses?: ReadonlyArray<string>
  /** Reuse a CA (e.g. to make two servers share one, or a test that needs the CA key). */
  readonly authority?: CertificateAuthority
  /** Period of BOOKMARK events to watches that asked for them (default 5 s). */
  readonly bookmarkInterval?: Duration.DurationInput
  /** Events kept for watch resumption; older resourceVersions answer `410 Gone` (default 100,000). */
  readonly historyLimit?: number
}

export interface KubeconfigOverrides {
  readonly server?: string
  readonly token?: string
  /** PEM of the CA to embed; `null` leaves the CA out. Default: this server's CA. */
  readonly caPem?: string | null
  /** Write `certificate-authority: <path>` instead of the embedded data. */
  readonly caFile?: string
  readonly tlsServerName?: string
  readonly insecureSkipTlsVerify?: boolean
  readonly namespace?: string
}

export interface FakeKubernetesApi {
  /** `https://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  readonly caPem: string
  readonly authority: CertificateAuthority
  readonly token: string
  /** A kubeconfig (YAML) for this server: its CA embedded, the bearer token, one context. */
  readonly kubeconfig: string
  readonly kubeconfigWith: (overrides: KubeconfigOverrides) => string

  /** Creates or replaces an object as a controller would (status kept, metadata filled in); emits a watch event. */
  readonly put: (object: KubeObject) => Effect.Effect<KubeObject>
  /** Reads, transforms and writes back an object; `None` when it does not exist. */
  readonly modify: (ref: ObjectRef, update: (object: KubeObject) => KubeObject) => Effect.Effect<Option.Option<KubeObject>>
  readonly get: (ref: ObjectRef) => Effect.Effect<Option.Option<KubeObject>>
  readonly list: (type: { readonly apiVersion: string; readonly kind: string }, namespace?: string) => Effect.Effect<ReadonlyArray<KubeObject>>
  /** Deletes an object; emits DELETED. True when it existed. */
  readonly remove: (ref: ObjectRef) => Effect.Effect<boolean>
  /** The current global resourceVersion. */
  readonly resourceVersion: Effect.Effect<number>

  /** Destroys every open connection (watches and keep-alive sockets) without a goodbye. */
  readonly dropConnections: Effect.Effect<void>
  /** Compacts the history to now; watches resumed from an older resourceVersion get `410 Gone`. */
  readonly compact: Effect.Effect<void>
  /** Compacts, then ends every open watch with an `ERROR` event carrying a 410 `Expired` Status. */
  readonly forceGone: Effect.Effect<void>
  /** While silent, open and new watches receive no events and no bookmarks (a hung watch). */
  readonly silenceWatches: (silent: boolean) => Effect.Effect<void>
  /** The next `count` requests (not watches already open) fail with this HTTP status (default 503). */
  readonly failNext: (count: number, code?: number) => Effect.Effect<void>
  /** While hanging, new requests are accepted but never answered. */
  readonly hangRequests: (hang: boolean) => Effect.Effect<void>
  /** Sends a BOOKMARK now to every watch that allows bookmarks. */
  readonly sendBookmarks: Effect.Effect<void>

  readonly requests: Effect.Effect<ReadonlyArray<RequestRecord>>
  /** Completes once at least `count` logged requests satisfy `predicate` (hung requests are logged with status 0). */
  readonly awaitRequests: (predicate: (request: RequestRecord) => boolean, count?: number) => Effect.Effect<void>
  readonly clearRequests: Effect.Effect<void>
  readonly openWatches: Effect.Effect<number>
  /** Completes once at least `count` watches are open (of the given resource plural, if any). */
  readonly awaitWatches: (count: number, plural?: string) => Effect.Effect<void>

  /** Appends a line to a pod's log (`GET …/pods/{name}/log`, streamed to followers). */
  readonly appendPodLog: (namespace: string, pod: string, line: string) => Effect.Effect<void>
  /** Completes once at least `count` clients follow pod logs. */
  readonly awaitLogFollowers: (count: number) => Effect.Effect<void>
}

// ---------------------------------------------------------------------------------------------
// Resource types served

interface ResourceType {
  readonly group: string
  readonly version: string
  readonly kind: string
  readonly plural: string
  readonly namespaced: boolean
  /** Has a status subresource: the main resource ignores status writes. */
  readonly statusSubresource: boolean
  /** A changed spec increments metadata.generation. */
  readonly generation: boolean
  readonly custom: boolean
}

const resourceTypes: ReadonlyArray<ResourceType> = [
  { group: "", version: "v1", kind: "Namespace", plural: "namespaces", namespaced: false, statusSubresource: true, generation: false, custom: false },
  { group: "", version: "v1", kind: "Secret", plural: "secrets", namespaced: true, statusSubresource: false, generation: false, custom: false },
  { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true, statusSubresource: false, generation: false, custom: false },
  { group: "", version: "v1", kind: "Service", plural: "services", namespaced: true, statusSubresource: true, generation: false, custom: false },
  { group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: true, statusSubresource: true, generation: false, custom: false },
  { group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts", namespaced: true, statusSubresource: false, generation: false, custom: false },
  { group: "apps", version: "v1", kind: "Deployment", plural: "deployments", namespaced: true, statusSubresource: true, generation: true, custom: false },
  { group: "apps", version: "v1", kind: "DaemonSet", plural: "daemonsets", namespaced: true, statusSubresource: true, generation: true, custom: false },
  { group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true, statusSubresource: true, generation: true, custom: false },
  { group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRoleBinding", plural: "clusterrolebindings", namespaced: false, statusSubresource: false, generation: false, custom: false },
  { group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRole", plural: "clusterroles", namespaced: false, statusSubresource: false, generation: false, custom: false },
  { group: "rbac.authorization.k8s.io", version: "v1", kind: "RoleBinding", plural: "rolebindings", namespaced: true, statusSubresource: false, generation: false, custom: false },
  { group: "helm.toolkit.fluxcd.io", version: "v2", kind: "HelmRelease", plural: "helmreleases", namespaced: true, statusSubresource: true, generation: true, custom: true }
]

const apiVersionOf = (type: ResourceType): string => (type.group === "" ? type.version : `${type.group}/${type.version}`)
const qualifiedPlural = (type: ResourceType): string => (type.group === "" ? type.plural : `${type.plural}.${type.group}`)

const typeByKind = (apiVersion: string, kind: string): ResourceType => {
  const type = resourceTypes.find((candidate) => apiVersionOf(candidate) === apiVersion && candidate.kind === kind)
  if (type === undefined) throw new Error(`FakeKubernetesApi does not serve ${apiVersion} ${kind}`)
  return type
}

// ---------------------------------------------------------------------------------------------
// Status objects, as the API server writes them

type JsonObject = { [key: string]: Json }

class StatusFailure extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: JsonObject
  ) {
    super(message)
  }
  toStatus(): JsonObject {
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      ...(this.details === undefined ? {} : { details: this.details }),
      code: this.code
    }
  }
}

const reasonOfCode = (code: number): string =>
  ({ 400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout" })[code] ?? "Unknown"

const notFound = (type: ResourceType, name: string) =>
  new StatusFailure(404, "NotFound", `${qualifiedPlural(type)} "${name}" not found`, { name, group: type.group, kind: type.plural })
const alreadyExists = (type: ResourceType, name: string) =>
  new StatusFailure(409, "AlreadyExists", `${qualifiedPlural(type)} "${name}" already exists`, { name, group: type.group, kind: type.plural })
const conflict = (type: ResourceType, name: string) =>
  new StatusFailure(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualifiedPlural(type)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: type.group, kind: type.plural }
  )
const expired = (message: string) => new StatusFailure(410, "Expired", message)
const badRequest = (message: string) => new StatusFailure(400, "BadRequest", message)

// ---------------------------------------------------------------------------------------------
// Selectors

type Requirement = (labels: Readonly<Record<string, string>>) => boolean

const splitTopLevel = (selector: string): Array<string> => {
  const parts: Array<string> = []
  let depth = 0
  let current = ""
  for (const character of selector) {
    if (character === "(") depth++
    if (character === ")") depth--
    if (character === "," && depth === 0) {
      parts.push(current)
      current = ""
    } else current += character
  }
  if (current.trim() !== "") parts.push(current)
  return parts.map((part) => part.trim()).filter((part) => part !== "")
}

const parseLabelSelector = (selector: string | undefined): Requirement => {
  if (selector === undefined || selector.trim() === "") return () => true
  const requirements = splitTopLevel(selector).map((part): Requirement => {
    const setMatch = /^([^\s!=]+)\s+(in|notin)\s+\((.*)\)$/.exec(part)
    if (setMatch !== null) {
      const key = setMatch[1]!
      const values = setMatch[3]!.split(",").map((value) => value.trim())
      return setMatch[2] === "in" ? (labels) => values.includes(labels[key] ?? "\u0000") : (labels) => !values.includes(labels[key] ?? "\u0000")
    }
    const inequality = /^([^\s!=]+)\s*!=\s*(.*)$/.exec(part)
    if (inequality !== null) return (labels) => labels[inequality[1]!] !== inequality[2]!.trim()
    const equality = /^([^\s!=]+)\s*==?\s*(.*)$/.exec(part)
    if (equality !== null) return (labels) => labels[equality[1]!] === equality[2]!.trim()
    if (part.startsWith("!")) return (labels) => !(part.slice(1) in labels)
    return (labels) => part in labels
  })
  return (labels) => requirements.every((requirement) => requirement(labels))
}

const parseFieldSelector = (selector: string | undefined): ((object: KubeObject) => boolean) => {
  if (selector === undefined || selector.trim() === "") return () => true
  const requirements = splitTopLevel(selector).map((part) => {
    const match = /^([^!=]+)(!=|==|=)(.*)$/.exec(part)
    if (match === null) throw badRequest(`invalid field selector: ${part}`)
    const field = match[1]!.trim()
    const negate = match[2] === "!="
    const value = match[3]!.trim()
    return (object: KubeObject) => {
      let current: unknown = object
      for (const segment of field.split(".")) current = typeof current === "object" && current !== null ? (current as Record<string, unknown>)[segment] : undefined
      const matches = String(current ?? "") === value
      return negate ? !matches : matches
    }
  })
  return (object) => requirements.every((requirement) => requirement(object))
}

// ---------------------------------------------------------------------------------------------
// The server

interface StoredEvent {
  readonly resourceVersion: number
  readonly type: "ADDED" | "MODIFIED" | "DELETED"
  readonly resource: ResourceType
  readonly object: KubeObject
}

interface Watcher {
  readonly resource: ResourceType
  readonly namespace: string | undefined
  readonly matches: (object: KubeObject) => boolean
  readonly bookmarks: boolean
  readonly response: ServerResponse
  timer: NodeJS.Timeout | undefined
}

const keyOf = (type: ResourceType, namespace: string | undefined, name: string): string =>
  `${qualifiedPlural(type)}/${type.namespaced ? (namespace ?? "") : ""}/${name}`

const toYamlString = (value: string): string => JSON.stringify(value)

const labelsOf = (object: KubeObject): Readonly<Record<string, string>> => object.metadata.labels ?? {}

const withoutKeys = (object: KubeObject, keys: ReadonlyArray<string>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(object).filter(([key]) => !keys.includes(key)))

/** Starts a fake API server on a free loopback port; it stops when the scope closes. */
export const make = (options: FakeKubernetesApiOptions = {}): Effect.Effect<FakeKubernetesApi, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (handle) => Effect.promise(() => handle.close())
  ).pipe(Effect.map((handle) => handle.api))

interface Running {
  readonly api: FakeKubernetesApi
  readonly close: () => Promise<void>
}

const start = async (options: FakeKubernetesApiOptions): Promise<Running> => {
  const token = options.token ?? randomBytes(24).toString("hex")
  const authority = options.authority ?? makeCertificateAuthority("fake-kubernetes-ca")
  const serverCertificate = makeServerCertificate(authority, {
    commonName: "kube-apiserver",
    dnsNames: options.dnsNames ?? ["localhost"],
    ipAddresses: options.ipAddresses ?? ["127.0.0.1"]
  })
  const historyLimit = options.historyLimit ?? 100_000
  const bookmarkInterval = Duration.toMillis(Duration.decode(options.bookmarkInterval ?? Duration.seconds(5)))

  const objects = new Map<string, KubeObject>()
  let history: Array<StoredEvent> = []
  let currentResourceVersion = 1
  /** Watches may resume from this resourceVersion or later. */
  let compactedResourceVersion = 0
  const watchers = new Set<Watcher>()
  const sockets = new Set<Socket>()
  const hanging = new Set<ServerResponse>()
  const requestLog: Array<RequestRecord> = []
  const watchWaiters = new Set<() => void>()
  const podLogs = new Map<string, Array<{ readonly at: number; readonly line: string }>>()
  const logFollowers = new Set<{ readonly key: string; readonly response: ServerResponse }>()
  const followerWaiters = new Set<() => void>()
  const requestWaiters = new Set<() => void>()
  let silent = false
  let hang = false
  let failures: { count: number; code: number } = { count: 0, code: 503 }

  const nextResourceVersion = (): number => ++currentResourceVersion

  // --- event fan-out -----------------------------------------------------------------------

  const writeEvent = (watcher: Watcher, event: JsonObject): void => {
    if (!watcher.response.writableEnded && !watcher.response.destroyed) watcher.response.write(JSON.stringify(event) + "\n")
  }

  const watcherSees = (watcher: Watcher, resource: ResourceType, object: KubeObject): boolean =>
    watcher.resource === resource &&
    (watcher.namespace === undefined || watcher.namespace === object.metadata.namespace) &&
    watcher.matches(object)

  const publish = (type: StoredEvent["type"], resource: ResourceType, object: KubeObject): void => {
    const event: StoredEvent = { resourceVersion: Number(object.metadata.resourceVersion), type, resource, object }
    history.push(event)
    if (history.length > historyLimit) {
      const dropped = history.splice(0, history.length - historyLimit)
      compactedResourceVersion = Math.max(compactedResourceVersion, dropped[dropped.length - 1]!.resourceVersion)
    }
    if (silent) return
    for (const watcher of watchers) {
      if (watcherSees(watcher, resource, object)) writeEvent(watcher, { type, object: object as unknown as Json })
    }
  }

  const bookmark = (watcher: Watcher): void =>
    writeEvent(watcher, {
      type: "BOOKMARK",
      object: { kind: watcher.resource.kind, apiVersion: apiVersionOf(watcher.resource), metadata: { resourceVersion: String(currentResourceVersion) } }
    })

  const sendBookmarks = (): void => {
    if (silent) return
    for (const watcher of watchers) if (watcher.bookmarks) bookmark(watcher)
  }
  const bookmarkTimer = setInterval(sendBookmarks, bookmarkInterval)
  bookmarkTimer.unref()

  const endWatcher = (watcher: Watcher): void => {
    watchers.delete(watcher)
    if (watcher.timer !== undefined) clearTimeout(watcher.timer)
    if (!watcher.response.writableEnded) watcher.response.end()
  }

  // --- store -------------------------------------------------------------------------------

  const stamp = (type: ResourceType, object: KubeObject, previous: KubeObject | undefined, explicitGeneration: boolean): KubeObject => {
    const resourceVersion = String(nextResourceVersion())
    const specChanged = previous === undefined || !deepEqual(previous["spec"], object["spec"])
    const generation = type.generation
      ? explicitGeneration && object.metadata.generation !== undefined
        ? object.metadata.generation
        : previous === undefined
          ? 1
          : (previous.metadata.generation ?? 1) + (specChanged ? 1 : 0)
      : undefined
    const metadata: KubeMetadata = {
      ...object.metadata,
      ...(type.namespaced ? { namespace: object.metadata.namespace ?? "default" } : {}),
      uid: previous?.metadata.uid ?? object.metadata.uid ?? randomUUID(),
      creationTimestamp: previous?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      resourceVersion,
      ...(generation === undefined ? {} : { generation })
    }
    if (!type.namespaced) delete (metadata as { namespace?: string }).namespace
    return structuredClone({ ...object, apiVersion: apiVersionOf(type), kind: type.kind, metadata })
  }

  const write = (type: ResourceType, object: KubeObject, previous: KubeObject | undefined, explicitGeneration = false): KubeObject => {
    const stored = stamp(type, object, previous, explicitGeneration)
    objects.set(keyOf(type, stored.metadata.namespace, stored.metadata.name), stored)
    publish(previous === undefined ? "ADDED" : "MODIFIED", type, stored)
    return stored
  }

  const removeObject = (type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined => {
    const key = keyOf(type, namespace, name)
    const existing = objects.get(key)
    if (existing === undefined) return undefined
    objects.delete(key)
    const tombstone: KubeObject = structuredClone({ ...existing, metadata: { ...existing.metadata, resourceVersion: String(nextResourceVersion()) } })
    publish("DELETED", type, tombstone)
    return tombstone
  }

  const listOf = (type: ResourceType, namespace: string | undefined): Array<KubeObject> =>
    [...objects.entries()]
      .filter(([, object]) => typeByKind(object.apiVersion, object.kind) === type && (namespace === undefined || object.metadata.namespace === namespace))
      .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
      .map(([, object]) => object)

  // --- HTTP --------------------------------------------------------------------------------

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

  const handleWatch = (route: Route, query: URLSearchParams, response: ServerResponse): void => {
    const labels = parseLabelSelector(query.get("labelSelector") ?? undefined)
    const fields = parseFieldSelector(query.get("fieldSelector") ?? undefined)
    const watcher: Watcher = {
      resource: route.resource,
      namespace: route.namespace,
      matches: (object) => labels(labelsOf(object)) && fields(object),
      bookmarks: query.get("allowWatchBookmarks") === "true",
      response,
      timer: undefined
    }
    response.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" })
    response.flushHeaders()
    const from = query.get("resourceVersion") ?? ""
    if (from === "" || from === "0") {
      if (!silent) {
        for (const object of listOf(route.resource, route.namespace)) {
          if (watcher.matches(object)) writeEvent(watcher, { type: "ADDED", object: object as unknown as Json })
        }
      }
    } else {
      const since = Number(from)
      if (!Number.isInteger(since) || since < 0) {
        writeEvent(watcher, { type: "ERROR", object: badRequest(`invalid resourceVersion ${from}`).toStatus() })
        response.end()
        return
      }
      if (since < compactedResourceVersion) {
        writeEvent(watcher, {
          type: "ERROR",
          object: expired(`too old resource version: ${since} (${compactedResourceVersion})`).toStatus()
        })
        response.end()
        return
      }
      if (!silent) {
        for (const event of history) {
          if (event.resourceVersion > since && watcherSees(watcher, event.resource, event.object)) {
            writeEvent(watcher, { type: event.type, object: event.object as unknown as Json })
          }
        }
      }
    }
    watchers.add(watcher)
    const timeoutSeconds = Number(query.get("timeoutSeconds") ?? "0")
    if (timeoutSeconds > 0) watcher.timer = setTimeout(() => endWatcher(watcher), timeoutSeconds * 1000)
    response.on("close", () => {
      watchers.delete(watcher)
      if (watcher.timer !== undefined) clearTimeout(watcher.timer)
    })
    for (const waiter of [...watchWaiters]) waiter()
  }

  const handleList = (route: Route, query: URLSearchParams): JsonObject => {
    const labels = parseLabelSelector(query.get("labelSelector") ?? undefined)
    const fields = parseFieldSelector(query.get("fieldSelector") ?? undefined)
    const requested = query.get("resourceVersion")
    if (query.get("resourceVersionMatch") === "Exact" && requested !== null && Number(requested) < compactedResourceVersion) {
      throw expired(`too old resource version: ${requested} (${compactedResourceVersion})`)
    }
    let items = listOf(route.resource, route.namespace).filter((object) => labels(labelsOf(object)) && fields(object))
    let listResourceVersion = currentResourceVersion
    const continueToken = query.get("continue")
    if (continueToken !== null && continueToken !== "") {
      let decoded: { readonly rv: number; readonly after: string }
      try {
        decoded = JSON.parse(Buffer.from(continueToken, "base64url").toString("utf8")) as { rv: number; after: string }
      } catch {
        throw badRequest("invalid continue token")
      }
      if (decoded.rv < compactedResourceVersion) {
        throw expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
      }
      listResourceVersion = decoded.rv
      items = items.filter((object) => keyOf(route.resource, object.metadata.namespace, object.metadata.name) > decoded.after)
    }
    const limit = Number(query.get("limit") ?? "0")
    let next: string | undefined
    if (limit > 0 && items.length > limit) {
      items = items.slice(0, limit)
      const last = items[items.length - 1]!
      next = Buffer.from(JSON.stringify({ rv: listResourceVersion, after: keyOf(route.resource, last.metadata.namespace, last.metadata.name) })).toString("base64url")
    }
    return {
      apiVersion: apiVersionOf(route.resource),
      kind: `${route.resource.kind}List`,
      metadata: { resourceVersion: String(listResourceVersion), ...(next === undefined ? {} : { continue: next }) },
      items: items as unknown as Json
    }
  }

  const objectFromBody = (route: Route, body: KubeObject, name: string | undefined): KubeObject => {
    const apiVersion = apiVersionOf(route.resource)
    if (body.apiVersion !== undefined && body.apiVersion !== apiVersion) throw badRequest(`apiVersion ${String(body.apiVersion)} does not match ${apiVersion}`)
    if (body.kind !== undefined && body.kind !== route.resource.kind) throw badRequest(`kind ${String(body.kind)} does not match ${route.resource.kind}`)
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
      metadata: { ...body.metadata, name: name ?? body.metadata.name, ...(route.resource.namespaced && route.namespace !== undefined ? { namespace: route.namespace } : {}) }
    }
  }

  /** Writes `candidate` over `existing` with the rules of the main resource or of `/status`. */
  const update = (route: Route, existing: KubeObject, candidate: KubeObject): KubeObject => {
    const requested = candidate.metadata.resourceVersion
    if (requested !== undefined && requested !== "" && requested !== existing.metadata.resourceVersion) throw conflict(route.resource, existing.metadata.name)
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
    return write(route.resource, { ...next, metadata }, existing)
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
            throw new StatusFailure(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`)
          }
          return strategicMergePatch(existing as unknown as Json, patch) as unknown as KubeObject
        default:
          throw new StatusFailure(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`)
      }
    } catch (error) {
      if (error instanceof PatchError) throw new StatusFailure(422, "Invalid", error.message)
      throw error
    }
  }

  const handleResource = async (route: Route, method: string, query: URLSearchParams, request: IncomingMessage, response: ServerResponse): Promise<number> => {
    const { resource, namespace, name } = route
    if (route.subresource === "log" && resource.plural === "pods" && name !== undefined && method === "GET") {
      if (!objects.has(keyOf(resource, namespace, name))) throw notFound(resource, name)
      const key = `${namespace ?? ""}/${name}`
      const sinceTime = query.get("sinceTime")
      const since = sinceTime === null ? 0 : Date.parse(sinceTime)
      response.writeHead(200, { "content-type": "text/plain", "transfer-encoding": "chunked" })
      for (const entry of podLogs.get(key) ?? []) if (entry.at >= since) response.write(entry.line + "\n")
      if (query.get("follow") !== "true") {
        response.end()
        return 200
      }
      response.flushHeaders()
      const follower = { key, response }
      logFollowers.add(follower)
      response.on("close", () => logFollowers.delete(follower))
      for (const waiter of [...followerWaiters]) waiter()
      return 200
    }
    if (route.subresource !== undefined && route.subresource !== "status") throw new StatusFailure(404, "NotFound", "the server could not find the requested resource")
    if (name === undefined) {
      if (method === "GET") {
        if (query.get("watch") === "true" || query.get("watch") === "1") {
          handleWatch(route, query, response)
          return 200
        }
        sendJson(response, 200, handleList(route, query))
        return 200
      }
      if (method === "POST") {
        if (resource.namespaced && namespace === undefined) throw new StatusFailure(405, "MethodNotAllowed", "create requires a namespace")
        const body = objectFromBody(route, asObject(parseJsonBody(await readBody(request))), undefined)
        let objectName = body.metadata.name
        if ((objectName === undefined || objectName === "") && typeof body.metadata["generateName"] === "string") {
          objectName = `${body.metadata["generateName"]}${randomBytes(3).toString("hex").slice(0, 5)}`
        }
        if (objectName === undefined || objectName === "") throw new StatusFailure(422, "Invalid", "metadata.name: Required value: name or generateName is required")
        if (objects.has(keyOf(resource, namespace, objectName))) throw alreadyExists(resource, objectName)
        const fresh = resource.statusSubresource ? (withoutKeys(body, ["status"]) as KubeObject) : body
        const metadata = { ...fresh.metadata, name: objectName }
        delete (metadata as { resourceVersion?: string }).resourceVersion
        delete (metadata as { generation?: number }).generation
        const stored = write(resource, { ...fresh, metadata }, undefined)
        sendJson(response, 201, stored)
        return 201
      }
      if (method === "DELETE") throw new StatusFailure(405, "MethodNotAllowed", "deletecollection is not supported by the fake")
      throw new StatusFailure(405, "MethodNotAllowed", `${method} is not allowed`)
    }
    const existing = objects.get(keyOf(resource, namespace, name))
    switch (method) {
      case "GET": {
        if (existing === undefined) throw notFound(resource, name)
        sendJson(response, 200, existing)
        return 200
      }
      case "PUT": {
        const body = objectFromBody(route, asObject(parseJsonBody(await readBody(request))), name)
        if (existing === undefined) throw notFound(resource, name)
        const stored = update(route, existing, body)
        sendJson(response, 200, stored)
        return 200
      }
      case "PATCH": {
        const patch = parseJsonBody(await readBody(request))
        if (existing === undefined) throw notFound(resource, name)
        const patched = applyPatch(route, existing, request.headers["content-type"] ?? "", patch)
        const candidate = objectFromBody(route, asObject(patched as unknown as Json), name)
        const stored = update(route, existing, candidate)
        sendJson(response, 200, stored)
        return 200
      }
      case "DELETE": {
        await readBody(request)
        if (existing === undefined) throw notFound(resource, name)
        removeObject(resource, namespace, name)
        const body = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: { name, group: resource.group, kind: resource.plural, uid: existing.metadata.uid } }
        sendJson(response, 200, body)
        return 200
      }
      default:
        throw new StatusFailure(405, "MethodNotAllowed", `${method} is not allowed`)
    }
  }

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? "/", "https://fake")
    const method = request.method ?? "GET"
    const isWatch = url.searchParams.get("watch") === "true" || url.searchParams.get("watch") === "1"
    const record = (status: number) => {
      requestLog.push({
        method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams.entries()),
        contentType: request.headers["content-type"],
        status,
        watch: isWatch
      })
      for (const waiter of [...requestWaiters]) waiter()
    }
    if (hang) {
      hanging.add(response)
      response.on("close", () => hanging.delete(response))
      record(0)
      return
    }
    try {
      if (request.headers.authorization !== `Bearer ${token}`) throw new StatusFailure(401, "Unauthorized", "Unauthorized")
      if (failures.count > 0) {
        failures = { ...failures, count: failures.count - 1 }
        throw new StatusFailure(failures.code, reasonOfCode(failures.code), `injected failure (${failures.code})`)
      }
      const segments = url.pathname.split("/").filter((segment) => segment !== "")
      const target = route(segments)
      if (target === undefined) throw new StatusFailure(404, "NotFound", "the server could not find the requested resource")
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
      record(await handleResource(target, method, url.searchParams, request, response))
    } catch (error) {
      const failure = error instanceof StatusFailure ? error : new StatusFailure(500, "InternalError", error instanceof Error ? error.message : String(error))
      if (!response.headersSent) sendJson(response, failure.code, failure.toStatus())
      else response.end()
      record(failure.code)
    }
  }

  const server: Server = createServer({ key: serverCertificate.keyPem, cert: serverCertificate.certPem }, (request, response) => {
    void handle(request, response)
  })
  server.on("secureConnection", (socket: Socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  server.on("connection", (socket: Socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  // A client that gives up (e.g. a refused certificate) should not log noise.
  server.on("tlsClientError", () => undefined)

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  const url = `https://127.0.0.1:${port}`

  const kubeconfigWith = (overrides: KubeconfigOverrides): string => {
    const caPem = overrides.caPem === undefined ? authority.certPem : overrides.caPem
    const clusterLines = [
      `    server: ${toYamlString(overrides.server ?? url)}`,
      ...(overrides.caFile !== undefined ? [`    certificate-authority: ${toYamlString(overrides.caFile)}`] : caPem === null ? [] : [`    certificate-authority-data: ${Buffer.from(caPem).toString("base64")}`]),
      ...(overrides.tlsServerName === undefined ? [] : [`    tls-server-name: ${toYamlString(overrides.tlsServerName)}`]),
      ...(overrides.insecureSkipTlsVerify === undefined ? [] : [`    insecure-skip-tls-verify: ${overrides.insecureSkipTlsVerify}`])
    ]
    return [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: fake",
      "  cluster:",
      ...clusterLines,
      "users:",
      "- name: fake-admin",
      "  user:",
      `    token: ${toYamlString(overrides.token ?? token)}`,
      "contexts:",
      "- name: fake",
      "  context:",
      "    cluster: fake",
      "    user: fake-admin",
      ...(overrides.namespace === undefined ? [] : [`    namespace: ${toYamlString(overrides.namespace)}`]),
      "current-context: fake",
      ""
    ].join("\n")
  }

  const refType = (ref: { readonly apiVersion: string; readonly kind: string }) => typeByKind(ref.apiVersion, ref.kind)

  const putObject = (object: KubeObject): KubeObject => {
    const type = refType(object)
    const namespace = type.namespaced ? (object.metadata.namespace ?? "default") : undefined
    const previous = objects.get(keyOf(type, namespace, object.metadata.name))
    return write(type, { ...object, metadata: { ...object.metadata, ...(namespace === undefined ? {} : { namespace }) } }, previous, true)
  }

  const api: FakeKubernetesApi = {
    url,
    port,
    caPem: authority.certPem,
    authority,
    token,
    kubeconfig: kubeconfigWith({}),
    kubeconfigWith,
    put: (object) => Effect.sync(() => putObject(object)),
    modify: (ref, transform) =>
      Effect.sync(() => {
        const type = refType(ref)
        const existing = objects.get(keyOf(type, type.namespaced ? (ref.namespace ?? "default") : undefined, ref.name))
        if (existing === undefined) return Option.none()
        const next = transform(structuredClone(existing))
        const generationGiven = next.metadata.generation !== existing.metadata.generation
        return Option.some(write(type, next, existing, generationGiven))
      }),
    get: (ref) =>
      Effect.sync(() => {
        const type = refType(ref)
        return Option.fromNullable(objects.get(keyOf(type, type.namespaced ? (ref.namespace ?? "default") : undefined, ref.name))).pipe(
          Option.map((object) => structuredClone(object))
        )
      }),
    list: (type, namespace) => Effect.sync(() => listOf(refType(type), namespace).map((object) => structuredClone(object))),
    remove: (ref) =>
      Effect.sync(() => {
        const type = refType(ref)
        return removeObject(type, type.namespaced ? (ref.namespace ?? "default") : undefined, ref.name) !== undefined
      }),
    resourceVersion: Effect.sync(() => currentResourceVersion),
    dropConnections: Effect.sync(() => {
      for (const watcher of watchers) watchers.delete(watcher)
      for (const socket of sockets) socket.destroy()
    }),
    compact: Effect.sync(() => compact()),
    forceGone: Effect.sync(() => {
      compact()
      for (const watcher of [...watchers]) {
        writeEvent(watcher, { type: "ERROR", object: expired(`too old resource version: ${compactedResourceVersion - 1} (${compactedResourceVersion})`).toStatus() })
        endWatcher(watcher)
      }
    }),
    silenceWatches: (value) => Effect.sync(() => void (silent = value)),
    failNext: (count, code = 503) => Effect.sync(() => void (failures = { count, code })),
    hangRequests: (value) =>
      Effect.sync(() => {
        hang = value
        if (!value) for (const response of hanging) response.destroy()
      }),
    sendBookmarks: Effect.sync(sendBookmarks),
    requests: Effect.sync(() => [...requestLog]),
    clearRequests: Effect.sync(() => void requestLog.splice(0)),
    awaitRequests: (predicate, count = 1) =>
      Effect.async<void>((resume) => {
        const check = () => {
          if (requestLog.filter(predicate).length >= count) {
            requestWaiters.delete(check)
            resume(Effect.void)
          }
        }
        requestWaiters.add(check)
        check()
        return Effect.sync(() => void requestWaiters.delete(check))
      }),
    openWatches: Effect.sync(() => watchers.size),
    appendPodLog: (namespace, pod, line) =>
      Effect.sync(() => {
        const key = `${namespace}/${pod}`
        const lines = podLogs.get(key) ?? []
        lines.push({ at: Date.now(), line })
        podLogs.set(key, lines)
        for (const follower of logFollowers) if (follower.key === key && !follower.response.writableEnded) follower.response.write(line + "\n")
      }),
    awaitLogFollowers: (count) =>
      Effect.async<void>((resume) => {
        const check = () => {
          if (logFollowers.size >= count) {
            followerWaiters.delete(check)
            resume(Effect.void)
          }
        }
        followerWaiters.add(check)
        check()
        return Effect.sync(() => void followerWaiters.delete(check))
      }),
    awaitWatches: (count, plural) =>
      Effect.async<void>((resume) => {
        const check = () => {
          const open = [...watchers].filter((watcher) => plural === undefined || watcher.resource.plural === plural).length
          if (open >= count) {
            watchWaiters.delete(check)
            resume(Effect.void)
          }
        }
        watchWaiters.add(check)
        check()
        return Effect.sync(() => void watchWaiters.delete(check))
      })
  }

  function compact(): void {
    compactedResourceVersion = currentResourceVersion
    history = history.filter((event) => event.resourceVersion > compactedResourceVersion)
  }

  const close = async (): Promise<void> => {
    clearInterval(bookmarkTimer)
    for (const watcher of [...watchers]) endWatcher(watcher)
    for (const follower of logFollowers) follower.response.end()
    for (const response of hanging) response.destroy()
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  return { api, close }
}

const withoutGeneration = (metadata: KubeMetadata): KubeMetadata => {
  const copy = { ...metadata }
  delete (copy as { generation?: number }).generation
  return copy
}

