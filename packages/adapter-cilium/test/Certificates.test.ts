import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { X509Certificate, generateKeyPairSync } from "node:crypto"
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

  it("refuses to mint with an ECDSA authority with a reason instead of producing a broken cert", () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
    const key = privateKey.export({ type: "pkcs8", format: "pem" }).toString()
    const result = Certificates.mintRemote({ cert: caB.cert, key }, now)
    expect(Either.isLeft(result) && result.left).toMatch(/only RSA authorities/)
  })

  it("notices a CA whose certificate and key do not belong together", () => {
    expect(Certificates.checkAuthority(caB)).toBeUndefined()
    expect(Certificates.checkAuthority({ cert: caB.cert, key: caA.key })).toMatch(/does not match/)
  })
})
