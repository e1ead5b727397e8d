import { describe, expect, it } from "@effect/vitest"
import * as HetznerCloud from "../src/HetznerCloud.js"
import * as HetznerNames from "../src/HetznerNames.js"

describe("HetznerNames.nameBelongsTo", () => {
  const cases: ReadonlyArray<readonly [string, string, boolean]> = [
    ["t1-fsn1-cp1", "t1-fsn1", true],
    ["t1-fsn1", "t1-fsn1", true],
    ["t1-fsn1-clustermesh", "t1-fsn1", true],
    ["t1-fsn1-console-lb", "t1-fsn1", true],
    ["t10-fsn1-cp1", "t1-fsn1", false],
    ["t1-fsn10-cp1", "t1-fsn1", false],
    ["t1-fsn1-2-cp1", "t1-fsn1", false],
    ["t1-fsn1-2-cp1", "t1-fsn1-2", true],
    ["t1-fsn1-20-cp1", "t1-fsn1-2", false],
    ["xt1-fsn1-cp1", "t1-fsn1", false],
    ["t1-fsn1-", "t1-fsn1", false]
  ]
  for (const [name, prefix, expected] of cases) {
    it(`${name} ${expected ? "belongs" : "does not belong"} to ${prefix}`, () => {
      expect(HetznerNames.nameBelongsTo(name, prefix)).toBe(expected)
    })
  }

  it("builds label selectors in the API's k=v,k2=v2 syntax", () => {
    expect(HetznerNames.roleSelector("0123456789abcdef", "hel1-1", "worker")).toBe(
      "sovereign.dev/deployment=0123456789abcdef,sovereign.dev/region=hel1-1,sovereign.dev/role=worker"
    )
  })

  it("computes the SSH fingerprint the API filters by (MD5 of the key blob)", () => {
    expect(HetznerCloud.sshFingerprint("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b")).toMatch(
      /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/
    )
  })
})
