/** The DNS dry run of a deployment (`Orchestrator.dnsPlan`, behind `GET …/dns/plan`): built from the record, changes nothing. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Option, Redacted, Ref, Stream, TestClock } from "effect"
import { CloudProvider, type CloudProviderService } from "../src/CloudProvider.js"
import { ClusterWatch, ReleaseEvent } from "../src/ClusterWatch.js"
import { publicSpec, validate } from "../src/Deployment.js"
import type { DeploymentRecord } from "../src/DeploymentRepo.js"
import type { DnsChanges, RecordSet } from "../src/DnsPlan.js"
import { DnsProvider } from "../src/DnsProvider.js"
import { Kubeconfigs } from "../src/Kubeconfigs.js"
import * as Orchestrator from "../src/Orchestrator.js"
import * as Memory from "../src/testing/Memory.js"
import { request } from "./support/requests.js"

const cloud: CloudProviderService = {
  provider: "fake",
  capabilities: { resumable: true },
  validate: () => Effect.succeed([]),
  plan: (deployment) =>
    Effect.succeed(deployment.regions.map((region) => ({ name: "servers", displayName: "Servers", region: region.key, dependsOn: [] }))),
  apply: () => Effect.succeed({ resources: [], log: [] }),
  outputs: (deployment) =>
    Effect.succeed(
      deployment.regions.map((region) => ({
        regionKey: region.key,
        controlPlaneIPs: ["192.0.2.1"],
        loadBalancerIP: "192.0.2.2",
        consoleLoadBalancerIP: "192.0.2.3"
      }))
    ),
  inventory: () => Effect.succeed([]),
  purge: () => Effect.succeed({ deleted: [], remaining: [], errors: [] })
}

const readyCluster = Layer.succeed(ClusterWatch, {
  watch: () =>
    Stream.concat(
      Stream.make(
        ReleaseEvent.Observed({
          release: {
            name: "bp-base",
            namespace: "flux-system",
            generation: 1,
            observedGeneration: 1,
            suspend: false,
            conditions: [{ type: "Ready", status: "True", reason: "InstallSucceeded", message: "ok" }],
            dependsOn: []
          }
        }),
        ReleaseEvent.Synced()
      ),
      Stream.never
    )
})

/** One zone held in memory; `applies` counts the writes. */
const memoryDns = (zone: string) => {
  const records = Effect.runSync(Ref.make<ReadonlyArray<RecordSet>>([]))
  const applies = Effect.runSync(Ref.make(0))
  const key = (record: RecordSet) => `${record.name} ${record.type}`
  const layer = Layer.succeed(DnsProvider, {
    zones: () => Effect.succeed([zone]),
    records: () => Ref.get(records),
    apply: (_zone, changes: DnsChanges) =>
      Effect.zipRight(
        Ref.update(applies, (n) => n + 1),
        Ref.update(records, (current) => {
          const touched = new Set([...changes.create, ...changes.update, ...changes.delete].map(key))
          return [...current.filter((record) => !touched.has(key(record))), ...changes.create, ...changes.update]
        })
      )
  })
  return { layer, records, applies }
}

const layer = (dns: Layer.Layer<DnsProvider> | undefined) =>
  Orchestrator.layer.pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        Memory.layer(Memory.makeState()),
        Layer.succeed(CloudProvider, cloud),
        readyCluster,
        dns ?? Layer.empty,
        Orchestrator.layerSettings()
      )
    )
  )

const settle = Effect.gen(function* () {
  for (let i = 0; i < 4; i++) {
    yield* TestClock.adjust("30 seconds")
    for (let j = 0; j < 5; j++) yield* Effect.yieldNow()
  }
})

const record = (regions: DeploymentRecord["results"]["regions"]): DeploymentRecord => ({
  id: "0123456789abcdef",
  owner: "ops@example.com",
  status: "provisioning",
  spec: publicSpec(Either.getOrThrow(validate(request))),
  sealedCredentials: "",
  results: { regions },
  version: 1,
  createdAt: 0,
  updatedAt: 0
})

const region = (key: string, primary: boolean, lb?: { readonly ip: string; readonly console?: string }) => ({
  regionKey: key,
  cloudRegion: key,
  provider: "fake",
  primary,
  phase0: "succeeded" as const,
  ...(lb === undefined ? {} : { loadBalancerIP: lb.ip }),
  ...(lb?.console === undefined ? {} : { consoleLoadBalancerIP: lb.console })
})

describe("DNS plan of a deployment", () => {
  it("the publish input comes from the primary region's load balancers, once it has one", () => {
    expect(Orchestrator.publishInputOf(record([region("r1", true), region("r2", false, { ip: "192.0.2.9" })]), undefined)).toEqual(
      Option.none()
    )
    expect(
      Orchestrator.publishInputOf(
        record([region("r2", false, { ip: "192.0.2.9" }), region("r1", true, { ip: "192.0.2.2", console: "192.0.2.3" })]),
        ["console"]
      )
    ).toEqual(
      Option.some({
        deploymentId: "0123456789abcdef",
        fqdn: "t1.example.com",
        parentDomains: ["example.com"],
        loadBalancers: { primary: "192.0.2.2", console: "192.0.2.3" },
        subdomains: ["console"]
      })
    )
  })

  it.scoped("after publishing, the plan has nothing left to change and the dry run writes nothing; a wipe withdraws it", () =>
    Effect.gen(function* () {
      const dns = memoryDns("example.com.")
      yield* Effect.gen(function* () {
        const orchestrator = yield* Orchestrator.Orchestrator
        const created = yield* orchestrator.create(request, "ops@example.com")
        yield* settle
        yield* Effect.flatMap(Kubeconfigs, (k) => k.put(created.id, "r1", Redacted.make("apiVersion: v1"), 0))
        yield* settle
        expect((yield* Ref.get(dns.records)).length).toBe(19)
        const writes = yield* Ref.get(dns.applies)

        const plan = yield* orchestrator.dnsPlan(created.id)
        expect(plan).toEqual({
          plans: [{ zone: "example.com.", changes: { create: [], update: [], delete: [] }, applied: false }],
          warnings: []
        })

        // Someone removed a record: the plan shows it would be created again, and writes nothing itself.
        yield* Ref.update(dns.records, (records) => records.filter((r) => r.name !== "console.t1.example.com."))
        const drift = yield* orchestrator.dnsPlan(created.id)
        expect(drift.plans[0]?.changes.create.map((r) => [r.name, r.records])).toEqual([["console.t1.example.com.", ["192.0.2.3"]]])
        expect(yield* Ref.get(dns.applies)).toBe(writes)

        expect((yield* Effect.flip(orchestrator.dnsPlan("ffffffffffffffff"))).reason).toBe("NotFound")
        yield* orchestrator.wipe(created.id, { force: true })
        expect((yield* Effect.flip(orchestrator.dnsPlan(created.id))).reason).toBe("Withdrawn")
      }).pipe(Effect.provide(layer(dns.layer)))
    })
  )

  it.scoped("without a DNS provider the plan is disabled", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request, "ops@example.com")
      const error = yield* Effect.flip(orchestrator.dnsPlan(created.id))
      expect(error.reason).toBe("Disabled")
    }).pipe(Effect.provide(layer(undefined)))
  )
})
