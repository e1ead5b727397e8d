/** A protocol-faithful fake of the Hetzner Cloud API on a loopback port: resources, label selectors, pagination, actions, rate limits, faults. */
import { HttpClient, HttpClientResponse } from "@effect/platform"
import { Deferred, Duration, Effect } from "effect"
import type { Scope } from "effect"
import { createHash } from "node:crypto"
import { createServer } from "node:http"
import type { ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

export type Collection = "servers" | "networks" | "firewalls" | "ssh_keys" | "load_balancers"
export const collections: ReadonlyArray<Collection> = ["servers", "networks", "firewalls", "ssh_keys", "load_balancers"]

const itemKey: Record<Collection, string> = {
  servers: "server",
  networks: "network",
  firewalls: "firewall",
  ssh_keys: "ssh_key",
  load_balancers: "load_balancer"
}

/** A resource as the fake stores it: the wire object plus what the assertions need. */
export interface FakeResource {
  readonly kind: Collection
  readonly id: number
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  /** The whole wire object. */
  readonly body: Readonly<Record<string, unknown>>
}

export interface RecordedRequest {
  /** 1-based position among every request the fake received. */
  readonly number: number
  readonly method: string
  /** Path without the `/v1` base (`/servers/3/actions/poweron`). */
  readonly path: string
  readonly query: Readonly<Record<string, string>>
  readonly status: number
  /** Clock time the request arrived (ms). */
  readonly at: number
  readonly body?: unknown
}

/** One injected failure. Without `call` it applies to the next request matching `method`/`path`. */
export interface Fault {
  readonly status: number
  readonly code: string
  readonly message?: string
  /** Absolute request number (1-based) this fault answers. */
  readonly call?: number
  readonly method?: string
  /** Matches when the request path starts with it (`/firewalls`). */
  readonly path?: string
}

export interface FakeHetznerOptions {
  /** The bearer token that may read and write. Default `fake-token`. */
  readonly token?: string
  /** A token that may only read: writes answer 403 `forbidden`. */
  readonly readOnlyToken?: string
  /** The per-project budget: `limit` requests, refilled at `refillPerSecond`. Default 3600 and 1/s. */
  readonly rateLimit?: { readonly limit: number; readonly refillPerSecond?: number }
  /** An action succeeds after this many polls of `GET /actions/{id}`... Default 1. */
  readonly actionPolls?: number
  /** ...or once this much Clock time has passed. Default 3 s. */
  readonly actionDuration?: Duration.DurationInput
  /** Commands whose actions end in `error` instead of `success` (e.g. `create_server`). */
  readonly failingActions?: ReadonlyArray<string>
  /** Answer 422 `resource_in_use` this many times to each firewall delete before obeying (#706). */
  readonly firewallInUseTimes?: number
}

export interface FakeHetznerApi {
  /** Base URL including `/v1`, for `HCLOUD_ENDPOINT`. */
  readonly endpoint: string
  readonly token: string
  /**
   * An HttpClient that hands each request to the same handler in-process, without a socket: the
   * same protocol, for tests that replay a provisioning hundreds of times.
   */
  readonly httpClient: HttpClient.HttpClient
  readonly requests: Effect.Effect<ReadonlyArray<RecordedRequest>>
  /** Every resource that exists (servers being deleted included), with labels, for assertions. */
  readonly resources: Effect.Effect<ReadonlyArray<FakeResource>>
  /** Requests that arrived while the budget was exhausted: a well-behaved client causes none. */
  readonly violations: Effect.Effect<number>
  /** Adds a resource directly (no budget, no log): neighbours, unlabelled leftovers. */
  readonly seed: (
    kind: Collection,
    fields: { readonly name: string; readonly labels?: Record<string, string>; readonly [key: string]: unknown }
  ) => Effect.Effect<number>
  readonly inject: (...faults: ReadonlyArray<Fault>) => Effect.Effect<void>
  /**
   * Processes request number `call` (its effect on the resources happens) but never answers it, as if
   * the client crashed right after sending. The returned Deferred completes at that moment.
   */
  readonly crashAt: (call: number) => Effect.Effect<Deferred.Deferred<void>>
  /** Clears the request log, the violation count, pending faults and crash points (resources stay). */
  readonly resetLog: Effect.Effect<void>
}

interface PendingAction {
  readonly wire: {
    id: number
    command: string
    status: "running" | "success" | "error"
    progress: number
    error: { code: string; message: string } | null
    started: string
    finished: string | null
    resources: Array<{ id: number; type: string }>
  }
  readonly startedAt: number
  polls: number
  readonly onSuccess: () => void
}

class ApiFailure {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly message: string
  ) {}
}

const matchesSelector = (labels: Readonly<Record<string, string>>, selector: string): boolean =>
  selector
    .split(",")
    .map((term) => term.trim())
    .filter((term) => term.length > 0)
    .every((term) => {
      const unequal = term.match(/^([^!=]+)!=(.*)$/)
      if (unequal) return labels[unequal[1]!.trim()] !== unequal[2]!.trim()
      const equal = term.match(/^([^!=]+)==?(.*)$/)
      if (equal) return labels[equal[1]!.trim()] === equal[2]!.trim()
      if (term.startsWith("!")) return !(term.slice(1) in labels)
      return term in labels
    })

const fingerprintOf = (publicKey: string): string | undefined => {
  const parts = publicKey.trim().split(/\s+/)
  if (parts.length < 2 || !/^[A-Za-z0-9+/]+={0,3}$/.test(parts[1]!)) return undefined
  return createHash("md5").update(Buffer.from(parts[1]!, "base64")).digest("hex").match(/../g)!.join(":")
}

const validName = (name: unknown): name is string =>
  typeof name === "string" && /^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$/.test(name)

export const make = (options: FakeHetznerOptions = {}): Effect.Effect<FakeHetznerApi, never, Scope.Scope> =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    const token = options.token ?? "fake-token"
    const limit = options.rateLimit?.limit ?? 3600
    const refillPerMs = (options.rateLimit?.refillPerSecond ?? 1) / 1000
    const actionPolls = options.actionPolls ?? 1
    const actionDurationMs = Duration.toMillis(Duration.decode(options.actionDuration ?? Duration.seconds(3)))

    const store: Record<Collection, Map<number, Record<string, unknown>>> = {
      servers: new Map(),
      networks: new Map(),
      firewalls: new Map(),
      ssh_keys: new Map(),
      load_balancers: new Map()
    }
    const actions = new Map<number, PendingAction>()
    const firewallInUse = new Map<number, number>()
    let nextId = 1
    let nextPublic = 1
    const nextPrivate = new Map<number, number>()
    let log: Array<RecordedRequest> = []
    let violations = 0
    let faults: Array<Fault> = []
    const crashes = new Map<number, Deferred.Deferred<void>>()
    let requestCount = 0
    let tokens = limit
    let refilledAt = now()

    const publicIp = () => {
      const n = nextPublic++
      return `203.0.${113 + Math.floor(n / 250)}.${(n % 250) + 1}`
    }
    const privateIp = (networkId: number) => {
      const n = nextPrivate.get(networkId) ?? 2
      nextPrivate.set(networkId, n + 1)
      return `10.0.1.${n}`
    }
    const timestamp = () => new Date(now()).toISOString()

    const startAction = (command: string, resources: Array<{ id: number; type: string }>, onSuccess: () => void = () => {}) => {
      const id = nextId++
      const action: PendingAction = {
        wire: { id, command, status: "running", progress: 0, error: null, started: timestamp(), finished: null, resources },
        startedAt: now(),
        polls: 0,
        onSuccess
      }
      actions.set(id, action)
      return action.wire
    }

    const settle = () => {
      for (const action of actions.values()) {
        if (action.wire.status !== "running") continue
        if (action.polls >= actionPolls || now() - action.startedAt >= actionDurationMs) {
          action.wire.finished = timestamp()
          if (options.failingActions?.includes(action.wire.command)) {
            action.wire.status = "error"
            action.wire.error = { code: "action_failed", message: `${action.wire.command} failed` }
            continue
          }
          action.wire.status = "success"
          action.wire.progress = 100
          action.onSuccess()
        }
      }
    }

    const refill = () => {
      const at = now()
      tokens = Math.min(limit, tokens + (at - refilledAt) * refillPerMs)
      refilledAt = at
    }

    const rateHeaders = (): Record<string, string> => ({
      "RateLimit-Limit": String(limit),
      "RateLimit-Remaining": String(Math.max(0, Math.floor(tokens))),
      "RateLimit-Reset": String(Math.ceil((now() + (limit - Math.max(0, tokens)) / refillPerMs) / 1000))
    })

    const byName = (kind: Collection, name: string) => [...store[kind].values()].find((item) => item.name === name)

    // -----------------------------------------------------------------------------------------
    // Creates

    const requireString = (body: Record<string, unknown>, field: string): string => {
      const value = body[field]
      if (typeof value !== "string" || value.length === 0) throw new ApiFailure(400, "invalid_input", `invalid input in field '${field}'`)
      return value
    }

    const checkNameAndLabels = (kind: Collection, body: Record<string, unknown>) => {
      if (!validName(body.name)) throw new ApiFailure(400, "invalid_input", "invalid input in field 'name'")
      if (byName(kind, body.name) !== undefined) throw new ApiFailure(409, "uniqueness_error", `${itemKey[kind]} name is already used`)
      const labels = body.labels ?? {}
      // Kubernetes-style labels: an optional DNS prefix and a name of at most 63 characters, short plain values.
      const validKey = (key: string) => /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/.test(key)
      const validValue = (value: unknown) => typeof value === "string" && /^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/.test(value)
      if (
        typeof labels !== "object" ||
        labels === null ||
        Object.entries(labels).some(([key, value]) => !validKey(key) || !validValue(value))
      ) {
        throw new ApiFailure(400, "invalid_input", "invalid input in field 'labels'")
      }
      return labels as Record<string, string>
    }

    const create = (kind: Collection, body: Record<string, unknown>): Record<string, unknown> => {
      const labels = checkNameAndLabels(kind, body)
      const id = nextId++
      const name = body.name as string
      switch (kind) {
        case "networks": {
          const ipRange = requireString(body, "ip_range")
          const subnets = Array.isArray(body.subnets) ? (body.subnets as Array<Record<string, unknown>>) : []
          const network = {
            id,
            name,
            labels,
            ip_range: ipRange,
            subnets: subnets.map((subnet) => ({ ...subnet, gateway: "10.0.0.1" })),
            servers: [],
            load_balancers: [],
            routes: [],
            created: timestamp()
          }
          store.networks.set(id, network)
          return { network }
        }
        case "firewalls": {
          const applyTo = Array.isArray(body.apply_to) ? (body.apply_to as Array<Record<string, unknown>>) : []
          const firewall = {
            id,
            name,
            labels,
            rules: body.rules ?? [],
            applied_to: [] as Array<Record<string, unknown>>,
            created: timestamp()
          }
          store.firewalls.set(id, firewall)
          const applied = applyTo.map((target) =>
            startAction("apply_firewall", [{ id, type: "firewall" }], () => {
              firewall.applied_to.push(target)
            })
          )
          return { firewall, actions: applied }
        }
        case "ssh_keys": {
          const publicKey = requireString(body, "public_key")
          const fingerprint = fingerprintOf(publicKey)
          if (fingerprint === undefined) throw new ApiFailure(400, "invalid_input", "invalid input in field 'public_key'")
          if ([...store.ssh_keys.values()].some((key) => key.fingerprint === fingerprint)) {
            throw new ApiFailure(409, "uniqueness_error", "SSH key with the same fingerprint already exists")
          }
          const key = { id, name, labels, public_key: publicKey, fingerprint, created: timestamp() }
          store.ssh_keys.set(id, key)
          return { ssh_key: key }
        }
        case "servers": {
          requireString(body, "server_type")
          const location = requireString(body, "location")
          requireString(body, "image")
          const userData = typeof body.user_data === "string" ? body.user_data : ""
          if (Buffer.byteLength(userData, "utf8") > 32 * 1024) throw new ApiFailure(400, "invalid_input", "user_data is too long")
          const sshKeys = Array.isArray(body.ssh_keys) ? body.ssh_keys : []
          for (const key of sshKeys) {
            const found = typeof key === "number" ? store.ssh_keys.get(key) : byName("ssh_keys", String(key))
            if (found === undefined) throw new ApiFailure(400, "invalid_input", `ssh key ${String(key)} not found`)
          }
          const networks = Array.isArray(body.networks) ? (body.networks as Array<number>) : []
          for (const networkId of networks) {
            if (!store.networks.has(networkId)) throw new ApiFailure(400, "invalid_input", `network ${networkId} not found`)
          }
          const server = {
            id,
            name,
            labels,
            status: "initializing",
            created: timestamp(),
            server_type: { name: body.server_type },
            datacenter: { location: { name: location } },
            image: { name: body.image },
            public_net: { ipv4: { ip: publicIp() }, ipv6: { ip: `2001:db8:${id.toString(16)}::/64` } },
            private_net: networks.map((networkId) => ({ network: networkId, ip: privateIp(networkId) }))
          }
          store.servers.set(id, server)
          for (const networkId of networks) (store.networks.get(networkId)!.servers as Array<number>).push(id)
          const resources = [{ id, type: "server" }]
          const action = startAction("create_server", resources, () => {
            server.status = "running"
          })
          return { server, action, next_actions: [startAction("start_server", resources)], root_password: null }
        }
        case "load_balancers": {
          requireString(body, "load_balancer_type")
          requireString(body, "location")
          const networkId = typeof body.network === "number" ? body.network : undefined
          if (networkId !== undefined && !store.networks.has(networkId))
            throw new ApiFailure(400, "invalid_input", `network ${networkId} not found`)
          const loadBalancer = {
            id,
            name,
            labels,
            created: timestamp(),
            public_net: { enabled: true, ipv4: { ip: publicIp() }, ipv6: { ip: null } },
            private_net: networkId === undefined ? [] : [{ network: networkId, ip: privateIp(networkId) }],
            services: body.services ?? [],
            targets: body.targets ?? [],
            algorithm: body.algorithm ?? { type: "round_robin" }
          }
          store.load_balancers.set(id, loadBalancer)
          if (networkId !== undefined) (store.networks.get(networkId)!.load_balancers as Array<number>).push(id)
          return { load_balancer: loadBalancer, action: startAction("create_load_balancer", [{ id, type: "load_balancer" }]) }
        }
      }
    }

    // -----------------------------------------------------------------------------------------
    // Deletes and actions

    const detachFromNetworks = (kind: "servers" | "load_balancers", id: number) => {
      for (const network of store.networks.values()) {
        const list = network[kind] as Array<number>
        const at = list.indexOf(id)
        if (at >= 0) list.splice(at, 1)
      }
    }

    const remove = (kind: Collection, id: number): { status: number; body?: unknown } => {
      const item = store[kind].get(id)
      if (item === undefined) throw new ApiFailure(404, "not_found", `${itemKey[kind]} with ID '${id}' not found`)
      switch (kind) {
        case "servers": {
          const pending = [...actions.values()].find(
            (action) => action.wire.command === "delete_server" && action.wire.resources[0]?.id === id
          )
          if (pending !== undefined) return { status: 200, body: { action: pending.wire } }
          item.status = "deleting"
          // The server (and its network attachment) goes away only when the action finishes.
          const action = startAction("delete_server", [{ id, type: "server" }], () => {
            store.servers.delete(id)
            detachFromNetworks("servers", id)
          })
          return { status: 200, body: { action } }
        }
        case "firewalls": {
          const inUseLeft = firewallInUse.get(id) ?? options.firewallInUseTimes ?? 0
          if ((item.applied_to as Array<unknown>).length > 0 || inUseLeft > 0) {
            firewallInUse.set(id, Math.max(0, inUseLeft - 1))
            throw new ApiFailure(422, "resource_in_use", "firewall is still applied to resources")
          }
          store.firewalls.delete(id)
          return { status: 204 }
        }
        case "networks": {
          if ((item.servers as Array<number>).length > 0 || (item.load_balancers as Array<number>).length > 0) {
            throw new ApiFailure(422, "resource_in_use", "network is still attached to servers or load balancers")
          }
          store.networks.delete(id)
          return { status: 204 }
        }
        case "load_balancers": {
          store.load_balancers.delete(id)
          detachFromNetworks("load_balancers", id)
          return { status: 204 }
        }
        case "ssh_keys": {
          store.ssh_keys.delete(id)
          return { status: 204 }
        }
      }
    }

    const runAction = (kind: Collection, id: number, name: string, body: Record<string, unknown>): unknown => {
      const item = store[kind].get(id)
      if (item === undefined) throw new ApiFailure(404, "not_found", `${itemKey[kind]} with ID '${id}' not found`)
      const resources = [{ id, type: itemKey[kind] }]
      if (kind === "firewalls" && name === "remove_from_resources") {
        const removeFrom = Array.isArray(body.remove_from) ? (body.remove_from as Array<Record<string, unknown>>) : []
        const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)
        // Still applied until the action finishes, as on the real API.
        return {
          actions: removeFrom.map((target) =>
            startAction("remove_firewall", resources, () => {
              item.applied_to = (item.applied_to as Array<Record<string, unknown>>).filter(
                (applied) =>
                  !(
                    applied.type === target.type &&
                    same(applied.server, target.server) &&
                    same(applied.label_selector, target.label_selector)
                  )
              )
            })
          )
        }
      }
      if (kind === "networks" && name === "add_subnet") {
        return {
          action: startAction("add_subnet", resources, () => {
            ;(item.subnets as Array<unknown>).push({ ...body, gateway: "10.0.0.1" })
          })
        }
      }
      throw new ApiFailure(404, "not_found", `action ${name} not found`)
    }

    const list = (kind: Collection, query: Record<string, string>) => {
      let items = [...store[kind].values()].sort((a, b) => (a.id as number) - (b.id as number))
      if (query.label_selector !== undefined)
        items = items.filter((item) => matchesSelector(item.labels as Record<string, string>, query.label_selector!))
      if (query.name !== undefined) items = items.filter((item) => item.name === query.name)
      if (query.fingerprint !== undefined) items = items.filter((item) => item.fingerprint === query.fingerprint)
      const perPage = Math.min(50, Math.max(1, Number(query.per_page ?? 25) || 25))
      const page = Math.max(1, Number(query.page ?? 1) || 1)
      const lastPage = Math.max(1, Math.ceil(items.length / perPage))
      return {
        [kind]: items.slice((page - 1) * perPage, page * perPage),
        meta: {
          pagination: {
            page,
            per_page: perPage,
            previous_page: page > 1 ? page - 1 : null,
            next_page: page < lastPage ? page + 1 : null,
            last_page: lastPage,
            total_entries: items.length
          }
        }
      }
    }

    // -----------------------------------------------------------------------------------------
    // HTTP

    const route = (
      method: string,
      path: string,
      query: Record<string, string>,
      body: Record<string, unknown>
    ): { status: number; body?: unknown } => {
      const segments = path.split("/").filter((segment) => segment.length > 0)
      if (segments[0] === "actions" && segments.length === 2 && method === "GET") {
        const action = actions.get(Number(segments[1]))
        if (action === undefined) throw new ApiFailure(404, "not_found", "action not found")
        action.polls += 1
        settle()
        return { status: 200, body: { action: action.wire } }
      }
      const kind = segments[0] as Collection
      if (!collections.includes(kind)) throw new ApiFailure(404, "not_found", `no route ${method} ${path}`)
      if (segments.length === 1 && method === "GET") return { status: 200, body: list(kind, query) }
      if (segments.length === 1 && method === "POST") return { status: 201, body: create(kind, body) }
      const id = Number(segments[1])
      if (segments.length === 2 && method === "GET") {
        const item = store[kind].get(id)
        if (item === undefined) throw new ApiFailure(404, "not_found", `${itemKey[kind]} with ID '${id}' not found`)
        return { status: 200, body: { [itemKey[kind]]: item } }
      }
      if (segments.length === 2 && method === "DELETE") return remove(kind, id)
      if (segments.length === 4 && segments[2] === "actions" && method === "POST")
        return { status: 201, body: runAction(kind, id, segments[3]!, body) }
      throw new ApiFailure(404, "not_found", `no route ${method} ${path}`)
    }

    const takeFault = (number: number, method: string, path: string): Fault | undefined => {
      const at = faults.findIndex((fault) =>
        fault.call !== undefined
          ? fault.call === number
          : (fault.method === undefined || fault.method === method) && (fault.path === undefined || path.startsWith(fault.path))
      )
      if (at < 0) return undefined
      return faults.splice(at, 1)[0]
    }

    type Answer = { readonly status: number; readonly headers: Record<string, string>; readonly body?: string } | "held"

    /** One exchange, whatever carried it (a socket, or the in-process client). */
    const handle = (method: string, url: URL, authorization: string, raw: string): Answer => {
      const path = url.pathname.replace(/^\/v1/, "")
      const query = Object.fromEntries(url.searchParams.entries())
      const number = ++requestCount
      const at = now()
      let parsed: unknown = undefined
      const send = (status: number, payload?: unknown): Answer => {
        log.push({ number, method, path, query, status, at, ...(parsed === undefined ? {} : { body: parsed }) })
        const crash = crashes.get(number)
        if (crash !== undefined) {
          // The effect happened; the answer never leaves (the client is gone).
          crashes.delete(number)
          Effect.runSync(Deferred.succeed(crash, undefined))
          return "held"
        }
        const headers: Record<string, string> = { ...rateHeaders() }
        if (payload === undefined) return { status, headers }
        headers["Content-Type"] = "application/json"
        return { status, headers, body: JSON.stringify(payload) }
      }
      const fail = (status: number, code: string, message: string) => send(status, { error: { code, message, details: {} } })

      refill()
      settle()
      const presented = authorization.startsWith("Bearer ") ? authorization.slice(7) : ""
      if (presented !== token && (options.readOnlyToken === undefined || presented !== options.readOnlyToken)) {
        return fail(401, "unauthorized", "unable to authenticate")
      }
      if (tokens < 1) {
        violations += 1
        return fail(429, "rate_limit_exceeded", "limit of requests per hour reached")
      }
      tokens -= 1
      const fault = takeFault(number, method, path)
      if (fault !== undefined) {
        if (fault.status === 429) tokens = 0
        return fail(fault.status, fault.code, fault.message ?? `injected ${fault.code}`)
      }
      if (method !== "GET" && presented !== token) return fail(403, "forbidden", "insufficient permissions for this request")
      try {
        parsed = raw.length === 0 ? undefined : JSON.parse(raw)
      } catch {
        return fail(400, "json_error", "invalid JSON")
      }
      try {
        const result = route(method, path, query, (parsed ?? {}) as Record<string, unknown>)
        return send(result.status, result.body)
      } catch (error) {
        if (error instanceof ApiFailure) return fail(error.status, error.code, error.message)
        return fail(500, "server_error", String(error))
      }
    }

    const respond = (response: ServerResponse, answer: Answer) => {
      if (answer === "held") return
      response.writeHead(answer.status, answer.headers).end(answer.body)
    }

    const decoder = new TextDecoder()
    // Same handler without sockets: for loops that replay a provisioning hundreds of times.
    const httpClient = HttpClient.make((request, url) => {
      const raw = request.body._tag === "Uint8Array" ? decoder.decode(request.body.body) : ""
      const answer = handle(request.method, url, request.headers["authorization"] ?? "", raw)
      if (answer === "held") return Effect.never
      return Effect.succeed(
        HttpClientResponse.fromWeb(request, new Response(answer.body ?? null, { status: answer.status, headers: answer.headers }))
      )
    })

    const server = createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        const url = new URL(request.url ?? "/", "http://fake")
        respond(response, handle(request.method ?? "GET", url, request.headers.authorization ?? "", Buffer.concat(chunks).toString("utf8")))
      })
    })
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.void))
      }),
      () =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const port = (server.address() as AddressInfo).port

    const seed: FakeHetznerApi["seed"] = (kind, fields) =>
      Effect.sync(() => {
        const id = nextId++
        const base: Record<Collection, Record<string, unknown>> = {
          servers: { status: "running", public_net: { ipv4: { ip: publicIp() } }, private_net: [] },
          networks: { ip_range: "10.0.0.0/16", subnets: [], servers: [], load_balancers: [] },
          firewalls: { rules: [], applied_to: [] },
          ssh_keys: { public_key: "", fingerprint: `seed:${id}` },
          load_balancers: { public_net: { ipv4: { ip: publicIp() } }, private_net: [], services: [], targets: [] }
        }
        store[kind].set(id, { ...base[kind], labels: {}, ...fields, id })
        return id
      })

    return {
      endpoint: `http://127.0.0.1:${port}/v1`,
      token,
      httpClient,
      requests: Effect.sync(() => [...log]),
      resources: Effect.sync(() =>
        collections.flatMap((kind) =>
          [...store[kind].values()].map((item): FakeResource => ({
            kind,
            id: item.id as number,
            name: item.name as string,
            labels: { ...(item.labels as Record<string, string>) },
            body: item
          }))
        )
      ),
      violations: Effect.sync(() => violations),
      seed,
      inject: (...more) =>
        Effect.sync(() => {
          faults.push(...more)
        }),
      crashAt: (call) =>
        Effect.gen(function* () {
          const deferred = yield* Deferred.make<void>()
          crashes.set(call, deferred)
          return deferred
        }),
      resetLog: Effect.sync(() => {
        log = []
        violations = 0
        faults = []
        crashes.clear()
      })
    }
  })

/** Requests that are action polls (`GET /actions/{id}`), which the call budget of a step excludes. */
export const isActionPoll = (request: RecordedRequest): boolean => request.method === "GET" && request.path.startsWith("/actions/")
