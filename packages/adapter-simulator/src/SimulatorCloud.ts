/** The simulated cloud: network, firewall, SSH key, load balancer and servers per region, found by label before anything is created. */
import { CloudError, CloudProvider, ownershipLabels } from "@sovereign/core/CloudProvider"
import type { CloudDeployment, CloudProviderService, CloudResource, CloudStep, StepResult } from "@sovereign/core/CloudProvider"
import { firstLabel } from "@sovereign/core/Deployment"
import { Clock, Duration, Effect, Layer, Metric, Option } from "effect"
import { drawIp } from "./internal/random.js"
import { ensureZones } from "./SimulatorDns.js"
import { SimulatorWorld, type DeploymentWorld, type SimCluster, type SimResource, type SimulatorWorldService } from "./SimulatorWorld.js"

/** The provider name this adapter reports; it answers for every provider name a request uses. */
export const providerName = "simulator"

const rateLimitPerHour = 3600
const rateLimitWindowMs = 3_600_000
/** The same metric the Hetzner adapter sets from its RateLimit-Remaining headers. */
const rateLimitRemaining = Metric.gauge("sovereign_cloud_ratelimit_remaining").pipe(Metric.tagged("provider", providerName))

const deploymentLabel = "sovereign.dev/deployment"

interface Blueprint {
  readonly kind: string
  readonly role: string
  readonly name: string
  readonly index?: number
  /** Simulated seconds from the create call to "running". */
  readonly latencySeconds: readonly [number, number]
  readonly ip?: "203.0.113" | "198.51.100"
}

const stepNames = ["network", "firewall", "ssh-key", "load-balancer", "control-plane", "workers"] as const
type StepName = (typeof stepNames)[number]

const stepDisplay: Record<StepName, string> = {
  network: "Network",
  firewall: "Firewall",
  "ssh-key": "SSH key",
  "load-balancer": "Load balancer",
  "control-plane": "Control plane",
  workers: "Workers"
}

const stepDependencies: Record<StepName, ReadonlyArray<StepName>> = {
  network: [],
  firewall: [],
  "ssh-key": [],
  "load-balancer": ["network"],
  "control-plane": ["network", "firewall", "ssh-key", "load-balancer"],
  workers: ["control-plane"]
}

const toCloudResource = (resource: SimResource): CloudResource => ({
  kind: resource.kind,
  id: resource.id,
  name: resource.name,
  region: resource.region,
  labels: resource.labels
})

/** `t1` owns `t1-fsn1-network` but never `t10-fsn1-network`: the prefix must end at a `-` boundary. */
export const nameMatchesPrefix = (name: string, prefix: string): boolean => name === prefix || name.startsWith(`${prefix}-`)

const ownedBy = (resource: SimResource, deploymentId: string) => resource.labels[deploymentLabel] === deploymentId

const blueprints = (deployment: CloudDeployment, step: CloudStep): ReadonlyArray<Blueprint> => {
  const region = deployment.regions.find((r) => r.key === step.region)
  const base = `${firstLabel(deployment.spec.sovereignFQDN)}-${step.region}`
  switch (step.name as StepName) {
    case "network":
      return [{ kind: "network", role: "network", name: `${base}-network`, latencySeconds: [8, 20] }]
    case "firewall":
      return [{ kind: "firewall", role: "firewall", name: `${base}-firewall`, latencySeconds: [4, 10] }]
    case "ssh-key":
      return [{ kind: "ssh-key", role: "ssh-key", name: `${base}-ssh-key`, latencySeconds: [1, 4] }]
    case "load-balancer":
      return [{ kind: "load-balancer", role: "load-balancer", name: `${base}-lb`, latencySeconds: [40, 90], ip: "198.51.100" }]
    case "control-plane": {
      const count = deployment.spec.haControlPlane ? 3 : 1
      return Array.from({ length: count }, (_, i) => ({
        kind: "server",
        role: "control-plane",
        index: i + 1,
        name: `${base}-cp-${i + 1}`,
        latencySeconds: [50, 120] as const,
        ip: "203.0.113" as const
      }))
    }
    case "workers":
      return Array.from({ length: region?.workerCount ?? 0 }, (_, i) => ({
        kind: "server",
        role: "worker",
        index: i + 1,
        name: `${base}-worker-${i + 1}`,
        latencySeconds: [50, 120] as const,
        ip: "203.0.113" as const
      }))
    default:
      return []
  }
}

export const make = Effect.gen(function* () {
  const world = yield* SimulatorWorld
  const { options } = world
  const attempts = new Map<string, number>()

  const cloudError = (reason: CloudError["reason"], message: string, step?: CloudStep) =>
    new CloudError({
      reason,
      message,
      provider: providerName,
      ...(step === undefined ? {} : { region: step.region, step: step.name })
    })

  // Hetzner's budget (3600 requests an hour per project), spent by every simulated call; the server's
  // metrics read it as `sovereign_cloud_ratelimit_remaining{provider="simulator"}`, as they read Hetzner's headers.
  const budget = { windowStart: Number.NaN, used: 0 }
  const spend = Effect.flatMap(Clock.currentTimeMillis, (now) => {
    if (!(now - budget.windowStart < rateLimitWindowMs)) {
      budget.windowStart = now
      budget.used = 0
    }
    budget.used += 1
    return Metric.set(rateLimitRemaining, Math.max(0, rateLimitPerHour - budget.used))
  })

  /** One API call: may answer 429 or 503 at the configured rate (deterministic for the seed). */
  const apiCall = (deploymentId: string, what: string, step?: CloudStep) =>
    Effect.zipRight(
      spend,
      Effect.suspend(() => {
        if (options.faults.cloudErrorRate <= 0) return Effect.void
        const key = `${deploymentId}/${what}`
        const attempt = (attempts.get(key) ?? 0) + 1
        attempts.set(key, attempt)
        if (world.draw(deploymentId, what, attempt, "error") >= options.faults.cloudErrorRate) return Effect.void
        return world.draw(deploymentId, what, attempt, "kind") < 0.5
          ? Effect.fail(cloudError("RateLimited", "429 rate_limit_exceeded: too many requests (simulated)", step))
          : Effect.fail(cloudError("Unavailable", "503 service unavailable (simulated)", step))
      })
    )

  const now = Clock.currentTimeMillis

  const apply: CloudProviderService["apply"] = (deployment, step) =>
    Effect.gen(function* () {
      const region = deployment.regions.find((r) => r.key === step.region)
      if (region === undefined) return yield* cloudError("InvalidInput", `unknown region ${step.region}`, step)
      yield* apiCall(deployment.id, `${step.region}:${step.name}`, step)
      if (step.name === "control-plane" && options.faults.regionFail.includes(region.cloudRegion)) {
        return yield* cloudError(
          "Unknown",
          `location ${region.cloudRegion} refused to create servers: resource_unavailable (simulated region-fail)`,
          step
        )
      }
      const wanted = blueprints(deployment, step)
      const at = yield* now
      const namePrefix = firstLabel(deployment.spec.sovereignFQDN)
      const log: Array<string> = []
      const resources = yield* world
        .modify(deployment.id, namePrefix, (current) => {
          const next: Array<SimResource> = [...current.resources]
          const creations = { ...current.creations }
          const out: Array<SimResource> = []
          for (const blueprint of wanted) {
            const existing = next.find((r) => r.name === blueprint.name && ownedBy(r, deployment.id))
            if (existing !== undefined) {
              log.push(`found ${blueprint.kind} ${blueprint.name} (${existing.id}); not creating it again`)
              out.push(existing)
              continue
            }
            const latency = world.drawInt(
              blueprint.latencySeconds[0],
              blueprint.latencySeconds[1],
              deployment.id,
              blueprint.name,
              "latency"
            )
            const created: SimResource = {
              kind: blueprint.kind,
              id: `${blueprint.kind}-${world.drawInt(100000, 999999, deployment.id, blueprint.name, "id")}`,
              name: blueprint.name,
              region: step.region,
              cloudRegion: region.cloudRegion,
              labels: ownershipLabels(deployment.id, step.region, blueprint.role, blueprint.index),
              ...(blueprint.ip === undefined ? {} : { ip: drawIp(blueprint.ip, options.seed, deployment.id, blueprint.name) }),
              createdAt: at,
              readyAt: at + Duration.toMillis(world.scaled(Duration.seconds(latency)))
            }
            creations[blueprint.name] = (creations[blueprint.name] ?? 0) + 1
            log.push(`created ${blueprint.kind} ${blueprint.name} (${created.id}) in ${region.cloudRegion}`)
            next.push(created)
            out.push(created)
          }
          return [
            out,
            out.length === 0 || log.every((line) => line.startsWith("found")) ? current : { ...current, resources: next, creations }
          ]
        })
        .pipe(Effect.mapError((error) => cloudError("Unavailable", `simulated cloud state unavailable: ${error.message}`, step)))
      // Wait until the provider reports every resource running.
      const readyAt = Math.max(at, ...resources.map((r) => r.readyAt))
      if (readyAt > at) yield* Effect.sleep(Duration.millis(readyAt - at))
      if (step.name === "control-plane") yield* bootCluster(world, deployment, step, resources)
      const result: StepResult = {
        resources: resources.map(toCloudResource),
        log: [...log, `${stepDisplay[step.name as StepName] ?? step.name} ready`]
      }
      return result
    })

  const regionResources = (current: DeploymentWorld, deploymentId: string, regionKey: string) =>
    current.resources.filter((r) => r.region === regionKey && ownedBy(r, deploymentId))

  const service: CloudProviderService = {
    provider: providerName,
    capabilities: { resumable: true },
    // Every provider name is simulated, and every size and region exists: one request file works in both modes.
    validate: () => Effect.succeed([]),
    plan: (deployment) =>
      Effect.as(
        Effect.orDie(
          ensureZones(
            world,
            deployment.spec.parentDomains.map((parent) => parent.name)
          )
        ),
        deployment.regions.flatMap((region) =>
          stepNames
            .filter((name) => name !== "workers" || region.workerCount > 0)
            .map((name): CloudStep => ({
              name,
              displayName: region.primary ? stepDisplay[name] : `${stepDisplay[name]} (${region.key})`,
              region: region.key,
              dependsOn: stepDependencies[name]
            }))
        )
      ),
    apply,
    outputs: (deployment) =>
      Effect.gen(function* () {
        yield* apiCall(deployment.id, `outputs`)
        const current = yield* Effect.orDie(world.read(deployment.id))
        if (Option.isNone(current)) return yield* cloudError("NotFound", `nothing exists for deployment ${deployment.id}`)
        return deployment.regions.map((region) => {
          const resources = regionResources(current.value, deployment.id, region.key)
          return {
            regionKey: region.key,
            controlPlaneIPs: resources
              .filter((r) => r.labels["sovereign.dev/role"] === "control-plane")
              .flatMap((r) => (r.ip === undefined ? [] : [r.ip])),
            loadBalancerIP: resources.find((r) => r.kind === "load-balancer")?.ip ?? ""
          }
        })
      }),
    inventory: (deployment) =>
      Effect.map(Effect.orDie(world.read(deployment.id)), (current) =>
        Option.match(current, {
          onNone: () => [],
          onSome: (w) => w.resources.filter((r) => ownedBy(r, deployment.id)).map(toCloudResource)
        })
      ),
    purge: (deployment) =>
      Effect.gen(function* () {
        yield* apiCall(deployment.id, "purge")
        const prefix = firstLabel(deployment.spec.sovereignFQDN)
        const doomed = yield* Effect.map(Effect.orDie(world.read(deployment.id)), (current) =>
          Option.match(current, {
            onNone: () => [] as ReadonlyArray<SimResource>,
            onSome: (w) =>
              w.resources.filter(
                (r) => ownedBy(r, deployment.id) || (r.labels[deploymentLabel] === undefined && nameMatchesPrefix(r.name, prefix))
              )
          })
        )
        // Servers first, then load balancers, then the rest: what a provider needs to release attachments.
        if (doomed.length > 0) yield* Effect.sleep(world.scaled(Duration.seconds(5 + 2 * doomed.length)))
        const doomedIds = new Set(doomed.map((r) => r.id))
        yield* Effect.orDie(
          world.modify(deployment.id, prefix, (w) => [
            undefined,
            { ...w, resources: w.resources.filter((r) => !doomedIds.has(r.id)), clusters: {} }
          ])
        )
        const remaining = yield* service.inventory(deployment)
        return { deleted: doomed.map(toCloudResource), remaining, errors: [] }
      })
  }
  return service
})

const bootCluster = (world: SimulatorWorldService, deployment: CloudDeployment, step: CloudStep, servers: ReadonlyArray<SimResource>) =>
  Effect.gen(function* () {
    const region = deployment.regions.find((r) => r.key === step.region)!
    const namePrefix = firstLabel(deployment.spec.sovereignFQDN)
    const readyAt = Math.max(...servers.map((s) => s.readyAt))
    yield* Effect.orDie(
      world.modify(deployment.id, namePrefix, (current) => {
        if (current.clusters[step.region] !== undefined) return [undefined, current]
        const loadBalancer = current.resources.find((r) => r.region === step.region && r.kind === "load-balancer")
        const bootSeconds = world.drawInt(150, 300, deployment.id, step.region, "boot")
        const bootAt = readyAt + Duration.toMillis(world.scaled(Duration.seconds(bootSeconds)))
        const delay = world.options.faults.kubeconfigDelay
        const cluster: SimCluster = {
          regionKey: step.region,
          cloudRegion: region.cloudRegion,
          primary: region.primary,
          clusterName: region.clusterName,
          clusterId: region.clusterId,
          loadBalancerIP: loadBalancer?.ip ?? servers[0]?.ip ?? "192.0.2.1",
          bootAt,
          ...(Duration.isFinite(delay)
            ? { kubeconfigDueAt: bootAt + Duration.toMillis(world.scaled(Duration.seconds(20))) + Duration.toMillis(world.scaled(delay)) }
            : {}),
          kubeconfigDelivered: false,
          grants: [],
          meshPeers: []
        }
        return [undefined, { ...current, clusters: { ...current.clusters, [step.region]: cluster } }]
      })
    )
    yield* world.scheduleCallback(deployment.id, step.region)
  })

export const layer: Layer.Layer<CloudProvider, never, SimulatorWorld> = Layer.effect(CloudProvider, make)
