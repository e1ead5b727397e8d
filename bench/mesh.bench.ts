/**
 * ClusterMesh: the cost of the pure plan for the largest Sovereign (8 regions), and of one
 * establish pass over three fake Kubernetes API servers (HTTPS, real @kubernetes/client-node):
 * the first pass that wires everything, and the heal pass that must read only and write nothing.
 */
import { Certificates, CiliumMesh } from "@sovereign/adapter-cilium"
import { Deployment, MeshPlan, MeshProvider } from "@sovereign/core"
// A module path, not the testkit index: the index also loads the vitest-bound suites.
import * as FakeKubernetesApi from "@sovereign/testkit/FakeKubernetesApi"
import { Effect, Either, Redacted } from "effect"
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
  const regions = Deployment.deriveRegions(requestFor(["fsn1", "nbg1", "hel1", "ash", "hil", "sin", "me-east-215-b", "eu-central-1"]), "0123456789abcdef")
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
    configuredClusterId: region.clusterId
  }))
  const current = MeshPlan.plan(inputs).map((plan) => ({ secretData: plan.secretData, hostAliases: plan.hostAliases }))
  const rounds = 2000
  const started = performance.now()
  for (let round = 0; round < rounds; round++) {
    MeshPlan.plan(inputs).forEach((plan, index) => MeshPlan.diff(current[index]!, plan))
  }
  return ((performance.now() - started) * 1000) / rounds
}

const namespace = "kube-system"
const base64 = (data: Record<string, string>) => Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString("base64")]))

const seed = (api: FakeKubernetesApi.FakeKubernetesApi, region: Deployment.Region, ip: string) =>
  Effect.gen(function* () {
    const ca = Certificates.authority(`${region.clusterName} cilium-ca`, Date.now())
    const remote = Either.getOrThrow(Certificates.mintRemote(ca, Date.now()))
    yield* api.put({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "clustermesh-apiserver", namespace },
      spec: { type: "LoadBalancer", ports: [{ port: 2379 }] },
      status: { loadBalancer: { ingress: [{ ip }] } }
    })
    yield* api.put({ apiVersion: "v1", kind: "Secret", metadata: { name: "cilium-ca", namespace }, data: base64({ "ca.crt": ca.cert, "ca.key": ca.key }) })
    yield* api.put({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "clustermesh-apiserver-remote-cert", namespace },
      data: base64({ "tls.crt": remote.cert, "tls.key": remote.key })
    })
    yield* api.put({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "cilium-config", namespace },
      data: { "cluster-name": region.clusterName, "cluster-id": String(region.clusterId) }
    })
    for (const [kind, name] of [["DaemonSet", "cilium"], ["Deployment", "cilium-operator"], ["Deployment", "clustermesh-apiserver"]] as const) {
      yield* api.put({
        apiVersion: "apps/v1",
        kind,
        metadata: { name, namespace },
        spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image: "cilium" }] } } }
      })
    }
    return { region, kubeconfig: Redacted.make(api.kubeconfig) }
  })

const establishCost = Effect.gen(function* () {
  const regions = Deployment.deriveRegions(requestFor(["fsn1", "hel1", "nbg1"]), "0123456789abcdef")
  const authority = FakeKubernetesApi.makeCertificateAuthority("bench-kubernetes-ca")
  const servers = yield* Effect.forEach(regions, () => FakeKubernetesApi.make({ authority }))
  const meshRegions = yield* Effect.forEach(regions, (region, index) => seed(servers[index]!, region, `203.0.113.${10 * (index + 1)}`))
  const mesh = yield* MeshProvider.MeshProvider
  const timed = Effect.gen(function* () {
    yield* Effect.forEach(servers, (server) => server.clearRequests)
    const started = performance.now()
    const statuses = yield* mesh.establish("0123456789abcdef", meshRegions)
    const ms = performance.now() - started
    const requests = (yield* Effect.forEach(servers, (server) => server.requests)).flat()
    return { ms, statuses, requests: requests.length, writes: requests.filter((request) => request.method !== "GET").length }
  })
  const first = yield* timed
  const heal = yield* timed
  if (!first.statuses.every((status) => status.readyAt !== undefined)) throw new Error("the first pass did not mesh every region")
  return {
    "mesh.plan_diff_8_regions.us": { value: planCost(), unit: "µs/pass", goal: "<= 10000" },
    "mesh.establish_3_regions.first_pass.ms": { value: first.ms, unit: "ms", goal: "—" },
    "mesh.establish_3_regions.first_pass.writes": { value: first.writes, unit: "requests", goal: "—" },
    "mesh.establish_3_regions.heal_pass.ms": { value: heal.ms, unit: "ms", goal: "—" },
    "mesh.establish_3_regions.heal_pass.requests": { value: heal.requests, unit: "requests", goal: "<= 21" },
    "mesh.establish_3_regions.heal_pass.writes": { value: heal.writes, unit: "requests", goal: "0" }
  } satisfies Record<string, Metric>
}).pipe(Effect.provide(CiliumMesh.layerKubernetes()))

export default (): Promise<Record<string, Metric>> => Effect.runPromise(Effect.scoped(establishCost))
