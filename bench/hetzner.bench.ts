/**
 * Hetzner adapter: API calls of one region's Phase 0 (action polls excluded) against the fake API
 * through the real client, calls of a resumed (fully built) run and of a purge, the replay speed of
 * the crash test, and the largest cloud-init user-data against Hetzner's 32 KiB limit.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { CloudInit, HetznerCloud } from "@sovereign/adapter-hetzner"
import { CloudProvider } from "@sovereign/core"
// Module paths, not the testkit index: the index also loads the vitest-bound suites.
import * as CloudProviderSuite from "@sovereign/testkit/CloudProviderSamples"
import * as FakeHetznerApi from "@sovereign/testkit/FakeHetznerApi"
import * as ScaledClock from "@sovereign/testkit/hetzner/ScaledClock"
import { Effect, Layer, Redacted } from "effect"

const oneRegion = CloudProviderSuite.sampleDeployment({
  id: "0123456789abcdef",
  fqdn: "t1.omani.works",
  regions: [{ provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx32", workerSize: "cpx42", workerCount: 2 }]
})

const cloudOver = (fake: FakeHetznerApi.FakeHetznerApi) =>
  HetznerCloud.layer({ token: Redacted.make(fake.token), client: { endpoint: fake.endpoint } }).pipe(Layer.provide(NodeHttpClient.layer))

const calls = (requests: ReadonlyArray<FakeHetznerApi.RecordedRequest>) =>
  requests.filter((request) => !FakeHetznerApi.isActionPoll(request)).length

const measure = Effect.gen(function* () {
  const fake = yield* FakeHetznerApi.make({})
  const cloud = cloudOver(fake)
  const started = performance.now()
  yield* CloudProviderSuite.applyAll(oneRegion).pipe(Effect.provide(cloud))
  const phase0Ms = performance.now() - started
  const phase0 = yield* fake.requests
  yield* fake.resetLog
  // A new process resuming a finished Phase 0: everything is found, nothing created.
  yield* CloudProviderSuite.applyAll(oneRegion).pipe(Effect.provide(cloudOver(fake)))
  const resumed = yield* fake.requests
  yield* fake.resetLog
  yield* Effect.flatMap(CloudProvider.CloudProvider, (provider) => provider.purge(oneRegion)).pipe(Effect.provide(cloud))
  const purge = yield* fake.requests
  return { phase0: calls(phase0), polls: phase0.length - calls(phase0), resumed: calls(resumed), purge: calls(purge), phase0Ms }
})

const eightRegions = CloudProviderSuite.sampleDeployment({
  id: "0123456789abcdef",
  fqdn: "t1.omani.works",
  regions: ["fsn1", "nbg1", "hel1", "fsn1", "nbg1", "hel1", "fsn1", "nbg1"].map((cloudRegion, index) => ({
    provider: "hetzner",
    cloudRegion,
    controlPlaneSize: "cpx32",
    workerSize: "cpx42",
    workerCount: 3,
    ...(index >= 3 ? { clusterMeshName: `t1-${"x".repeat(50)}-${index}` } : {})
  })),
  haControlPlane: true
})

export default async () => {
  const result = await Effect.runPromise(Effect.scoped(measure).pipe(Effect.withClock(ScaledClock.make(1000))))
  const largestUserData = Math.max(
    ...eightRegions.regions.map((region) => CloudInit.sizeInBytes(CloudInit.controlPlane({ deployment: eightRegions, region, index: 0 })))
  )
  return {
    "hetzner.api_calls_per_region": {
      value: result.phase0,
      unit: "calls",
      goal: "<= 13 (1 control plane, 2 workers: one labelled list per step + one create per resource)"
    },
    "hetzner.action_polls_per_region": { value: result.polls, unit: "calls" },
    "hetzner.api_calls_resume_per_region": { value: result.resumed, unit: "calls", goal: "<= 7 (one list per step, no create)" },
    "hetzner.api_calls_purge_per_region": { value: result.purge, unit: "calls" },
    "hetzner.phase0_wall_ms_per_region_fake": { value: Math.round(result.phase0Ms), unit: "ms" },
    "hetzner.cloud_init_max_bytes": { value: largestUserData, unit: "bytes", goal: `< ${CloudInit.userDataLimitBytes}` }
  }
}
