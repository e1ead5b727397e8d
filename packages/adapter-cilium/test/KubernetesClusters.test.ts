import { ClusterWatch } from "@sovereign/core"
import { KubeError } from "@sovereign/adapter-kubernetes/KubeClient"
import { describe, expect, it, vi } from "@effect/vitest"
import { FakeKubernetesApi } from "@sovereign/testkit"
import { Effect, Redacted } from "effect"
import fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as CiliumCluster from "../src/CiliumCluster.js"
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
    expect(
      KubernetesClusters.fromClusterError(new ClusterWatch.ClusterError({ reason: "InvalidKubeconfig", message: "no CA" })).reason
    ).toBe("Invalid")
    expect(KubernetesClusters.fromClusterError(new ClusterWatch.ClusterError({ reason: "Untrusted", message: "x" })).reason).toBe(
      "Forbidden"
    )
    expect(KubernetesClusters.fromClusterError(new ClusterWatch.ClusterError({ reason: "Unreachable", message: "x" })).isRetryable).toBe(
      true
    )
  })
})

describe("KubernetesClusters and the kubeconfig it is given", () => {
  it.scoped(
    "refuses a kubeconfig that names files, runs a program or skips verification, and reads no file",
    () =>
      Effect.gen(function* () {
        const directory = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-cilium-defence-"))
        const file = path.join(directory, "token")
        fs.writeFileSync(file, "a token a client would send")
        const read = vi.spyOn(fs, "readFileSync")
        const fake = yield* FakeKubernetesApi.make()
        const clusters = yield* CiliumCluster.CiliumClusters.pipe(Effect.provide(KubernetesClusters.layer()))
        const variants = [
          fake.kubeconfig.replace(/ {4}token: .*/, `    token-file: ${file}`),
          fake.kubeconfig.replace(/ {4}certificate-authority-data: .*/, `    certificate-authority: ${file}`),
          fake.kubeconfig.replace(/ {4}token: .*/, `    exec:\n      command: ${file}`),
          fake.kubeconfigWith({ insecureSkipTlsVerify: true })
        ]
        try {
          for (const kubeconfig of variants) {
            const failure = yield* Effect.flip(Effect.scoped(clusters.connect(Redacted.make(kubeconfig))))
            expect(failure.reason).toBe("Invalid")
          }
          expect(read.mock.calls.filter(([target]) => String(target).startsWith(directory))).toEqual([])
          expect((yield* fake.requests).length).toBe(0)
        } finally {
          read.mockRestore()
        }
      }),
    60_000
  )
})
