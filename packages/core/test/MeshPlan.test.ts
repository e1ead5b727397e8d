import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import * as Deployment from "../src/Deployment.js"
import * as MeshPlan from "../src/MeshPlan.js"

const ca = (name: string) => `-----BEGIN CERTIFICATE-----\nCA-${name}\n-----END CERTIFICATE-----\n`
const cert = (name: string) => `-----BEGIN CERTIFICATE-----\nREMOTE-${name}\n-----END CERTIFICATE-----\n`
const key = (name: string) => `-----BEGIN PRIVATE KEY-----\nKEY-${name}\n-----END PRIVATE KEY-----\n`

const setups = {
  "1.16 with KVStoreMesh": { version: "1.16.5", kvstoreMesh: true, chartRendersConfig: false },
  "1.19 without KVStoreMesh": { version: "1.19.2", kvstoreMesh: false, chartRendersConfig: false },
  "1.20 with KVStoreMesh": { version: "1.20.0", kvstoreMesh: true, chartRendersConfig: false },
  "1.21 without KVStoreMesh": { version: "1.21.1", kvstoreMesh: false, chartRendersConfig: false }
} satisfies Record<string, MeshPlan.CiliumSetup>

const healthy = (
  regionKey: string,
  clusterName: string,
  clusterId: number,
  ip: string,
  cilium: MeshPlan.CiliumSetup = setups["1.16 with KVStoreMesh"]
): MeshPlan.MeshRegionInput => ({
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
  configuredClusterId: clusterId,
  cilium
})

const threeWith = (cilium: MeshPlan.CiliumSetup) => [
  healthy("fsn1", "t1-mesh", 42, "203.0.113.10", cilium),
  healthy("hel1-1", "t1-hel", 43, "203.0.113.20", cilium),
  healthy("nbg1-2", "t1-nbg", 44, "203.0.113.30", cilium)
]
const three = threeWith(setups["1.16 with KVStoreMesh"])

const byKey = (plans: ReadonlyArray<MeshPlan.RegionPlan>, regionKey: string) => plans.find((plan) => plan.regionKey === regionKey)!
const peerOf = (plan: MeshPlan.RegionPlan, name: string) => plan.peers.find((peer) => peer.name === name)!
const empty: MeshPlan.RegionCurrent = { secrets: {}, hostAliases: [] }
/** What the cluster holds after the changes were applied. */
const applied = (current: MeshPlan.RegionCurrent, changes: MeshPlan.RegionChanges): MeshPlan.RegionCurrent => ({
  secrets: { ...current.secrets, ...Object.fromEntries(changes.secrets.map((change) => [change.name, change.data])) },
  hostAliases: changes.hostAliases?.aliases ?? current.hostAliases
})
const diallingData = (plan: MeshPlan.RegionPlan) => plan.rendered.secrets[MeshPlan.diallingSecret(plan.cilium!)] ?? {}
const aliasesOf = (plan: MeshPlan.RegionPlan) => plan.rendered.hostAliases?.aliases ?? []

describe("MeshPlan.peerConfig", () => {
  it("is the etcd client config the chart renders for a peer with its own TLS material, before 1.20", () => {
    expect(MeshPlan.peerConfig("t1-hel", 2379)).toBe(
      "endpoints:\n" +
        "- https://t1-hel.mesh.cilium.io:2379\n" +
        "trusted-ca-file: /var/lib/cilium/clustermesh/t1-hel.etcd-client-ca.crt\n" +
        "key-file: /var/lib/cilium/clustermesh/t1-hel.etcd-client.key\n" +
        "cert-file: /var/lib/cilium/clustermesh/t1-hel.etcd-client.crt\n"
    )
  })

  it("carries the peer's address as cilium-host-aliases from 1.20", () => {
    expect(MeshPlan.peerConfig("t1-hel", 2379, "203.0.113.20")).toMatch(
      /cert-file: \/var\/lib\/cilium\/clustermesh\/t1-hel.etcd-client.crt\ncilium-host-aliases:\n- hostname: t1-hel.mesh.cilium.io\n {2}ips:\n {2}- 203.0.113.20\n$/
    )
    expect(MeshPlan.peerConfig("t1-hel", 2379, "2001:db8::7")).toContain('  - "2001:db8::7"\n')
  })

  it("points the agents at the local KVStoreMesh with the local client certificate", () => {
    expect(MeshPlan.localConfig()).toBe(
      "endpoints:\n" +
        "- https://clustermesh-apiserver.kube-system.svc:2379\n" +
        "trusted-ca-file: /var/lib/cilium/clustermesh/local-etcd-client-ca.crt\n" +
        "key-file: /var/lib/cilium/clustermesh/local-etcd-client.key\n" +
        "cert-file: /var/lib/cilium/clustermesh/local-etcd-client.crt\n"
    )
  })
})

describe("MeshPlan.parseCiliumVersion", () => {
  const table: ReadonlyArray<readonly [string, string | undefined]> = [
    ["quay.io/cilium/cilium:v1.16.5@sha256:758ca0793f5995bb938a2fa219dcce63dc0b3fa7345f7e6f4ba9fb67b5eafa5f", "1.16.5"],
    ["quay.io/cilium/cilium:v1.19.0-rc.1", "1.19.0"],
    ["registry.local:5000/cilium/cilium:1.21.2", "1.21.2"],
    ["v1.20.0", "1.20.0"],
    ["quay.io/cilium/cilium@sha256:758ca0793f5995bb938a2fa219dcce63dc0b3fa7345f7e6f4ba9fb67b5eafa5f", undefined],
    ["quay.io/cilium/cilium:latest", undefined],
    ["registry.local:5000/cilium/cilium", undefined]
  ]
  for (const [image, version] of table) {
    it(`reads ${version ?? "nothing"} from ${image}`, () => {
      const parsed = MeshPlan.parseCiliumVersion(image)
      expect(parsed === undefined ? undefined : MeshPlan.formatVersion(parsed)).toBe(version)
    })
  }

  it("wires 1.16 onwards, and says why an older one is not", () => {
    expect(MeshPlan.setupProblem(setups["1.16 with KVStoreMesh"])).toBeUndefined()
    expect(MeshPlan.setupProblem({ version: "1.22.0", kvstoreMesh: true, chartRendersConfig: false })).toBeUndefined()
    expect(MeshPlan.setupProblem({ version: "1.15.11", kvstoreMesh: true, chartRendersConfig: false })).toMatch(
      /1.15.11 is older than 1.16/
    )
    expect(MeshPlan.setupProblem({ version: "main", kvstoreMesh: true, chartRendersConfig: false })).toMatch(/'main' cannot be read/)
  })
})

describe("MeshPlan.plan", () => {
  it("with KVStoreMesh: the peers go into cilium-kvstoremesh, the agents' cilium-clustermesh points at the local KVStoreMesh", () => {
    const primary = byKey(MeshPlan.plan(three), "fsn1")
    expect(primary.error).toBeUndefined()
    expect(MeshPlan.isComplete(primary)).toBe(true)
    expect(primary.rendered.secrets).toEqual({
      "cilium-kvstoremesh": {
        "t1-hel": MeshPlan.peerConfig("t1-hel", 2379),
        "t1-hel.etcd-client-ca.crt": ca("t1-hel"),
        "t1-hel.etcd-client.crt": cert("t1-hel"),
        "t1-hel.etcd-client.key": key("t1-hel"),
        "t1-nbg": MeshPlan.peerConfig("t1-nbg", 2379),
        "t1-nbg.etcd-client-ca.crt": ca("t1-nbg"),
        "t1-nbg.etcd-client.crt": cert("t1-nbg"),
        "t1-nbg.etcd-client.key": key("t1-nbg")
      },
      "cilium-clustermesh": { "t1-hel": MeshPlan.localConfig(), "t1-nbg": MeshPlan.localConfig() }
    })
    expect(primary.rendered.hostAliases).toEqual({
      workload: { kind: "Deployment", name: "clustermesh-apiserver" },
      aliases: [
        { ip: "203.0.113.20", hostnames: ["t1-hel.mesh.cilium.io"] },
        { ip: "203.0.113.30", hostnames: ["t1-nbg.mesh.cilium.io"] }
      ]
    })
    expect(primary.peers).toEqual([
      { name: "t1-hel", loadBalancerIP: "203.0.113.20", configured: true, configuredIn: "cilium-kvstoremesh" },
      { name: "t1-nbg", loadBalancerIP: "203.0.113.30", configured: true, configuredIn: "cilium-kvstoremesh" }
    ])
    expect(MeshPlan.regionStatus(primary, 7)).toMatchObject({ ciliumVersion: "1.16.5", mode: "kvstoremesh", readyAt: 7 })
  })

  it("without KVStoreMesh: the peers go into cilium-clustermesh and the agents' DaemonSet gets the hostAliases", () => {
    const primary = byKey(MeshPlan.plan(threeWith(setups["1.19 without KVStoreMesh"])), "fsn1")
    expect(Object.keys(primary.rendered.secrets)).toEqual(["cilium-clustermesh"])
    expect(Object.keys(diallingData(primary))).toHaveLength(8)
    expect(primary.rendered.hostAliases?.workload).toEqual({ kind: "DaemonSet", name: "cilium" })
    expect(primary.peers.map((peer) => peer.configuredIn)).toEqual(["cilium-clustermesh", "cilium-clustermesh"])
    expect(MeshPlan.regionStatus(primary, undefined)).toMatchObject({ ciliumVersion: "1.19.2", mode: "direct" })
  })

  for (const name of ["1.20 with KVStoreMesh", "1.21 without KVStoreMesh"] as const) {
    it(`${name}: the peer's address rides in its config and no workload is aliased`, () => {
      const primary = byKey(MeshPlan.plan(threeWith(setups[name])), "fsn1")
      expect(primary.rendered.hostAliases).toBeUndefined()
      expect(diallingData(primary)["t1-hel"]).toBe(MeshPlan.peerConfig("t1-hel", 2379, "203.0.113.20"))
    })
  }

  it("when the chart renders the config, the peers become the release's values, which give back the same peers", () => {
    const setup = { ...setups["1.20 with KVStoreMesh"], chartRendersConfig: true }
    const primary = byKey(MeshPlan.plan(threeWith(setup)), "fsn1")
    expect(primary.peers.map((peer) => peer.configuredIn)).toEqual(["helm-values", "helm-values"])
    const values = MeshPlan.helmValues(primary.entries, setup)
    expect(values.clustermesh.disableKubernetesHostAliases).toBe(true)
    expect(values.clustermesh.config.domain).toBe("mesh.cilium.io")
    expect(values.clustermesh.config.clusters[0]).toEqual({
      name: "t1-hel",
      port: 2379,
      ips: ["203.0.113.20"],
      tls: { cert: btoa(cert("t1-hel")), key: btoa(key("t1-hel")), caCert: btoa(ca("t1-hel")) }
    })
    expect(MeshPlan.peerEntriesOf(JSON.parse(JSON.stringify(values)))).toEqual(primary.entries)
    expect(
      MeshPlan.helmValues(primary.entries, setups["1.21 without KVStoreMesh"]).clustermesh.disableKubernetesHostAliases
    ).toBeUndefined()
    expect(MeshPlan.peerEntriesOf({ clustermesh: { config: { clusters: "nope" } } })).toEqual([])
    // nothing is written beside the release
    expect(MeshPlan.diff(empty, primary)).toEqual({ secrets: [], hostAliases: undefined })
  })

  it("uses each peer's own apiserver port in its endpoint", () => {
    const plans = MeshPlan.plan([three[0]!, { ...three[1]!, apiserverPort: 12379 }])
    expect(diallingData(byKey(plans, "fsn1"))["t1-hel"]).toContain("https://t1-hel.mesh.cilium.io:12379\n")
  })

  it("groups peers that share one IP into one hostAliases entry", () => {
    const plans = MeshPlan.plan(three.map((region) => ({ ...region, loadBalancerIP: "127.0.0.1" })))
    expect(aliasesOf(byKey(plans, "fsn1"))).toEqual([{ ip: "127.0.0.1", hostnames: ["t1-hel.mesh.cilium.io", "t1-nbg.mesh.cilium.io"] }])
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
      change: { unreachable: "connect ECONNREFUSED", cilium: undefined },
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
        expect(peer.configuredIn).toBe("cilium-kvstoremesh")
        expect(peer.error).toMatch(failure.peerError)
        for (const data of Object.values(plan.rendered.secrets))
          expect(Object.keys(data).filter((key) => key.startsWith("t1-hel"))).toEqual([])
        expect(aliasesOf(plan).flatMap((alias) => alias.hostnames)).not.toContain("t1-hel.mesh.cilium.io")
        expect(MeshPlan.isComplete(plan)).toBe(false)
        // the healthy pair is still wired
        expect(Object.keys(diallingData(plan))).toHaveLength(4)
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
        expect(failed.rendered.secrets).toEqual({})
        expect(failed.peers.map((peer) => peer.error)).toEqual([
          expect.stringMatching(/^local region failed: /),
          expect.stringMatching(/^local region failed: /)
        ])
        expect(MeshPlan.diff(empty, failed)).toEqual({ secrets: [], hostAliases: undefined })
      }
    })
  }

  it("a region whose Cilium cannot be wired gets nothing written, and its peers still use it", () => {
    const plans = MeshPlan.plan([
      three[0]!,
      { ...three[1]!, cilium: { version: "1.15.3", kvstoreMesh: true, chartRendersConfig: false } },
      { ...three[2]!, cilium: undefined, ciliumError: "DaemonSet kube-system/cilium not found; is Cilium installed?" }
    ])
    expect(byKey(plans, "hel1-1").error).toMatch(/1.15.3 is older than 1.16/)
    expect(MeshPlan.regionStatus(byKey(plans, "hel1-1"), undefined)).toMatchObject({ ciliumVersion: "1.15.3", mode: "kvstoremesh" })
    expect(byKey(plans, "nbg1-2").error).toBe("DaemonSet kube-system/cilium not found; is Cilium installed?")
    expect(byKey(plans, "nbg1-2").peers.every((peer) => peer.error?.startsWith("local region failed: DaemonSet"))).toBe(true)
    expect(MeshPlan.diff(empty, byKey(plans, "nbg1-2"))).toEqual({ secrets: [], hostAliases: undefined })
    expect(byKey(plans, "fsn1").peers.every((peer) => peer.configured)).toBe(true)
  })

  it("never writes a peer with an empty name", () => {
    const plans = MeshPlan.plan([three[0]!, { ...three[1]!, clusterName: "", configuredClusterName: "" }])
    const primary = byKey(plans, "fsn1")
    expect(Object.values(primary.rendered.secrets).flatMap((data) => Object.keys(data))).toEqual([])
    expect(primary.peers[0]!.error).toMatch(/cluster name empty/)
    expect(aliasesOf(primary)).toEqual([])
  })
})

describe("MeshPlan.diff", () => {
  it("creates both Secrets and aliases the dialling workload on the first pass, then has nothing to do", () => {
    const plan = byKey(MeshPlan.plan(three), "fsn1")
    const first = MeshPlan.diff(empty, plan)
    expect(first.secrets.map((change) => [change.name, change.create])).toEqual([
      ["cilium-clustermesh", true],
      ["cilium-kvstoremesh", true]
    ])
    expect(first.hostAliases).toEqual(plan.rendered.hostAliases)
    expect(MeshPlan.restarts(first)).toEqual([{ kind: "Deployment", name: "clustermesh-apiserver" }])
    const second = MeshPlan.diff(applied(empty, first), plan)
    expect(second).toEqual({ secrets: [], hostAliases: undefined })
    expect(MeshPlan.hasChanges(second)).toBe(false)
    expect(MeshPlan.restarts(second)).toEqual([])
  })

  it("before 1.20 replaces a changed peer IP on the dialling workload instead of adding a second entry, and restarts only it", () => {
    for (const setup of [setups["1.16 with KVStoreMesh"], setups["1.19 without KVStoreMesh"]]) {
      const before = byKey(MeshPlan.plan(threeWith(setup)), "fsn1")
      const current = applied(empty, MeshPlan.diff(empty, before))
      const moved = threeWith(setup)
      const after = byKey(MeshPlan.plan([moved[0]!, { ...moved[1]!, loadBalancerIP: "198.51.100.7" }, moved[2]!]), "fsn1")
      const changes = MeshPlan.diff(current, after)
      expect(changes.secrets).toEqual([])
      expect(changes.hostAliases?.aliases).toEqual([
        { ip: "198.51.100.7", hostnames: ["t1-hel.mesh.cilium.io"] },
        { ip: "203.0.113.30", hostnames: ["t1-nbg.mesh.cilium.io"] }
      ])
      expect(MeshPlan.restarts(changes)).toEqual([MeshPlan.diallingWorkload(setup)])
    }
  })

  it("from 1.20 a changed peer IP rewrites only that peer's config and restarts nothing", () => {
    for (const setup of [setups["1.20 with KVStoreMesh"], setups["1.21 without KVStoreMesh"]]) {
      const current = applied(empty, MeshPlan.diff(empty, byKey(MeshPlan.plan(threeWith(setup)), "fsn1")))
      const moved = threeWith(setup)
      const changes = MeshPlan.diff(
        current,
        byKey(MeshPlan.plan([moved[0]!, { ...moved[1]!, loadBalancerIP: "198.51.100.7" }, moved[2]!]), "fsn1")
      )
      expect(changes.secrets).toEqual([
        expect.objectContaining({
          name: MeshPlan.diallingSecret(setup),
          create: false,
          patch: { "t1-hel": MeshPlan.peerConfig("t1-hel", 2379, "198.51.100.7") }
        })
      ])
      expect(MeshPlan.restarts(changes)).toEqual([])
    }
  })

  it("rewrites a stale endpoint port while keeping the certificate bytes and unrelated keys", () => {
    const plan = byKey(MeshPlan.plan(three), "fsn1")
    const current: MeshPlan.RegionCurrent = {
      secrets: {
        ...plan.rendered.secrets,
        "cilium-kvstoremesh": {
          ...plan.rendered.secrets["cilium-kvstoremesh"],
          "t1-hel": MeshPlan.peerConfig("t1-hel", 12379),
          "other-key": "kept"
        }
      },
      hostAliases: aliasesOf(plan)
    }
    const changes = MeshPlan.diff(current, plan)
    expect(changes.secrets).toEqual([
      {
        name: "cilium-kvstoremesh",
        create: false,
        patch: { "t1-hel": MeshPlan.peerConfig("t1-hel", 2379) },
        data: expect.objectContaining({
          "t1-hel": MeshPlan.peerConfig("t1-hel", 2379),
          "other-key": "kept",
          "t1-hel.etcd-client.crt": cert("t1-hel")
        })
      }
    ])
    expect(changes.hostAliases).toBeUndefined()
  })

  it("removes what Sovereign's earlier recipe and the direct mode left, once the peer is rewritten", () => {
    const plan = byKey(MeshPlan.plan(three), "fsn1")
    const earlier = {
      "t1-hel": "endpoints:\n- https://t1-hel.mesh.cilium.io:2379\n",
      "t1-hel-ca.crt": ca("t1-hel"),
      "t1-hel.crt": cert("t1-hel"),
      "t1-hel.key": key("t1-hel"),
      "t1-nbg.etcd-client.key": key("t1-nbg"),
      "someone-else": "kept"
    }
    const changes = MeshPlan.diff({ secrets: { "cilium-clustermesh": earlier }, hostAliases: [] }, plan)
    const agents = changes.secrets.find((change) => change.name === "cilium-clustermesh")!
    expect(agents.patch).toMatchObject({ "t1-hel-ca.crt": null, "t1-hel.crt": null, "t1-hel.key": null, "t1-nbg.etcd-client.key": null })
    expect(agents.data).toEqual({ "someone-else": "kept", "t1-hel": MeshPlan.localConfig(), "t1-nbg": MeshPlan.localConfig() })
  })

  it("replaces hostAliases that were merged by ip (the original's hazard) and drops entries of non-peers", () => {
    const plan = byKey(MeshPlan.plan(three), "fsn1")
    const merged = {
      secrets: plan.rendered.secrets,
      hostAliases: [
        { ip: "203.0.113.99", hostnames: ["t1-hel.mesh.cilium.io"] },
        ...aliasesOf(plan),
        { ip: "203.0.113.50", hostnames: ["gone.mesh.cilium.io"] }
      ]
    }
    expect(MeshPlan.diff(merged, plan).hostAliases?.aliases).toEqual(aliasesOf(plan))
  })

  it("does not rewrite hostAliases that only differ in order", () => {
    const plan = byKey(MeshPlan.plan(three), "fsn1")
    const reordered = { secrets: plan.rendered.secrets, hostAliases: [...aliasesOf(plan)].reverse() }
    expect(MeshPlan.diff(reordered, plan)).toEqual({ secrets: [], hostAliases: undefined })
  })

  it("keeps an unreachable peer's keys, alias and values entry, so a transient failure does not disconnect it", () => {
    const current = applied(empty, MeshPlan.diff(empty, byKey(MeshPlan.plan(three), "fsn1")))
    const plan = byKey(MeshPlan.plan([three[0]!, { ...three[1]!, unreachable: "timeout", cilium: undefined }, three[2]!]), "fsn1")
    expect(plan.retainPeers).toEqual(["t1-hel"])
    expect(plan.retainHostnames).toEqual(["t1-hel.mesh.cilium.io"])
    expect(MeshPlan.diff(current, plan)).toEqual({ secrets: [], hostAliases: undefined })
    const given = byKey(MeshPlan.plan(three), "fsn1").entries
    expect(
      MeshPlan.desiredEntries(given, plan)
        .map((entry) => entry.name)
        .sort()
    ).toEqual(["t1-hel", "t1-nbg"])
    expect(MeshPlan.desiredEntries(given, byKey(MeshPlan.plan([three[0]!, three[2]!]), "fsn1")).map((entry) => entry.name)).toEqual([
      "t1-nbg"
    ])
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

const anySetup = fc.record({
  version: fc.constantFrom("1.16.5", "1.17.0", "1.18.3", "1.19.1", "1.20.0", "1.21.4"),
  kvstoreMesh: fc.boolean(),
  chartRendersConfig: fc.constant(false)
})

const inputsOf = (regions: ReadonlyArray<Deployment.Region>, setup: MeshPlan.CiliumSetup) =>
  regions.map((region) => healthy(region.key, region.clusterName, region.clusterId, `198.51.100.${region.index + 1}`, setup))

describe("MeshPlan properties", () => {
  it.prop(
    "every region's dialling Secret holds four keys per peer, exactly its peers are aliased where the version reads them; a second pass writes nothing",
    [deployments, anySetup],
    ([regions, setup]) => {
      const plans = MeshPlan.plan(inputsOf(regions, setup))
      const inConfig = MeshPlan.aliasesInConfig(MeshPlan.parseCiliumVersion(setup.version)!)
      for (const plan of plans) {
        const peers = regions.filter((region) => region.key !== plan.regionKey)
        expect(Object.keys(diallingData(plan)).sort()).toEqual(
          peers.flatMap((peer) => Object.values(MeshPlan.peerKeys(peer.clusterName))).sort()
        )
        if (setup.kvstoreMesh)
          expect(Object.keys(plan.rendered.secrets[MeshPlan.secretName]!).sort()).toEqual(peers.map((peer) => peer.clusterName).sort())
        expect(
          aliasesOf(plan)
            .flatMap((alias) => alias.hostnames)
            .sort()
        ).toEqual(inConfig ? [] : peers.map((peer) => MeshPlan.peerHostname(peer.clusterName)).sort())
        for (const peer of peers) expect(diallingData(plan)[peer.clusterName]!.includes("cilium-host-aliases:")).toBe(inConfig)
        const first = MeshPlan.diff(empty, plan)
        expect(MeshPlan.restarts(first)).toEqual(inConfig ? [] : [MeshPlan.diallingWorkload(setup)])
        expect(MeshPlan.hasChanges(MeshPlan.diff(applied(empty, first), plan))).toBe(false)
      }
    }
  )

  it.prop(
    "a faulty peer is never written and never named with an empty key; healthy pairs stay wired",
    [
      deployments,
      anySetup,
      fc.array(fc.constantFrom("NodePort", "no-ip", "no-ca", "drift", "empty-name", "ok"), { minLength: 8, maxLength: 8 })
    ],
    ([regions, setup, faults]) => {
      const inputs = inputsOf(regions, setup).map((input, index): MeshPlan.MeshRegionInput => {
        switch (faults[index]) {
          case "NodePort":
            return { ...input, serviceType: "NodePort" }
          case "no-ip":
            return { ...input, loadBalancerIP: undefined }
          case "no-ca":
            return { ...input, caCert: undefined }
          case "drift":
            return { ...input, configuredClusterName: `${input.clusterName}x` }
          case "empty-name":
            return { ...input, clusterName: "", configuredClusterName: "" }
          default:
            return input
        }
      })
      const plans = MeshPlan.plan(inputs)
      plans.forEach((plan, index) => {
        for (const data of Object.values(plan.rendered.secrets)) for (const key of Object.keys(data)) expect(key).toMatch(/^[a-z0-9]/)
        inputs.forEach((peer, peerIndex) => {
          if (peerIndex === index) return
          const wired = plan.rendered.secrets[MeshPlan.diallingSecret(setup)]?.[peer.clusterName] !== undefined
          const healthyPair = faults[peerIndex] === "ok" && !["NodePort", "drift", "empty-name"].includes(faults[index]!)
          expect(wired).toBe(healthyPair)
        })
      })
    }
  )
})
