import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import * as fc from "fast-check"
import * as Kubeconfig from "../src/Kubeconfig.js"
import { callbackWindow } from "../src/orchestrator/Callback.js"
import type { DeploymentRecord } from "../src/DeploymentRepo.js"
import * as Memory from "../src/testing/Memory.js"

const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64")
const caPem = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIBADAKBggqhkjOPQQDAjAjMSEwHwYDVQQDDBhrM3Mtc2Vy\n-----END CERTIFICATE-----\n"
const leafPem = "-----BEGIN CERTIFICATE-----\nMIIBkTCCATegAwIBAgIIZ2xlYWZsZWFmMAoGCCqGSM49BAMCMCMxITAfBgNVBAMM\n-----END CERTIFICATE-----\n"
const keyPem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIk3bHkK3sPrivateKeyMaterialForTestsOnly\n-----END EC PRIVATE KEY-----\n"

/** The shape k3s writes (client certificate), pointed at a region address. */
const k3s = (server = "https://203.0.113.5:6443"): Record<string, unknown> => ({
  apiVersion: "v1",
  kind: "Config",
  preferences: {},
  "current-context": "default",
  clusters: [{ name: "default", cluster: { server, "certificate-authority-data": base64(caPem) } }],
  contexts: [{ name: "default", context: { cluster: "default", user: "default" } }],
  users: [{ name: "default", user: { "client-certificate-data": base64(leafPem), "client-key-data": base64(keyPem) } }]
})

const withCluster = (extra: Record<string, unknown>) => {
  const document = k3s() as { clusters: Array<{ cluster: Record<string, unknown> }> }
  document.clusters[0]!.cluster = { ...document.clusters[0]!.cluster, ...extra }
  return document
}
const withUser = (user: Record<string, unknown>) => ({ ...k3s(), users: [{ name: "default", user }] })

const allowed = { addresses: ["203.0.113.5", "198.51.100.7"], fqdn: "t1.omani.works" }
const inspector = Memory.kubeconfigInspector({
  leaves: [leafPem],
  hosts: { "api.t1.omani.works": ["198.51.100.7"], "mixed.t1.omani.works": ["198.51.100.7", "192.0.2.66"] }
})
const admit = (document: unknown) => Effect.either(Kubeconfig.admit(document, allowed)).pipe(Effect.provide(inspector))

const refusal = (document: unknown) => {
  const decoded = Kubeconfig.decode(document)
  if (Either.isRight(decoded)) throw new Error("expected a refusal")
  return decoded.left
}

describe("Kubeconfig.decode", () => {
  it("accepts the k3s shape and a token user, and keeps nothing else", () => {
    const decoded = Either.getOrThrow(Kubeconfig.decode(k3s()))
    expect(decoded.cluster).toEqual({ name: "default", server: "https://203.0.113.5:6443", certificateAuthorityData: base64(caPem) })
    expect(decoded.user.credential._tag).toBe("ClientCertificate")
    const token = Either.getOrThrow(Kubeconfig.decode(withUser({ token: "abc.def-ghi" })))
    expect(token.user.credential._tag === "Token" && Redacted.value(token.user.credential.token)).toBe("abc.def-ghi")
    // The normalised document decodes to the same kubeconfig.
    expect(Either.getOrThrow(Kubeconfig.decode(Kubeconfig.toDocument(decoded)))).toEqual(decoded)
  })

  const forbidden: ReadonlyArray<readonly [string, unknown]> = [
    ["certificate-authority", withCluster({ "certificate-authority": "/etc/shadow" })],
    ["insecure-skip-tls-verify", withCluster({ "insecure-skip-tls-verify": true })],
    ["proxy-url", withCluster({ "proxy-url": "http://10.0.0.1:3128" })],
    ["token-file", withUser({ "token-file": "/var/lib/sovereign/admin-token" })],
    ["client-certificate", withUser({ "client-certificate": "/tmp/c.pem", "client-key-data": base64(keyPem) })],
    ["client-key", withUser({ "client-certificate-data": base64(leafPem), "client-key": "/tmp/k.pem" })],
    ["exec", withUser({ exec: { command: "/bin/sh", args: ["-c", "id"] } })],
    ["auth-provider", withUser({ "auth-provider": { name: "oidc" } })],
    ["username", withUser({ username: "admin", password: "x" })],
    ["as", withUser({ token: "t", as: "system:admin" })]
  ]
  it.each(forbidden)("refuses %s, naming it", (field, document) => {
    const refused = refusal(document)
    expect(refused.reason).toBe("ForbiddenField")
    expect(refused.field).toBe(field)
    expect(refused.message).toContain(field)
  })

  it("names unknown fields, and refuses more than one cluster, user or context", () => {
    const unknown = refusal(withCluster({ extensions: [] }))
    expect([unknown.reason, unknown.field, unknown.path]).toEqual(["UnknownField", "extensions", "clusters[0].cluster.extensions"])
    expect(refusal({ ...k3s(), users: [...(k3s()["users"] as Array<unknown>), { name: "b", user: { token: "t" } }] }).reason).toBe(
      "Malformed"
    )
    expect(refusal({ ...k3s(), clusters: [] }).reason).toBe("Malformed")
    expect(refusal("clusters: []").reason).toBe("Malformed")
    expect(refusal(withUser({})).reason).toBe("Malformed")
    expect(refusal(withUser({ token: "t", "client-certificate-data": base64(leafPem), "client-key-data": base64(keyPem) })).reason).toBe(
      "Malformed"
    )
    expect(refusal({ ...k3s(), "current-context": "other" }).path).toBe("current-context")
    expect(refusal(withCluster({ "certificate-authority-data": "not base64!" })).path).toBe(
      "clusters[0].cluster.certificate-authority-data"
    )
  })

  it("refuses a shared node (a YAML alias) instead of walking it", () => {
    const shared = { server: "https://203.0.113.5:6443", "certificate-authority-data": base64(caPem) }
    const document = { ...k3s(), clusters: [{ name: "a", cluster: shared }], extra: shared }
    expect(refusal(document).message).toContain("alias")
  })

  it.each([
    "http://203.0.113.5:6443",
    "https://user@203.0.113.5:6443",
    "https://203.0.113.5:6443/api",
    "https://203.0.113.5:6443?x=1",
    "https://203.0.113.5:99999",
    "https://999.1.1.1",
    "file:///etc/passwd"
  ])("refuses the server %s", (server) => {
    expect(refusal(k3s(server)).path).toBe("clusters[0].cluster.server")
  })
})

describe("Kubeconfig.admit", () => {
  it.effect("accepts a server that is one of the region's addresses, or a name of ours resolving only to them", () =>
    Effect.gen(function* () {
      expect(Either.isRight(yield* admit(k3s("https://203.0.113.5:6443")))).toBe(true)
      expect(Either.isRight(yield* admit(k3s("https://198.51.100.7")))).toBe(true)
      expect(Either.isRight(yield* admit(k3s("https://api.t1.omani.works:6443")))).toBe(true)
    })
  )

  it.effect("refuses any other server, saying which addresses are allowed", () =>
    Effect.gen(function* () {
      for (const server of [
        "https://127.0.0.1:6443",
        "https://mixed.t1.omani.works",
        "https://evil.example.com",
        "https://nowhere.t1.omani.works",
        "https://[::1]:6443"
      ]) {
        const result = yield* admit(k3s(server))
        const refused = Either.getLeft(result)
        expect(refused._tag === "Some" && refused.value.reason).toBe("ServerNotAllowed")
        expect(refused._tag === "Some" && refused.value.allowed).toEqual(allowed.addresses)
        expect(refused._tag === "Some" && refused.value.message).toContain("203.0.113.5, 198.51.100.7")
      }
    })
  )

  it.effect("refuses a certificate authority that is not a CA", () =>
    Effect.gen(function* () {
      const result = yield* admit(withCluster({ "certificate-authority-data": base64(leafPem) }))
      expect(Either.getLeft(result).pipe((left) => left._tag === "Some" && left.value.reason)).toBe("UntrustedAuthority")
    })
  )

  it("renders a normalised document in which no value can become YAML structure", () => {
    const kubeconfig = Either.getOrThrow(Kubeconfig.decode(withUser({ token: "a:b#c" })))
    const text = Redacted.value(Kubeconfig.render(kubeconfig))
    expect(text).toBe(
      [
        'apiVersion: "v1"',
        'kind: "Config"',
        "clusters:",
        '- name: "default"',
        "  cluster:",
        '    server: "https://203.0.113.5:6443"',
        `    certificate-authority-data: "${base64(caPem)}"`,
        "contexts:",
        '- name: "default"',
        "  context:",
        '    cluster: "default"',
        '    user: "default"',
        'current-context: "default"',
        "users:",
        '- name: "default"',
        "  user:",
        '    token: "a:b#c"',
        ""
      ].join("\n")
    )
  })

  it("never accepts a document carrying a forbidden field (property)", () => {
    const fields = Object.keys(Kubeconfig.forbiddenFields)
    fc.assert(
      fc.property(
        fc.constantFrom(...fields),
        fc.constantFrom("cluster", "user", "context", "top"),
        fc.oneof(fc.string(), fc.boolean(), fc.constant({ command: "sh" })),
        (field, where, value) => {
          const document = k3s() as Record<string, any>
          if (where === "cluster") document["clusters"][0].cluster[field] = value
          else if (where === "user") document["users"][0].user[field] = value
          else if (where === "context") document["contexts"][0].context[field] = value
          else document[field] = value
          const decoded = Kubeconfig.decode(document)
          return Either.isLeft(decoded) && decoded.left.reason === "ForbiddenField" && decoded.left.field === field
        }
      )
    )
  })
})

describe("the call-back window", () => {
  const record = (
    status: DeploymentRecord["status"],
    region: Partial<DeploymentRecord["results"]["regions"][number]> = {}
  ): DeploymentRecord => ({
    id: "0123456789abcdef",
    owner: "ops@omani.works",
    status,
    spec: {} as DeploymentRecord["spec"],
    sealedCredentials: "",
    results: { regions: [{ regionKey: "fsn1", cloudRegion: "fsn1", provider: "hetzner", primary: true, phase0: "running", ...region }] },
    version: 1,
    createdAt: 1,
    updatedAt: 1
  })

  it.each([
    ["pending", {}, "NotYet"],
    ["provisioning", {}, "Open"],
    ["phase1-watching", {}, "Open"],
    ["ready", {}, "Open"],
    ["provisioning", { phase0: "failed" as const }, "Ended"],
    ["phase1-watching", { phase1: { installed: 0, total: 0, failed: 0, state: "failed" as const } }, "Ended"],
    ["failed", {}, "Ended"],
    ["partial-failure", {}, "Ended"],
    ["wiping", {}, "Closed"],
    ["wiped", {}, "Closed"],
    ["adopted", {}, "Closed"]
  ] as const)("%s %j → %s", (status, region, expected) => {
    expect(callbackWindow(record(status, region), "fsn1")._tag).toBe(expected)
  })
})
