/** Test world: the fake Hetzner API on a loopback port, the real client and adapter in front of it, one scaled clock for both. */
import { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { CloudProviderSuite, FakeHetznerApi, ScaledClock } from "@sovereign/testkit"
import { Effect, Layer, Redacted } from "effect"
import * as HetznerCloud from "../src/HetznerCloud.js"

/** 1 s of API time passes in 1 ms: backoffs, action polls and budget refills stay real but fast. */
export const timeScale = 1000

export const scaled = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => Effect.withClock(self, ScaledClock.make(timeScale))

export const adapterOptions = (fake: FakeHetznerApi.FakeHetznerApi, extra: HetznerCloud.LayerOptions = {}): HetznerCloud.LayerOptions => ({
  token: Redacted.make(fake.token),
  ...extra,
  client: { endpoint: fake.endpoint, ...extra.client }
})

/** The adapter in front of an existing fake, over a socket. */
export const adapterLayer = (fake: FakeHetznerApi.FakeHetznerApi, extra: HetznerCloud.LayerOptions = {}) =>
  HetznerCloud.layer(adapterOptions(fake, extra)).pipe(Layer.provide(NodeHttpClient.layer))

/** The same adapter and client over the fake's in-process transport (no socket): for replay loops. */
export const inProcessAdapterLayer = (fake: FakeHetznerApi.FakeHetznerApi, extra: HetznerCloud.LayerOptions = {}) =>
  HetznerCloud.layer(adapterOptions(fake, extra)).pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, fake.httpClient)))

/** A fresh fake per build, with the suite's inspector reading its resources. */
export const worldLayer = (fakeOptions: FakeHetznerApi.FakeHetznerOptions = {}) =>
  Layer.unwrapScoped(
    Effect.map(FakeHetznerApi.make(fakeOptions), (fake) =>
      Layer.merge(adapterLayer(fake), Layer.succeed(CloudProviderSuite.CloudInspector, { resources: fake.resources }))
    )
  )

export const regions = [
  { provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx32", workerSize: "cpx42", workerCount: 2 },
  { provider: "hetzner", cloudRegion: "hel1", controlPlaneSize: "cpx32", workerCount: 0 }
] as const
