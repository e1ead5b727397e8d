/**
 * The MeshProvider conformance suite (SPEC 2.8): any adapter plus a driver of its world must pass it,
 * for every Cilium version and mode of the matrix. Each region is checked the way its dialling
 * component would use what was configured: the config file of every peer is read from that
 * component's mount, `<peer>.mesh.cilium.io` is resolved through the aliases it has, and a real TLS
 * session to the peer's etcd (client-certificate auth, hostname verification) reads a key.
 */
import { Deployment, MeshPlan, MeshProvider } from "@sovereign/core"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Layer, Scope } from "effect"
import yaml from "js-yaml"
import { X509Certificate } from "node:crypto"
import * as EtcdServer from "./EtcdServer.js"
import { signed, testAuthority, testRemoteCertificate, testServerCertificate } from "./internal/meshCertificates.js"
import { MeshWorld } from "./MeshWorld.js"
import type { CiliumSeed, ComponentView, KeyPair, MeshRegionObservation, MeshRegionSeed, Workload } from "./MeshWorld.js"

export { MeshWorld } from "./MeshWorld.js"
export type { CiliumSeed, MeshRegionSeed } from "./MeshWorld.js"
/** A self-signed CA standing in for a region's `cilium-ca`, and a CN=remote client certificate signed by one. */
export { testAuthority, testRemoteCertificate } from "./internal/meshCertificates.js"

/** Every Cilium the suite wires: the versions around the 1.20 and 1.21 changes, with and without KVStoreMesh, rendered by the chart or not. */
export const matrix: ReadonlyArray<CiliumSeed> = ["1.16.5", "1.19.2", "1.20.1", "1.21.0"].flatMap((version) =>
  [true, false].flatMap((kvstoreMesh) => [false, true].map((chartRendersConfig) => ({ version, kvstoreMesh, chartRendersConfig })))
)

export interface MeshProviderSuiteOptions {
  /** The provider mints a CN=remote client cert signed by the region's CA when the region has none. */
  readonly mintsRemoteCertificates: boolean
  /** The cells to run (default: the whole matrix). */
  readonly matrix?: ReadonlyArray<CiliumSeed>
}

export const cellName = (cell: CiliumSeed): string =>
  `Cilium ${cell.version}, KVStoreMesh ${cell.kvstoreMesh ? "on" : "off"}, ${cell.chartRendersConfig ? "the chart renders the config" : "Sovereign writes the config"}`

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
const addresses: Readonly<Record<string, string>> = {
  [primary.key]: "203.0.113.10",
  [helsinki.key]: "203.0.113.20",
  [nuremberg.key]: "203.0.113.30"
}
const movedAddress = "198.51.100.7"

interface Material {
  readonly ca: KeyPair
  readonly remote: KeyPair
  readonly local: KeyPair
  readonly server: KeyPair
}

let material: Record<string, Material> | undefined
const materialOf = (region: Deployment.Region): Material => {
  material ??= Object.fromEntries(
    suiteRegions.map((each) => {
      const ca = testAuthority(`${each.clusterName} cilium-ca`)
      return [each.key, { ca, remote: testRemoteCertificate(ca), local: signed(ca, "local", "client"), server: testServerCertificate(ca) }]
    })
  )
  return material[region.key]!
}

const seedOf = (region: Deployment.Region, cell: CiliumSeed, ip: string | undefined = addresses[region.key]): MeshRegionSeed => ({
  cilium: cell,
  service: { type: "LoadBalancer", loadBalancerIP: ip, port: MeshPlan.defaultApiserverPort },
  ca: materialOf(region).ca,
  remote: materialOf(region).remote,
  local: materialOf(region).local,
  ciliumConfig: { clusterName: region.clusterName, clusterId: region.clusterId }
})

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

const othersOf = (region: Deployment.Region) => suiteRegions.filter((each) => each.key !== region.key)

const aliased = (view: ComponentView | undefined) =>
  (view?.hostAliases ?? []).flatMap((alias) => alias.hostnames.map((hostname) => `${alias.ip} ${hostname}`)).sort()

const isSignedBy = (certPem: string, caPem: string) => {
  const cert = new X509Certificate(certPem)
  const ca = new X509Certificate(caPem)
  return cert.checkIssued(ca) && cert.verify(ca.publicKey)
}

const versionOf = (cell: CiliumSeed) => MeshPlan.parseCiliumVersion(cell.version)!
const diallerOf = (cell: CiliumSeed, observation: MeshRegionObservation): ComponentView | undefined =>
  cell.kvstoreMesh ? observation.kvstoremesh : observation.agent
const diallingWorkload = (cell: CiliumSeed): Workload => (cell.kvstoreMesh ? "clustermesh-apiserver" : "cilium")
const expectedConfiguredIn = (cell: CiliumSeed): MeshPlan.ConfiguredIn =>
  cell.chartRendersConfig ? "helm-values" : cell.kvstoreMesh ? "cilium-kvstoremesh" : "cilium-clustermesh"

// ---------------------------------------------------------------------------------------------
// The network: load balancers and in-cluster Services, in front of each region's real etcd

/** Where each region's clustermesh-apiserver etcd really listens (127.0.0.1:<port>). */
let etcds: Record<string, { readonly port: number }> = {}
const markerKey = "cilium/cluster-name"

interface EtcdConfig {
  readonly endpoints?: ReadonlyArray<string>
  readonly "trusted-ca-file"?: string
  readonly "cert-file"?: string
  readonly "key-file"?: string
  readonly "cilium-host-aliases"?: ReadonlyArray<{ readonly hostname?: string; readonly ips?: ReadonlyArray<string> }>
}

const parseConfig = (text: string): EtcdConfig => {
  const parsed = yaml.load(text)
  if (typeof parsed !== "object" || parsed === null) throw new Error(`not an etcd config: ${text}`)
  return parsed as EtcdConfig
}

/**
 * Dials the etcd that `file` (a peer's config in `view`) names, exactly as Cilium would from a pod of
 * `from`: the endpoint's hostname resolves through the config's `cilium-host-aliases` (1.20+ only;
 * older Cilium ignores that key) or the pod's hostAliases, a Service name through the cluster's own
 * Service; the address must be one a load balancer serves now. Returns the cluster name the etcd holds.
 */
const dial = (
  from: Deployment.Region,
  cell: CiliumSeed,
  view: ComponentView | undefined,
  file: string,
  balancers: Readonly<Record<string, string | undefined>>
) =>
  Effect.gen(function* () {
    const text = view?.files[file]
    if (text === undefined) return yield* Effect.fail(new Error(`no config file ${file} in ${MeshPlan.configDirectory}`))
    const config = parseConfig(text)
    const endpoint = new URL(config.endpoints?.[0] ?? "")
    const mounted = (path: string | undefined) => {
      const prefix = `${MeshPlan.configDirectory}/`
      const content = path?.startsWith(prefix) === true ? view?.files[path.slice(prefix.length)] : undefined
      if (content === undefined) throw new Error(`${file}: ${path ?? "(no path)"} is not a mounted file`)
      return content
    }
    const identity = { ca: mounted(config["trusted-ca-file"]), cert: mounted(config["cert-file"]), key: mounted(config["key-file"]) }
    const host = endpoint.hostname
    const port = Number(endpoint.port === "" ? 443 : endpoint.port)
    let target: number | undefined
    if (host === `clustermesh-apiserver.${MeshPlan.namespace}.svc` && port === MeshPlan.defaultApiserverPort) {
      target = etcds[from.key]?.port
    } else {
      const inConfig = MeshPlan.aliasesInConfig(versionOf(cell))
        ? config["cilium-host-aliases"]?.find((alias) => alias.hostname === host)?.ips?.[0]
        : undefined
      const ip = inConfig ?? view?.hostAliases.find((alias) => alias.hostnames.includes(host))?.ip
      if (ip === undefined) return yield* Effect.fail(new Error(`${host} does not resolve in ${from.key} (no alias names it)`))
      const region = suiteRegions.find((each) => balancers[each.key] === ip && port === MeshPlan.defaultApiserverPort)
      target = region === undefined ? undefined : etcds[region.key]?.port
      if (target === undefined) return yield* Effect.fail(new Error(`nothing answers at ${ip}:${port}`))
    }
    if (target === undefined) return yield* Effect.fail(new Error(`nothing answers at ${host}:${port}`))
    return yield* EtcdServer.get({ host: "127.0.0.1", port: target }, host, identity, markerKey)
  })

/** Every region reaches every peer from its dialling component, and (with KVStoreMesh) its agents reach the local KVStoreMesh. */
const expectMeshed = (
  cell: CiliumSeed,
  observed: Record<string, MeshRegionObservation>,
  balancers: Readonly<Record<string, string | undefined>>
) =>
  Effect.gen(function* () {
    for (const region of suiteRegions) {
      const observation = observed[region.key]!
      const dialler = diallerOf(cell, observation)
      expect(dialler, `${region.key}: the dialling component's view`).toBeDefined()
      for (const peer of othersOf(region)) {
        const reached = yield* Effect.either(dial(region, cell, dialler, peer.clusterName, balancers))
        expect(Either.getOrElse(reached, (error) => `${region.key} → ${peer.clusterName} failed: ${error.message}`)).toBe(peer.clusterName)
        if (cell.kvstoreMesh) {
          const local = yield* Effect.either(dial(region, cell, observation.agent, peer.clusterName, balancers))
          expect(Either.getOrElse(local, (error) => `${region.key} agents → ${peer.clusterName} failed: ${error.message}`)).toBe(
            region.clusterName
          )
        }
      }
    }
  })

// ---------------------------------------------------------------------------------------------

/**
 * Registers the suite. `layer` is built afresh for every test and provides the provider under test
 * together with the driver of its world. Three real etcds (one per region) serve every test.
 */
export const suite = <E>(
  name: string,
  layer: Layer.Layer<MeshProvider.MeshProvider | MeshWorld, E>,
  options: MeshProviderSuiteOptions
): void => {
  describe(`MeshProvider conformance: ${name}`, () => {
    const scope = Effect.runSync(Scope.make())
    beforeAll(() =>
      Effect.runPromise(
        Effect.gen(function* () {
          const started = yield* Effect.forEach(
            suiteRegions,
            (region) => {
              const { ca, server } = materialOf(region)
              return Effect.map(
                EtcdServer.start({ serverCert: server.cert, serverKey: server.key, trustedCa: ca.cert }),
                (etcd) => [region, etcd] as const
              )
            },
            { concurrency: "unbounded" }
          )
          for (const [region, etcd] of started) {
            const { ca, remote } = materialOf(region)
            yield* EtcdServer.put(
              { host: "127.0.0.1", port: etcd.port },
              `${region.clusterName}.${MeshPlan.meshDomain}`,
              { ca: ca.cert, ...remote },
              markerKey,
              region.clusterName
            )
          }
          etcds = Object.fromEntries(started.map(([region, etcd]) => [region.key, { port: etcd.port }]))
        }).pipe(Scope.extend(scope))
      )
    )
    afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

    const run = <A, E2>(test: Effect.Effect<A, E2, MeshProvider.MeshProvider | MeshWorld>) => Effect.provide(test, layer)
    // Worlds start servers and the provider waits for Helm releases; on a loaded machine that takes a while.
    const test = <A, E2>(title: string, self: () => Effect.Effect<A, E2, MeshProvider.MeshProvider | MeshWorld>) =>
      it.live(title, () => run(self()), 120_000)

    const seedAll = (cell: CiliumSeed, overrides: Partial<Record<string, Partial<MeshRegionSeed>>> = {}) =>
      Effect.flatMap(MeshWorld, (world) =>
        Effect.forEach(suiteRegions, (region) => world.seed(region, { ...seedOf(region, cell), ...overrides[region.key] }))
      )

    for (const cell of options.matrix ?? matrix) {
      const version = versionOf(cell)
      const inConfig = MeshPlan.aliasesInConfig(version)
      describe(cellName(cell), () => {
        test(`wires three regions as the chart would: each dials every peer from ${cell.kvstoreMesh ? "KVStoreMesh" : "the agents"}, over real TLS`, () =>
          Effect.gen(function* () {
            const statuses = yield* establish(yield* seedAll(cell))
            const observed = yield* observeAll
            expect(statuses).toHaveLength(3)
            for (const region of suiteRegions) {
              const status = statusOf(statuses, region)
              expect(status).toMatchObject({
                clusterName: region.clusterName,
                clusterId: region.clusterId,
                ciliumVersion: cell.version,
                mode: cell.kvstoreMesh ? "kvstoremesh" : "direct",
                loadBalancerIP: addresses[region.key]
              })
              expect(status.error).toBeUndefined()
              expect(status.readyAt).toBeTypeOf("number")
              const observation = observed[region.key]!
              expect(observation.kvstoremesh === undefined).toBe(!cell.kvstoreMesh)
              const dialler = diallerOf(cell, observation)!
              for (const peer of othersOf(region)) {
                expect(peerOf(status, peer)).toEqual({
                  name: peer.clusterName,
                  loadBalancerIP: addresses[peer.key],
                  configured: true,
                  configuredIn: expectedConfiguredIn(cell)
                })
                expect(
                  dialler.files[peer.clusterName]?.includes("cilium-host-aliases"),
                  `${peer.clusterName} config carries its address`
                ).toBe(inConfig)
                if (cell.kvstoreMesh) {
                  // the agents reach the peer only through the local KVStoreMesh, never with its certificates
                  expect(observation.agent.files[peer.clusterName]).toContain(MeshPlan.localEndpoint)
                  expect(observation.agent.files[`${peer.clusterName}.etcd-client.key`]).toBeUndefined()
                }
              }
              const peersAliased = othersOf(region)
                .map((peer) => `${addresses[peer.key]} ${MeshPlan.peerHostname(peer.clusterName)}`)
                .sort()
              expect(aliased(dialler)).toEqual(inConfig ? [] : peersAliased)
              if (cell.kvstoreMesh) expect(aliased(observation.agent)).toEqual([])
              const restarted = inConfig ? [] : [diallingWorkload(cell)]
              for (const workload of ["cilium", "cilium-operator", "clustermesh-apiserver"] as const) {
                expect(observation.restarts[workload], `${region.key} ${workload} restarts`).toBe(restarted.includes(workload) ? 1 : 0)
              }
            }
            yield* expectMeshed(cell, observed, addresses)
          }))

        test("a second pass writes nothing and restarts nothing", () =>
          Effect.gen(function* () {
            const regions = yield* seedAll(cell)
            yield* establish(regions)
            const before = yield* observeAll
            const statuses = yield* establish(regions)
            const after = yield* observeAll
            for (const region of suiteRegions) {
              expect(after[region.key]!.writes, `${region.key} writes`).toBe(before[region.key]!.writes)
              expect(after[region.key]!.restarts, `${region.key} restarts`).toEqual(before[region.key]!.restarts)
              expect(statusOf(statuses, region).readyAt).toBeTypeOf("number")
            }
          }))

        test("a Flux reconcile right after the mesh is established leaves every region meshed", () =>
          Effect.gen(function* () {
            const world = yield* MeshWorld
            const regions = yield* seedAll(cell)
            yield* establish(regions)
            const before = yield* observeAll
            yield* Effect.forEach(suiteRegions, (region) => world.reconcile(region.key), { discard: true })
            const after = yield* observeAll
            yield* expectMeshed(cell, after, addresses)
            for (const region of suiteRegions)
              expect(after[region.key]!.restarts, `${region.key} restarts`).toEqual(before[region.key]!.restarts)
            // and nothing needs redoing
            const statuses = yield* establish(regions)
            const again = yield* observeAll
            for (const region of suiteRegions) {
              expect(statusOf(statuses, region).readyAt).toBeTypeOf("number")
              expect(again[region.key]!.writes, `${region.key} writes after the reconcile`).toBe(after[region.key]!.writes)
            }
          }))

        test(
          inConfig
            ? "a changed peer IP is rewritten into its config and restarts no workload"
            : `a changed peer IP replaces the old alias on ${diallingWorkload(cell)} and restarts only it`,
          () =>
            Effect.gen(function* () {
              const world = yield* MeshWorld
              const regions = yield* seedAll(cell)
              yield* establish(regions)
              const before = yield* observeAll
              const moved = { ...addresses, [helsinki.key]: movedAddress }
              const reseeded = yield* world.seed(helsinki, seedOf(helsinki, cell, movedAddress))
              const statuses = yield* establish(regions.map((region) => (region.region.key === helsinki.key ? reseeded : region)))
              const after = yield* observeAll
              for (const region of [primary, nuremberg]) {
                expect(peerOf(statusOf(statuses, region), helsinki)).toMatchObject({ configured: true, loadBalancerIP: movedAddress })
                const dialler = diallerOf(cell, after[region.key]!)
                expect(aliased(dialler)).toEqual(
                  inConfig
                    ? []
                    : othersOf(region)
                        .map((peer) => `${moved[peer.key]} ${MeshPlan.peerHostname(peer.clusterName)}`)
                        .sort()
                )
              }
              for (const region of suiteRegions) {
                for (const workload of ["cilium", "cilium-operator", "clustermesh-apiserver"] as const) {
                  const restartedNow = !inConfig && region.key !== helsinki.key && workload === diallingWorkload(cell)
                  expect(
                    after[region.key]!.restarts[workload] - before[region.key]!.restarts[workload],
                    `${region.key} ${workload} restarts`
                  ).toBe(restartedNow ? 1 : 0)
                }
              }
              yield* expectMeshed(cell, after, moved)
            })
        )
      })
    }

    // Failures and certificate handling do not depend on the version; they run on a cell of each way of writing.
    const failureCells = (options.matrix ?? matrix).filter(
      (cell) =>
        (cell.version === "1.16.5" && cell.kvstoreMesh && !cell.chartRendersConfig) ||
        (cell.version === "1.20.1" && !cell.kvstoreMesh && cell.chartRendersConfig)
    )
    for (const cell of failureCells) {
      describe(`${cellName(cell)}: failures`, () => {
        const peerFailures: ReadonlyArray<{
          readonly what: string
          readonly seed: Partial<MeshRegionSeed>
          readonly peerError: RegExp
          /** The region's own hard error, when the problem makes the region unusable. */
          readonly regionError?: ReadonlyArray<RegExp>
        }> = [
          {
            what: "a NodePort clustermesh-apiserver Service is a hard error for that region, never a NodePort fallback",
            seed: { service: { type: "NodePort", loadBalancerIP: undefined, port: MeshPlan.defaultApiserverPort } },
            peerError: /LoadBalancer/,
            regionError: [/NodePort/, /LoadBalancer/]
          },
          {
            what: "a Service without a load-balancer IP leaves the peer unconfigured",
            seed: { service: { type: "LoadBalancer", loadBalancerIP: undefined, port: MeshPlan.defaultApiserverPort } },
            peerError: /LB IP|load.?balancer IP/i
          },
          {
            what: "a missing cilium-ca leaves the peer unconfigured",
            seed: { ca: undefined, remote: undefined, local: undefined },
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
              const statuses = yield* establish(yield* seedAll(cell, { [helsinki.key]: failure.seed }))
              const observed = yield* observeAll
              for (const region of [primary, nuremberg]) {
                const status = statusOf(statuses, region)
                const peer = peerOf(status, helsinki)
                expect(peer.configured).toBe(false)
                expect(peer.error).toMatch(failure.peerError)
                expect(status.readyAt).toBeUndefined()
                const dialler = diallerOf(cell, observed[region.key]!)
                expect(dialler?.files[helsinki.clusterName]).toBeUndefined()
                expect(aliased(dialler).some((entry) => entry.endsWith(MeshPlan.peerHostname(helsinki.clusterName)))).toBe(false)
                // the healthy pair is wired regardless
                const other = region.key === primary.key ? nuremberg : primary
                expect(peerOf(status, other).configured).toBe(true)
                expect(
                  Either.getOrElse(
                    yield* Effect.either(dial(region, cell, dialler, other.clusterName, addresses)),
                    (error) => error.message
                  )
                ).toBe(other.clusterName)
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
                const dialler = diallerOf(cell, observed[helsinki.key]!)
                for (const peer of othersOf(helsinki)) expect(dialler?.files[peer.clusterName]).toBeUndefined()
                expect(observed[helsinki.key]!.writes).toBe(0)
              }
            })
          )
        }

        test("a region with fewer than two regions is not meshed and nothing is written", () =>
          Effect.gen(function* () {
            const [only] = yield* seedAll(cell)
            const statuses = yield* establish([only!])
            expect(statuses).toEqual([])
            expect((yield* observeAll)[primary.key]!.writes).toBe(0)
          }))

        if (options.mintsRemoteCertificates) {
          test("a region without a remote cert gets a CN=remote cert signed by its own CA, kept for later passes, and its peers reach it with it", () =>
            Effect.gen(function* () {
              const regions = yield* seedAll(cell, { [helsinki.key]: { remote: undefined } })
              const statuses = yield* establish(regions)
              const observed = yield* observeAll
              const minted = observed[helsinki.key]!.remote?.cert
              expect(minted).toBeDefined()
              expect(new X509Certificate(minted!).subject).toBe("CN=remote")
              expect(isSignedBy(minted!, materialOf(helsinki).ca.cert)).toBe(true)
              expect(isSignedBy(minted!, materialOf(primary).ca.cert)).toBe(false)
              expect(peerOf(statusOf(statuses, primary), helsinki).configured).toBe(true)
              for (const region of [primary, nuremberg]) {
                const dialler = diallerOf(cell, observed[region.key]!)
                expect(dialler?.files[MeshPlan.peerKeys(helsinki.clusterName).cert]).toBe(minted)
                expect(
                  Either.getOrElse(
                    yield* Effect.either(dial(region, cell, dialler, helsinki.clusterName, addresses)),
                    (error) => error.message
                  )
                ).toBe(helsinki.clusterName)
              }
              yield* establish(regions)
              const again = yield* observeAll
              expect(again[primary.key]!.writes).toBe(observed[primary.key]!.writes)
              expect(again[helsinki.key]!.remote?.cert).toBe(minted)
            }))

          test("a remote cert signed by another CA is refused, and its key never appears in an error", () =>
            Effect.gen(function* () {
              const foreign = testRemoteCertificate(materialOf(primary).ca)
              const statuses = yield* establish(yield* seedAll(cell, { [helsinki.key]: { remote: foreign } }))
              const peer = peerOf(statusOf(statuses, primary), helsinki)
              expect(peer.configured).toBe(false)
              expect(peer.error).toMatch(/not signed/)
              expect(JSON.stringify(statuses)).not.toContain("PRIVATE KEY")
              expect(diallerOf(cell, (yield* observeAll)[primary.key]!)?.files[helsinki.clusterName]).toBeUndefined()
            }))
        }
      })
    }
  })
}
