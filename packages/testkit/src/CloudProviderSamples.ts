/** Sample deployments and a plan runner for cloud adapters; free of test-runner imports so benchmarks can use them. */
import { CloudProvider, Deployment } from "@sovereign/core"
import { Effect, Either, Redacted } from "effect"

export interface SampleRegion {
  readonly provider: string
  readonly cloudRegion: string
  readonly controlPlaneSize: string
  readonly workerSize?: string
  readonly workerCount?: number
  readonly clusterMeshName?: string
}

export interface SampleOptions {
  readonly id: string
  readonly fqdn: string
  readonly regions: ReadonlyArray<SampleRegion>
  readonly haControlPlane?: boolean
  readonly credentials?: Readonly<Record<string, string>>
  readonly postbackBaseUrl?: string
  /** Each region's token is this followed by `-<regionKey>`. */
  readonly postbackToken?: string
  /** Each region's k3s join secret is this followed by `-<regionKey>`. */
  readonly joinSecret?: string
}

/** A validated deployment with its derivations, as the orchestrator hands it to the port. */
export const sampleDeployment = (options: SampleOptions): CloudProvider.CloudDeployment => {
  const request = {
    sovereignFQDN: options.fqdn,
    orgName: "Conformance",
    orgEmail: "ops@example.com",
    regions: options.regions,
    sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForConformanceTestsOnly0000000000000 ops@example.com",
    haControlPlane: options.haControlPlane ?? false,
    credentials: options.credentials ?? {}
  }
  const spec = Either.getOrThrowWith(Deployment.validate(request), (error) => new Error(error.message))
  const regions = Deployment.deriveRegions(spec, options.id)
  const perRegion = (make: (key: string) => string) =>
    Object.fromEntries(regions.map((region) => [region.key, Redacted.make(make(region.key))]))
  return {
    id: options.id,
    spec,
    regions,
    postback: {
      baseUrl: options.postbackBaseUrl ?? "https://sovereign.example.com",
      // Each region its own token, as the orchestrator derives them.
      tokens: perRegion((key) => `${options.postbackToken ?? "postback-token-for-conformance"}-${key}`)
    },
    clusterJoinSecrets: perRegion((key) => `${options.joinSecret ?? "k3s-join-secret-for-conformance"}-${key}`)
  }
}

/** Steps in dependency order per region, regions side by side: how the orchestrator applies a plan. */
export const orderSteps = (steps: ReadonlyArray<CloudProvider.CloudStep>): ReadonlyArray<ReadonlyArray<CloudProvider.CloudStep>> => {
  const regions = [...new Set(steps.map((step) => step.region))]
  return regions.map((region) => {
    const pending = steps.filter((step) => step.region === region)
    const done = new Set<string>()
    const ordered: Array<CloudProvider.CloudStep> = []
    while (pending.length > 0) {
      const ready = pending.findIndex((step) => step.dependsOn.every((dependency) => done.has(dependency)))
      if (ready < 0) throw new Error(`steps of region ${region} have a cycle or a dangling dependency`)
      const [step] = pending.splice(ready, 1)
      ordered.push(step!)
      done.add(step!.name)
    }
    return ordered
  })
}

/** Plans and applies every step (regions in parallel); returns each step's result by `<region>:<step>`. */
export const applyAll = (deployment: CloudProvider.CloudDeployment, options: { readonly stepsPerRegion?: number } = {}) =>
  Effect.gen(function* () {
    const cloud = yield* CloudProvider.CloudProvider
    const plan = yield* cloud.plan(deployment)
    const results = new Map<string, CloudProvider.StepResult>()
    yield* Effect.forEach(
      orderSteps(plan),
      (regionSteps) =>
        Effect.forEach(
          regionSteps.slice(0, options.stepsPerRegion ?? regionSteps.length),
          (step) =>
            cloud
              .apply(deployment, step)
              .pipe(Effect.tap((result) => Effect.sync(() => results.set(`${step.region}:${step.name}`, result)))),
          { discard: true }
        ),
      { concurrency: "unbounded", discard: true }
    )
    return results
  })
