import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import * as Deployment from "../src/Deployment.js"
import * as MeshPlan from "../src/MeshPlan.js"

const ca = (name: string) => `-----BEGIN CERTIFICATE-----\nCA-${name}\n-----END CERTIFICATE-----\n`
const cert = (name: string) => `-----BEGIN CERTIFICATE-----\nREMOTE-${name}\n-----END CERTIFICATE-----\n`
const key = (name: string) => `-----BEGIN PRIVATE KEY-----\nKEY-${name}\n-----END PRIVATE KEY-----\n`

const healthy = (regionKey: string, clusterName: string, clusterId: number, ip: string): MeshPlan.MeshRegionInput => ({
  regionKey,
  clusterName,
  clusterId,
  serviceType: "LoadBalancer",
  loadBalancerIP: ip,
  apiserverPort: 2379,
  caCert: ca(clusterName),
  caKey: key(`ca-${clusterName}`),
  remoteCert: cert(clusterName),
  remoteKey: key(clusterName),
  configuredClusterName: clusterName,
  configuredClusterId: clusterId
})

const three = [
  healthy("fsn1", "t1-mesh", 42, "203.0.113.10"),
  healthy("hel1-1", "t1-hel", 43, "203.0.113.20"),
  healthy("nbg1-2", "t1-nbg", 44, "203.0.113.30")
]

const byKey = (plans: ReadonlyArray<MeshPlan.RegionPlan>, regionKey: string) => plans.find((plan) => plan.regionKey === regionKey)!
const peerOf = (plan: MeshPlan.RegionPlan, name: string) => plan.peers.find((peer) => peer.name === name)!
const empty: MeshPlan.RegionCurrent = { secretData: undefined, hostAliases: [] }
/** What the cluster holds after the changes were applied. */
const applied = (current: MeshPlan.RegionCurrent, changes: MeshPlan.RegionChanges): MeshPlan.RegionCurrent => ({
  secretData: changes.secret?.data ?? current.secretData,
  hostAliases: changes.hostAliases ?? current.hostAliases
})

describe("MeshPlan.peerConfig", () => {
  it("is the etcd client config Cilium reads, pointing at the peer's mesh hostname and files", () => {
    expect(MeshPlan.peerConfig("t1-hel", 2379)).toBe(
      "endpoints:\n" +
        "- https://t1-hel.mesh.cilium.io:2379\n" +
        "trusted-ca-file: /var/lib/cilium/clustermesh/t1-hel-ca.crt\n" +
        "cert-file: /var/lib/cilium/clustermesh/t1-hel.crt\n" +
        "key-file: /var/lib/cilium/clustermesh/t1-hel.key\n"
    )
  })
})

describe("MeshPlan.plan", () => {
  it("writes four keys per peer into every region, with the peer's CA and remote cert", () => {
    const plans = MeshPlan.plan(three)
    for (const plan of plans) {
      expect(plan.error).toBeUndefined()
      expect(Object.keys(plan.secretData)).toHaveLength(8)
      expect(MeshPlan.isComplete(plan)).toBe(true)
    }
    const primary = byKey(plans, "fsn1")
    expect(primary.secretData).toEqual({
      "t1-hel": MeshPlan.peerConfig("t1-hel", 2379),
      "t1-hel-ca.crt": ca("t1-hel"),
      "t1-hel.crt": cert("t1-hel"),
      "t1-hel.key": key("t1-hel"),
      "t1-nbg": MeshPlan.peerConfig("t1-nbg", 2379),
      "t1-nbg-ca.crt": ca("t1-nbg"),
      "t1-nbg.crt": cert("t1-nbg"),
      "t1-nbg.key": key("t1-nbg")
    })
    expect(primary.hostAliases).toEqual([
      { ip: "203.0.113.20", hostnames: ["t1-hel.mesh.cilium.io"] },
      { ip: "203.0.113.30", hostnames: ["t1-nbg.mesh.cilium.io"] }
    ])
    expect(primary.peers).toEqual([
      { name: "t1-hel", loadBalancerIP: "203.0.113.20", configured: true },
      { name: "t1-nbg", loadBalancerIP: "203.0.113.30", configured: true }
    ])
  })

  it("uses each peer's own apiserver port in its endpoint", () => {
    const plans = MeshPlan.plan([three[0]!, { ...three[1]!, apiserverPort: 12379 }])
    expect(byKey(plans, "fsn1").secretData["t1-hel"]).toContain("https://t1-hel.mesh.cilium.io:12379\n")
  })

  it("groups peers that share one IP into one hostAliases entry", () => {
    const plans = MeshPlan.plan(three.map((region) => ({ ...region, loadBalancerIP: "127.0.0.1" })))
    expect(byKey(plans, "fsn1").hostAliases).toEqual([
      { ip: "127.0.0.1", hostnames: ["t1-hel.mesh.cilium.io", "t1-nbg.mesh.cilium.io"] }
    ])
  })

  const failures: ReadonlyArray<{
    readonly what: string
    readonly change: Partial<MeshPlan.MeshRegionInput>
    readonly peerError: RegExp
    readonly regionError: RegExp | undefined
  }> = [
    {
      what: "a NodePort Service (hard error, never a NodePort fallback)",
      change: { serviceType: "NodePort" },
      peerError: /peer region hel1-1 failed: .*NodePort; only LoadBalancer/,
      regionError: /type NodePort; only LoadBalancer is supported/
    },
    { what: "a missing LB IP", change: { loadBalancerIP: undefined }, peerError: /^peer LB IP absent$/, regionError: undefined },
    { what: "a missing CA", change: { caCert: undefined }, peerError: /^peer cilium-ca CA cert missing$/, regionError: undefined },
    {
      what: "a cluster name drift",
      change: { configuredClusterName: "t1-hel1-1" },
      peerError: /cluster name drift: cilium-config has 't1-hel1-1', the derivation says 't1-hel'/,
      regionError: /cluster name drift: cilium-config has 't1-hel1-1', the derivation says 't1-hel'/
    },
    {
      what: "a cluster id drift",
      change: { configuredClusterId: 7 },
      peerError: /cluster id drift: cilium-config has 7, the derivation says 43/,
      regionError: /cluster id drift: cilium-config has 7, the derivation says 43/
    },
    {
      what: "a missing cilium-config",
      change: { configuredClusterName: undefined, configuredClusterId: undefined },
      peerError: /cilium-config has no cluster-name, the derivation says 't1-hel'/,
      regionError: /cilium-config has no cluster-name/
    },
    {
      what: "a remote cert not signed by the region's CA",
      change: { remoteCertError: "not signed by the region's cilium-ca" },
      peerError: /^peer remote cert unusable: not signed by the region's cilium-ca$/,
      regionError: undefined
    },
    {
      what: "a missing remote cert",
      change: { remoteCert: undefined, remoteKey: undefined },
      peerError: /^peer remote cert missing/,
      regionError: undefined
    },
    {
      what: "a missing Service",
      change: { serviceType: undefined, loadBalancerIP: undefined },
      peerError: /^peer clustermesh-apiserver Service not found$/,
      regionError: undefined
    },
    {
      what: "an unreachable cluster",
      change: { unreachable: "connect ECONNREFUSED" },
      peerError: /peer region hel1-1 failed: cluster unreachable: connect ECONNREFUSED/,
      regionError: /cluster unreachable/
    }
  ]

  for (const failure of failures) {
    it(`reports ${failure.what} as an error of that peer in every other region, and writes nothing for it`, () => {
      const plans = MeshPlan.plan([three[0]!, { ...three[1]!, ...failure.change }, three[2]!])
      for (const other of ["fsn1", "nbg1-2"]) {
        const plan = byKey(plans, other)
        const peer = peerOf(plan, "t1-hel")
        expect(peer.configured).toBe(false)
        expect(peer.error).toMatch(failure.peerError)
        expect(Object.keys(plan.secretData).filter((key) => key.startsWith("t1-hel"))).toEqual([])
        expect(plan.hostAliases.flatMap((alias) => alias.hostnames)).not.toContain("t1-hel.mesh.cilium.io")
        expect(MeshPlan.isComplete(plan)).toBe(false)
        // the healthy pair is still wired
        expect(Object.keys(plan.secretData)).toHaveLength(4)
      }
      const failed = byKey(plans, "hel1-1")
      if (failure.regionError === undefined) {
        // the region still reaches its peers, but is not meshed until they can reach it
        expect(failed.error).toBeUndefined()
        expect(failed.problem).toMatch(/\(peers cannot use this region yet\)$/)
        expect(MeshPlan.regionStatus(failed, 1).error).toBe(failed.problem)
        expect(MeshPlan.isComplete(failed)).toBe(false)
        expect(failed.peers.every((peer) => peer.configured)).toBe(true)
      } else {
        expect(failed.error).toMatch(failure.regionError)
        expect(failed.secretData).toEqual({})
        expect(failed.peers.map((peer) => peer.error)).toEqual([
          expect.stringMatching(/^local region failed: /),
          expect.stringMatching(/^local region failed: /)
        ])
        expect(MeshPlan.diff(empty, failed)).toEqual({ secret: undefined, hostAliases: undefined })
      }
    })
  }

  it("never writes a peer with an empty name", () => {
    const plans = MeshPlan.plan([three[0]!, { ...three[1]!, clusterName: "", configuredClusterName: "" }])
    const primary = byKey(plans, "fsn1")
    expect(Object.keys(primary.secretData)).toEqual([])
    expect(primary.peers[0]!.error).toMatch(/cluster name empty/)
    expect(primary.hostAliases).toEqual([])
  })
})

describe("MeshPlan.diff", () => {
  it("creates the Secret and sets hostAliases on the first pass, then has nothing to do", () => {
    const plan = byKey(MeshPlan.plan(three), "fsn1")
    const first = MeshPlan.diff(empty, plan)
    expect(first.secret?.create).toBe(true)
    expect(first.hostAliases).toEqual(plan.hostAliases)
    expect(MeshPlan.needsRestart(first)).toBe(true)
    const second = MeshPlan.diff(applied(empty, first), plan)
    expect(second).toEqual({ secret: undefined, hostAliases: undefined })
    expect(MeshPlan.needsRestart(second)).toBe(false)
  })

  it("replaces a changed peer IP instead of adding a second entry", () => {
    const before = byKey(MeshPlan.plan(three), "fsn1")
    const current = applied(empty, MeshPlan.diff(empty, before))
    const after = byKey(MeshPlan.plan([three[0]!, { ...three[1]!, loadBalancerIP: "198.51.100.7" }, three[2]!]), "fsn1")
    const changes = MeshPlan.diff(current, after)
    expect(changes.secret).toBeUndefined()
    expect(changes.hostAliases).toEqual([
      { ip: "198.51.100.7", hostnames: ["t1-hel.mesh.cilium.io"] },
      { ip: "203.0.113.30", hostnames: ["t1-nbg.mesh.cilium.io"] }
    ])
    expect(MeshPlan.needsRestart(changes)).toBe(true)
  })

  it("rewrites a stale endpoint port while keeping the certificate bytes and unrelated keys", () => {
    const plan = byKey(MeshPlan.plan(three), "fsn1")
    const stale = {
      secretData: { ...plan.secretData, "t1-hel": MeshPlan.peerConfig("t1-hel", 12379), "other-key": "kept" },
      hostAliases: plan.hostAliases
    }
    const changes = MeshPlan.diff(stale, plan)
    expect(changes.secret).toEqual({ create: false, data: expect.objectContaining({ "t1-hel": plan.secretData["t1-hel"], "other-key": "kept" }) })
    expect(changes.secret!.data["t1-hel.crt"]).toBe(cert("t1-hel"))
    expect(changes.hostAliases).toBeUndefined()
  })

  it("replaces hostAliases that were merged by ip (the original's hazard) and drops entries of non-peers", () => {
    const plan = byKey(MeshPlan.plan(three), "fsn1")
    const merged = {
      secretData: plan.secretData,
      hostAliases: [
        { ip: "203.0.113.99", hostnames: ["t1-hel.mesh.cilium.io"] },
        ...plan.hostAliases,
        { ip: "203.0.113.50", hostnames: ["gone.mesh.cilium.io"] }
      ]
    }
    expect(MeshPlan.diff(merged, plan).hostAliases).toEqual(plan.hostAliases)
  })

  it("does not rewrite hostAliases that only differ in order", () => {
    const plan = byKey(MeshPlan.plan(three), "fsn1")
    const reordered = { secretData: plan.secretData, hostAliases: [...plan.hostAliases].reverse() }
    expect(MeshPlan.diff(reordered, plan)).toEqual({ secret: undefined, hostAliases: undefined })
  })

  it("keeps an unreachable peer's keys and alias, so a transient failure does not disconnect it", () => {
    const current = applied(empty, MeshPlan.diff(empty, byKey(MeshPlan.plan(three), "fsn1")))
    const plan = byKey(MeshPlan.plan([three[0]!, { ...three[1]!, unreachable: "timeout" }, three[2]!]), "fsn1")
    expect(plan.retainHostnames).toEqual(["t1-hel.mesh.cilium.io"])
    expect(MeshPlan.diff(current, plan)).toEqual({ secret: undefined, hostAliases: undefined })
  })
})

// ---------------------------------------------------------------------------------------------
// Properties over deployments derived by the one derivation

const cloudRegions = ["fsn1", "nbg1", "hel1", "ash", "hil", "sin", "me-east-215-b", "eu-central-1"] as const

const deployments = fc
  .record({
    label: fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/),
    regions: fc.uniqueArray(fc.constantFrom(...cloudRegions), { minLength: 2, maxLength: 8 }),
    bytes: fc.uint8Array({ minLength: 8, maxLength: 8 })
  })
  .map(({ label, regions, bytes }) => {
    const spec = Deployment.validate({
      sovereignFQDN: `${label}.example.com`,
      orgName: "Example",
      orgEmail: "ops@example.com",
      regions: regions.map((cloudRegion) => ({ provider: "hetzner", cloudRegion, controlPlaneSize: "cpx32" })),
      sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO3 ops@example.com"
    })
    return Either.isRight(spec) ? Deployment.deriveRegions(spec.right, Deployment.deploymentIdFromBytes(bytes)) : []
  })
  .filter((regions) => regions.length >= 2)

const inputsOf = (regions: ReadonlyArray<Deployment.Region>) =>
  regions.map((region) => healthy(region.key, region.clusterName, region.clusterId, `198.51.100.${region.index + 1}`))

describe("MeshPlan properties", () => {
  it.prop("every region holds four keys per peer and aliases exactly its peers; a second pass writes nothing", [deployments], ([regions]) => {
    const plans = MeshPlan.plan(inputsOf(regions))
    for (const plan of plans) {
      const peers = regions.filter((region) => region.key !== plan.regionKey)
      expect(Object.keys(plan.secretData).sort()).toEqual(
        peers.flatMap((peer) => Object.values(MeshPlan.peerKeys(peer.clusterName))).sort()
      )
      expect(plan.hostAliases.flatMap((alias) => alias.hostnames).sort()).toEqual(
        peers.map((peer) => MeshPlan.peerHostname(peer.clusterName)).sort()
      )
      const first = MeshPlan.diff(empty, plan)
      expect(MeshPlan.needsRestart(MeshPlan.diff(applied(empty, first), plan))).toBe(false)
    }
  })

  it.prop(
    "a faulty peer is never written and never named with an empty key; healthy pairs stay wired",
    [deployments, fc.array(fc.constantFrom("NodePort", "no-ip", "no-ca", "drift", "empty-name", "ok"), { minLength: 8, maxLength: 8 })],
    ([regions, faults]) => {
      const inputs = inputsOf(regions).map((input, index): MeshPlan.MeshRegionInput => {
        switch (faults[index]) {
          case "NodePort": return { ...input, serviceType: "NodePort" }
          case "no-ip": return { ...input, loadBalancerIP: undefined }
          case "no-ca": return { ...input, caCert: undefined }
          case "drift": return { ...input, configuredClusterName: `${input.clusterName}x` }
          case "empty-name": return { ...input, clusterName: "", configuredClusterName: "" }
          default: return input
        }
      })
      const plans = MeshPlan.plan(inputs)
      plans.forEach((plan, index) => {
        for (const key of Object.keys(plan.secretData)) expect(key).toMatch(/^[a-z0-9]/)
        inputs.forEach((peer, peerIndex) => {
          if (peerIndex === index) return
          const wired = plan.secretData[peer.clusterName] !== undefined
          const healthyPair = faults[peerIndex] === "ok" && !["NodePort", "drift", "empty-name"].includes(faults[index]!)
          expect(wired).toBe(healthyPair)
        })
      })
    }
  )
})
