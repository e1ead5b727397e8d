import { describe, expect, it } from "@effect/vitest"
import { FakeKubernetesApi } from "@sovereign/testkit"
import { Effect, Redacted } from "effect"
import * as KubernetesClusterAccess from "../src/KubernetesClusterAccess.js"

const owner = { email: "owner@example.com", role: "sovereign-admin", deploymentId: "0123456789abcdef" }
const bindings = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding" } as const

describe("KubernetesClusterAccess", () => {
  it.scopedLive(
    "grants the owner cluster access once: a second grant succeeds and leaves one object",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const access = KubernetesClusterAccess.make()
        yield* access.grantOwner(Redacted.make(fake.kubeconfig), owner)
        yield* access.grantOwner(Redacted.make(fake.kubeconfig), owner)
        const objects = yield* fake.list(bindings)
        expect(objects).toHaveLength(1)
        const binding = objects[0]!
        expect(binding.metadata.name).toBe(KubernetesClusterAccess.bindingName("sovereign-owner-", owner, "cluster-admin"))
        expect(binding["roleRef"]).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" })
        expect(binding["subjects"]).toEqual([{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: owner.email }])
        expect(binding.metadata.labels?.[KubernetesClusterAccess.managedByLabel]).toBe("sovereign")
        const creates = (yield* fake.requests).filter((request) => request.method === "POST").map((request) => request.status)
        expect(creates).toEqual([201, 409])
      }),
    30_000
  )

  it.scopedLive(
    "binds the configured cluster role, and does nothing when the cluster-side handover is off",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        yield* KubernetesClusterAccess.make({ enabled: false }).grantOwner(Redacted.make(fake.kubeconfig), owner)
        expect(yield* fake.list(bindings)).toEqual([])
        yield* KubernetesClusterAccess.make({ clusterRole: "view" }).grantOwner(Redacted.make(fake.kubeconfig), owner)
        const objects = yield* fake.list(bindings)
        expect(objects.map((object) => (object["roleRef"] as { name: string }).name)).toEqual(["view"])
      }),
    30_000
  )

  it.scopedLive(
    "refuses a cluster it cannot verify, creating nothing",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const stranger = FakeKubernetesApi.makeCertificateAuthority("stranger")
        const failure = yield* Effect.flip(
          KubernetesClusterAccess.make().grantOwner(Redacted.make(fake.kubeconfigWith({ caPem: stranger.certPem })), owner)
        )
        expect(failure.reason).toBe("Untrusted")
        expect(yield* fake.list(bindings)).toEqual([])
      }),
    30_000
  )
})
