/** The MeshProvider conformance suite (SPEC 2.8): any adapter plus a driver of its world must pass it. */
import { Deployment, MeshPlan, MeshProvider } from "@sovereign/core"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Layer } from "effect"
import { X509Certificate, generateKeyPairSync, randomBytes } from "node:crypto"
import forge from "node-forge"

/** A certificate and its private key, PEM. */
export interface KeyPair {
  readonly cert: string
  readonly key: string
}

/** What one region's cluster holds before a pass; `undefined` means the object is absent. */
export interface MeshRegionSeed {
  /** The `clustermesh-apiserver` Service. */
  readonly service: { readonly type: string; readonly loadBalancerIP: string | undefined; readonly port: number } | undefined
  /** `cilium-ca`. */
  readonly ca: KeyPair | undefined
  /** `clustermesh-apiserver-remote-cert` (CN=remote, signed by `ca`). */
  readonly remote: KeyPair | undefined
  /** cluster-name / cluster-id of `cilium-config`. */
  readonly ciliumConfig: { readonly clusterName: string; readonly clusterId: number } | undefined
}

export const workloads = ["cilium", "cilium-operator", "clustermesh-apiserver"] as const
export type Workload = (typeof workloads)[number]

/** What one region's cluster holds after a pass. */
export interface MeshRegionObservation {
  /** `kube-system/cilium-clustermesh` data as text; undefined when the Secret does not exist. */
  readonly secretData: Readonly<Record<string, string>> | undefined
  /** The `cilium` DaemonSet's pod template hostAliases. */
  readonly hostAliases: ReadonlyArray<MeshPlan.HostAlias>
  /** `clustermesh-apiserver-remote-cert` as stored now (a minted one must have been persisted). */
  readonly remote: KeyPair | undefined
  /** Opaque versions that change whenever the object is written (resourceVersion for Kubernetes). */
  readonly secretRevision: string | undefined
  readonly workloadRevisions: Readonly<Record<Workload, string | undefined>>
  /** Whether a rollout restart was requested on the workload at any time. */
  readonly restarted: Readonly<Record<Workload, boolean>>
}

export interface MeshWorldService {
  /** Creates or replaces the objects of one region's cluster; the returned region addresses it. */
  readonly seed: (region: Deployment.Region, seed: MeshRegionSeed) => Effect.Effect<MeshProvider.MeshRegion>
  readonly observe: (regionKey: string) => Effect.Effect<MeshRegionObservation>
}

/** The world the provider under test acts on, seeded and observed by the suite. */
export class MeshWorld extends Context.Tag("@sovereign/testkit/MeshWorld")<MeshWorld, MeshWorldService>() {}

export interface MeshProviderSuiteOptions {
  /** The provider mints a CN=remote client cert signed by the region's CA when the region has none. */
  readonly mintsRemoteCertificates: boolean
}

// ---------------------------------------------------------------------------------------------
// Test certificates (real ones, so an adapter that checks chains can run the suite)

const freshKey = () =>
  generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString()

const forgeCertificate = (key: string, commonName: string, isAuthority: boolean) => {
  const cert = forge.pki.createCertificate()
  const privateKey = forge.pki.privateKeyFromPem(key) as forge.pki.rsa.PrivateKey
  cert.publicKey = forge.pki.setRsaPublicKey(privateKey.n, privateKey.e)
  const serial = randomBytes(12)
  serial[0] = serial[0]! & 0x7f
  cert.serialNumber = serial.toString("hex")
  cert.validity.notBefore = new Date(Date.now() - 3_600_000)
  cert.validity.notAfter = new Date(Date.now() + 365 * 86_400_000)
  cert.setSubject([{ name: "commonName", value: commonName }])
  cert.setExtensions(
    isAuthority
      ? [{ name: "basicConstraints", cA: true, critical: true }, { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true }]
      : [{ name: "basicConstraints", cA: false }, { name: "keyUsage", digitalSignature: true, keyEncipherment: true }, { name: "extKeyUsage", clientAuth: true }]
  )
  return cert
}

/** A self-signed CA standing in for a region's `cilium-ca`. */
export const testAuthority = (commonName: string): KeyPair => {
  const key = freshKey()
  const cert = forgeCertificate(key, commonName, true)
  cert.setIssuer(cert.subject.attributes)
  cert.sign(forge.pki.privateKeyFromPem(key) as forge.pki.rsa.PrivateKey, forge.md.sha256.create())
  return { cert: forge.pki.certificateToPem(cert), key }
}

/** A CN=remote client certificate signed by `ca`, like the chart's `clustermesh-apiserver-remote-cert`. */
export const testRemoteCertificate = (ca: KeyPair): KeyPair => {
  const key = freshKey()
  const cert = forgeCertificate(key, "remote", false)
  cert.setIssuer(forge.pki.certificateFromPem(ca.cert).subject.attributes)
  cert.sign(forge.pki.privateKeyFromPem(ca.key) as forge.pki.rsa.PrivateKey, forge.md.sha256.create())
  return { cert: forge.pki.certificateToPem(cert), key }
}

// ---------------------------------------------------------------------------------------------
// The deployment the suite meshes

const spec = Either.getOrThrow(
  Deployment.validate({
    sovereignFQDN: "t1.example.com",
    orgName: "Example",
    orgEmail: "ops@example.com",
    regions: [
      { provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx32" },
      { provider: "hetzner", cloudRegion: "hel1", controlPlaneSize: "cpx32" },
      { provider: "hetzner", cloudRegion: "nbg1", controlPlaneSize: "cpx32" }
    ],
    sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO3 ops@example.com"
  })
)
const deploymentId = "0123456789abcdef"
/** fsn1 → t1-mesh, hel1-1 → t1-hel, nbg1-2 → t1-nbg, with ids from the one derivation. */
export const suiteRegions = Deployment.deriveRegions(spec, deploymentId)
const [primary, helsinki, nuremberg] = suiteRegions as [Deployment.Region, Deployment.Region, Deployment.Region]
const addresses: Record<string, string> = { [primary.key]: "203.0.113.10", [helsinki.key]: "203.0.113.20", [nuremberg.key]: "203.0.113.30" }

let material: Record<string, { readonly ca: KeyPair; readonly remote: KeyPair }> | undefined
const materialOf = (region: Deployment.Region) => {
  material ??= Object.fromEntries(
    suiteRegions.map((each) => {
      const ca = testAuthority(`${each.clusterName} cilium-ca`)
      return [each.key, { ca, remote: testRemoteCertificate(ca) }]
    })
  )
  return material[region.key]!
}

const healthySeed = (region: Deployment.Region): MeshRegionSeed => ({
  service: { type: "LoadBalancer", loadBalancerIP: addresses[region.key], port: 2379 },
  ca: materialOf(region).ca,
  remote: materialOf(region).remote,
  ciliumConfig: { clusterName: region.clusterName, clusterId: region.clusterId }
})

const seedAll = (overrides: Partial<Record<string, Partial<MeshRegionSeed>>> = {}) =>
  Effect.flatMap(MeshWorld, (world) =>
    Effect.forEach(suiteRegions, (region) => world.seed(region, { ...healthySeed(region), ...overrides[region.key] }))
  )

const establish = (regions: ReadonlyArray<MeshProvider.MeshRegion>) =>
  Effect.flatMap(MeshProvider.MeshProvider, (provider) => provider.establish(deploymentId, regions))

const observeAll = Effect.flatMap(MeshWorld, (world) =>
  Effect.forEach(suiteRegions, (region) => Effect.map(world.observe(region.key), (observation) => [region.key, observation] as const))
).pipe(Effect.map((entries) => Object.fromEntries(entries) as Record<string, MeshRegionObservation>))

const statusOf = (statuses: ReadonlyArray<MeshPlan.MeshRegionStatus>, region: Deployment.Region) => {
  const status = statuses.find((each) => each.regionKey === region.key)
  expect(status, `status of ${region.key}`).toBeDefined()
  return status!
}

const peerOf = (status: MeshPlan.MeshRegionStatus, peer: Deployment.Region) => {
  const found = status.peers.find((each) => each.name === peer.clusterName)
  expect(found, `peer ${peer.clusterName} in ${status.regionKey}`).toBeDefined()
  return found!
}

const peerKeysIn = (data: Readonly<Record<string, string>> | undefined, peer: Deployment.Region) =>
  Object.keys(data ?? {}).filter((key) => key === peer.clusterName || key.startsWith(`${peer.clusterName}-ca.`) || key.startsWith(`${peer.clusterName}.`))

const aliasedHostnames = (observation: MeshRegionObservation) =>
  observation.hostAliases.flatMap((alias) => alias.hostnames.map((hostname) => `${alias.ip} ${hostname}`)).sort()

const expectedAliases = (region: Deployment.Region, ips: Record<string, string> = addresses) =>
  suiteRegions
    .filter((peer) => peer.key !== region.key)
    .map((peer) => `${ips[peer.key]} ${MeshPlan.peerHostname(peer.clusterName)}`)
    .sort()

const isSignedBy = (certPem: string, caPem: string) => {
  const cert = new X509Certificate(certPem)
  const ca = new X509Certificate(caPem)
  return cert.checkIssued(ca) && cert.verify(ca.publicKey)
}

/**
 * Registers the suite. `layer` is built afresh for every test and provides the provider under test
 * together with the driver of its world.
 */
export const meshProviderSuite = <E>(
  name: string,
  layer: Layer.Layer<MeshProvider.MeshProvider | MeshWorld, E>,
  options: MeshProviderSuiteOptions
) =>
  describe(`MeshProvider conformance: ${name}`, () => {
    const run = <A, E2>(test: Effect.Effect<A, E2, MeshProvider.MeshProvider | MeshWorld>) => Effect.provide(test, layer)
    // Worlds may start servers and generate RSA keys; on a loaded machine that takes more than vitest's default 5 s.
    const test = <A, E2>(title: string, self: () => Effect.Effect<A, E2, MeshProvider.MeshProvider | MeshWorld>) =>
      it.effect(title, () => run(self()), 60_000)

    test("meshes three regions: four keys per peer, the peer's CA and remote cert, hostAliases exactly the peers", () =>
      Effect.gen(function* () {
        const statuses = yield* establish(yield* seedAll())
        const observed = yield* observeAll
        expect(statuses).toHaveLength(3)
        for (const region of suiteRegions) {
          const status = statusOf(statuses, region)
          expect(status).toMatchObject({ clusterName: region.clusterName, clusterId: region.clusterId, loadBalancerIP: addresses[region.key] })
          expect(status.error).toBeUndefined()
          expect(status.readyAt).toBeTypeOf("number")
          const data = observed[region.key]!.secretData
          expect(Object.keys(data ?? {})).toHaveLength(8)
          for (const peer of suiteRegions.filter((each) => each.key !== region.key)) {
            expect(peerOf(status, peer)).toMatchObject({ configured: true, loadBalancerIP: addresses[peer.key] })
            expect(peerOf(status, peer).error).toBeUndefined()
            expect(data?.[peer.clusterName]).toBe(MeshPlan.peerConfig(peer.clusterName, 2379))
            expect(data?.[`${peer.clusterName}-ca.crt`]).toBe(materialOf(peer).ca.cert)
            expect(data?.[`${peer.clusterName}.crt`]).toBe(materialOf(peer).remote.cert)
            expect(data?.[`${peer.clusterName}.key`]).toBe(materialOf(peer).remote.key)
          }
          expect(aliasedHostnames(observed[region.key]!)).toEqual(expectedAliases(region))
          for (const workload of workloads) expect(observed[region.key]!.restarted[workload], workload).toBe(true)
        }
      })
    )

    test("a second pass writes nothing and restarts nothing", () =>
      Effect.gen(function* () {
        const regions = yield* seedAll()
        yield* establish(regions)
        const before = yield* observeAll
        const statuses = yield* establish(regions)
        const after = yield* observeAll
        for (const region of suiteRegions) {
          expect(after[region.key]!.secretRevision, `${region.key} Secret`).toBe(before[region.key]!.secretRevision)
          expect(after[region.key]!.workloadRevisions, `${region.key} workloads`).toEqual(before[region.key]!.workloadRevisions)
          expect(statusOf(statuses, region).readyAt).toBeTypeOf("number")
        }
      })
    )

    test("a changed peer IP replaces the old hostAliases entry and restarts the region's workloads", () =>
      Effect.gen(function* () {
        const world = yield* MeshWorld
        const regions = yield* seedAll()
        yield* establish(regions)
        const before = yield* observeAll
        const moved = { ...addresses, [helsinki.key]: "198.51.100.7" }
        const reseeded = yield* world.seed(helsinki, {
          ...healthySeed(helsinki),
          service: { type: "LoadBalancer", loadBalancerIP: moved[helsinki.key], port: 2379 }
        })
        const statuses = yield* establish(regions.map((region) => (region.region.key === helsinki.key ? reseeded : region)))
        const after = yield* observeAll
        for (const region of [primary, nuremberg]) {
          expect(aliasedHostnames(after[region.key]!)).toEqual(expectedAliases(region, moved))
          expect(after[region.key]!.workloadRevisions["cilium-operator"]).not.toBe(before[region.key]!.workloadRevisions["cilium-operator"])
          expect(peerOf(statusOf(statuses, region), helsinki)).toMatchObject({ configured: true, loadBalancerIP: "198.51.100.7" })
        }
      })
    )

    const peerFailures: ReadonlyArray<{
      readonly what: string
      readonly seed: Partial<MeshRegionSeed>
      readonly peerError: RegExp
      /** The region's own hard error, when the problem makes the region unusable. */
      readonly regionError?: ReadonlyArray<RegExp>
    }> = [
      {
        what: "a NodePort clustermesh-apiserver Service is a hard error for that region, never a NodePort fallback",
        seed: { service: { type: "NodePort", loadBalancerIP: undefined, port: 32379 } },
        peerError: /LoadBalancer/,
        regionError: [/NodePort/, /LoadBalancer/]
      },
      {
        what: "a Service without a load-balancer IP leaves the peer unconfigured",
        seed: { service: { type: "LoadBalancer", loadBalancerIP: undefined, port: 2379 } },
        peerError: /LB IP|load.?balancer IP/i
      },
      {
        what: "a missing cilium-ca leaves the peer unconfigured",
        seed: { ca: undefined, remote: undefined },
        peerError: /\bCA\b/
      },
      {
        what: "a cluster name in cilium-config that differs from the derivation is an error naming both",
        seed: { ciliumConfig: { clusterName: "t1-hel1-1", clusterId: helsinki.clusterId } },
        peerError: /t1-hel1-1/,
        regionError: [/t1-hel1-1/, /'t1-hel'|"t1-hel"|\bt1-hel\b/]
      }
    ]

    for (const failure of peerFailures) {
      test(failure.what, () =>
        Effect.gen(function* () {
          const statuses = yield* establish(yield* seedAll({ [helsinki.key]: failure.seed }))
          const observed = yield* observeAll
          for (const region of [primary, nuremberg]) {
            const status = statusOf(statuses, region)
            const peer = peerOf(status, helsinki)
            expect(peer.configured).toBe(false)
            expect(peer.error).toMatch(failure.peerError)
            expect(status.readyAt).toBeUndefined()
            expect(peerKeysIn(observed[region.key]!.secretData, helsinki)).toEqual([])
            expect(aliasedHostnames(observed[region.key]!).some((entry) => entry.endsWith(MeshPlan.peerHostname(helsinki.clusterName)))).toBe(false)
            // the healthy pair is wired regardless
            const other = region.key === primary.key ? nuremberg : primary
            expect(peerOf(status, other).configured).toBe(true)
            expect(peerKeysIn(observed[region.key]!.secretData, other)).toHaveLength(4)
          }
          const own = statusOf(statuses, helsinki)
          // a region its peers cannot use is not meshed, whatever it reaches itself
          expect(own.readyAt).toBeUndefined()
          expect(own.error).toBeDefined()
          if (failure.regionError === undefined) {
            expect(own.peers.every((peer) => peer.configured)).toBe(true)
          } else {
            for (const pattern of failure.regionError) expect(own.error).toMatch(pattern)
            expect(own.peers.every((peer) => !peer.configured)).toBe(true)
            expect(observed[helsinki.key]!.secretData ?? {}).toEqual({})
          }
        })
      )
    }

    test("a region with fewer than two regions is not meshed and nothing is written", () =>
      Effect.gen(function* () {
        const [only] = yield* seedAll()
        const statuses = yield* establish([only!])
        expect(statuses).toEqual([])
        expect((yield* observeAll)[primary.key]!.secretData).toBeUndefined()
      })
    )

    if (options.mintsRemoteCertificates) {
      test("a region without a remote cert gets a CN=remote cert signed by its own CA, kept for later passes", () =>
        Effect.gen(function* () {
          const regions = yield* seedAll({ [helsinki.key]: { remote: undefined } })
          const statuses = yield* establish(regions)
          const observed = yield* observeAll
          const minted = observed[primary.key]!.secretData?.[`${helsinki.clusterName}.crt`]
          expect(minted).toBeDefined()
          expect(new X509Certificate(minted!).subject).toBe("CN=remote")
          expect(isSignedBy(minted!, materialOf(helsinki).ca.cert)).toBe(true)
          expect(isSignedBy(minted!, materialOf(primary).ca.cert)).toBe(false)
          expect(observed[nuremberg.key]!.secretData?.[`${helsinki.clusterName}.crt`]).toBe(minted)
          expect(observed[helsinki.key]!.remote?.cert).toBe(minted)
          expect(peerOf(statusOf(statuses, primary), helsinki).configured).toBe(true)
          yield* establish(regions)
          const again = yield* observeAll
          expect(again[primary.key]!.secretRevision).toBe(observed[primary.key]!.secretRevision)
        })
      )

      test("a remote cert signed by another CA is refused, and its key never appears in an error", () =>
        Effect.gen(function* () {
          const foreign = testRemoteCertificate(materialOf(primary).ca)
          const statuses = yield* establish(yield* seedAll({ [helsinki.key]: { remote: foreign } }))
          const peer = peerOf(statusOf(statuses, primary), helsinki)
          expect(peer.configured).toBe(false)
          expect(peer.error).toMatch(/not signed/)
          expect(JSON.stringify(statuses)).not.toContain("PRIVATE KEY")
          expect(peerKeysIn((yield* observeAll)[primary.key]!.secretData, helsinki)).toEqual([])
        })
      )
    }
  })
