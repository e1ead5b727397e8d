/** The CloudProvider port over the Hetzner Cloud API: resumable find-before-create steps per region, outputs, inventory, verified purge. */
import type { HttpClient } from "@effect/platform"
import { CloudProvider, Deployment } from "@sovereign/core"
import { Config, Duration, Effect, Layer, Option, Redacted, Schedule } from "effect"
import { createHash } from "node:crypto"
import * as CloudInit from "./CloudInit.js"
import * as HetznerCatalog from "./HetznerCatalog.js"
import * as HetznerClient from "./HetznerClient.js"
import * as HetznerNames from "./HetznerNames.js"
import * as HetznerSchema from "./HetznerSchema.js"

const { CloudError } = CloudProvider
type CloudDeployment = CloudProvider.CloudDeployment
type CloudStep = CloudProvider.CloudStep
type CloudResource = CloudProvider.CloudResource
type HetznerApi = HetznerClient.HetznerApi
type HetznerApiError = HetznerClient.HetznerApiError

export const providerName = "hetzner"

export interface HetznerCloudOptions {
  /** Used when the request carries no `credentials.hetznerToken`. */
  readonly token?: Redacted.Redacted<string>
  /** Also build a console load balancer in the primary region (SPEC 2.7). Default false. */
  readonly consoleLoadBalancer?: boolean
  readonly cloudInit?: CloudInit.CloudInitOptions
  /** Retries of a delete answered `resource_in_use` (firewall or network still attached). Default 6. */
  readonly inUseAttempts?: number
  /** First wait before such a retry, doubled each time. Default 2 s. */
  readonly inUseBackoff?: Duration.DurationInput
}

export const steps = {
  network: "network",
  firewall: "firewall",
  sshKey: "ssh-key",
  controlPlane: "control-plane",
  workers: "workers",
  loadBalancer: "load-balancer",
  consoleLoadBalancer: "console-load-balancer"
} as const

const networkRange = "10.0.0.0/16"
const subnetRange = "10.0.1.0/24"

const anywhere = ["0.0.0.0/0", "::/0"]
const inbound = (protocol: "tcp" | "udp", port: string, description: string): HetznerSchema.FirewallRule => ({
  direction: "in",
  protocol,
  port,
  source_ips: anywhere,
  description
})
/** Public ingress a region needs. No NodePorts (#4765); the load balancer reaches nodes privately. */
const firewallRules: ReadonlyArray<HetznerSchema.FirewallRule> = [
  inbound("tcp", "80", "http"),
  inbound("tcp", "443", "https"),
  inbound("tcp", "53", "dns"),
  inbound("udp", "53", "dns"),
  inbound("tcp", "6443", "kubernetes api"),
  inbound("udp", "51871", "cilium wireguard between regions"),
  inbound("tcp", "4240", "cilium health between regions"),
  { direction: "in", protocol: "icmp", source_ips: anywhere, description: "icmp" }
]

const tcpService = (port: number, healthCheck: boolean): HetznerSchema.LoadBalancerService => ({
  protocol: "tcp",
  listen_port: port,
  destination_port: port,
  proxyprotocol: false,
  ...(healthCheck ? { health_check: { protocol: "tcp", port, interval: 15, timeout: 10, retries: 3 } } : {})
})

/** MD5 of the key blob, colon-separated: how the API names a key's fingerprint. */
export const sshFingerprint = (publicKey: string): string => {
  const blob = publicKey.trim().split(/\s+/)[1] ?? ""
  const digest = createHash("md5").update(Buffer.from(blob, "base64")).digest("hex")
  return digest.match(/../g)!.join(":")
}

const kindName = {
  servers: "server",
  networks: "network",
  firewalls: "firewall",
  ssh_keys: "ssh-key",
  load_balancers: "load-balancer"
} as const satisfies Record<string, string>

type Labelled = { readonly id: number; readonly name: string; readonly labels: Readonly<Record<string, string>> }

const toResource = (collection: keyof typeof kindName, item: Labelled, fallbackRegion = ""): CloudResource => ({
  kind: kindName[collection],
  id: String(item.id),
  name: item.name,
  region: item.labels[HetznerNames.regionLabel] ?? fallbackRegion,
  labels: { ...item.labels }
})

const indexOf = (item: Labelled): number => Number(item.labels[HetznerNames.indexLabel] ?? "0")

const cloudReason = (error: HetznerApiError): CloudProvider.CloudErrorReason => {
  if (error.status === 429 || error.code === "rate_limit_exceeded") return "RateLimited"
  if (error.code === "resource_limit_exceeded") return "QuotaExceeded"
  if (error.status === 401 || error.status === 403 || error.code === "unauthorized" || error.code === "forbidden") return "Unauthorized"
  if (error.status === 0 || error.status >= 500) return "Unavailable"
  if (error.code === "conflict" || error.code === "locked" || error.code === "resource_in_use") return "Conflict"
  if (error.status === 404 || error.code === "not_found") return "NotFound"
  if (["invalid_input", "json_error", "resource_unavailable", "uniqueness_error", "invalid_response"].includes(error.code))
    return "InvalidInput"
  return "Unknown"
}

/** Vendor errors stop here: the port only ever sees CloudError. */
export const toCloudError = (error: HetznerApiError, where: { readonly region?: string; readonly step?: string } = {}) =>
  new CloudError({
    reason: cloudReason(error),
    message: `${error.method} ${error.path}: ${error.code}: ${error.message}`,
    provider: providerName,
    ...(where.region === undefined ? {} : { region: where.region }),
    ...(where.step === undefined ? {} : { step: where.step })
  })

const cloudFailure = (
  reason: CloudProvider.CloudErrorReason,
  message: string,
  where: { readonly region?: string; readonly step?: string } = {}
) =>
  new CloudError({
    reason,
    message,
    provider: providerName,
    ...(where.region === undefined ? {} : { region: where.region }),
    ...(where.step === undefined ? {} : { step: where.step })
  })

export const make = (client: HetznerClient.HetznerClientService, options: HetznerCloudOptions = {}): CloudProvider.CloudProviderService => {
  const cloudInitOptions = options.cloudInit ?? CloudInit.defaultOptions
  const inUsePolicy = Schedule.exponential(Duration.decode(options.inUseBackoff ?? Duration.seconds(2)), 2).pipe(
    Schedule.intersect(Schedule.recurs((options.inUseAttempts ?? 6) - 1))
  )
  // Ids learnt in this process (network and SSH key per region), so later steps skip a lookup.
  // Only an optimisation: on a miss (e.g. after a restart) the id is found again by label.
  const knownIds = new Map<string, number>()
  // One SSH-key step per fingerprint at a time in this process (a project holds one key per
  // fingerprint): deployments sharing a key find the first one's upload instead of racing it.
  const fingerprintLocks = new Map<string, Effect.Semaphore>()
  const withFingerprintLock = <A, E, R>(fingerprint: string, effect: Effect.Effect<A, E, R>) => {
    let lock = fingerprintLocks.get(fingerprint)
    if (lock === undefined) {
      lock = Effect.unsafeMakeSemaphore(1)
      fingerprintLocks.set(fingerprint, lock)
    }
    return lock.withPermits(1)(effect)
  }

  const tokenOf = (spec: Deployment.DeploymentSpec): Option.Option<Redacted.Redacted<string>> =>
    Option.fromNullable(Deployment.credential(spec, "hetznerToken") ?? options.token)

  const apiFor = (deployment: CloudDeployment, where: { readonly region?: string; readonly step?: string } = {}) =>
    Option.match(tokenOf(deployment.spec), {
      onNone: () => Effect.fail(cloudFailure("Unauthorized", "no Hetzner API token: set credentials.hetznerToken or HCLOUD_TOKEN", where)),
      onSome: (token) => Effect.succeed(client.forToken(token))
    })

  const hetznerRegions = (deployment: CloudDeployment) => deployment.regions.filter((region) => region.provider === providerName)

  const primaryRegion = (deployment: CloudDeployment) => deployment.regions.find((region) => region.primary) ?? deployment.regions[0]!

  // -------------------------------------------------------------------------------------------
  // validate

  const validate: CloudProvider.CloudProviderService["validate"] = (spec) =>
    Effect.sync(() => {
      const issues: Array<Deployment.ValidationIssue> = []
      if (Option.isNone(tokenOf(spec))) {
        issues.push({ path: "credentials.hetznerToken", message: "a Hetzner API token is required (here or as the server's HCLOUD_TOKEN)" })
      }
      const keyType = spec.sshPublicKey.split(" ")[0] ?? ""
      if (spec.regions.some((region) => region.provider === providerName) && !HetznerCatalog.sshKeyTypes.includes(keyType)) {
        issues.push({ path: "sshPublicKey", message: `Hetzner accepts ${HetznerCatalog.sshKeyTypes.join(", ")} keys, not ${keyType}` })
      }
      spec.regions.forEach((region, index) => {
        if (region.provider !== providerName) return
        // Exact names only: the value becomes part of resource names and labels, which are lowercase.
        const location = region.cloudRegion
        if (HetznerCatalog.networkZones[location] === undefined) {
          issues.push({
            path: `regions.${index}.cloudRegion`,
            message: `unknown Hetzner location '${region.cloudRegion}'; known: ${HetznerCatalog.locations.join(", ")}`
          })
          return
        }
        const checkSku = (field: "controlPlaneSize" | "workerSize", sku: string) => {
          const verdict = HetznerCatalog.skuVerdict(sku, location)
          if (verdict._tag === "Unknown") {
            issues.push({ path: `regions.${index}.${field}`, message: `unknown Hetzner server type '${sku}'` })
          } else if (verdict._tag === "Unorderable") {
            issues.push({
              path: `regions.${index}.${field}`,
              message:
                verdict.orderableIn.length === 0
                  ? `server type '${sku}' can no longer be ordered`
                  : `server type '${sku}' cannot be ordered in ${location}; orderable in ${verdict.orderableIn.join(", ")}`
            })
          }
        }
        checkSku("controlPlaneSize", region.controlPlaneSize)
        if (region.workerCount > 0 && region.workerSize !== undefined) checkSku("workerSize", region.workerSize)
        const longest = HetznerNames.names.consoleLoadBalancer(
          HetznerNames.regionPrefix(spec.sovereignFQDN, Deployment.regionKey(spec.regions, index))
        )
        if (!HetznerNames.validName(longest) && !issues.some((issue) => issue.path === "sovereignFQDN")) {
          issues.push({
            path: "sovereignFQDN",
            message: `resource names such as '${longest}' would exceed 63 characters; use a shorter first label`
          })
        }
      })
      return issues
    })

  // -------------------------------------------------------------------------------------------
  // plan

  const plan: CloudProvider.CloudProviderService["plan"] = (deployment) =>
    Effect.sync(() =>
      hetznerRegions(deployment).flatMap((region): Array<CloudStep> => {
        const step = (name: string, displayName: string, dependsOn: ReadonlyArray<string>): CloudStep => ({
          name,
          displayName: `${displayName} (${region.key})`,
          region: region.key,
          dependsOn
        })
        const controlPlanes = deployment.spec.haControlPlane ? 3 : 1
        return [
          step(steps.network, `Network ${networkRange}, subnet ${subnetRange}`, []),
          step(steps.firewall, "Firewall", []),
          step(steps.sshKey, "SSH key", []),
          step(steps.controlPlane, `Control plane (${controlPlanes} × ${region.controlPlaneSize})`, [
            steps.network,
            steps.firewall,
            steps.sshKey
          ]),
          ...(region.workerCount > 0
            ? [step(steps.workers, `Workers (${region.workerCount} × ${region.workerSize ?? ""})`, [steps.controlPlane])]
            : []),
          step(steps.loadBalancer, "Load balancer (80, 443, 53)", [steps.network]),
          ...(options.consoleLoadBalancer === true && region.primary
            ? [step(steps.consoleLoadBalancer, "Console load balancer (80, 443)", [steps.network])]
            : [])
        ]
      })
    )

  // -------------------------------------------------------------------------------------------
  // apply

  interface StepContext {
    readonly api: HetznerApi
    readonly deployment: CloudDeployment
    readonly region: Deployment.Region
    readonly prefix: string
    readonly log: Array<string>
  }

  /**
   * Create; if the name is taken, find ours by label (a create whose answer was lost). A name held
   * by something that does not carry our labels is an error, never adopted.
   */
  const createOrAdopt = <A extends Labelled, I>(
    context: StepContext,
    kind: HetznerSchema.Kind<A, I>,
    body: { readonly name: string; readonly labels: Readonly<Record<string, string>>; readonly [field: string]: unknown },
    selector: string
  ) =>
    context.api.create(kind, body).pipe(
      Effect.tap(({ resource }) =>
        Effect.sync(() =>
          context.log.push(`created ${kindName[kind.collection as keyof typeof kindName]} ${resource.name} (id ${resource.id})`)
        )
      ),
      Effect.catchIf(
        (error) => error.code === "uniqueness_error",
        (error) =>
          context.api.list(kind, { labelSelector: selector }).pipe(
            Effect.flatMap((mine) => {
              const found = mine.find((item) => item.name === body.name)
              if (found !== undefined) {
                context.log.push(`found ${found.name} (id ${found.id}) after a repeated create`)
                return Effect.succeed<HetznerClient.Created<A>>({ resource: found, actions: [] })
              }
              return Effect.fail(
                new HetznerClient.HetznerApiError({
                  status: 409,
                  code: "uniqueness_error",
                  message: `the name ${body.name} is held by a resource this deployment does not own (${error.message})`,
                  method: error.method,
                  path: error.path
                })
              )
            })
          )
      )
    )

  const findNetwork = (context: StepContext) => {
    const cacheKey = `${context.deployment.id}/${context.region.key}/network`
    const cached = knownIds.get(cacheKey)
    if (cached !== undefined) return Effect.succeed(cached)
    return context.api
      .list(HetznerSchema.kinds.networks, {
        labelSelector: HetznerNames.roleSelector(context.deployment.id, context.region.key, HetznerNames.roles.network)
      })
      .pipe(
        Effect.flatMap((networks) =>
          networks[0] === undefined
            ? Effect.fail(
                cloudFailure("NotFound", `the network of region ${context.region.key} does not exist yet`, { region: context.region.key })
              )
            : Effect.sync(() => {
                knownIds.set(cacheKey, networks[0]!.id)
                return networks[0]!.id
              })
        )
      )
  }

  const sshKeySelector = (deploymentId: string) =>
    HetznerNames.selector({ [HetznerNames.deploymentLabel]: deploymentId, [HetznerNames.roleLabel]: HetznerNames.roles.sshKey })

  /**
   * The key with the request's fingerprint, if the project has one (fingerprints are unique per
   * project, so one filtered list answers both questions): ours when it carries our label, else
   * someone else's upload of the same key, which is reused but never owned or purged. (A key of
   * ours whose public key was since replaced is found by createOrAdopt when its name collides.)
   */
  const lookupSshKey = (context: StepContext) =>
    context.api.list(HetznerSchema.kinds.sshKeys, { fingerprint: sshFingerprint(context.deployment.spec.sshPublicKey) }).pipe(
      Effect.map((found) =>
        Option.map(Option.fromNullable(found[0]), (key) => ({
          key,
          owned: key.labels[HetznerNames.deploymentLabel] === context.deployment.id
        }))
      )
    )

  const findSshKey = (context: StepContext) => {
    const cacheKey = `${context.deployment.id}/ssh`
    const cached = knownIds.get(cacheKey)
    if (cached !== undefined) return Effect.succeed(cached)
    return lookupSshKey(context).pipe(
      Effect.flatMap(
        Option.match({
          onNone: () =>
            Effect.fail(cloudFailure("NotFound", "the deployment's SSH key does not exist yet", { region: context.region.key })),
          onSome: ({ key }) =>
            Effect.sync(() => {
              knownIds.set(cacheKey, key.id)
              return key.id
            })
        })
      )
    )
  }

  const applyNetwork = (context: StepContext) =>
    Effect.gen(function* () {
      const { api, deployment, region } = context
      const selector = HetznerNames.roleSelector(deployment.id, region.key, HetznerNames.roles.network)
      const existing = yield* api.list(HetznerSchema.kinds.networks, { labelSelector: selector })
      const zone = HetznerCatalog.networkZones[region.cloudRegion] ?? "eu-central"
      let network = existing[0]
      if (network === undefined) {
        const created = yield* createOrAdopt(
          context,
          HetznerSchema.kinds.networks,
          {
            name: HetznerNames.names.network(context.prefix),
            labels: HetznerNames.labels(deployment.id, region.key, HetznerNames.roles.network),
            ip_range: networkRange,
            subnets: [{ type: "cloud", ip_range: subnetRange, network_zone: zone }]
          },
          selector
        )
        network = created.resource
      } else {
        context.log.push(`found network ${network.name} (id ${network.id})`)
      }
      if (!network.subnets.some((subnet) => subnet.ip_range === subnetRange)) {
        const actions = yield* api.action(HetznerSchema.kinds.networks, network.id, "add_subnet", {
          type: "cloud",
          ip_range: subnetRange,
          network_zone: zone
        })
        yield* api.awaitActions(actions)
        context.log.push(`added subnet ${subnetRange} in ${zone}`)
      }
      knownIds.set(`${deployment.id}/${region.key}/network`, network.id)
      return [toResource("networks", network, region.key)]
    })

  const applyFirewall = (context: StepContext) =>
    Effect.gen(function* () {
      const { api, deployment, region } = context
      const selector = HetznerNames.roleSelector(deployment.id, region.key, HetznerNames.roles.firewall)
      const existing = yield* api.list(HetznerSchema.kinds.firewalls, { labelSelector: selector })
      if (existing[0] !== undefined) {
        context.log.push(`found firewall ${existing[0].name} (id ${existing[0].id})`)
        return [toResource("firewalls", existing[0], region.key)]
      }
      // Applied by label selector: every server of the region is covered from its creation on.
      const created = yield* createOrAdopt(
        context,
        HetznerSchema.kinds.firewalls,
        {
          name: HetznerNames.names.firewall(context.prefix),
          labels: HetznerNames.labels(deployment.id, region.key, HetznerNames.roles.firewall),
          rules: firewallRules,
          apply_to: [{ type: "label_selector", label_selector: { selector: HetznerNames.regionSelector(deployment.id, region.key) } }]
        },
        selector
      )
      yield* api.awaitActions(created.actions)
      return [toResource("firewalls", created.resource, region.key)]
    })

  const applySshKey = (context: StepContext) =>
    withFingerprintLock(
      sshFingerprint(context.deployment.spec.sshPublicKey),
      Effect.gen(function* () {
        const { deployment } = context
        // One key per deployment (the API refuses a second key with the same fingerprint), labelled with the primary region.
        const primary = primaryRegion(deployment)
        const reuse = (found: { readonly key: HetznerSchema.SshKey; readonly owned: boolean }, how: string) => {
          knownIds.set(`${deployment.id}/ssh`, found.key.id)
          context.log.push(
            found.owned
              ? `found SSH key ${found.key.name} (id ${found.key.id})${how}`
              : `reusing SSH key ${found.key.name} (id ${found.key.id}) with the same fingerprint${how}; it belongs to someone else and will not be purged`
          )
          return found.owned ? [toResource("ssh_keys", found.key, primary.key)] : []
        }
        const found = yield* lookupSshKey(context)
        if (Option.isSome(found)) return reuse(found.value, "")
        return yield* createOrAdopt(
          context,
          HetznerSchema.kinds.sshKeys,
          {
            name: HetznerNames.names.sshKey(HetznerNames.regionPrefix(deployment.spec.sovereignFQDN, primary.key)),
            labels: HetznerNames.labels(deployment.id, primary.key, HetznerNames.roles.sshKey),
            public_key: deployment.spec.sshPublicKey
          },
          sshKeySelector(deployment.id)
        ).pipe(
          Effect.map((created) => {
            knownIds.set(`${deployment.id}/ssh`, created.resource.id)
            return [toResource("ssh_keys", created.resource, primary.key)]
          }),
          // Someone else (another process, another tool) uploaded the same key between our look-up and
          // our create: the project now holds it, so it is read again and reused, never a failure.
          Effect.catchIf(
            (error) => error.code === "uniqueness_error",
            (error) =>
              Effect.flatMap(
                lookupSshKey(context),
                Option.match({
                  onNone: () => Effect.fail(error),
                  onSome: (again) => Effect.succeed(reuse(again, " (uploaded by someone else at the same moment)"))
                })
              )
          )
        )
      })
    )

  /** The private address of a server, waiting for its network attachment if it is still running. */
  const privateAddress = (api: HetznerApi, server: HetznerSchema.Server) =>
    Effect.gen(function* () {
      let current = server
      let delay = Duration.millis(500)
      for (let attempt = 0; attempt < 60; attempt++) {
        const ip = current.private_net[0]?.ip
        if (ip !== undefined) return ip
        yield* Effect.sleep(delay)
        delay = Duration.min(Duration.times(delay, 1.5), Duration.seconds(10))
        const fresh = yield* api.get(HetznerSchema.kinds.servers, current.id)
        if (Option.isNone(fresh)) break
        current = fresh.value
      }
      return yield* Effect.fail(cloudFailure("Unavailable", `server ${server.name} has no private address`))
    })

  const serverBody = (
    context: StepContext,
    role: string,
    index: number,
    name: string,
    serverType: string,
    userData: string,
    networkId: number,
    sshKeyId: number
  ) => ({
    name,
    labels: HetznerNames.labels(context.deployment.id, context.region.key, role, index),
    server_type: serverType,
    location: context.region.cloudRegion,
    image: HetznerCatalog.serverImage,
    ssh_keys: [sshKeyId],
    networks: [networkId],
    user_data: userData,
    start_after_create: true,
    public_net: { enable_ipv4: true, enable_ipv6: true }
  })

  const applyControlPlane = (context: StepContext) =>
    Effect.gen(function* () {
      const { api, deployment, region } = context
      const role = HetznerNames.roles.controlPlane
      const selector = HetznerNames.roleSelector(deployment.id, region.key, role)
      const existing = yield* api.list(HetznerSchema.kinds.servers, { labelSelector: selector })
      const byIndex = new Map(existing.map((server) => [indexOf(server), server]))
      const count = deployment.spec.haControlPlane ? 3 : 1
      const missing = Array.from({ length: count }, (_, index) => index).filter((index) => !byIndex.has(index))
      existing.forEach((server) => context.log.push(`found server ${server.name} (id ${server.id})`))
      if (missing.length > 0) {
        const networkId = yield* findNetwork(context)
        const sshKeyId = yield* findSshKey(context)
        const create = (index: number, joinAddress: string | undefined) =>
          createOrAdopt(
            context,
            HetznerSchema.kinds.servers,
            serverBody(
              context,
              role,
              index,
              HetznerNames.names.controlPlane(context.prefix, index),
              region.controlPlaneSize,
              CloudInit.controlPlane({
                deployment,
                region,
                index,
                options: cloudInitOptions,
                ...(joinAddress === undefined ? {} : { joinAddress })
              }),
              networkId,
              sshKeyId
            ),
            selector
          ).pipe(
            Effect.tap((created) => api.awaitActions(created.actions)),
            Effect.tap((created) => Effect.sync(() => byIndex.set(index, created.resource)))
          )
        // The first control plane starts the cluster; the others need its private address to join.
        if (missing.includes(0)) yield* create(0, undefined)
        const rest = missing.filter((index) => index > 0)
        if (rest.length > 0) {
          const joinAddress = yield* privateAddress(api, byIndex.get(0)!)
          yield* Effect.forEach(rest, (index) => create(index, joinAddress), { concurrency: "unbounded", discard: true })
        }
      }
      return [...byIndex.values()].sort((a, b) => indexOf(a) - indexOf(b)).map((server) => toResource("servers", server, region.key))
    })

  const applyWorkers = (context: StepContext) =>
    Effect.gen(function* () {
      const { api, deployment, region } = context
      const role = HetznerNames.roles.worker
      // One list serves both: the workers that exist and the control plane they join.
      const servers = yield* api.list(HetznerSchema.kinds.servers, {
        labelSelector: HetznerNames.regionSelector(deployment.id, region.key)
      })
      const workers = servers.filter((server) => server.labels[HetznerNames.roleLabel] === role)
      const byIndex = new Map(workers.map((server) => [indexOf(server), server]))
      workers.forEach((server) => context.log.push(`found server ${server.name} (id ${server.id})`))
      const missing = Array.from({ length: region.workerCount }, (_, index) => index).filter((index) => !byIndex.has(index))
      if (missing.length > 0) {
        const first = servers.find(
          (server) => server.labels[HetznerNames.roleLabel] === HetznerNames.roles.controlPlane && indexOf(server) === 0
        )
        if (first === undefined) {
          return yield* Effect.fail(
            cloudFailure("NotFound", `the first control plane of region ${region.key} does not exist yet`, { region: region.key })
          )
        }
        const joinAddress = yield* privateAddress(api, first)
        const networkId = yield* findNetwork(context)
        const sshKeyId = yield* findSshKey(context)
        yield* Effect.forEach(
          missing,
          (index) =>
            createOrAdopt(
              context,
              HetznerSchema.kinds.servers,
              serverBody(
                context,
                role,
                index,
                HetznerNames.names.worker(context.prefix, index),
                region.workerSize ?? region.controlPlaneSize,
                CloudInit.worker({ deployment, region, joinAddress, options: cloudInitOptions }),
                networkId,
                sshKeyId
              ),
              HetznerNames.roleSelector(deployment.id, region.key, role)
            ).pipe(
              Effect.tap((created) => api.awaitActions(created.actions)),
              Effect.tap((created) => Effect.sync(() => byIndex.set(index, created.resource)))
            ),
          { concurrency: "unbounded", discard: true }
        )
      }
      return [...byIndex.values()].sort((a, b) => indexOf(a) - indexOf(b)).map((server) => toResource("servers", server, region.key))
    })

  const applyLoadBalancer = (context: StepContext, console: boolean) =>
    Effect.gen(function* () {
      const { api, deployment, region } = context
      const role = console ? HetznerNames.roles.consoleLoadBalancer : HetznerNames.roles.loadBalancer
      const selector = HetznerNames.roleSelector(deployment.id, region.key, role)
      const existing = yield* api.list(HetznerSchema.kinds.loadBalancers, { labelSelector: selector })
      if (existing[0] !== undefined) {
        context.log.push(`found load balancer ${existing[0].name} (id ${existing[0].id})`)
        return [toResource("load_balancers", existing[0], region.key)]
      }
      const networkId = yield* findNetwork(context)
      const created = yield* createOrAdopt(
        context,
        HetznerSchema.kinds.loadBalancers,
        {
          name: console ? HetznerNames.names.consoleLoadBalancer(context.prefix) : HetznerNames.names.loadBalancer(context.prefix),
          labels: HetznerNames.labels(deployment.id, region.key, role),
          load_balancer_type: HetznerCatalog.loadBalancerType,
          location: region.cloudRegion,
          algorithm: { type: "round_robin" },
          network: networkId,
          public_interface: true,
          services: console
            ? [tcpService(80, false), tcpService(443, false)]
            : [tcpService(80, false), tcpService(443, false), tcpService(53, true)],
          // Every server of the region, through the private network, including servers added later.
          targets: [
            {
              type: "label_selector",
              label_selector: { selector: HetznerNames.regionSelector(deployment.id, region.key) },
              use_private_ip: true
            }
          ]
        },
        selector
      )
      yield* api.awaitActions(created.actions)
      return [toResource("load_balancers", created.resource, region.key)]
    })

  const apply: CloudProvider.CloudProviderService["apply"] = (deployment, step) => {
    const where = { region: step.region, step: step.name }
    const region = deployment.regions.find((candidate) => candidate.key === step.region)
    if (region === undefined) return Effect.fail(cloudFailure("InvalidInput", `unknown region ${step.region}`, where))
    return Effect.gen(function* () {
      const api = yield* apiFor(deployment, where)
      const context: StepContext = {
        api,
        deployment,
        region,
        prefix: HetznerNames.regionPrefix(deployment.spec.sovereignFQDN, region.key),
        log: []
      }
      const run = (): Effect.Effect<ReadonlyArray<CloudResource>, HetznerApiError | CloudProvider.CloudError> => {
        switch (step.name) {
          case steps.network:
            return applyNetwork(context)
          case steps.firewall:
            return applyFirewall(context)
          case steps.sshKey:
            return applySshKey(context)
          case steps.controlPlane:
            return applyControlPlane(context)
          case steps.workers:
            return applyWorkers(context)
          case steps.loadBalancer:
            return applyLoadBalancer(context, false)
          case steps.consoleLoadBalancer:
            return applyLoadBalancer(context, true)
          default:
            return Effect.fail(cloudFailure("InvalidInput", `unknown step ${step.name}`, where))
        }
      }
      const resources = yield* run().pipe(
        Effect.catchTag("HetznerApiError", (error) => Effect.fail(toCloudError(error, where))),
        Effect.mapError((error) =>
          error.step === undefined
            ? new CloudError({ reason: error.reason, message: error.message, provider: error.provider, ...where })
            : error
        )
      )
      return { resources, log: context.log }
    })
  }

  // -------------------------------------------------------------------------------------------
  // outputs, inventory

  const outputs: CloudProvider.CloudProviderService["outputs"] = (deployment) =>
    Effect.gen(function* () {
      const api = yield* apiFor(deployment)
      const selector = HetznerNames.deploymentSelector(deployment.id)
      const [servers, loadBalancers] = yield* Effect.all(
        [
          api.list(HetznerSchema.kinds.servers, { labelSelector: selector }),
          api.list(HetznerSchema.kinds.loadBalancers, { labelSelector: selector })
        ],
        { concurrency: 2 }
      ).pipe(Effect.mapError((error) => toCloudError(error)))
      return hetznerRegions(deployment).flatMap((region): Array<CloudProvider.RegionOutputs> => {
        const inRegion = <A extends Labelled>(items: ReadonlyArray<A>, role: string) =>
          items.filter((item) => item.labels[HetznerNames.regionLabel] === region.key && item.labels[HetznerNames.roleLabel] === role)
        const controlPlaneIPs = inRegion(servers, HetznerNames.roles.controlPlane)
          .sort((a, b) => indexOf(a) - indexOf(b))
          .flatMap((server) => (server.public_net.ipv4?.ip ? [server.public_net.ipv4.ip] : []))
        const lbIp = (role: string) => inRegion(loadBalancers, role)[0]?.public_net.ipv4?.ip ?? undefined
        const loadBalancerIP = lbIp(HetznerNames.roles.loadBalancer)
        // A region without its control plane or load balancer is not materialised; the caller sees it missing.
        if (controlPlaneIPs.length === 0 || loadBalancerIP === undefined) return []
        const consoleLoadBalancerIP = lbIp(HetznerNames.roles.consoleLoadBalancer)
        return [
          {
            regionKey: region.key,
            controlPlaneIPs,
            loadBalancerIP,
            ...(consoleLoadBalancerIP === undefined ? {} : { consoleLoadBalancerIP })
          }
        ]
      })
    })

  const listByLabel = (api: HetznerApi, deploymentId: string) => {
    const labelSelector = HetznerNames.deploymentSelector(deploymentId)
    const byLabel = <A extends Labelled, I>(kind: HetznerSchema.Kind<A, I>) =>
      api
        .list(kind, { labelSelector })
        .pipe(Effect.map((items) => items.map((item) => toResource(kind.collection as keyof typeof kindName, item))))
    return Effect.all(
      [
        byLabel(HetznerSchema.kinds.loadBalancers),
        byLabel(HetznerSchema.kinds.servers),
        byLabel(HetznerSchema.kinds.firewalls),
        byLabel(HetznerSchema.kinds.networks),
        byLabel(HetznerSchema.kinds.sshKeys)
      ],
      { concurrency: 5 }
    ).pipe(Effect.map((lists) => lists.flat()))
  }

  const inventory: CloudProvider.CloudProviderService["inventory"] = (deployment) =>
    Effect.gen(function* () {
      const api = yield* apiFor(deployment)
      return yield* listByLabel(api, deployment.id).pipe(Effect.mapError((error) => toCloudError(error)))
    })

  // -------------------------------------------------------------------------------------------
  // purge

  /** Ours: our deployment label, or no deployment label at all and a name inside one of our region prefixes. */
  const ownedBy = (deployment: CloudDeployment) => {
    const prefixes = deployment.regions.map((region) => HetznerNames.regionPrefix(deployment.spec.sovereignFQDN, region.key))
    return (item: Labelled): boolean => {
      const owner = item.labels[HetznerNames.deploymentLabel]
      if (owner !== undefined) return owner === deployment.id
      return prefixes.some((prefix) => HetznerNames.nameBelongsTo(item.name, prefix))
    }
  }

  /** Everything of each kind, in deletion order: label matches and unlabelled name matches in one listing per kind. */
  const findOwned = (api: HetznerApi, deployment: CloudDeployment) => {
    const owned = ownedBy(deployment)
    return Effect.all(
      {
        loadBalancers: api.list(HetznerSchema.kinds.loadBalancers).pipe(Effect.map((items) => items.filter(owned))),
        servers: api.list(HetznerSchema.kinds.servers).pipe(Effect.map((items) => items.filter(owned))),
        firewalls: api.list(HetznerSchema.kinds.firewalls).pipe(Effect.map((items) => items.filter(owned))),
        networks: api.list(HetznerSchema.kinds.networks).pipe(Effect.map((items) => items.filter(owned))),
        sshKeys: api.list(HetznerSchema.kinds.sshKeys).pipe(Effect.map((items) => items.filter(owned)))
      },
      { concurrency: 5 }
    )
  }

  const purge: CloudProvider.CloudProviderService["purge"] = (deployment) =>
    Effect.gen(function* () {
      if (!/^[0-9a-f]{16}$/.test(deployment.id) || !deployment.spec.sovereignFQDN.includes(".")) {
        return yield* Effect.fail(cloudFailure("InvalidInput", "refusing to purge without a valid deployment id and FQDN"))
      }
      const api = yield* apiFor(deployment)
      const deleted: Array<CloudResource> = []
      const errors: Array<string> = []
      const found = yield* findOwned(api, deployment).pipe(Effect.mapError((error) => toCloudError(error)))

      const attempt = <A extends Labelled, I>(kind: HetznerSchema.Kind<A, I>, item: A, run: Effect.Effect<void, HetznerApiError>) =>
        run.pipe(
          Effect.tap(() => Effect.sync(() => deleted.push(toResource(kind.collection as keyof typeof kindName, item)))),
          Effect.catchAll((error) =>
            Effect.sync(() =>
              errors.push(`${kindName[kind.collection as keyof typeof kindName]} ${item.name}: ${error.code}: ${error.message}`)
            )
          )
        )

      // A firewall or network stays in use for a while after its servers are deleted (#706).
      const retryInUse = <A>(effect: Effect.Effect<A, HetznerApiError>) =>
        effect.pipe(Effect.retry({ schedule: inUsePolicy, while: (error) => error.code === "resource_in_use" }))

      yield* Effect.forEach(
        found.loadBalancers,
        (item) =>
          attempt(HetznerSchema.kinds.loadBalancers, item, api.remove(HetznerSchema.kinds.loadBalancers, item.id).pipe(Effect.asVoid)),
        { concurrency: 4, discard: true }
      )
      yield* Effect.forEach(
        found.servers,
        (item) =>
          attempt(
            HetznerSchema.kinds.servers,
            item,
            api.remove(HetznerSchema.kinds.servers, item.id).pipe(Effect.flatMap(api.awaitActions))
          ),
        { concurrency: 4, discard: true }
      )
      yield* Effect.forEach(
        found.firewalls,
        (item) =>
          attempt(
            HetznerSchema.kinds.firewalls,
            item,
            Effect.gen(function* () {
              // Detach first: a firewall applied to anything cannot be deleted.
              if (item.applied_to.length > 0) {
                const actions = yield* api
                  .action(HetznerSchema.kinds.firewalls, item.id, "remove_from_resources", {
                    remove_from: item.applied_to
                  })
                  .pipe(
                    Effect.catchIf(
                      (error) => error.status === 404,
                      () => Effect.succeed([])
                    )
                  )
                yield* api.awaitActions(actions)
              }
              yield* retryInUse(api.remove(HetznerSchema.kinds.firewalls, item.id))
            })
          ),
        { concurrency: 4, discard: true }
      )
      yield* Effect.forEach(
        found.networks,
        (item) =>
          attempt(HetznerSchema.kinds.networks, item, retryInUse(api.remove(HetznerSchema.kinds.networks, item.id)).pipe(Effect.asVoid)),
        { concurrency: 4, discard: true }
      )
      yield* Effect.forEach(
        found.sshKeys,
        (item) => attempt(HetznerSchema.kinds.sshKeys, item, api.remove(HetznerSchema.kinds.sshKeys, item.id).pipe(Effect.asVoid)),
        { concurrency: 4, discard: true }
      )

      for (const key of [...knownIds.keys()]) if (key.startsWith(`${deployment.id}/`)) knownIds.delete(key)

      // Verification: list again, by label and by name; anything still there is reported.
      const left = yield* findOwned(api, deployment).pipe(Effect.mapError((error) => toCloudError(error)))
      const remaining = [
        ...left.loadBalancers.map((item) => toResource("load_balancers", item)),
        ...left.servers.map((item) => toResource("servers", item)),
        ...left.firewalls.map((item) => toResource("firewalls", item)),
        ...left.networks.map((item) => toResource("networks", item)),
        ...left.sshKeys.map((item) => toResource("ssh_keys", item))
      ]
      return { deleted, remaining, errors }
    })

  return {
    provider: providerName,
    capabilities: { resumable: true },
    validate,
    plan,
    apply,
    outputs,
    inventory,
    purge
  }
}

export interface LayerOptions extends HetznerCloudOptions {
  readonly client?: HetznerClient.HetznerClientOptions
}

/** The CloudProvider over the Hetzner API, given an `HttpClient` (e.g. `NodeHttpClient.layer`). */
export const layer = (options: LayerOptions = {}): Layer.Layer<CloudProvider.CloudProvider, never, HttpClient.HttpClient> =>
  Layer.effect(
    CloudProvider.CloudProvider,
    Effect.map(HetznerClient.HetznerClient, (client) => make(client, options))
  ).pipe(Layer.provide(HetznerClient.layer(options.client)))

/** `HCLOUD_TOKEN` (optional: requests may bring their own) and `HCLOUD_ENDPOINT` (default the public API). */
export const config = Config.all({
  token: Config.option(Config.redacted("HCLOUD_TOKEN")),
  endpoint: Config.string("HCLOUD_ENDPOINT").pipe(Config.withDefault(HetznerClient.defaultEndpoint))
})

export const layerConfig = (
  options: Omit<LayerOptions, "token"> = {}
): Layer.Layer<CloudProvider.CloudProvider, import("effect/ConfigError").ConfigError, HttpClient.HttpClient> =>
  Layer.unwrapEffect(
    Effect.map(config, ({ endpoint, token }) =>
      layer({
        ...options,
        ...(Option.isSome(token) ? { token: token.value } : {}),
        client: { ...options.client, endpoint }
      })
    )
  )
