import { describe, expect, it } from "@effect/vitest"
import { Either, Redacted } from "effect"
import * as fc from "fast-check"
import { createHash } from "node:crypto"
import * as Deployment from "../src/Deployment.js"
import { sha256Hex } from "../src/internal/sha256.js"

const sshKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@omani.works"

const region = (cloudRegion: string, extra: Record<string, unknown> = {}) => ({
  provider: "hetzner",
  cloudRegion,
  controlPlaneSize: "cpx32",
  ...extra
})

/** The example request of SPEC 2.1, as it arrives on the wire (an `undefined` override removes the field). */
const request = (overrides: Record<string, unknown> = {}): Record<string, unknown> =>
  JSON.parse(
    JSON.stringify({
      sovereignFQDN: "t1.omani.works",
      orgName: "Omani Works",
      orgEmail: "ops@omani.works",
      topology: "active-hotstandby",
      regions: [region("fsn1", { workerSize: "cpx42", workerCount: 2 }), region("hel1", { workerCount: 0 })],
      parentDomains: [{ name: "omani.works", role: "primary" }],
      sshPublicKey: sshKey,
      haControlPlane: false,
      clusterMesh: { name: "t1-mesh", id: 42 },
      credentials: { hetznerToken: "hcloud-secret-token-0123456789" },
      ...overrides
    })
  )

const without = (key: string): Record<string, unknown> => {
  const { [key]: _removed, ...rest } = request()
  return rest
}

const issuesOf = (input: unknown): ReadonlyArray<Deployment.ValidationIssue> => {
  const result = Deployment.validate(input)
  return Either.isLeft(result) ? result.left.issues : []
}

const specOf = (input: unknown): Deployment.DeploymentSpec => {
  const result = Deployment.validate(input)
  if (Either.isLeft(result)) throw new Error(`expected a valid request, got: ${result.left.message}`)
  return result.right
}

describe("Deployment.validate accepts", () => {
  it("the example request of SPEC 2.1", () => {
    const spec = specOf(request())
    expect(spec.topology).toBe("active-hotstandby")
    expect(spec.regions[1]!.workerCount).toBe(0)
    expect(Redacted.value(Deployment.credential(spec, "hetznerToken")!)).toBe("hcloud-secret-token-0123456789")
  })

  it.each([
    ["a minimal single-region request", { topology: undefined, regions: [region("fsn1")], clusterMesh: undefined }],
    [
      "8 regions",
      {
        regions: ["fsn1", "nbg1", "hel1", "ash", "hil", "sin", "fsn1", "nbg1"].map((r, i) =>
          region(r, i >= 6 ? { clusterMeshName: `t1-extra-${i}` } : {})
        ),
        clusterMesh: undefined
      }
    ],
    ["workerCount 0 without workerSize", { regions: [region("fsn1", { workerCount: 0 }), region("hel1")] }],
    [
      "a 253-character FQDN",
      {
        topology: "single-region",
        regions: [region("fsn1")],
        sovereignFQDN: `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`
      }
    ],
    [
      "a primary and an extra parent domain",
      {
        parentDomains: [
          { name: "omani.works", role: "primary" },
          { name: "pool.example.com", role: "secondary" }
        ]
      }
    ],
    ["no credentials (the server may hold defaults)", { credentials: undefined }]
  ])("%s", (_name, overrides) => {
    const input = JSON.parse(JSON.stringify(request(overrides)))
    expect(issuesOf(input)).toEqual([])
  })
})

describe("Deployment.validate rejects, naming the field", () => {
  const cases: ReadonlyArray<readonly [string, unknown, string, RegExp]> = [
    // sovereignFQDN
    ["an uppercase FQDN", request({ sovereignFQDN: "T1.Omani.Works" }), "sovereignFQDN", /lowercase fully qualified domain name/],
    ["a single-label FQDN", request({ sovereignFQDN: "localhost" }), "sovereignFQDN", /at least 2 labels/],
    ["an FQDN with a leading digit label", request({ sovereignFQDN: "1t.omani.works" }), "sovereignFQDN", /lowercase fully qualified/],
    ["an FQDN with a trailing dot", request({ sovereignFQDN: "t1.omani.works." }), "sovereignFQDN", /lowercase fully qualified/],
    [
      "an FQDN longer than 253 characters",
      request({ sovereignFQDN: `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(63)}` }),
      "sovereignFQDN",
      /at most 253/
    ],
    [
      "an FQDN label longer than 63 characters",
      request({ sovereignFQDN: `${"a".repeat(64)}.omani.works` }),
      "sovereignFQDN",
      /at most 63 characters/
    ],
    ["an FQDN label ending in '-'", request({ sovereignFQDN: "t1-.omani.works" }), "sovereignFQDN", /must not end with '-'/],
    ["a missing FQDN", without("sovereignFQDN"), "sovereignFQDN", /is missing/],
    // regions
    ["no regions", request({ regions: [] }), "regions", /at least one region/],
    ["9 regions", request({ regions: Array.from({ length: 9 }, () => region("fsn1")) }), "regions", /at most 8 regions/],
    [
      "a region without cloudRegion",
      request({ regions: [region("fsn1"), { provider: "hetzner", controlPlaneSize: "cpx32" }] }),
      "regions.1.cloudRegion",
      /is missing/
    ],
    [
      "a region without controlPlaneSize",
      request({ regions: [region("fsn1"), { provider: "hetzner", cloudRegion: "hel1" }] }),
      "regions.1.controlPlaneSize",
      /is missing/
    ],
    [
      "a region without provider",
      request({ regions: [{ cloudRegion: "fsn1", controlPlaneSize: "cpx32" }, region("hel1")] }),
      "regions.0.provider",
      /is missing/
    ],
    ["an empty cloudRegion", request({ regions: [region(""), region("hel1")] }), "regions.0.cloudRegion", /must be a cloud region name/],
    [
      "a cloudRegion with '/'",
      request({ regions: [region("fsn1"), region("eu/west")] }),
      "regions.1.cloudRegion",
      /lowercase letters, digits and '-'/
    ],
    [
      "a cloudRegion with ':'",
      request({ regions: [region("fsn1"), region("hel1:a")] }),
      "regions.1.cloudRegion",
      /lowercase letters, digits and '-'/
    ],
    [
      "two regions with the same key",
      request({ regions: [region("eu-central-1"), region("eu-central", { clusterMeshName: "t1-b" })] }),
      "regions.1.cloudRegion",
      /region key 'eu-central-1' is already the key of region 0/
    ],
    ["regions that are not an array", request({ regions: "fsn1" }), "regions", /^must be an array of regions$/],
    ["a region that is not an object", request({ regions: ["fsn1"] }), "regions.0", /^must be an object$/],
    [
      "a negative workerCount",
      request({ regions: [region("fsn1", { workerCount: -1 }), region("hel1")] }),
      "regions.0.workerCount",
      /0 to 100/
    ],
    [
      "a fractional workerCount",
      request({ regions: [region("fsn1", { workerCount: 1.5, workerSize: "cpx42" }), region("hel1")] }),
      "regions.0.workerCount",
      /integer/
    ],
    [
      "workers without workerSize",
      request({ regions: [region("fsn1"), region("hel1", { workerCount: 3 })] }),
      "regions.1.workerSize",
      /required when workerCount > 0/
    ],
    // topology
    [
      "an unknown topology",
      request({ topology: "active-passive" }),
      "topology",
      /^must be one of "single-region", "active-hotstandby", "active-active", not "active-passive"$/
    ],
    [
      "single-region with 2 regions",
      request({ topology: "single-region" }),
      "topology",
      /single-region allows exactly 1 region but 2 were given/
    ],
    [
      "active-hotstandby with 1 region",
      request({ topology: "active-hotstandby", regions: [region("fsn1")] }),
      "topology",
      /active-hotstandby needs at least 2 regions/
    ],
    [
      "active-active with 1 region",
      request({ topology: "active-active", regions: [region("fsn1")] }),
      "topology",
      /active-active needs at least 2 regions/
    ],
    // parentDomains
    [
      "no primary parent domain",
      request({ parentDomains: [{ name: "omani.works", role: "secondary" }] }),
      "parentDomains",
      /exactly one parent domain must have the role primary, found 0/
    ],
    [
      "two primary parent domains",
      request({
        parentDomains: [
          { name: "omani.works", role: "primary" },
          { name: "example.com", role: "primary" }
        ]
      }),
      "parentDomains",
      /found 2/
    ],
    ["an empty parentDomains list", request({ parentDomains: [] }), "parentDomains", /found 0/],
    [
      "a duplicate parent domain",
      request({
        parentDomains: [
          { name: "omani.works", role: "primary" },
          { name: "omani.works", role: "secondary" }
        ]
      }),
      "parentDomains.1.name",
      /duplicate parent domain omani.works/
    ],
    [
      "a one-label parent domain",
      request({ parentDomains: [{ name: "works", role: "primary" }] }),
      "parentDomains.0.name",
      /at least 2 labels/
    ],
    [
      "a default parent domain of one label",
      request({ sovereignFQDN: "omani.works", parentDomains: undefined }),
      "parentDomains",
      /would be 'works', which has fewer than 2 labels/
    ],
    [
      "an unknown parent role",
      request({ parentDomains: [{ name: "omani.works", role: "owner" }] }),
      "parentDomains.0.role",
      /^must be one of "primary", "secondary", not "owner"$/
    ],
    [
      "parentDomains that are not an array",
      request({ parentDomains: "omani.works" }),
      "parentDomains",
      /^must be an array of parent domains$/
    ],
    [
      "a clusterMesh that is not an object",
      request({ clusterMesh: 42 }),
      "clusterMesh",
      /^must be an object with an optional name and id$/
    ],
    // unknown fields, at their path
    ["an unknown top-level field", request({ hetznerToken: "x" }), "hetznerToken", /unknown field/],
    [
      "an unknown region field",
      request({ regions: [region("fsn1", { workerSzie: "cpx42" }), region("hel1")] }),
      "regions.0.workerSzie",
      /unknown field/
    ],
    [
      "an unknown parent-domain field",
      request({ parentDomains: [{ name: "omani.works", role: "primary", registrar: "x" }] }),
      "parentDomains.0.registrar",
      /unknown field/
    ],
    ["an unknown clusterMesh field", request({ clusterMesh: { name: "t1-mesh", ids: 3 } }), "clusterMesh.ids", /unknown field/],
    // other fields
    ["a missing orgName", without("orgName"), "orgName", /is missing/],
    ["an invalid orgEmail", request({ orgEmail: "ops at omani.works" }), "orgEmail", /e-mail/],
    ["an invalid SSH key", request({ sshPublicKey: "not a key" }), "sshPublicKey", /OpenSSH public key/],
    ["a cluster mesh id of 0", request({ clusterMesh: { id: 0 } }), "clusterMesh.id", /1 to 254/],
    ["a cluster mesh id of 255", request({ clusterMesh: { id: 255 } }), "clusterMesh.id", /1 to 254/],
    [
      "an invalid clusterMeshName",
      request({ regions: [region("fsn1"), region("hel1", { clusterMeshName: "Hel_1" })] }),
      "regions.1.clusterMeshName",
      /DNS label/
    ],
    ["a body that is not an object", "t1.omani.works", "", /^the request must be a JSON object$/],
    ["a body that is null", null, "", /^the request must be a JSON object$/]
  ]

  it.each(cases)("%s → 400 at '%s'", (_name, input, path, message) => {
    const issues = issuesOf(JSON.parse(JSON.stringify(input)))
    const atPath = issues.filter((issue) => issue.path === path)
    expect(atPath, `issues were ${JSON.stringify(issues)}`).toHaveLength(1)
    expect(atPath[0]!.message).toMatch(message)
  })

  it("reports every issue at once, each at its own path", () => {
    const issues = issuesOf(
      request({
        sovereignFQDN: "Bad",
        regions: [region("fsn1", { workerSzie: "x" }), { provider: "hetzner" }],
        typo: true
      })
    )
    expect(issues.map((issue) => issue.path).sort()).toEqual(
      ["regions.0.workerSzie", "regions.1.cloudRegion", "regions.1.controlPlaneSize", "sovereignFQDN", "typo"].sort()
    )
  })

  it("a typo does not hide the cross-field rules", () => {
    const issues = issuesOf(request({ regions: [region("fsn1"), region("hel1", { workerCount: 2, workerSzie: "cpx42" })] }))
    expect(issues).toEqual([
      { path: "regions.1.workerSzie", message: "unknown field" },
      { path: "regions.1.workerSize", message: "is required when workerCount > 0" }
    ])
  })

  it("renders issues as the JSON 400 body of SPEC 2.1", () => {
    const result = Deployment.validate(request({ regions: [region("fsn1"), { provider: "hetzner", controlPlaneSize: "cpx32" }] }))
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect({ error: "invalid-request", issues: result.left.issues }).toEqual({
        error: "invalid-request",
        issues: [{ path: "regions.1.cloudRegion", message: "is missing" }]
      })
      expect(result.left.message).toBe("regions.1.cloudRegion: is missing")
    }
  })
})

describe("Deployment.validate derives", () => {
  it.each([
    [1, "single-region"],
    [2, "active-hotstandby"],
    [5, "active-hotstandby"]
  ])("the topology of %i region(s) when absent: %s", (count, topology) => {
    const regions = Array.from({ length: count }, (_, index) => region(`r${index}`, { clusterMeshName: `m${index}` }))
    expect(specOf(request({ topology: undefined, regions, clusterMesh: undefined })).topology).toBe(topology)
  })

  it("keeps an explicit active-active", () => {
    expect(specOf(request({ topology: "active-active" })).topology).toBe("active-active")
  })

  it("the default parent domain: the FQDN minus its first label, primary", () => {
    expect(specOf(request({ parentDomains: undefined })).parentDomains).toEqual([{ name: "omani.works", role: "primary" }])
    expect(specOf(request({ sovereignFQDN: "a.b.example.com", parentDomains: undefined })).parentDomains).toEqual([
      { name: "b.example.com", role: "primary" }
    ])
  })
})

describe("Deployment secrets", () => {
  const secret = "hcloud-secret-token-0123456789"

  it("never appear in the public spec", () => {
    const spec = specOf(request())
    const stored = Deployment.publicSpec(spec)
    expect(Object.keys(stored)).not.toContain("credentials")
    expect(JSON.stringify(stored)).not.toContain(secret)
  })

  it("are Redacted in the spec, so logging or serialising it shows no secret", () => {
    const spec = specOf(request())
    expect(JSON.stringify(spec)).not.toContain(secret)
    expect(String(spec.credentials["hetznerToken"])).not.toContain(secret)
  })

  it("never appear in a 400, whatever shape the credentials have", () => {
    for (const credentials of [{ hetznerToken: { value: secret } }, { hetznerToken: [secret] }, [secret], secret, 42]) {
      const result = Deployment.validate(request({ credentials }))
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left.issues.length).toBeGreaterThan(0)
        expect(result.left.issues.every((issue) => issue.path.startsWith("credentials"))).toBe(true)
        expect(JSON.stringify(result.left.issues)).not.toContain(secret)
        expect(result.left.message).not.toContain(secret)
      }
    }
  })
})

describe("Deployment derivations (SPEC 2.2)", () => {
  const id = "b3b837a22d7a8e5c"

  it("formats a deployment id as 16 lowercase hex characters", () => {
    const formatted = Deployment.deploymentIdFromBytes(new Uint8Array([0xb3, 0xb8, 0x37, 0xa2, 0x2d, 0x7a, 0x8e, 0x5c]))
    expect(formatted).toBe(id)
    expect(Deployment.deploymentIdFromBytes(new Uint8Array(8))).toBe("0000000000000000")
  })

  it("region keys: the primary is its cloudRegion, a secondary appends its index (never index + 1)", () => {
    const regions = [{ cloudRegion: "fsn1" }, { cloudRegion: "nbg1" }, { cloudRegion: "hel1" }]
    expect(regions.map((_, index) => Deployment.regionKey(regions, index))).toEqual(["fsn1", "nbg1-1", "hel1-2"])
    const twice = [{ cloudRegion: "fsn1" }, { cloudRegion: "fsn1" }]
    expect(twice.map((_, index) => Deployment.regionKey(twice, index))).toEqual(["fsn1", "fsn1-1"])
  })

  it.each([
    ["hel1", "hel"],
    ["me-east-215-b", "me-east-b"],
    ["me-east-215", "me-east"],
    ["fsn1", "fsn"],
    ["1-ap-2-south", "ap-south"],
    ["us-east-1a", "us-east-a"]
  ])("cloudRegion slug %s → %s", (cloudRegion, slug) => {
    expect(Deployment.cloudRegionSlug(cloudRegion)).toBe(slug)
  })

  it("mesh names: primary <label>-mesh, secondaries <label>-<slug> (hel1 → t1-hel, me-east-215-b → t1-me-east-b)", () => {
    const spec = specOf(request({ clusterMesh: undefined, regions: [region("fsn1"), region("hel1"), region("me-east-215-b")] }))
    expect(Deployment.deriveRegions(spec, id).map((r) => r.clusterName)).toEqual(["t1-mesh", "t1-hel", "t1-me-east-b"])
  })

  it("mesh names: explicit clusterMesh.name and clusterMeshName win", () => {
    const spec = specOf(
      request({
        clusterMesh: { name: "core" },
        regions: [region("fsn1"), region("hel1", { clusterMeshName: "standby" }), region("nbg1")]
      })
    )
    expect(Deployment.deriveRegions(spec, id).map((r) => r.clusterName)).toEqual(["core", "standby", "t1-nbg"])
  })

  it.each([
    [
      "two secondaries in one cloud region",
      { clusterMesh: undefined, regions: [region("fsn1"), region("hel1"), region("hel1")] },
      "regions.2.clusterMeshName",
      /'t1-hel' is already used by region 1/
    ],
    [
      "digit-only regions collapse to the same slug",
      { clusterMesh: undefined, regions: [region("fsn1"), region("hel1"), region("hel2")] },
      "regions.2.clusterMeshName",
      /already used/
    ],
    [
      "an explicit name equal to the primary's",
      { clusterMesh: undefined, regions: [region("fsn1"), region("hel1", { clusterMeshName: "t1-mesh" })] },
      "regions.1.clusterMeshName",
      /'t1-mesh' is already used by region 0/
    ],
    [
      "a region whose slug is empty",
      { clusterMesh: undefined, regions: [region("fsn1"), region("123")] },
      "regions.1.clusterMeshName",
      /derived cluster name 't1-' is not a valid DNS label/
    ],
    [
      "a name too long for a DNS label",
      { sovereignFQDN: `${"a".repeat(60)}.omani.works`, clusterMesh: undefined },
      "clusterMesh.name",
      /not a valid DNS label/
    ]
  ])("mesh names: %s → 400", (_name, overrides, path, message) => {
    const issues = issuesOf(request(overrides))
    const atPath = issues.filter((issue) => issue.path === path)
    expect(atPath, JSON.stringify(issues)).not.toEqual([])
    expect(atPath[0]!.message).toMatch(message)
  })

  it("mesh names: duplicates do not matter for a single region (no mesh)", () => {
    expect(issuesOf(request({ topology: "single-region", regions: [region("fsn1")], clusterMesh: { name: "x" } }))).toEqual([])
  })

  it("CIDRs: pod 10.(42+i).0.0/16 and service 10.(96+i).0.0/16, never overlapping", () => {
    const spec = specOf(request({ regions: ["fsn1", "nbg1", "hel1"].map((r) => region(r)) }))
    const regions = Deployment.deriveRegions(spec, id)
    expect(regions.map((r) => [r.podCidr, r.serviceCidr])).toEqual([
      ["10.42.0.0/16", "10.96.0.0/16"],
      ["10.43.0.0/16", "10.97.0.0/16"],
      ["10.44.0.0/16", "10.98.0.0/16"]
    ])
    const eight = Deployment.deriveRegions(
      specOf(
        request({ clusterMesh: undefined, regions: Array.from({ length: 8 }, (_, i) => region(`r${i}`, { clusterMeshName: `m${i}` })) })
      ),
      id
    )
    const all = eight.flatMap((r) => [r.podCidr, r.serviceCidr])
    expect(new Set(all).size).toBe(16)
  })

  it("console URL", () => {
    expect(Deployment.consoleUrl("t1.omani.works")).toBe("https://console.t1.omani.works")
  })

  it("an explicit cluster id is the primary's, secondaries follow it", () => {
    const spec = specOf(request({ regions: [region("fsn1"), region("hel1"), region("nbg1")] }))
    expect(Deployment.deriveRegions(spec, id).map((r) => r.clusterId)).toEqual([42, 43, 44])
  })

  it("a single region has cluster id 0 (no mesh), even with an explicit id", () => {
    const spec = specOf(request({ topology: "single-region", regions: [region("fsn1")] }))
    expect(Deployment.deriveRegions(spec, id)[0]!.clusterId).toBe(0)
  })

  it.each([
    [2, 253, true],
    [2, 254, false],
    [8, 247, true],
    [8, 248, false],
    [3, 252, true],
    [3, 253, false]
  ])("with %i regions an explicit id %i is accepted: %s", (count, clusterId, accepted) => {
    const input = request({
      clusterMesh: { id: clusterId },
      regions: Array.from({ length: count }, (_, i) => region(`r${i}`, { clusterMeshName: `m${i}` }))
    })
    const issues = issuesOf(input)
    if (accepted) {
      expect(issues).toEqual([])
      expect(Math.max(...Deployment.deriveRegions(specOf(input), id).map((r) => r.clusterId))).toBe(254)
    } else {
      expect(issues).toEqual([
        { path: "clusterMesh.id", message: `with ${count} regions the primary cluster id must be at most ${255 - count}` }
      ])
    }
  })

  const originalFormula = (deploymentId: string): number => (createHash("sha256").update(deploymentId).digest().readUInt32BE(0) % 252) + 1

  it("the derived cluster id of a known id matches the original's formula", () => {
    const spec = specOf(request({ clusterMesh: undefined }))
    expect(Deployment.primaryClusterId(spec, id)).toBe(originalFormula(id))
  })

  const hexId = fc.uint8Array({ minLength: 8, maxLength: 8 }).map(Deployment.deploymentIdFromBytes)

  // Validation does not depend on the id, so each region count is validated once and derived 10,000 times.
  const specsByCount = Array.from({ length: 8 }, (_, index) =>
    specOf(
      request({
        clusterMesh: undefined,
        topology: undefined,
        regions: Array.from({ length: index + 1 }, (_, r) => region(`r${r}`, { clusterMeshName: `m${r}` }))
      })
    )
  )

  it.prop(
    "every cluster id lies in 1..254, ids are consecutive, and ≤ 3 regions equal the original formula",
    { deploymentId: hexId, count: fc.integer({ min: 1, max: 8 }) },
    ({ count, deploymentId }) => {
      const ids = Deployment.deriveRegions(specsByCount[count - 1]!, deploymentId).map((r) => r.clusterId)
      // Plain comparisons, one assertion: 10,000 runs stay cheap on a shared machine.
      const expectedIds = count === 1 ? [0] : Array.from({ length: count }, (_, index) => ids[0]! + index)
      const inRange = count === 1 || ids.every((clusterId) => clusterId >= 1 && clusterId <= 254)
      const original = count === 1 || count > 3 || ids[0] === originalFormula(deploymentId)
      if (!inRange || !original || ids.join() !== expectedIds.join()) {
        throw new Error(`deployment ${deploymentId} with ${count} regions got cluster ids ${ids.join(", ")}`)
      }
    },
    { timeout: 60_000, fastCheck: { numRuns: 10_000 } }
  )
})

describe("Deployment.validate properties", () => {
  it.prop(
    "never throws on arbitrary JSON, and every issue names a path",
    { input: fc.oneof(fc.jsonValue(), fc.record({ sovereignFQDN: fc.jsonValue(), regions: fc.jsonValue(), credentials: fc.jsonValue() })) },
    ({ input }) => {
      const result = Deployment.validate(input)
      if (Either.isLeft(result)) {
        expect(result.left.issues.length).toBeGreaterThan(0)
        for (const issue of result.left.issues) expect(typeof issue.path).toBe("string")
      }
    },
    { fastCheck: { numRuns: 300 } }
  )

  const cloudRegions = ["fsn1", "nbg1", "hel1", "hel2", "ash", "me-east-215-b", "me-east-1", "eu-central-1", "eu-central", "123", "x"]
  const randomRequest = fc.record({
    regions: fc.array(
      fc.record({
        cloudRegion: fc.constantFrom(...cloudRegions),
        clusterMeshName: fc.option(fc.constantFrom("a", "b", "t1-hel", "t1-mesh", "Bad_Name"), { nil: undefined })
      }),
      { minLength: 1, maxLength: 8 }
    ),
    meshName: fc.option(fc.constantFrom("t1-mesh", "core", "t1-hel"), { nil: undefined }),
    meshId: fc.option(fc.integer({ min: 1, max: 254 }), { nil: undefined }),
    deploymentId: fc.uint8Array({ minLength: 8, maxLength: 8 }).map(Deployment.deploymentIdFromBytes)
  })

  it.prop(
    "an accepted request derives unique keys, unique valid cluster names and ids in 1..254; a rejected one says why",
    { generated: randomRequest },
    ({ generated }) => {
      const input = request({
        topology: undefined,
        clusterMesh:
          generated.meshName === undefined && generated.meshId === undefined
            ? undefined
            : { name: generated.meshName, id: generated.meshId },
        regions: generated.regions.map((r) => region(r.cloudRegion, { clusterMeshName: r.clusterMeshName }))
      })
      const result = Deployment.validate(input)
      if (Either.isLeft(result)) {
        for (const issue of result.left.issues) {
          expect(issue.path).toMatch(/^(regions\.\d+\.(cloudRegion|clusterMeshName)|clusterMesh\.(name|id))$/)
        }
        return
      }
      const derived = Deployment.deriveRegions(result.right, generated.deploymentId)
      expect(new Set(derived.map((r) => r.key)).size).toBe(derived.length)
      if (derived.length >= 2) {
        expect(new Set(derived.map((r) => r.clusterName)).size).toBe(derived.length)
        for (const r of derived) {
          expect(r.clusterName).toMatch(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/)
          expect(r.clusterId).toBeGreaterThanOrEqual(1)
          expect(r.clusterId).toBeLessThanOrEqual(254)
        }
      }
    },
    { fastCheck: { numRuns: 1000 } }
  )
})

describe("internal sha256", () => {
  it.each(["", "abc", "b3b837a22d7a8e5c"])("matches the FIPS 180-4 digest of %j", (text) => {
    expect(sha256Hex(text)).toBe(createHash("sha256").update(text).digest("hex"))
  })

  it.prop(
    "matches node:crypto on inputs across block boundaries",
    { text: fc.string({ minLength: 0, maxLength: 200, unit: "binary" }) },
    ({ text }) => {
      expect(sha256Hex(text)).toBe(createHash("sha256").update(text, "utf8").digest("hex"))
    },
    { fastCheck: { numRuns: 500 } }
  )
})
