import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { X509Certificate } from "node:crypto"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Certificates from "../src/Certificates.js"

const now = Date.UTC(2026, 10, 23)
const caB = Certificates.authority("t1-hel cilium-ca", now)
const caA = Certificates.authority("t1-mesh cilium-ca", now)

describe("Certificates", () => {
  it("mints a CN=remote client certificate signed by the given CA, valid for three years", () => {
    const remote = Either.getOrThrow(Certificates.mintRemote(caB, now))
    const cert = new X509Certificate(remote.cert)
    expect(cert.subject).toBe("CN=remote")
    expect(Certificates.isSignedBy(remote.cert, caB.cert)).toBe(true)
    expect(Certificates.isSignedBy(remote.cert, caA.cert)).toBe(false)
    expect(cert.keyUsage).toContain("1.3.6.1.5.5.7.3.2") // clientAuth
    expect(Date.parse(cert.validTo) - now).toBeGreaterThan(3 * 364 * 86_400_000)
    expect(Certificates.checkRemote(remote, caB.cert, now)).toBeUndefined()
  })

  it("refuses a remote cert from another CA, an expired one and one with the wrong key, without printing keys", () => {
    const foreign = Either.getOrThrow(Certificates.mintRemote(caA, now))
    const own = Either.getOrThrow(Certificates.mintRemote(caB, now))
    const problems = [
      Certificates.checkRemote(foreign, caB.cert, now),
      Certificates.checkRemote(own, caB.cert, now + 4 * 365 * 86_400_000),
      Certificates.checkRemote({ cert: own.cert, key: foreign.key }, caB.cert, now),
      Certificates.checkRemote({ cert: "garbage", key: own.key }, caB.cert, now)
    ]
    expect(problems[0]).toMatch(/not signed by the region's cilium-ca/)
    expect(problems[1]).toMatch(/expired/)
    expect(problems[2]).toMatch(/does not match its key/)
    expect(problems[3]).toMatch(/not a PEM certificate/)
    for (const problem of problems) expect(problem).not.toMatch(/PRIVATE KEY|BEGIN/)
  })

  for (const [kind, keyOptions] of [
    ["ECDSA P-256", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]],
    ["ECDSA P-384", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"]],
    ["Ed25519", ["-newkey", "ed25519"]],
    ["RSA", ["-newkey", "rsa:2048"]]
  ] as const) {
    it(`mints with an ${kind} authority made by openssl, and openssl verifies the chain`, () => {
      const directory = mkdtempSync(join(tmpdir(), "sovereign-certs-"))
      try {
        const [keyFile, caFile, certFile] = ["ca.key", "ca.crt", "remote.crt"].map((name) => join(directory, name)) as [
          string,
          string,
          string
        ]
        execFileSync(
          "openssl",
          ["req", "-x509", ...keyOptions, "-nodes", "-subj", "/CN=Cilium CA", "-days", "30", "-keyout", keyFile, "-out", caFile],
          { stdio: "ignore" }
        )
        const ca = { cert: readFileSync(caFile, "utf8"), key: readFileSync(keyFile, "utf8") }
        const remote = Either.getOrThrow(Certificates.mintRemote(ca, Date.now()))
        writeFileSync(certFile, remote.cert)
        expect(execFileSync("openssl", ["verify", "-CAfile", caFile, certFile], { encoding: "utf8" })).toContain(": OK")
        expect(Certificates.checkRemote(remote, ca.cert, Date.now())).toBeUndefined()
        expect(Certificates.isSignedBy(remote.cert, caA.cert)).toBe(false)
        expect(new X509Certificate(remote.cert).issuer).toBe("CN=Cilium CA")
      } finally {
        rmSync(directory, { recursive: true, force: true })
      }
    })
  }

  it("notices a CA whose certificate and key do not belong together", () => {
    expect(Certificates.checkAuthority(caB)).toBeUndefined()
    expect(Certificates.checkAuthority({ cert: caB.cert, key: caA.key })).toMatch(/does not match/)
  })
})
