import { ClusterWatch } from "@sovereign/core"
import { KubeError } from "@sovereign/adapter-kubernetes/KubeClient"
import { describe, expect, it } from "@effect/vitest"
import * as KubernetesClusters from "../src/KubernetesClusters.js"

describe("KubernetesClusters error mapping", () => {
  const table = [
    ["Unreachable", "Unreachable"],
    ["Timeout", "Unreachable"],
    ["ServerError", "Unreachable"],
    ["Conflict", "Unreachable"],
    ["Untrusted", "Forbidden"],
    ["Unauthorized", "Forbidden"],
    ["Forbidden", "Forbidden"],
    ["Invalid", "Invalid"],
    ["NotFound", "Invalid"],
    ["Unknown", "Unknown"]
  ] as const
  for (const [kube, mesh] of table) {
    it(`a client ${kube} is a ${mesh} MeshError (retryable: ${mesh === "Unreachable"}) with the client's message`, () => {
      const error = KubernetesClusters.fromKubeError(new KubeError({ reason: kube, message: "GET Secret kube-system/cilium-ca failed" }))
      expect(error.reason).toBe(mesh)
      expect(error.isRetryable).toBe(mesh === "Unreachable")
      expect(error.message).toBe("GET Secret kube-system/cilium-ca failed")
    })
  }

  it("an invalid kubeconfig is an Invalid MeshError, an untrusted server a Forbidden one", () => {
    expect(KubernetesClusters.fromClusterError(new ClusterWatch.ClusterError({ reason: "InvalidKubeconfig", message: "no CA" })).reason).toBe("Invalid")
    expect(KubernetesClusters.fromClusterError(new ClusterWatch.ClusterError({ reason: "Untrusted", message: "x" })).reason).toBe("Forbidden")
    expect(KubernetesClusters.fromClusterError(new ClusterWatch.ClusterError({ reason: "Unreachable", message: "x" })).isRetryable).toBe(true)
  })
})
