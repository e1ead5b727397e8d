import { Deployment, MeshProvider } from "@sovereign/core"
import { MeshWorld, meshProviderSuite, suiteRegions, testAuthority, testRemoteCertificate } from "@sovereign/testkit/MeshProviderSuite"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as CiliumMesh from "../src/CiliumMesh.js"
import { makeMemoryWorld } from "./MemoryClusters.js"

// The mesh logic against in-memory clusters; Conformance.test.ts runs the same suite over the Kubernetes API.
meshProviderSuite(
  "CiliumMesh over in-memory clusters",
  Layer.suspend(() => {
    const { clustersLayer, worldLayer } = makeMemoryWorld()
    return Layer.merge(CiliumMesh.layer().pipe(Layer.provide(clustersLayer)), worldLayer)
  }),
  { mintsRemoteCertificates: true }
)

const [primary, helsinki] = suiteRegions as [Deployment.Region, Deployment.Region]

/** Two healthy regions in a fresh in-memory world, plus the world's tamper controls. */
const twoRegions = Effect.gen(function* () {
  const { clustersLayer, worldLayer, tamper } = makeMemoryWorld()
  const layer = Layer.merge(CiliumMesh.layer().pipe(Layer.provide(clustersLayer)), worldLayer)
  const seedOf = (region: Deployment.Region, ip: string) => {
    const ca = testAuthority(region.clusterName)
    return {
      service: { type: "LoadBalancer", loadBalancerIP: ip, port: 2379 },
      ca,
      remote: testRemoteCertificate(ca),
      ciliumConfig: { clusterName: region.clusterName, clusterId: region.clusterId }
    }
  }
  const regions = yield* Effect.flatMap(MeshWorld, (world) =>
    Effect.all([world.seed(primary, seedOf(primary, "203.0.113.10")), world.seed(helsinki, seedOf(helsinki, "203.0.113.20"))])
  ).pipe(Effect.provide(layer))
  const establish = Effect.flatMap(MeshProvider.MeshProvider, (mesh) => mesh.establish("0123456789abcdef", regions)).pipe(Effect.provide(layer))
  return { tamper, establish }
})

describe("CiliumMesh", () => {
  it.effect(
    "a remote-cert Secret without tls.crt/tls.key is reported and left alone",
    () =>
      Effect.gen(function* () {
        const { tamper, establish } = yield* twoRegions
        yield* tamper.putSecret(helsinki.key, "clustermesh-apiserver-remote-cert", { "ca.crt": "x" })
        const statuses = yield* establish
        expect(statuses[0]!.peers[0]).toMatchObject({ configured: false, error: expect.stringMatching(/exists but holds no tls.crt and tls.key/) })
        expect(yield* tamper.secret(helsinki.key, "clustermesh-apiserver-remote-cert")).toEqual({ "ca.crt": "x" })
      }),
    60_000
  )

  it.effect(
    "a region without the cilium DaemonSet reports it and gets no Secret; its peer is still configured",
    () =>
      Effect.gen(function* () {
        const { tamper, establish } = yield* twoRegions
        yield* tamper.removeDaemonSet(helsinki.key)
        const [first, second] = yield* establish
        expect(second!.error).toMatch(/DaemonSet kube-system\/cilium not found/)
        expect(second!.readyAt).toBeUndefined()
        expect(second!.peers[0]).toMatchObject({ configured: false, error: expect.stringMatching(/^secret apply failed/) })
        expect(yield* tamper.secret(helsinki.key, "cilium-clustermesh")).toBeUndefined()
        expect(first!.readyAt).toBeTypeOf("number")
      }),
    60_000
  )

  it.effect(
    "a failed rollout restart is a warning: the Secret and hostAliases are written and the region is ready",
    () =>
      Effect.gen(function* () {
        const { tamper, establish } = yield* twoRegions
        yield* tamper.failRestarts(helsinki.key)
        const [, second] = yield* establish
        expect(second!.error).toBeUndefined()
        expect(second!.readyAt).toBeTypeOf("number")
        expect(Object.keys((yield* tamper.secret(helsinki.key, "cilium-clustermesh")) ?? {})).toHaveLength(4)
      }),
    60_000
  )
})
