/** The deployment request (SPEC 2.1), its validation into a spec, and every derivation of SPEC 2.2. */
import { Either, ParseResult, Redacted, Schema } from "effect"
import { sha256 } from "./internal/sha256.js"

// ---------------------------------------------------------------------------------------------
// Wire request

const fqdnPattern = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/
const dnsLabelPattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

export const Fqdn = Schema.String.pipe(
  Schema.maxLength(253, { message: () => "must be at most 253 characters" }),
  Schema.pattern(fqdnPattern, {
    message: () => "must be a lowercase fully qualified domain name of at least 2 labels, such as t1.example.com"
  }),
  Schema.filter((name) => name.split(".").every((label) => label.length <= 63 && !label.endsWith("-")), {
    message: () => "every label must be at most 63 characters and must not end with '-'"
  })
)

export const DnsLabel = Schema.String.pipe(
  Schema.pattern(dnsLabelPattern, {
    message: () => "must be a DNS label: lowercase letters, digits and '-', at most 63 characters"
  })
)

const NonEmpty = (what: string) => Schema.String.pipe(Schema.minLength(1, { message: () => `${what} must not be empty` }))

export const Topology = Schema.Literal("single-region", "active-hotstandby", "active-active")
export type Topology = typeof Topology.Type

// Region keys are built from cloudRegion and end up in job ids, URLs (`?region=`) and file names,
// so a cloudRegion is held to DNS-label characters: no `/` and no `:` (SPEC §9.8).
const CloudRegion = Schema.String.pipe(
  Schema.pattern(dnsLabelPattern, {
    message: () => "must be a cloud region name: lowercase letters, digits and '-', at most 63 characters (e.g. fsn1)"
  })
)

export const RegionRequest = Schema.Struct({
  provider: NonEmpty("provider"),
  cloudRegion: CloudRegion,
  controlPlaneSize: NonEmpty("controlPlaneSize"),
  workerSize: Schema.optionalWith(NonEmpty("workerSize"), { exact: true }),
  workerCount: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 100, { message: () => "must be an integer from 0 to 100" })), {
    exact: true,
    default: () => 0
  }),
  clusterMeshName: Schema.optionalWith(DnsLabel, { exact: true })
})
export type RegionRequest = typeof RegionRequest.Type

export const ParentDomain = Schema.Struct({
  name: Fqdn,
  role: Schema.Literal("primary", "secondary")
}).annotations({ message: () => "must be an object with a name and a role (primary or secondary)" })
export type ParentDomain = typeof ParentDomain.Type

export const ClusterMeshRequest = Schema.Struct({
  name: Schema.optionalWith(DnsLabel, { exact: true }),
  id: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 254, { message: () => "must be an integer from 1 to 254" })), { exact: true })
}).annotations({ message: () => "must be an object with an optional name and id" })

/** Secrets by name (e.g. `hetznerToken`); each adapter checks that the ones it needs are present. */
export const Credentials = Schema.Record({ key: Schema.String, value: Schema.Redacted(Schema.String) })
export type Credentials = typeof Credentials.Type

const sshKeyPattern = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$/

export const DeploymentRequest = Schema.Struct({
  sovereignFQDN: Fqdn,
  orgName: NonEmpty("orgName").pipe(Schema.maxLength(200)),
  orgEmail: Schema.String.pipe(Schema.pattern(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, { message: () => "must be an e-mail address" })),
  topology: Schema.optionalWith(Topology, { exact: true }),
  regions: Schema.Array(RegionRequest)
    .annotations({ message: () => "must be an array of regions" })
    .pipe(
      Schema.minItems(1, { message: () => "at least one region is required" }),
      Schema.maxItems(8, { message: () => "at most 8 regions are supported" })
    ),
  parentDomains: Schema.optionalWith(Schema.Array(ParentDomain).annotations({ message: () => "must be an array of parent domains" }), {
    exact: true
  }),
  sshPublicKey: Schema.String.pipe(
    Schema.pattern(sshKeyPattern, { message: () => "must be an OpenSSH public key (ssh-ed25519, ssh-rsa or ecdsa)" })
  ),
  haControlPlane: Schema.optionalWith(Schema.Boolean, { exact: true, default: () => false }),
  clusterMesh: Schema.optionalWith(ClusterMeshRequest, { exact: true }),
  credentials: Schema.optionalWith(Credentials, { exact: true, default: () => ({}) })
})
/** The request as decoded (defaults applied, secrets `Redacted`). */
export type DeploymentRequest = typeof DeploymentRequest.Type

/** A request after validation: topology and parent domains decided, derivations known to be valid. */
export interface DeploymentSpec extends DeploymentRequest {
  readonly topology: Topology
  readonly parentDomains: ReadonlyArray<ParentDomain>
}

/** The spec without its secrets: what is stored in clear and returned by the API. */
export const PublicSpec = Schema.Struct({
  sovereignFQDN: Schema.String,
  orgName: Schema.String,
  orgEmail: Schema.String,
  topology: Topology,
  regions: Schema.Array(RegionRequest),
  parentDomains: Schema.Array(ParentDomain),
  sshPublicKey: Schema.String,
  haControlPlane: Schema.Boolean,
  clusterMesh: Schema.optionalWith(ClusterMeshRequest, { exact: true })
})
export type PublicSpec = typeof PublicSpec.Type

export const publicSpec = (spec: DeploymentSpec): PublicSpec => {
  const { credentials: _credentials, ...rest } = spec
  return rest
}

// ---------------------------------------------------------------------------------------------
// Validation

export const ValidationIssue = Schema.Struct({ path: Schema.String, message: Schema.String })
export type ValidationIssue = typeof ValidationIssue.Type

/** A request that cannot be accepted; `issues` name each field (`regions.1.cloudRegion`). */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  issues: Schema.Array(ValidationIssue)
}) {
  override get message() {
    return this.issues.map((issue) => `${issue.path || "(request)"}: ${issue.message}`).join("; ")
  }
}

const decodeRequest = Schema.decodeUnknownEither(DeploymentRequest, { errors: "all", onExcessProperty: "error" })

// Schema messages quote the offending value ("Expected string, actual …"); under `credentials`
// that value is a secret, so those issues name the field and say what is expected instead.
const messageOf = (issue: ParseResult.ArrayFormatterIssue): string => {
  if (issue._tag === "Unexpected") return "unknown field"
  if (issue.path[0] === "credentials") return "must be an object whose values are strings (the value is secret and not shown)"
  // Structs with defaults are transformations, whose own message annotation never shows.
  if (issue.message.startsWith("Expected Struct (Encoded side)")) {
    return issue.path.length === 0 ? "the request must be a JSON object" : "must be an object"
  }
  return issue.message
}

// A value outside a set of literals (topology, role) fails once per literal; those become one issue.
const issuesOf = (error: ParseResult.ParseError): ReadonlyArray<ValidationIssue> => {
  const issues: Array<ValidationIssue> = []
  const alternatives = new Map<string, { readonly index: number; readonly expected: Array<string> }>()
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    const path = issue.path.map(String).join(".")
    const message = messageOf(issue)
    const literal = /^Expected ("[^"]*"), actual (.*)$/s.exec(message)
    const seen = literal === null ? undefined : alternatives.get(path)
    if (literal !== null && seen !== undefined) {
      seen.expected.push(literal[1]!)
      issues[seen.index] = { path, message: `must be one of ${seen.expected.join(", ")}, not ${literal[2]}` }
      continue
    }
    if (literal !== null) alternatives.set(path, { index: issues.length, expected: [literal[1]!] })
    issues.push({ path, message })
  }
  return issues
}

// Unknown fields are reported, but a request whose only schema problem is a typo is still checked
// for its cross-field rules, so the caller sees every problem in one answer.
const decodeIgnoringUnknownFields = Schema.decodeUnknownEither(DeploymentRequest, { errors: "all", onExcessProperty: "ignore" })

/** Decodes and validates a wire request: every rule of SPEC 2.1 and 2.2 that needs no adapter. */
export const validate = (input: unknown): Either.Either<DeploymentSpec, InvalidRequest> =>
  Either.match(decodeRequest(input), {
    onLeft: (error) => {
      const lenient = decodeIgnoringUnknownFields(input)
      const ruleIssues = Either.isRight(lenient) ? checkRules(lenient.right).issues : []
      return Either.left(new InvalidRequest({ issues: [...issuesOf(error), ...ruleIssues] }))
    },
    onRight: (request) => {
      const { issues, spec } = checkRules(request)
      return issues.length > 0 ? Either.left(new InvalidRequest({ issues })) : Either.right(spec)
    }
  })

/** The cross-field rules of SPEC 2.1 and 2.2 over a decoded request. */
const checkRules = (request: DeploymentRequest): { readonly issues: ReadonlyArray<ValidationIssue>; readonly spec: DeploymentSpec } => {
  const issues: Array<ValidationIssue> = []
  const regionCount = request.regions.length
  const topology: Topology = request.topology ?? (regionCount >= 2 ? "active-hotstandby" : "single-region")
  if (topology === "single-region" && regionCount >= 2) {
    issues.push({
      path: "topology",
      message: `single-region allows exactly 1 region but ${regionCount} were given; use active-hotstandby or active-active, or remove regions`
    })
  }
  if (topology !== "single-region" && regionCount < 2) {
    issues.push({
      path: "topology",
      message: `${topology} needs at least 2 regions but 1 was given; add a region or use single-region`
    })
  }
  const keys = request.regions.map((_, index) => regionKey(request.regions, index))
  request.regions.forEach((region, index) => {
    if (region.workerCount > 0 && region.workerSize === undefined) {
      issues.push({ path: `regions.${index}.workerSize`, message: "is required when workerCount > 0" })
    }
    if (keys.indexOf(keys[index]!) !== index) {
      issues.push({
        path: `regions.${index}.cloudRegion`,
        message: `region key '${keys[index]}' is already the key of region ${keys.indexOf(keys[index]!)}; choose another region order`
      })
    }
  })
  const parentDomains = request.parentDomains ?? [{ name: parentOf(request.sovereignFQDN), role: "primary" as const }]
  if (request.parentDomains === undefined && parentOf(request.sovereignFQDN).split(".").length < 2) {
    issues.push({
      path: "parentDomains",
      message: `the default parent domain of ${request.sovereignFQDN} would be '${parentOf(request.sovereignFQDN)}', which has fewer than 2 labels; set parentDomains explicitly`
    })
  }
  if (parentDomains.filter((parent) => parent.role === "primary").length !== 1) {
    issues.push({
      path: "parentDomains",
      message: `exactly one parent domain must have the role primary, found ${parentDomains.filter((parent) => parent.role === "primary").length}`
    })
  }
  const seenParents = new Set<string>()
  parentDomains.forEach((parent, index) => {
    if (seenParents.has(parent.name)) {
      issues.push({ path: `parentDomains.${index}.name`, message: `duplicate parent domain ${parent.name}` })
    }
    seenParents.add(parent.name)
  })
  if (regionCount >= 2) {
    const names = request.regions.map((_, index) => clusterNameOf(request, index))
    names.forEach((name, index) => {
      const path = index === 0 ? "clusterMesh.name" : `regions.${index}.clusterMeshName`
      if (!dnsLabelPattern.test(name)) {
        issues.push({ path, message: `derived cluster name '${name}' is not a valid DNS label` })
      } else if (names.indexOf(name) !== index) {
        issues.push({
          path,
          message: `derived cluster name '${name}' is already used by region ${names.indexOf(name)}; set regions.${index}.clusterMeshName`
        })
      }
    })
    const explicitId = request.clusterMesh?.id
    if (explicitId !== undefined && explicitId + regionCount - 1 > maxClusterId) {
      issues.push({
        path: "clusterMesh.id",
        message: `with ${regionCount} regions the primary cluster id must be at most ${maxClusterId - regionCount + 1}`
      })
    }
  }
  return { issues, spec: { ...request, topology, parentDomains } }
}

// ---------------------------------------------------------------------------------------------
// Derivations (SPEC 2.2): the one implementation used by cloud-init, mesh, DNS and the flow graph

export const DeploymentId = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{16}$/, { message: () => "must be 16 lowercase hexadecimal characters" })
)
export type DeploymentId = typeof DeploymentId.Type

/** Formats 8 random bytes (from the `Ids` port) as a deployment id. */
export const deploymentIdFromBytes = (bytes: Uint8Array): DeploymentId =>
  Array.from(bytes.subarray(0, 8), (byte) => byte.toString(16).padStart(2, "0")).join("")

export const firstLabel = (fqdn: string): string => fqdn.split(".")[0] ?? fqdn
export const parentOf = (fqdn: string): string => fqdn.split(".").slice(1).join(".")

/** The primary region's key is its cloudRegion; a secondary's is `<cloudRegion>-<index>`. */
export const regionKey = (regions: ReadonlyArray<{ readonly cloudRegion: string }>, index: number): string =>
  index === 0 ? regions[0]!.cloudRegion : `${regions[index]!.cloudRegion}-${index}`

/** `me-east-215-b` → `me-east-b`: digit runs removed, `--` collapsed, `-` trimmed. */
export const cloudRegionSlug = (cloudRegion: string): string =>
  cloudRegion
    .replace(/[0-9]+/g, "")
    .replace(/-{2,}/g, "-")
    .replace(/^-+|-+$/g, "")

const clusterNameOf = (request: Pick<DeploymentRequest, "sovereignFQDN" | "regions" | "clusterMesh">, index: number): string => {
  const label = firstLabel(request.sovereignFQDN)
  if (index === 0) return request.clusterMesh?.name ?? `${label}-mesh`
  const region = request.regions[index]!
  return region.clusterMeshName ?? `${label}-${cloudRegionSlug(region.cloudRegion)}`
}

const maxClusterId = 254

/** The primary's cluster id: explicit, else sha256(deploymentId)[0..4] as big-endian uint32 mod M + 1. */
export const primaryClusterId = (request: Pick<DeploymentRequest, "regions" | "clusterMesh">, deploymentId: DeploymentId): number => {
  if (request.clusterMesh?.id !== undefined) return request.clusterMesh.id
  const digest = sha256(new TextEncoder().encode(deploymentId))
  const word = new DataView(digest.buffer).getUint32(0, false)
  const modulus = Math.min(252, 255 - request.regions.length)
  return (word % modulus) + 1
}

/** Everything derived for one region; the one source of names, ids and CIDRs. */
export interface Region {
  readonly index: number
  readonly key: string
  readonly primary: boolean
  readonly provider: string
  readonly cloudRegion: string
  readonly controlPlaneSize: string
  readonly workerSize: string | undefined
  readonly workerCount: number
  /** Cilium cluster name (mesh name for ≥ 2 regions; the primary derivation otherwise). */
  readonly clusterName: string
  /** Cilium cluster id in 1..254, or 0 for a single region (no mesh). */
  readonly clusterId: number
  readonly podCidr: string
  readonly serviceCidr: string
}

export const deriveRegions = (
  spec: Pick<DeploymentRequest, "sovereignFQDN" | "regions" | "clusterMesh">,
  deploymentId: DeploymentId
): ReadonlyArray<Region> => {
  const meshed = spec.regions.length >= 2
  const primaryId = meshed ? primaryClusterId(spec, deploymentId) : 0
  return spec.regions.map((region, index) => ({
    index,
    key: regionKey(spec.regions, index),
    primary: index === 0,
    provider: region.provider,
    cloudRegion: region.cloudRegion,
    controlPlaneSize: region.controlPlaneSize,
    workerSize: region.workerSize,
    workerCount: region.workerCount,
    clusterName: clusterNameOf(spec, index),
    clusterId: meshed ? primaryId + index : 0,
    podCidr: `10.${42 + index}.0.0/16`,
    serviceCidr: `10.${96 + index}.0.0/16`
  }))
}

export const consoleUrl = (fqdn: string): string => `https://console.${fqdn}`

/** Reads one credential, if the request carried it. */
export const credential = (spec: Pick<DeploymentRequest, "credentials">, name: string): Redacted.Redacted<string> | undefined =>
  spec.credentials[name]
