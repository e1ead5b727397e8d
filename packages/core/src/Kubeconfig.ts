/**
 * The kubeconfig a control plane delivers, held to what Sovereign needs (issue 16): one cluster, one
 * user, one context, inline material only, a CA that is a CA, and a server that is the region's own
 * control plane. Decoded by our Schema from the parsed YAML value (never by a Kubernetes client), then
 * stored as a normalised document we render ourselves, so nothing a caller wrote reaches a client.
 */
import { Context, Effect, Either, ParseResult, Redacted, Schema } from "effect"

// ---------------------------------------------------------------------------------------------
// Refusals

export const KubeconfigRefusalReason = Schema.Literal(
  /** Not a kubeconfig of the accepted shape (a value of the wrong type, a missing field, two clusters). */
  "Malformed",
  /** A field that makes a client read a file, run a program, use a proxy or skip verification. */
  "ForbiddenField",
  /** A field Sovereign does not know (refused so that nothing is silently dropped or honoured). */
  "UnknownField",
  /** The server is not one of the region's control-plane or load-balancer addresses. */
  "ServerNotAllowed",
  /** The certificate authority is not an X.509 CA certificate. */
  "UntrustedAuthority"
)
export type KubeconfigRefusalReason = typeof KubeconfigRefusalReason.Type

/** Why a kubeconfig was refused; `field` names the offending field, `allowed` the addresses a server may have. */
export class KubeconfigRefused extends Schema.TaggedError<KubeconfigRefused>()("KubeconfigRefused", {
  reason: KubeconfigRefusalReason,
  message: Schema.String,
  /** The field's own name (`token-file`). */
  field: Schema.optional(Schema.String),
  /** Where it is (`users[0].user.token-file`). */
  path: Schema.optional(Schema.String),
  allowed: Schema.optional(Schema.Array(Schema.String))
}) {
  get isRetryable(): boolean {
    return false
  }
}

const refuse = (
  reason: KubeconfigRefusalReason,
  message: string,
  extra: { field?: string; path?: string; allowed?: ReadonlyArray<string> } = {}
) => new KubeconfigRefused({ reason, message, ...extra })

// ---------------------------------------------------------------------------------------------
// The accepted document

/**
 * Fields that make a client reach outside the document (files, programs, proxies) or weaken TLS or
 * authentication. Refused wherever they appear, with their name.
 */
export const forbiddenFields: Readonly<Record<string, string>> = {
  "certificate-authority": "names a file to read; send certificate-authority-data instead",
  "client-certificate": "names a file to read; send client-certificate-data instead",
  "client-key": "names a file to read; send client-key-data instead",
  "token-file": "names a file to read; send token instead",
  exec: "runs a program on the server",
  "auth-provider": "runs an authentication plugin on the server",
  "proxy-url": "sends the server's requests through a proxy",
  "insecure-skip-tls-verify": "turns off the verification of the API server",
  username: "basic authentication is not accepted; send a token or a client certificate",
  password: "basic authentication is not accepted; send a token or a client certificate",
  as: "impersonation is not accepted",
  "as-uid": "impersonation is not accepted",
  "as-groups": "impersonation is not accepted",
  "as-user-extra": "impersonation is not accepted"
}

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._@:-]{0,252}$/
const dnsNamePattern = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/
const tokenPattern = /^[\x21-\x7e]{1,4096}$/
const base64Pattern = /^[A-Za-z0-9+/]+={0,2}$/

const Name = Schema.String.pipe(
  Schema.pattern(namePattern, { message: () => "must be a name of letters, digits and . _ @ : - (at most 253)" })
)
const Base64Pem = (what: string, marker: RegExp, limit: number) =>
  Schema.String.pipe(
    Schema.filter((text) => {
      const pem = decodeBase64(text)
      if (pem === undefined || text.length > limit) return `must be base64 (at most ${limit} characters) of a PEM ${what}`
      return marker.test(pem) || `must be base64 of a PEM ${what}`
    })
  )

const certificateMarker = /-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/
const keyMarker = /-----BEGIN ([A-Z ]+ )?PRIVATE KEY-----[\s\S]+-----END ([A-Z ]+ )?PRIVATE KEY-----/

const ClusterFields = Schema.Struct({
  server: Schema.String,
  "certificate-authority-data": Base64Pem("certificate", certificateMarker, 65_536),
  "tls-server-name": Schema.optional(Schema.String.pipe(Schema.filter((name) => isHostName(name) || "must be a DNS name or an IP address")))
})

const UserFields = Schema.Struct({
  token: Schema.optional(
    Schema.String.pipe(Schema.pattern(tokenPattern, { message: () => "must be a bearer token of printable characters without spaces" }))
  ),
  "client-certificate-data": Schema.optional(Base64Pem("certificate", certificateMarker, 65_536)),
  "client-key-data": Schema.optional(Base64Pem("private key", keyMarker, 65_536))
})

const ContextFields = Schema.Struct({
  cluster: Name,
  user: Name,
  namespace: Schema.optional(
    Schema.String.pipe(Schema.pattern(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, { message: () => "must be a namespace name" }))
  )
})

const one = <S extends Schema.Schema.Any>(item: S, what: string) =>
  Schema.Array(item).pipe(
    Schema.filter((items) => items.length === 1 || `must hold exactly one ${what} (Sovereign watches one cluster per region)`)
  )

/** The wire shape of an accepted kubeconfig, field names as kubectl writes them. */
export const KubeconfigDocument = Schema.Struct({
  apiVersion: Schema.optional(Schema.Literal("v1")),
  kind: Schema.optional(Schema.Literal("Config")),
  preferences: Schema.optional(Schema.Struct({})),
  "current-context": Schema.optional(Schema.String),
  clusters: one(Schema.Struct({ name: Name, cluster: ClusterFields }), "cluster"),
  users: one(Schema.Struct({ name: Name, user: UserFields }), "user"),
  contexts: one(Schema.Struct({ name: Name, context: ContextFields }), "context")
})
export type KubeconfigDocument = typeof KubeconfigDocument.Type

export type Credential =
  | { readonly _tag: "Token"; readonly token: Redacted.Redacted<string> }
  | { readonly _tag: "ClientCertificate"; readonly certificateData: string; readonly keyData: Redacted.Redacted<string> }

/** An accepted kubeconfig: what the normalised document says, and nothing else. */
export interface Kubeconfig {
  readonly cluster: {
    readonly name: string
    /** `https://<host>[:<port>]` */
    readonly server: string
    /** Base64 of the PEM CA certificate(s), as in the document. */
    readonly certificateAuthorityData: string
    readonly tlsServerName?: string
  }
  readonly user: { readonly name: string; readonly credential: Credential }
  readonly context: { readonly name: string; readonly namespace?: string }
}

// ---------------------------------------------------------------------------------------------
// Decoding

const pathOf = (segments: ReadonlyArray<PropertyKey>): string =>
  segments.reduce<string>(
    (path, segment) => (typeof segment === "number" ? `${path}[${segment}]` : path === "" ? String(segment) : `${path}.${String(segment)}`),
    ""
  )

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

/** The first forbidden field in document order, looked for everywhere in the document. */
const findForbidden = (
  value: unknown,
  path: ReadonlyArray<PropertyKey>,
  seen: Set<object>
): { field: string; path: string } | undefined => {
  if (typeof value !== "object" || value === null) return undefined
  // Shared nodes come from YAML aliases; a kubeconfig needs none, and walking them could be exponential.
  if (seen.has(value)) return { field: "*alias", path: pathOf(path) }
  seen.add(value)
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      const found = findForbidden(value[index], [...path, index], seen)
      if (found !== undefined) return found
    }
    return undefined
  }
  for (const [key, nested] of Object.entries(value)) {
    if (Object.hasOwn(forbiddenFields, key)) return { field: key, path: pathOf([...path, key]) }
    const found = findForbidden(nested, [...path, key], seen)
    if (found !== undefined) return found
  }
  return undefined
}

const decodeDocument = Schema.decodeUnknownEither(KubeconfigDocument, { onExcessProperty: "error", errors: "first" })

/**
 * Decodes a parsed YAML (or JSON) value: forbidden fields first (named), then our Schema (unknown
 * fields named too), then the cross-references and the server URL. Pure: reads nothing, calls nothing.
 */
export const decode = (value: unknown): Either.Either<Kubeconfig, KubeconfigRefused> => {
  if (!isRecord(value)) return Either.left(refuse("Malformed", "the kubeconfig must be a YAML mapping with clusters, users and contexts"))
  const forbidden = findForbidden(value, [], new Set())
  if (forbidden !== undefined) {
    if (forbidden.field === "*alias") {
      return Either.left(
        refuse(
          "Malformed",
          `the kubeconfig repeats a node through a YAML alias at ${forbidden.path || "its top"}; send it without anchors and aliases`
        )
      )
    }
    return Either.left(
      refuse("ForbiddenField", `the kubeconfig field ${forbidden.path} is not accepted: it ${forbiddenFields[forbidden.field]}`, forbidden)
    )
  }
  const decoded = decodeDocument(value)
  if (Either.isLeft(decoded)) {
    const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
    const path = pathOf(issue?.path ?? [])
    const last = issue?.path[issue.path.length - 1]
    if (issue?._tag === "Unexpected" && typeof last === "string") {
      return Either.left(
        refuse("UnknownField", `the kubeconfig field ${path} is not one Sovereign accepts; remove it`, { field: last, path })
      )
    }
    return Either.left(
      refuse("Malformed", `the kubeconfig's ${path || "document"} ${issue?.message ?? "is not valid"}`, {
        ...(path === "" ? {} : { path })
      })
    )
  }
  const document = decoded.right
  const cluster = document.clusters[0]!
  const user = document.users[0]!
  const context = document.contexts[0]!
  if (context.context.cluster !== cluster.name) {
    return Either.left(
      refuse("Malformed", `contexts[0].context.cluster must name the cluster ${cluster.name}`, { path: "contexts[0].context.cluster" })
    )
  }
  if (context.context.user !== user.name) {
    return Either.left(
      refuse("Malformed", `contexts[0].context.user must name the user ${user.name}`, { path: "contexts[0].context.user" })
    )
  }
  if (document["current-context"] !== undefined && document["current-context"] !== context.name) {
    return Either.left(refuse("Malformed", `current-context must name the context ${context.name}`, { path: "current-context" }))
  }
  const server = parseServer(cluster.cluster.server)
  if (Either.isLeft(server)) return Either.left(server.left)
  const fields = user.user
  const hasCertificate = fields["client-certificate-data"] !== undefined || fields["client-key-data"] !== undefined
  let credential: Credential
  if (fields.token !== undefined && !hasCertificate) {
    credential = { _tag: "Token", token: Redacted.make(fields.token) }
  } else if (fields.token === undefined && fields["client-certificate-data"] !== undefined && fields["client-key-data"] !== undefined) {
    credential = {
      _tag: "ClientCertificate",
      certificateData: fields["client-certificate-data"],
      keyData: Redacted.make(fields["client-key-data"])
    }
  } else {
    return Either.left(
      refuse("Malformed", "users[0].user must carry either token, or client-certificate-data with client-key-data", {
        path: "users[0].user"
      })
    )
  }
  const tlsServerName = cluster.cluster["tls-server-name"]
  return Either.right({
    cluster: {
      name: cluster.name,
      server: server.right.url,
      certificateAuthorityData: cluster.cluster["certificate-authority-data"],
      ...(tlsServerName === undefined ? {} : { tlsServerName })
    },
    user: { name: user.name, credential },
    context: { name: context.name, ...(context.context.namespace === undefined ? {} : { namespace: context.context.namespace }) }
  })
}

// ---------------------------------------------------------------------------------------------
// The server URL

export interface ServerAddress {
  /** Normalised: `https://<host>[:<port>]`, no path. */
  readonly url: string
  /** Lowercase; an IPv6 address without brackets. */
  readonly host: string
  readonly port: number
  readonly kind: "ipv4" | "ipv6" | "name"
}

const ipv4Pattern = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/
const ipv6Pattern = /^[0-9a-f:.]+$/

const isHostName = (text: string) =>
  ipv4Pattern.test(text) || dnsNamePattern.test(text.toLowerCase()) || (text.includes(":") && ipv6Pattern.test(text.toLowerCase()))

const serverPattern = /^https:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?\/?$/

/** `https://<host>[:<port>]` and nothing else: no user, path, query or fragment. */
export const parseServer = (server: string): Either.Either<ServerAddress, KubeconfigRefused> => {
  const match = serverPattern.exec(server)
  const path = "clusters[0].cluster.server"
  if (match === null) {
    return Either.left(refuse("Malformed", `${path} must be https://<address>[:<port>] with nothing after it`, { path }))
  }
  const rawHost = match[1]!
  const port = match[2] === undefined ? 443 : Number(match[2])
  if (!Number.isInteger(port) || port < 1 || port > 65535) return Either.left(refuse("Malformed", `${path} has no valid port`, { path }))
  const bracketed = rawHost.startsWith("[")
  const host = (bracketed ? rawHost.slice(1, -1) : rawHost).toLowerCase().replace(/\.$/, "")
  const kind = bracketed ? "ipv6" : ipv4Pattern.test(host) ? "ipv4" : "name"
  if (kind === "ipv6" && !ipv6Pattern.test(host)) return Either.left(refuse("Malformed", `${path} has no valid IPv6 address`, { path }))
  if (kind === "name" && (/^[0-9.]+$/.test(host) || !dnsNamePattern.test(host))) {
    return Either.left(refuse("Malformed", `${path} has no valid address or DNS name`, { path }))
  }
  const shown = kind === "ipv6" ? `[${host}]` : host
  return Either.right({ url: `https://${shown}${match[2] === undefined ? "" : `:${port}`}`, host, port, kind })
}

// ---------------------------------------------------------------------------------------------
// Checks that need the environment

/** What the kubeconfig rules ask of the environment: certificate parsing and name resolution. */
export interface KubeconfigInspectorService {
  /** Whether the PEM text's first certificate parses as X.509 with the CA flag (basicConstraints cA). */
  readonly isCertificateAuthority: (pem: string) => boolean
  /** Every address (A and AAAA) the name resolves to; empty when it does not resolve. */
  readonly resolve: (hostname: string) => Effect.Effect<ReadonlyArray<string>>
}

export class KubeconfigInspector extends Context.Tag("@sovereign/core/KubeconfigInspector")<
  KubeconfigInspector,
  KubeconfigInspectorService
>() {}

/** What a region's control plane may be reached at (SPEC §4.2, issue 16). */
export interface AllowedServers {
  /** The region's control-plane and load-balancer addresses, from Phase 0's outputs. */
  readonly addresses: ReadonlyArray<string>
  /** Names under this FQDN (or the FQDN itself) are accepted when they resolve only to `addresses`. */
  readonly fqdn: string
}

const normaliseAddress = (address: string) =>
  address
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, "")

const describeAllowed = (allowed: AllowedServers) =>
  `${allowed.addresses.length === 0 ? "(none known yet)" : allowed.addresses.join(", ")}, or a name under ${allowed.fqdn} that resolves only to them`

/** The server must be the region's own control plane: one of its addresses, or a name of ours that resolves only to them. */
export const checkServer = (kubeconfig: Kubeconfig, allowed: AllowedServers): Effect.Effect<void, KubeconfigRefused, KubeconfigInspector> =>
  Effect.gen(function* () {
    const address = yield* Either.match(parseServer(kubeconfig.cluster.server), { onLeft: Effect.fail, onRight: Effect.succeed })
    const addresses = new Set(allowed.addresses.map(normaliseAddress))
    const refused = (why: string) =>
      refuse("ServerNotAllowed", `clusters[0].cluster.server ${address.url} ${why}; allowed: ${describeAllowed(allowed)}`, {
        path: "clusters[0].cluster.server",
        field: "server",
        allowed: [...addresses]
      })
    if (address.kind !== "name") {
      if (addresses.has(address.host)) return
      return yield* refused("is not one of the region's control-plane or load-balancer addresses")
    }
    const fqdn = allowed.fqdn.toLowerCase()
    if (address.host !== fqdn && !address.host.endsWith(`.${fqdn}`)) return yield* refused(`is not a name under ${fqdn}`)
    const inspector = yield* KubeconfigInspector
    const resolved = (yield* inspector.resolve(address.host)).map(normaliseAddress)
    if (resolved.length === 0) return yield* refused("does not resolve")
    const stray = resolved.filter((ip) => !addresses.has(ip))
    if (stray.length > 0) return yield* refused(`resolves to ${stray.join(", ")} as well`)
  })

/** The CA must be an X.509 CA certificate: a leaf, a key or anything else is refused. */
export const checkAuthority = (kubeconfig: Kubeconfig): Effect.Effect<void, KubeconfigRefused, KubeconfigInspector> =>
  Effect.flatMap(KubeconfigInspector, (inspector) => {
    const pem = decodeBase64(kubeconfig.cluster.certificateAuthorityData) ?? ""
    return inspector.isCertificateAuthority(pem)
      ? Effect.void
      : Effect.fail(
          refuse(
            "UntrustedAuthority",
            "clusters[0].cluster.certificate-authority-data is not an X.509 CA certificate (basicConstraints CA:TRUE)",
            {
              path: "clusters[0].cluster.certificate-authority-data",
              field: "certificate-authority-data"
            }
          )
        )
  })

/** Decode, then the CA and the server: the whole door, with nothing stored and nothing contacted. */
export const admit = (value: unknown, allowed: AllowedServers): Effect.Effect<Kubeconfig, KubeconfigRefused, KubeconfigInspector> =>
  Effect.gen(function* () {
    const kubeconfig = yield* Either.match(decode(value), { onLeft: Effect.fail, onRight: Effect.succeed })
    yield* checkAuthority(kubeconfig)
    yield* checkServer(kubeconfig, allowed)
    return kubeconfig
  })

// ---------------------------------------------------------------------------------------------
// The normalised document

/** The document as kubectl writes it, holding only what `Kubeconfig` holds. */
export const toDocument = (kubeconfig: Kubeconfig): typeof KubeconfigDocument.Encoded => {
  const credential = kubeconfig.user.credential
  return {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: kubeconfig.cluster.name,
        cluster: {
          server: kubeconfig.cluster.server,
          "certificate-authority-data": kubeconfig.cluster.certificateAuthorityData,
          ...(kubeconfig.cluster.tlsServerName === undefined ? {} : { "tls-server-name": kubeconfig.cluster.tlsServerName })
        }
      }
    ],
    contexts: [
      {
        name: kubeconfig.context.name,
        context: {
          cluster: kubeconfig.cluster.name,
          user: kubeconfig.user.name,
          ...(kubeconfig.context.namespace === undefined ? {} : { namespace: kubeconfig.context.namespace })
        }
      }
    ],
    "current-context": kubeconfig.context.name,
    users: [
      {
        name: kubeconfig.user.name,
        user:
          credential._tag === "Token"
            ? { token: Redacted.value(credential.token) }
            : { "client-certificate-data": credential.certificateData, "client-key-data": Redacted.value(credential.keyData) }
      }
    ]
  }
}

// Every value is written as a JSON string, which YAML reads as a double-quoted scalar: no value can
// become YAML structure, a tag or an alias, whatever characters it holds.
const scalar = (value: string) => JSON.stringify(value)

const emit = (value: unknown, indent: string): Array<string> => {
  if (Array.isArray(value)) {
    return value.flatMap((item) => {
      const lines = emit(item, `${indent}  `)
      return [`${indent}- ${lines[0]!.trimStart()}`, ...lines.slice(1)]
    })
  }
  if (isRecord(value)) {
    return Object.entries(value).flatMap(([key, nested]) =>
      typeof nested === "string"
        ? [`${indent}${key}: ${scalar(nested)}`]
        : [`${indent}${key}:`, ...emit(nested, Array.isArray(nested) ? indent : `${indent}  `)]
    )
  }
  return [`${indent}${scalar(String(value))}`]
}

/** The normalised kubeconfig as YAML (what is stored, downloaded and handed to the Kubernetes client). */
export const render = (kubeconfig: Kubeconfig): Redacted.Redacted<string> =>
  Redacted.make(`${emit(toDocument(kubeconfig), "").join("\n")}\n`)

// ---------------------------------------------------------------------------------------------
// Base64 (strict: standard alphabet, padding, no whitespace)

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/** The UTF-8 text inside a base64 string, or undefined when it is not strict base64. */
export const decodeBase64 = (text: string): string | undefined => {
  if (text.length === 0 || text.length % 4 !== 0 || !base64Pattern.test(text)) return undefined
  const bytes: Array<number> = []
  let buffer = 0
  let bits = 0
  for (const char of text) {
    if (char === "=") break
    buffer = (buffer << 6) | alphabet.indexOf(char)
    bits += 6
    if (bits >= 8) {
      bits -= 8
      bytes.push((buffer >> bits) & 0xff)
    }
  }
  return new TextDecoder("utf-8", { fatal: false }).decode(Uint8Array.from(bytes))
}
