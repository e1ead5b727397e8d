import { describe, expect, it } from "@effect/vitest"
import * as HelmControllerLog from "../src/HelmControllerLog.js"

describe("HelmControllerLog.parse", () => {
  it("attributes the three line shapes helm-controller writes, with their level", () => {
    const nested =
      '{"level":"error","ts":"2026-05-15T10:00:01.250Z","msg":"install failed","controller":"helmrelease","HelmRelease":{"name":"bp-gitea","namespace":"flux-system"}}'
    expect(HelmControllerLog.parse(nested, "bp-")).toEqual({
      release: "bp-gitea",
      level: "ERROR",
      message: nested,
      timestamp: Date.parse("2026-05-15T10:00:01.250Z")
    })
    const flat = '{"level":"info","ts":1747303201.5,"helmrelease":"flux-system/bp-keycloak","msg":"reconciled"}'
    expect(HelmControllerLog.parse(flat, "bp-")).toMatchObject({ release: "bp-keycloak", level: "INFO", timestamp: 1747303201500 })
    const logr = 'level=warn msg="upgrade retrying" helmrelease="flux-system/bp-cilium"'
    expect(HelmControllerLog.parse(`  ${logr}  `, "bp-")).toEqual({
      release: "bp-cilium",
      level: "WARN",
      message: logr,
      timestamp: undefined
    })
  })

  it("drops noise: lines naming no release, releases outside the prefix, blank lines", () => {
    expect(HelmControllerLog.parse('{"level":"info","msg":"starting manager"}', "bp-")).toBeUndefined()
    expect(HelmControllerLog.parse('{"level":"info","HelmRelease":{"name":"podinfo","namespace":"apps"}}', "bp-")).toBeUndefined()
    expect(HelmControllerLog.parse("   ", "bp-")).toBeUndefined()
  })
})
