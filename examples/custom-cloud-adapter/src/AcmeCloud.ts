/** A complete cloud adapter for the (imaginary) Acme cloud: plan, apply, outputs, inventory and purge (SPEC §3). */
import { CloudProvider, Deployment } from "@sovereign/core"
import { Effect, Layer } from "effect"
import { AcmeApi, type AcmeApiError, type AcmeResource } from "./AcmeApi.js"

type CloudDeployment = CloudProvider.CloudDeployment
type CloudStep = CloudProvider.CloudStep

const provider = "acme"
const deploymentLabel = "sovereign.dev/deployment"

/** Vendor errors are mapped at the edge: the orchestrator retries what says it is retryable. */
const toCloudError = (error: AcmeApiError, step?: CloudStep) =>
  new CloudProvider.CloudError({
    reason:
      error.status === 429 ? "RateLimited" : error.status >= 500 ? "Unavailable" : error.status === 401 ? "Unauthorized" : "InvalidInput",
    message: error.message,
    provider,
    ...(step === undefined ? {} : { region: step.region, step: step.name })
  })

/** What one step owns: kind, role and how many. */
const blueprint = (deployment: CloudDeployment, step: CloudStep) => {
  const region = deployment.regions.find((r) => r.key === step.region)!
  switch (step.name) {
    case "network":
      return { kind: "network" as const, role: "network", count: 1 }
    case "load-balancer":
      return { kind: "load_balancer" as const, role: "load-balancer", count: 1 }
    case "control-plane":
      return { kind: "server" as const, role: "control-plane", count: deployment.spec.haControlPlane ? 3 : 1 }
    default:
      return { kind: "server" as const, role: "worker", count: region.workerCount }
  }
}

const toResource = (resource: AcmeResource): CloudProvider.CloudResource => ({
  kind: resource.kind,
  id: resource.id,
  name: resource.name,
  region: resource.labels["sovereign.dev/region"] ?? "",
  labels: resource.labels
})

export const make = Effect.gen(function* () {
  const api = yield* AcmeApi

  const owned = (deployment: CloudDeployment) =>
    Effect.mapError(api.list({ [deploymentLabel]: deployment.id }), (error) => toCloudError(error))

  const service: CloudProvider.CloudProviderService = {
    provider,
    // Everything is found again by label, so an interrupted Phase 0 can simply continue.
    capabilities: { resumable: true },

    validate: (spec) =>
      Effect.succeed(
        spec.regions.flatMap((region, index) =>
          region.cloudRegion.startsWith("acme-")
            ? []
            : [{ path: `regions.${index}.cloudRegion`, message: `Acme has no location ${region.cloudRegion}` }]
        )
      ),

    plan: (deployment) =>
      Effect.succeed(
        deployment.regions.flatMap((region): ReadonlyArray<CloudStep> => [
          { name: "network", displayName: "Network", region: region.key, dependsOn: [] },
          { name: "load-balancer", displayName: "Load balancer", region: region.key, dependsOn: ["network"] },
          { name: "control-plane", displayName: "Control plane", region: region.key, dependsOn: ["network", "load-balancer"] },
          ...(region.workerCount > 0 ? [{ name: "workers", displayName: "Workers", region: region.key, dependsOn: ["control-plane"] }] : [])
        ])
      ),

    // Find before create: each resource is looked up by its labels first, so a repeat creates nothing.
    apply: (deployment, step) =>
      Effect.gen(function* () {
        const region = deployment.regions.find((r) => r.key === step.region)!
        const { kind, role, count } = blueprint(deployment, step)
        const resources: Array<CloudProvider.CloudResource> = []
        const log: Array<string> = []
        for (let index = 1; index <= count; index++) {
          const labels = CloudProvider.ownershipLabels(deployment.id, region.key, role, count > 1 || role === "worker" ? index : undefined)
          const found = yield* Effect.mapError(api.list(labels), (error) => toCloudError(error, step))
          const name = `${Deployment.firstLabel(deployment.spec.sovereignFQDN)}-${region.key}-${role}${count > 1 || role === "worker" ? `-${index}` : ""}`
          const resource =
            found[0] ??
            (yield* Effect.mapError(api.create({ kind, name, location: region.cloudRegion, labels }), (error) => toCloudError(error, step)))
          log.push(`${found[0] === undefined ? "created" : "found"} ${kind} ${resource.name}`)
          resources.push(toResource(resource))
        }
        return { resources, log }
      }),

    outputs: (deployment) =>
      Effect.map(owned(deployment), (resources) =>
        deployment.regions.map((region) => {
          const inRegion = resources.filter((resource) => resource.labels["sovereign.dev/region"] === region.key)
          return {
            regionKey: region.key,
            controlPlaneIPs: inRegion
              .filter((r) => r.labels["sovereign.dev/role"] === "control-plane")
              .flatMap((r) => (r.ipv4 === undefined ? [] : [r.ipv4])),
            loadBalancerIP: inRegion.find((r) => r.kind === "load_balancer")?.ipv4 ?? ""
          }
        })
      ),

    inventory: (deployment) => Effect.map(owned(deployment), (resources) => resources.map(toResource)),

    // Servers before load balancers before networks; then verify that nothing is left.
    purge: (deployment) =>
      Effect.gen(function* () {
        const order = { server: 0, load_balancer: 1, network: 2 } as const
        const doomed = [...(yield* owned(deployment))].sort((a, b) => order[a.kind] - order[b.kind])
        const errors: Array<string> = []
        for (const resource of doomed) {
          yield* api
            .remove(resource.id)
            .pipe(Effect.catchAll((error) => Effect.sync(() => void errors.push(`${resource.name}: ${error.message}`))))
        }
        const remaining = (yield* owned(deployment)).map(toResource)
        return { deleted: doomed.map(toResource).filter((r) => !remaining.some((left) => left.id === r.id)), remaining, errors }
      })
  }
  return service
})

/** The adapter over an AcmeApi (in production: the HTTP client layer; in tests: `AcmeApi.layerMemory`). */
export const layer: Layer.Layer<CloudProvider.CloudProvider, never, AcmeApi> = Layer.effect(CloudProvider.CloudProvider, make)
