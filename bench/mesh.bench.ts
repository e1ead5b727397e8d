/**
 * ClusterMesh: the cost of the pure plan for the largest Sovereign (8 regions), and, for each way a
 * region's Cilium gets its peers, establish passes over three fake Kubernetes API servers (HTTPS, real
 * @kubernetes/client-node, Cilium installed by a Flux HelmRelease and rendered by the helm-controller
 * stand-in): the first pass that wires everything, the heal pass that must read only and write
 * nothing, and a pass after a peer's address changed; with the workload rollouts all of that caused.
 */
import { Certificates, CiliumMesh } from "@sovereign/adapter-cilium"
import { Deployment, MeshPlan, MeshProvider } from "@sovereign/core"
// A module path, not the testkit index: the index also loads the vitest-bound suites.
import * as CiliumWorld from "@sovereign/testkit/kubernetes/CiliumWorld"
import { Effect, Either } from "effect"
import type { Metric } from "./run.js"

const requestFor = (cloudRegions: ReadonlyArray<string>) =>
  Either.getOrThrow(
    Deployment.validate({
      sovereignFQDN: "t1.example.com",
      orgName: "Example",
      orgEmail: "ops@example.com",
      regions: cloudRegions.map((cloudRegion) => ({ provider: "hetzner", cloudRegion, controlPlaneSize: "cpx32" })),
      sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO3 ops@example.com"
    })
  )

const planCost = () => {
  const regions = Deployment.deriveRegions(
    requestFor(["fsn1", "nbg1", "hel1", "ash", "hil", "sin", "me-east-215-b", "eu-central-1"]),
    "0123456789abcdef"
  )
  const inputs = regions.map((region, index): MeshPlan.MeshRegionInput => ({
    regionKey: region.key,
    clusterName: region.clusterName,
    clusterId: region.clusterId,
    serviceType: "LoadBalancer",
    loadBalancerIP: `198.51.100.${index + 1}`,
    apiserverPort: 2379,
    caCert: `ca-${index}`,
    caKey: `ca-key-${index}`,
    remoteCert: `cert-${index}`,
    remoteKey: `key-${index}`,
    configuredClusterName: region.clusterName,
    configuredClusterId: region.clusterId,
    cilium: { version: "1.19.2", kvstoreMesh: true, chartRendersConfig: false }
  }))
  const current = MeshPlan.plan(inputs).map((plan) => ({
    secrets: plan.rendered.secrets,
    hostAliases: plan.rendered.hostAliases?.aliases ?? []
  }))
  const rounds = 2000
  const started = performance.now()
  for (let round = 0; round < rounds; round++) {
    MeshPlan.plan(inputs).forEach((plan, index) => MeshPlan.diff(current[index]!, plan))
  }
  return ((performance.now() - started) * 1000) / rounds
}

type Mode = {
  readonly name: string
  readonly cilium: { readonly version: string; readonly kvstoreMesh: boolean; readonly chartRendersConfig: boolean }
}

/** The ways a region's Cilium gets its peers: 1.20 with and without KVStoreMesh, written by Sovereign or rendered by the chart; and 1.19 with KVStoreMesh. */
const modes: ReadonlyArray<Mode> = [
  { name: "kvstoremesh", cilium: { version: "1.20.1", kvstoreMesh: true, chartRendersConfig: false } },
  { name: "direct", cilium: { version: "1.20.1", kvstoreMesh: false, chartRendersConfig: false } },
  { name: "kvstoremesh_chart", cilium: { version: "1.20.1", kvstoreMesh: true, chartRendersConfig: true } },
  { name: "direct_chart", cilium: { version: "1.20.1", kvstoreMesh: false, chartRendersConfig: true } },
  { name: "1_19_kvstoremesh", cilium: { version: "1.19.2", kvstoreMesh: true, chartRendersConfig: false } }
]

const establishCost = (mode: Mode) =>
  Effect.gen(function* () {
    const regions = Deployment.deriveRegions(requestFor(["fsn1", "hel1", "nbg1"]), "0123456789abcdef")
    const scope = yield* Effect.scope
    const { world, server } = yield* CiliumWorld.make(scope)
    const seedOf = (region: Deployment.Region, ip: string) => {
      const ca = Certificates.authority(`${region.clusterName} cilium-ca`, Date.now())
      return {
        cilium: mode.cilium,
        service: { type: "LoadBalancer", loadBalancerIP: ip, port: 2379 },
        ca,
        remote: Either.getOrThrow(Certificates.mintRemote(ca, Date.now())),
        local: undefined,
        ciliumConfig: { clusterName: region.clusterName, clusterId: region.clusterId }
      }
    }
    const seeds = regions.map((region, index) => seedOf(region, `203.0.113.${10 * (index + 1)}`))
    let meshRegions = yield* Effect.forEach(regions, (region, index) => world.seed(region, seeds[index]!))
    const servers = yield* Effect.forEach(regions, (region) => server(region.key))
    const mesh = yield* MeshProvider.MeshProvider
    const timed = Effect.gen(function* () {
      yield* Effect.forEach(servers, ({ api }) => api.clearRequests)
      const started = performance.now()
      const statuses = yield* mesh.establish("0123456789abcdef", meshRegions)
      const ms = performance.now() - started
      const requests = (yield* Effect.forEach(servers, ({ api }) => api.requests)).flat()
      return { ms, statuses, requests: requests.length, writes: requests.filter((request) => request.method !== "GET").length }
    })
    const restarts = Effect.map(
      Effect.forEach(regions, (region) => world.observe(region.key)),
      (observed) => observed.map((each) => each.restarts)
    )
    const first = yield* timed
    const heal = yield* timed
    if (!first.statuses.every((status) => status.readyAt !== undefined))
      throw new Error(`${mode.name}: the first pass did not mesh every region`)
    // A peer's load balancer gets another address; the next pass follows it.
    meshRegions = [
      meshRegions[0]!,
      yield* world.seed(regions[1]!, { ...seeds[1]!, service: { ...seeds[1]!.service, loadBalancerIP: "198.51.100.7" } }),
      meshRegions[2]!
    ]
    const moved = yield* timed
    if (!moved.statuses.every((status) => status.readyAt !== undefined))
      throw new Error(`${mode.name}: the pass after the address change did not mesh every region`)
    const counts = yield* restarts
    const total = (workload: "cilium" | "cilium-operator" | "clustermesh-apiserver") =>
      counts.reduce((sum, each) => sum + each[workload], 0)
    const all = total("cilium") + total("cilium-operator") + total("clustermesh-apiserver")
    const metrics: Record<string, Metric> = {
      [`mesh.establish_3_regions.first_pass.ms.${mode.name}`]: { value: first.ms, unit: "ms", goal: "—" },
      [`mesh.establish_3_regions.first_pass.writes.${mode.name}`]: { value: first.writes, unit: "requests", goal: "—" },
      [`mesh.establish_3_regions.heal_pass.ms.${mode.name}`]: { value: heal.ms, unit: "ms", goal: "—" },
      [`mesh.establish_3_regions.heal_pass.requests.${mode.name}`]: {
        value: heal.requests,
        unit: "requests",
        goal: mode.cilium.chartRendersConfig ? "<= 36" : "<= 27"
      },
      [`mesh.establish_3_regions.heal_pass.writes.${mode.name}`]: { value: heal.writes, unit: "requests", goal: "0" },
      [`mesh.establish_3_regions.restarts.${mode.name}`]: {
        value: all,
        unit: "rollouts",
        goal: mode.cilium.version.startsWith("1.19")
          ? "5 (clustermesh-apiserver only: once per region, again in the 2 regions whose peer moved)"
          : "0"
      }
    }
    if (mode.cilium.version.startsWith("1.19")) {
      metrics[`mesh.establish_3_regions.restarts.${mode.name}.agents_and_operator`] = {
        value: total("cilium") + total("cilium-operator"),
        unit: "rollouts",
        goal: "0"
      }
    }
    return metrics
  }).pipe(Effect.scoped)

export default (): Promise<Record<string, Metric>> =>
  Effect.runPromise(
    Effect.forEach(modes, establishCost).pipe(
      Effect.map(
        (all) =>
          Object.assign({ "mesh.plan_diff_8_regions.us": { value: planCost(), unit: "µs/pass", goal: "<= 10000" } }, ...all) as Record<
            string,
            Metric
          >
      ),
      Effect.provide(CiliumMesh.layerKubernetes())
    )
  )
