/** DNS records a Sovereign needs, zone resolution and the pure plan against what exists (SPEC 2.7). */
import { Option, Schema } from "effect"

/** One rrset. Names are canonical: lowercase, with the trailing dot. */
export const RecordSet = Schema.Struct({
  name: Schema.String,
  type: Schema.String,
  ttl: Schema.Number,
  records: Schema.Array(Schema.String),
  /** The deployment id that owns the rrset; absent for records nobody (or someone else) claimed. */
  owner: Schema.optional(Schema.String)
})
export type RecordSet = typeof RecordSet.Type

export const DnsPolicy = Schema.Literal("sync", "upsert-only", "create-only")
export type DnsPolicy = typeof DnsPolicy.Type

/** What one zone needs changed. Applied only when non-empty, in one atomic request, deletes first. */
export const DnsChanges = Schema.Struct({
  create: Schema.Array(RecordSet),
  update: Schema.Array(RecordSet),
  delete: Schema.Array(RecordSet)
})
export type DnsChanges = typeof DnsChanges.Type

/** Something the plan refused to touch, reported as a warning event. */
export const DnsWarning = Schema.Struct({
  name: Schema.String,
  type: Schema.String,
  reason: Schema.Literal("owned-by-other", "conflicting-record", "wildcard-covers-name", "zone-missing"),
  message: Schema.String
})
export type DnsWarning = typeof DnsWarning.Type

// ---------------------------------------------------------------------------------------------
// Desired records

/** Every hostname the platform serves under its FQDN (SPEC 2.7); the apex comes on top. */
export const defaultSubdomains: ReadonlyArray<string> = [
  "console",
  "auth",
  "gitea",
  "harbor",
  "registry",
  "bao",
  "grafana",
  "hubble",
  "pdns",
  "openova-flow",
  "marketplace",
  "api",
  "guacamole",
  "newapi",
  "pdns-admin",
  "sandbox",
  "mcp",
  "chargeback"
]

/** Served by the console gateway, so they follow the console load balancer when there is one (#4069). */
export const consoleSubdomains: ReadonlyArray<string> = ["console", "api", "marketplace"]

export const defaultTtl = 60

/** A configured subdomain list: comma or whitespace separated, lowercased, duplicates dropped. */
export const parseSubdomains = (text: string): ReadonlyArray<string> => [
  ...new Set(
    text
      .split(/[\s,]+/)
      .map((label) => label.trim().toLowerCase())
      .filter((label) => label !== "")
  )
]

const subdomainPattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/

/**
 * A name that may go under the FQDN: dot-separated RFC 1123 labels (lowercase letters, digits and '-',
 * neither first nor last, at most 63 characters each), 253 characters at most.
 */
export const isSubdomain = (name: string): boolean => name.length <= 253 && subdomainPattern.test(name)

/** Lowercase with exactly one trailing dot: the only spelling PowerDNS accepts and the key plans compare on. */
export const canonical = (name: string): string => {
  const lower = name.trim().toLowerCase()
  return lower.endsWith(".") ? lower : `${lower}.`
}

export interface DesiredRecordsInput {
  readonly deploymentId: string
  readonly fqdn: string
  /** Replaces the default list; the apex is always included. */
  readonly subdomains?: ReadonlyArray<string> | undefined
  readonly primaryLoadBalancerIP: string
  readonly consoleLoadBalancerIP?: string | undefined
}

/** The apex and one A rrset per subdomain, TTL 60, owned by the deployment; duplicates in the list collapse. */
export const desiredRecords = (input: DesiredRecordsInput): ReadonlyArray<RecordSet> => {
  const apex = canonical(input.fqdn)
  const consoleIP =
    input.consoleLoadBalancerIP !== undefined && input.consoleLoadBalancerIP !== ""
      ? input.consoleLoadBalancerIP
      : input.primaryLoadBalancerIP
  const labels = [...new Set((input.subdomains ?? defaultSubdomains).map((label) => label.trim().toLowerCase()))].filter(
    (label) => label !== "" && label !== "@"
  )
  const record = (name: string, ip: string): RecordSet => ({
    name,
    type: "A",
    ttl: defaultTtl,
    records: [ip],
    owner: input.deploymentId
  })
  return [
    record(apex, input.primaryLoadBalancerIP),
    ...labels.map((label) => record(`${label}.${apex}`, consoleSubdomains.includes(label) ? consoleIP : input.primaryLoadBalancerIP))
  ]
}

// ---------------------------------------------------------------------------------------------
// Zones

/** True when `name` equals `zone` or lies below it on a label boundary (`t1.x.` is under `x.`, `at1.x.` is not under `t1.x.`). */
export const isWithin = (name: string, zone: string): boolean => {
  const n = canonical(name)
  const z = canonical(zone)
  return n === z || z === "." || n.endsWith(`.${z}`)
}

/** The name without its first label (`console.t1.x.` → `t1.x.`). */
const parentName = (name: string): string => {
  const n = canonical(name)
  const dot = n.indexOf(".")
  return dot === n.length - 1 ? "." : n.slice(dot + 1)
}

/**
 * The zone a name is written to: the longest existing zone that is a suffix of the name (on a
 * label boundary). With parent domains given, only zones at or below one of them qualify, except
 * that a parent equal to the FQDN itself whose zone does not exist falls back to the FQDN minus its
 * first label (the bring-your-own-domain case, t126). Without `fqdn`, every missing parent falls back.
 */
export const resolveZone = (
  name: string,
  zones: ReadonlyArray<string>,
  parentDomains: ReadonlyArray<string> = [],
  fqdn?: string
): Option.Option<string> => {
  const existing = new Set(zones.map(canonical))
  const fallsBack = (parent: string) => !existing.has(parent) && (fqdn === undefined || parent === canonical(fqdn))
  const scopes = parentDomains.map(canonical).map((parent) => ({ parent, fallback: fallsBack(parent) ? parentName(parent) : undefined }))
  const allowed = (zone: string) =>
    scopes.length === 0 || scopes.some(({ parent, fallback }) => isWithin(zone, parent) || zone === fallback)
  const candidates = [...existing].filter((zone) => isWithin(name, zone) && allowed(zone))
  return candidates.length === 0
    ? Option.none()
    : Option.some(candidates.reduce((longest, zone) => (zone.length > longest.length ? zone : longest)))
}

// ---------------------------------------------------------------------------------------------
// Plan

export interface PlanResult {
  readonly changes: DnsChanges
  readonly warnings: ReadonlyArray<DnsWarning>
}

export const isEmpty = (changes: DnsChanges): boolean =>
  changes.create.length === 0 && changes.update.length === 0 && changes.delete.length === 0

const key = (name: string, type: string): string => `${canonical(name)} ${type.toUpperCase()}`

const sameContent = (a: RecordSet, b: RecordSet): boolean =>
  a.ttl === b.ttl &&
  a.records.length === b.records.length &&
  [...a.records].sort().every((content, index) => content === [...b.records].sort()[index])

const describe = (record: RecordSet): string =>
  `${record.name} ${record.type} ${record.records.join(",") || "(no content)"}${
    record.owner === undefined ? "" : ` owned by ${record.owner}`
  }`

/** Types that may not share a name with anything else, so our A record cannot be added beside them. */
const exclusiveTypes: ReadonlySet<string> = new Set(["CNAME", "DNAME", "ALIAS"])

/**
 * Types at one of our names that change what a client gets for it (another address, an alias, a
 * claim in TXT); SOA, NS, MX, CAA and the like coexist with an A record and are no conflict.
 */
const conflictingTypes: ReadonlySet<string> = new Set(["AAAA", "TXT", ...exclusiveTypes])

/**
 * Compares what a zone holds with what one deployment wants there. Records owned by someone else
 * are never changed or deleted under any policy; a conflicting record at one of our names and a
 * wildcard that answers for our names with other content become warnings naming them.
 */
export const plan = (
  current: ReadonlyArray<RecordSet>,
  desired: ReadonlyArray<RecordSet>,
  policy: DnsPolicy,
  owner: string
): PlanResult => {
  const byKey = new Map(current.map((record) => [key(record.name, record.type), record]))
  const byName = new Map<string, Array<RecordSet>>()
  for (const record of current) {
    const name = canonical(record.name)
    byName.set(name, [...(byName.get(name) ?? []), record])
  }
  const create: Array<RecordSet> = []
  const update: Array<RecordSet> = []
  const warnings: Array<DnsWarning> = []
  const wanted = new Set<string>()

  for (const want of desired) {
    const record: RecordSet = { ...want, name: canonical(want.name), type: want.type.toUpperCase(), owner }
    const wantedKey = key(record.name, record.type)
    if (wanted.has(wantedKey)) continue
    wanted.add(wantedKey)
    const others = (byName.get(record.name) ?? []).filter(
      (existing) => key(existing.name, existing.type) !== wantedKey && conflictingTypes.has(existing.type.toUpperCase())
    )
    for (const other of others) {
      if (other.owner === owner) continue
      warnings.push({
        name: record.name,
        type: other.type,
        reason: "conflicting-record",
        message: `${describe(other)} sits at ${record.name}, which this deployment publishes; left untouched`
      })
    }
    // Our own alias goes in the same batch under sync (deletes are sent first), so it blocks nothing.
    const blocked = others.some((other) => exclusiveTypes.has(other.type.toUpperCase()) && !(other.owner === owner && policy === "sync"))
    const existing = byKey.get(wantedKey)
    if (existing === undefined) {
      if (!blocked) create.push(record)
    } else if (existing.owner === owner) {
      if (policy !== "create-only" && !sameContent(existing, record)) update.push(record)
    } else if (existing.owner === undefined) {
      warnings.push({
        name: record.name,
        type: record.type,
        reason: "conflicting-record",
        message: `${describe(existing)} exists without an owner where this deployment publishes; left untouched`
      })
    } else {
      warnings.push({
        name: record.name,
        type: record.type,
        reason: "owned-by-other",
        message: `${describe(existing)}; this deployment does not touch records of another owner`
      })
    }
  }

  const desiredNames = [...new Set(desired.map((record) => canonical(record.name)))]
  const desiredContent = new Set(desired.flatMap((record) => record.records))
  for (const wildcard of current) {
    const name = canonical(wildcard.name)
    if (!name.startsWith("*.") || wildcard.owner === owner) continue
    const base = name.slice(2)
    const covered = desiredNames.filter((desiredName) => desiredName !== base && isWithin(desiredName, base))
    const pointsElsewhere = wildcard.type.toUpperCase() !== "A" || wildcard.records.some((content) => !desiredContent.has(content))
    if (covered.length > 0 && pointsElsewhere && ["A", "AAAA", "CNAME"].includes(wildcard.type.toUpperCase())) {
      warnings.push({
        name,
        type: wildcard.type,
        reason: "wildcard-covers-name",
        message: `${describe(wildcard)} answers for ${covered.length === 1 ? covered[0] : `${covered.length} names of this deployment`} and points elsewhere`
      })
    }
  }

  const remove = policy === "sync" ? current.filter((record) => record.owner === owner && !wanted.has(key(record.name, record.type))) : []
  return { changes: { create, update, delete: remove }, warnings }
}

/** Wipe: delete exactly the rrsets this deployment owns, nothing else. */
export const wipePlan = (current: ReadonlyArray<RecordSet>, owner: string): DnsChanges => ({
  create: [],
  update: [],
  delete: current.filter((record) => record.owner === owner)
})
