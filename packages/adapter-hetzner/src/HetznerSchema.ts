/** Wire shapes of the Hetzner Cloud API: only the fields this adapter reads or writes. */
import { Schema } from "effect"

export const Labels = Schema.Record({ key: Schema.String, value: Schema.String })
export type Labels = typeof Labels.Type

const Ipv4 = Schema.Struct({ ip: Schema.String })

export const ActionError = Schema.Struct({ code: Schema.String, message: Schema.String })

export const Action = Schema.Struct({
  id: Schema.Number,
  command: Schema.String,
  status: Schema.Literal("running", "success", "error"),
  progress: Schema.optional(Schema.Number),
  error: Schema.optional(Schema.NullOr(ActionError))
})
export type Action = typeof Action.Type

export const Server = Schema.Struct({
  id: Schema.Number,
  name: Schema.String,
  labels: Labels,
  status: Schema.String,
  public_net: Schema.Struct({ ipv4: Schema.optional(Schema.NullOr(Ipv4)) }),
  private_net: Schema.Array(Schema.Struct({ network: Schema.Number, ip: Schema.String }))
})
export type Server = typeof Server.Type

export const Subnet = Schema.Struct({
  type: Schema.String,
  ip_range: Schema.String,
  network_zone: Schema.String
})

export const Network = Schema.Struct({
  id: Schema.Number,
  name: Schema.String,
  labels: Labels,
  ip_range: Schema.String,
  subnets: Schema.Array(Subnet),
  servers: Schema.Array(Schema.Number),
  load_balancers: Schema.optionalWith(Schema.Array(Schema.Number), { default: () => [] })
})
export type Network = typeof Network.Type

export const FirewallRule = Schema.Struct({
  direction: Schema.Literal("in", "out"),
  protocol: Schema.Literal("tcp", "udp", "icmp", "esp", "gre"),
  port: Schema.optional(Schema.NullOr(Schema.String)),
  source_ips: Schema.Array(Schema.String),
  description: Schema.optional(Schema.NullOr(Schema.String))
})
export type FirewallRule = typeof FirewallRule.Type

export const FirewallResource = Schema.Struct({
  type: Schema.Literal("server", "label_selector"),
  server: Schema.optional(Schema.Struct({ id: Schema.Number })),
  label_selector: Schema.optional(Schema.Struct({ selector: Schema.String }))
})
export type FirewallResource = typeof FirewallResource.Type

export const Firewall = Schema.Struct({
  id: Schema.Number,
  name: Schema.String,
  labels: Labels,
  rules: Schema.Array(FirewallRule),
  applied_to: Schema.Array(FirewallResource)
})
export type Firewall = typeof Firewall.Type

export const SshKey = Schema.Struct({
  id: Schema.Number,
  name: Schema.String,
  labels: Labels,
  public_key: Schema.String,
  fingerprint: Schema.String
})
export type SshKey = typeof SshKey.Type

export const LoadBalancerService = Schema.Struct({
  protocol: Schema.Literal("tcp", "http", "https"),
  listen_port: Schema.Number,
  destination_port: Schema.Number,
  proxyprotocol: Schema.Boolean,
  health_check: Schema.optional(
    Schema.Struct({
      protocol: Schema.Literal("tcp", "http"),
      port: Schema.Number,
      interval: Schema.Number,
      timeout: Schema.Number,
      retries: Schema.Number
    })
  )
})
export type LoadBalancerService = typeof LoadBalancerService.Type

export const LoadBalancerTarget = Schema.Struct({
  type: Schema.Literal("server", "label_selector", "ip"),
  server: Schema.optional(Schema.Struct({ id: Schema.Number })),
  label_selector: Schema.optional(Schema.Struct({ selector: Schema.String })),
  use_private_ip: Schema.optional(Schema.Boolean)
})
export type LoadBalancerTarget = typeof LoadBalancerTarget.Type

export const LoadBalancer = Schema.Struct({
  id: Schema.Number,
  name: Schema.String,
  labels: Labels,
  public_net: Schema.Struct({ ipv4: Schema.optional(Schema.NullOr(Schema.Struct({ ip: Schema.NullOr(Schema.String) }))) }),
  private_net: Schema.Array(Schema.Struct({ network: Schema.Number, ip: Schema.String })),
  services: Schema.Array(LoadBalancerService),
  targets: Schema.Array(LoadBalancerTarget)
})
export type LoadBalancer = typeof LoadBalancer.Type

export const Pagination = Schema.Struct({
  page: Schema.Number,
  per_page: Schema.Number,
  next_page: Schema.NullOr(Schema.Number),
  last_page: Schema.optional(Schema.NullOr(Schema.Number)),
  total_entries: Schema.optional(Schema.NullOr(Schema.Number))
})

export const Meta = Schema.Struct({ pagination: Pagination })

/** `{"error":{"code","message"}}`, the envelope of every failed call. */
export const ErrorEnvelope = Schema.Struct({
  error: Schema.Struct({ code: Schema.String, message: Schema.String })
})

// ---------------------------------------------------------------------------------------------
// Kinds: the list key, the single-item key and the item schema of each resource collection

export interface Kind<A, I> {
  /** Path segment and list key (`servers`). */
  readonly collection: string
  /** Key of one item in a create/get response (`server`). */
  readonly item: string
  readonly schema: Schema.Schema<A, I>
}

const kind = <A, I>(collection: string, item: string, schema: Schema.Schema<A, I>): Kind<A, I> => ({ collection, item, schema })

export const kinds = {
  servers: kind("servers", "server", Server),
  networks: kind("networks", "network", Network),
  firewalls: kind("firewalls", "firewall", Firewall),
  sshKeys: kind("ssh_keys", "ssh_key", SshKey),
  loadBalancers: kind("load_balancers", "load_balancer", LoadBalancer)
} as const

export const ActionResponse = Schema.Struct({ action: Action })
export const ActionsResponse = Schema.Struct({ actions: Schema.Array(Action) })
/** DELETE answers 204, or 200 with the action that finishes the deletion (servers). */
export const DeleteResponse = Schema.Struct({ action: Schema.optional(Schema.NullOr(Action)) })

/** The part of a list answer that is the same for every kind. */
export const ListMeta = Schema.Struct({ meta: Meta })

/** The actions a create or action call returns; whichever of the three keys the kind uses. */
export const ActionsCarrier = Schema.Struct({
  action: Schema.optional(Schema.NullOr(Action)),
  actions: Schema.optional(Schema.Array(Action)),
  next_actions: Schema.optional(Schema.Array(Action))
})

/** Any JSON object, before the one key that holds the kind's items is picked out and decoded. */
export const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })
