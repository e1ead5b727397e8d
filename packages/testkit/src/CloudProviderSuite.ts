/** The CloudProvider conformance suite: every cloud adapter (and the simulator) must pass it against its own backend. */
import { describe, expect, it } from "@effect/vitest"
import { CloudProvider } from "@sovereign/core"
import { Context, Effect, Layer, Option } from "effect"
import type { Scope } from "effect"

/** What a backend holds, owned or not; lets the suite see what the port itself would not report. */
export interface CloudInspectorService {
  readonly resources: Effect.Effect<
    ReadonlyArray<{ readonly kind: string; readonly name: string; readonly labels: Readonly<Record<string, string>> }>
  >
}

/** Optional: a world that provides it gets the "nothing unowned, nothing left" checks too. */
export class CloudInspector extends Context.Tag("@sovereign/testkit/CloudInspector")<CloudInspector, CloudInspectorService>() {}

export { applyAll, sampleDeployment, type SampleRegion } from "./CloudProviderSamples.js"
import { applyAll, orderSteps, sampleDeployment, type SampleOptions, type SampleRegion } from "./CloudProviderSamples.js"

const deploymentLabel = "sovereign.dev/deployment"
const regionLabel = "sovereign.dev/region"

const byId = (resources: ReadonlyArray<CloudProvider.CloudResource>) =>
  [...resources].map((resource) => `${resource.kind}/${resource.id}/${resource.name}`).sort()

export interface CloudProviderSuiteOptions {
  /** Regions the sample deployments use (at least two, so the mesh-related naming is exercised). */
  readonly regions: ReadonlyArray<SampleRegion>
  readonly credentials?: Readonly<Record<string, string>>
  /** A cloudRegion the adapter must refuse, if it refuses any (the simulator accepts every name). */
  readonly unknownCloudRegion?: string
  /** Wraps every test program (e.g. to install a scaled Clock). */
  readonly around?: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/**
 * Registers the suite's tests in the calling test file. `layer` is a fresh world per test: the
 * provider, and optionally a CloudInspector of the same backend.
 */
export const suite = (
  name: string,
  layer: Layer.Layer<CloudProvider.CloudProvider, unknown, Scope.Scope>,
  options: CloudProviderSuiteOptions
): void => {
  const sample = (overrides: Partial<SampleOptions> = {}) =>
    sampleDeployment({
      id: "0123456789abcdef",
      fqdn: "t1.example.com",
      regions: options.regions,
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      ...overrides
    })
  const neighbour = () => sample({ id: "fedcba9876543210", fqdn: "t10.example.com" })

  const test = (name: string, body: Effect.Effect<void, unknown, CloudProvider.CloudProvider | Scope.Scope>) =>
    it.scopedLive(name, () => {
      const program = body.pipe(Effect.provide(layer))
      return options.around === undefined ? program : options.around(program)
    })

  const inspector = Effect.serviceOption(CloudInspector)

  describe(`CloudProvider conformance: ${name}`, () => {
    test(
      "declares the provider name requests use",
      Effect.gen(function* () {
        const cloud = yield* CloudProvider.CloudProvider
        expect(cloud.provider).toMatch(/^[a-z][a-z0-9-]*$/)
      })
    )

    test(
      "accepts the sample request",
      Effect.gen(function* () {
        const cloud = yield* CloudProvider.CloudProvider
        expect(yield* cloud.validate(sample().spec)).toEqual([])
      })
    )

    if (options.unknownCloudRegion !== undefined) {
      const unknown = options.unknownCloudRegion
      test(
        "names the field of a region it cannot build",
        Effect.gen(function* () {
          const cloud = yield* CloudProvider.CloudProvider
          const regions = options.regions.map((region, index) => (index === 1 ? { ...region, cloudRegion: unknown } : region))
          const issues = yield* cloud.validate(sample({ regions }).spec)
          expect(issues.map((issue) => issue.path)).toContain("regions.1.cloudRegion")
        })
      )
    }

    test(
      "plans steps for every region, with dependencies inside the region and no cycle",
      Effect.gen(function* () {
        const cloud = yield* CloudProvider.CloudProvider
        const deployment = sample()
        const plan = yield* cloud.plan(deployment)
        expect(new Set(plan.map((step) => step.region))).toEqual(new Set(deployment.regions.map((region) => region.key)))
        for (const step of plan) {
          const sameRegion = plan.filter((other) => other.region === step.region).map((other) => other.name)
          expect(step.name).not.toMatch(/[/:]/)
          for (const dependency of step.dependsOn) expect(sameRegion).toContain(dependency)
        }
        const keys = plan.map((step) => `${step.region}:${step.name}`)
        expect(new Set(keys).size).toBe(keys.length)
        expect(() => orderSteps(plan)).not.toThrow()
        expect(yield* cloud.plan(deployment)).toEqual(plan)
      })
    )

    test(
      "applies the plan, labels what it creates, and reports outputs for every region",
      Effect.gen(function* () {
        const cloud = yield* CloudProvider.CloudProvider
        const deployment = sample()
        yield* applyAll(deployment)
        const inventory = yield* cloud.inventory(deployment)
        expect(inventory.length).toBeGreaterThan(0)
        const keys = deployment.regions.map((region) => region.key)
        for (const resource of inventory) {
          expect(resource.labels[deploymentLabel]).toBe(deployment.id)
          expect(keys).toContain(resource.labels[regionLabel])
        }
        const outputs = yield* cloud.outputs(deployment)
        expect(outputs.map((output) => output.regionKey).sort()).toEqual([...keys].sort())
        for (const output of outputs) {
          expect(output.controlPlaneIPs.length).toBe(deployment.spec.haControlPlane ? 3 : 1)
          expect(output.loadBalancerIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
        }
      })
    )

    test(
      "a second apply of every step finds instead of creating",
      Effect.gen(function* () {
        const cloud = yield* CloudProvider.CloudProvider
        const deployment = sample()
        const first = yield* applyAll(deployment)
        const before = yield* cloud.inventory(deployment)
        const second = yield* applyAll(deployment)
        expect(byId(yield* cloud.inventory(deployment))).toEqual(byId(before))
        for (const [step, result] of first) {
          expect(byId(second.get(step)!.resources)).toEqual(byId(result.resources))
        }
      })
    )

    // `capabilities.resumable` decides the restart policy (DeploymentStatus.resumeDecision): a provider
    // that claims it is held to it here.
    test(
      "if it declares itself resumable, resumes a half-applied deployment without duplicating anything",
      Effect.gen(function* () {
        const cloud = yield* CloudProvider.CloudProvider
        if (!cloud.capabilities.resumable) return
        const deployment = sample({ haControlPlane: true })
        yield* applyAll(deployment, { stepsPerRegion: 2 })
        yield* applyAll(deployment)
        const inventory = yield* cloud.inventory(deployment)
        const names = inventory.map((resource) => `${resource.kind}/${resource.name}`)
        expect(new Set(names).size).toBe(names.length)
        yield* applyAll(deployment)
        expect(byId(yield* cloud.inventory(deployment))).toEqual(byId(inventory))
        const outputs = yield* cloud.outputs(deployment)
        for (const output of outputs) expect(output.controlPlaneIPs.length).toBe(3)
      })
    )

    test(
      "creates nothing it does not label as its own",
      Effect.gen(function* () {
        const deployment = sample()
        yield* applyAll(deployment)
        const backend = yield* inspector
        if (Option.isNone(backend)) return
        // A fresh world holds only what this deployment created: all of it must carry its label.
        const everything = yield* backend.value.resources
        expect(everything.length).toBeGreaterThan(0)
        for (const resource of everything) expect(resource.labels[deploymentLabel], `${resource.kind} ${resource.name}`).toBe(deployment.id)
      })
    )

    test(
      "purges everything it owns, verifies it, and a second purge finds nothing",
      Effect.gen(function* () {
        const cloud = yield* CloudProvider.CloudProvider
        const deployment = sample()
        yield* applyAll(deployment)
        const report = yield* cloud.purge(deployment)
        expect(report.remaining).toEqual([])
        expect(report.errors).toEqual([])
        expect(report.deleted.length).toBeGreaterThan(0)
        expect(yield* cloud.inventory(deployment)).toEqual([])
        const backend = yield* inspector
        if (Option.isSome(backend)) {
          const left = (yield* backend.value.resources).filter((resource) => resource.labels[deploymentLabel] === deployment.id)
          expect(left).toEqual([])
        }
        const again = yield* cloud.purge(deployment)
        expect(again.deleted).toEqual([])
        expect(again.remaining).toEqual([])
      })
    )

    test(
      "purging t1 never touches t10, whose names merely share a prefix",
      Effect.gen(function* () {
        const cloud = yield* CloudProvider.CloudProvider
        const mine = sample()
        const theirs = neighbour()
        yield* applyAll(theirs)
        yield* applyAll(mine)
        const theirsBefore = yield* cloud.inventory(theirs)
        const report = yield* cloud.purge(mine)
        expect(report.remaining).toEqual([])
        for (const resource of report.deleted) expect(resource.labels[deploymentLabel] ?? mine.id).toBe(mine.id)
        expect(byId(yield* cloud.inventory(theirs))).toEqual(byId(theirsBefore))
        expect((yield* cloud.outputs(theirs)).length).toBe(theirs.regions.length)
      })
    )
  })
}
