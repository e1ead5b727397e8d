/**
 * A protocol-faithful fake Kubernetes API server over HTTPS with its own CA, for the real
 * `@kubernetes/client-node`: list/watch with a global resourceVersion, chunked watch streams with
 * bookmarks, `410 Gone`, the three PATCH dialects, real `Status` errors, a bearer token, and fault
 * controls (dropped connections, forced compaction, silent watches, failing or hanging requests).
 *
 * This module is the fake's surface and its assembly; the parts live in `internal/kubernetesApi/`:
 * `store` (resource types, objects, resourceVersions, history), `selectors`, `status` (failures as
 * `Status` objects), `watch` (streams, bookmarks, resumption), `logs` (pod logs) and `router`
 * (paths, verbs, the token and injected faults).
 */
import { randomBytes } from "node:crypto"
import { createServer, type Server } from "node:https"
import type { Socket } from "node:net"
import { Duration, Effect, Option } from "effect"
import type { Scope } from "effect"
import { PodLogs } from "./internal/kubernetesApi/logs.js"
import { Router } from "./internal/kubernetesApi/router.js"
import { ObjectStore, typeByKind } from "./internal/kubernetesApi/store.js"
import { Watches } from "./internal/kubernetesApi/watch.js"
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
  readonly list: (
    type: { readonly apiVersion: string; readonly kind: string },
    namespace?: string
  ) => Effect.Effect<ReadonlyArray<KubeObject>>
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

/** Starts a fake API server on a free loopback port; it stops when the scope closes. */
export const make = (options: FakeKubernetesApiOptions = {}): Effect.Effect<FakeKubernetesApi, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (handle) => Effect.promise(() => handle.close())
  ).pipe(Effect.map((handle) => handle.api))

const toYamlString = (value: string): string => JSON.stringify(value)

const start = async (
  options: FakeKubernetesApiOptions
): Promise<{ readonly api: FakeKubernetesApi; readonly close: () => Promise<void> }> => {
  const token = options.token ?? randomBytes(24).toString("hex")
  const authority = options.authority ?? makeCertificateAuthority("fake-kubernetes-ca")
  const serverCertificate = makeServerCertificate(authority, {
    commonName: "kube-apiserver",
    dnsNames: options.dnsNames ?? ["localhost"],
    ipAddresses: options.ipAddresses ?? ["127.0.0.1"]
  })
  const store: ObjectStore = new ObjectStore(options.historyLimit ?? 100_000, (event) => watches.publish(event))
  const watches = new Watches(store, Duration.toMillis(Duration.decode(options.bookmarkInterval ?? Duration.seconds(5))))
  const logs = new PodLogs()
  const router = new Router(token, store, watches, logs)
  const sockets = new Set<Socket>()

  const server: Server = createServer({ key: serverCertificate.keyPem, cert: serverCertificate.certPem }, (request, response) => {
    void router.handle(request, response)
  })
  const track = (socket: Socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  }
  server.on("secureConnection", track)
  server.on("connection", track)
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
      ...(overrides.caFile !== undefined
        ? [`    certificate-authority: ${toYamlString(overrides.caFile)}`]
        : caPem === null
          ? []
          : [`    certificate-authority-data: ${Buffer.from(caPem).toString("base64")}`]),
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
  /** Where a reference points: its type and namespace (`default` for a namespaced kind without one). */
  const locate = (ref: ObjectRef) => {
    const type = refType(ref)
    return { type, namespace: type.namespaced ? (ref.namespace ?? "default") : undefined }
  }

  const api: FakeKubernetesApi = {
    url,
    port,
    caPem: authority.certPem,
    authority,
    token,
    kubeconfig: kubeconfigWith({}),
    kubeconfigWith,
    put: (object) =>
      Effect.sync(() => {
        const type = refType(object)
        const namespace = type.namespaced ? (object.metadata.namespace ?? "default") : undefined
        const previous = store.get(type, namespace, object.metadata.name)
        return store.write(
          type,
          { ...object, metadata: { ...object.metadata, ...(namespace === undefined ? {} : { namespace }) } },
          previous,
          true
        )
      }),
    modify: (ref, transform) =>
      Effect.sync(() => {
        const { type, namespace } = locate(ref)
        const existing = store.get(type, namespace, ref.name)
        if (existing === undefined) return Option.none()
        const next = transform(structuredClone(existing))
        const generationGiven = next.metadata.generation !== existing.metadata.generation
        return Option.some(store.write(type, next, existing, generationGiven))
      }),
    get: (ref) =>
      Effect.sync(() => {
        const { type, namespace } = locate(ref)
        return Option.fromNullable(store.get(type, namespace, ref.name)).pipe(Option.map((object) => structuredClone(object)))
      }),
    list: (type, namespace) => Effect.sync(() => store.list(refType(type), namespace).map((object) => structuredClone(object))),
    remove: (ref) =>
      Effect.sync(() => {
        const { type, namespace } = locate(ref)
        return store.remove(type, namespace, ref.name) !== undefined
      }),
    resourceVersion: Effect.sync(() => store.resourceVersion),
    dropConnections: Effect.sync(() => {
      watches.forget()
      for (const socket of sockets) socket.destroy()
    }),
    compact: Effect.sync(() => store.compact()),
    forceGone: Effect.sync(() => {
      store.compact()
      watches.expireAll()
    }),
    silenceWatches: (value) => Effect.sync(() => void (watches.silent = value)),
    failNext: (count, code = 503) => Effect.sync(() => router.failNext(count, code)),
    hangRequests: (value) => Effect.sync(() => router.hangRequests(value)),
    sendBookmarks: Effect.sync(() => watches.sendBookmarks()),
    requests: Effect.sync(() => [...router.requestLog]),
    clearRequests: Effect.sync(() => void router.requestLog.splice(0)),
    awaitRequests: (predicate, count = 1) => router.awaitRequests(predicate, count),
    openWatches: Effect.sync(() => watches.size),
    appendPodLog: (namespace, pod, line) => Effect.sync(() => logs.append(namespace, pod, line)),
    awaitLogFollowers: (count) => logs.awaitFollowers(count),
    awaitWatches: (count, plural) => watches.awaitOpen(count, plural)
  }

  const close = async (): Promise<void> => {
    watches.close()
    logs.close()
    router.close()
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  return { api, close }
}
