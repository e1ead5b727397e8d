import { describe, expect, it } from "@effect/vitest"
import * as k8s from "@kubernetes/client-node"
import { ClusterWatch } from "@sovereign/core"
import { FakeKubernetesApi } from "@sovereign/testkit"
import { Duration, Effect, Either, Redacted, Stream } from "effect"
import * as KubeClient from "../src/KubeClient.js"
import * as KubernetesClusterWatch from "../src/KubernetesClusterWatch.js"

const watchOptions: ClusterWatch.WatchOptions = { ...ClusterWatch.defaultWatchOptions, resyncInterval: Duration.minutes(30) }

/** The first event of a watch, or its failure. */
const firstEventOf = (kubeconfig: string) =>
  KubernetesClusterWatch.make({ reachability: { initialDelay: Duration.millis(10), budget: Duration.seconds(2) } })
    .watch(Redacted.make(kubeconfig), watchOptions)
    .pipe(Stream.runHead, Effect.either)

const clientFailure = (kubeconfig: string) =>
  Effect.scoped(KubeClient.make(Redacted.make(kubeconfig))).pipe(
    Effect.flip,
    Effect.map((error) => ({ reason: error.reason, message: error.message }))
  )

describe("KubeClient", () => {
  it.scopedLive(
    "verifies the API server against the kubeconfig's CA and talks to it",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const client = yield* KubeClient.make(Redacted.make(fake.kubeconfig))
        yield* client.probe
        const first = yield* firstEventOf(fake.kubeconfig)
        expect(Either.map(first, (event) => event._tag === "Some" && event.value._tag)).toEqual(Either.right("Synced"))
      }),
    30_000
  )

  it.scopedLive(
    "refuses a server whose certificate another CA signed (Untrusted), for requests and for the watch",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const stranger = FakeKubernetesApi.makeCertificateAuthority("not-the-cluster-ca")
        const kubeconfig = fake.kubeconfigWith({ caPem: stranger.certPem })
        const client = yield* KubeClient.make(Redacted.make(kubeconfig))
        const failure = yield* Effect.flip(client.probe)
        expect(failure.reason).toBe("Untrusted")
        expect(failure.isRetryable).toBe(false)
        const watched = yield* firstEventOf(kubeconfig)
        expect(Either.isLeft(watched) && watched.left.reason).toBe("Untrusted")
        expect(Either.isLeft(watched) && watched.left.message).toMatch(/not trusted by the kubeconfig's certificate authority/)
        // Never proceeds to list: the refused handshake is the only thing the server saw.
        expect((yield* fake.requests).filter((request) => request.status !== 0)).toEqual([])
      }),
    30_000
  )

  it.effect(
    "refuses a kubeconfig with insecure-skip-tls-verify, whatever else it holds",
    () =>
      Effect.gen(function* () {
        const kubeconfig = [
          "apiVersion: v1",
          "kind: Config",
          "clusters:",
          "- name: c",
          "  cluster:",
          "    server: https://127.0.0.1:6443",
          "    insecure-skip-tls-verify: true",
          "users:",
          "- name: u",
          "  user:",
          "    token: very-secret-token",
          "contexts:",
          "- name: x",
          "  context: {cluster: c, user: u}",
          "current-context: x"
        ].join("\n")
        const failure = yield* clientFailure(kubeconfig)
        expect(failure.reason).toBe("InvalidKubeconfig")
        expect(failure.message).toMatch(/insecure-skip-tls-verify/)
        expect(failure.message).not.toContain("very-secret-token")
      }),
    30_000
  )

  it.scoped(
    "refuses a kubeconfig without a certificate authority, one with an exec plugin, and one that is not a kubeconfig",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make({ token: "token-that-must-not-leak" })
        const noCa = yield* clientFailure(fake.kubeconfigWith({ caPem: null }))
        expect(noCa.reason).toBe("InvalidKubeconfig")
        expect(noCa.message).toMatch(/no certificate authority/)
        expect(noCa.message).not.toContain("token-that-must-not-leak")

        const exec = fake.kubeconfig.replace(
          / {4}token: .*/,
          "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/true"
        )
        expect((yield* clientFailure(exec)).message).toMatch(/users\[0\]\.user\.exec is not accepted: it runs a program/)

        const garbage = yield* clientFailure("{{{ not yaml: [")
        expect(garbage.reason).toBe("InvalidKubeconfig")
        const plainHttp = yield* clientFailure(fake.kubeconfigWith({ server: fake.url.replace("https:", "http:") }))
        expect(plainHttp.message).toMatch(/https/)

        const watched = yield* firstEventOf(fake.kubeconfigWith({ caPem: null }))
        expect(Either.isLeft(watched) && watched.left.reason).toBe("InvalidKubeconfig")
      }),
    30_000
  )

  it.scopedLive(
    "a certificate that names only kubernetes.default is accepted through tls-server-name, and refused without it",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make({ dnsNames: ["kubernetes.default"], ipAddresses: [] })
        const without = yield* KubeClient.make(Redacted.make(fake.kubeconfig))
        const failure = yield* Effect.flip(without.probe)
        expect(failure.reason).toBe("Untrusted")
        expect(failure.message).toMatch(/tls-server-name/)

        const kubeconfig = fake.kubeconfigWith({ tlsServerName: "kubernetes.default" })
        const client = yield* KubeClient.make(Redacted.make(kubeconfig))
        yield* client.probe
        const first = yield* firstEventOf(kubeconfig)
        expect(Either.map(first, (event) => event._tag === "Some" && event.value._tag)).toEqual(Either.right("Synced"))
      }),
    30_000
  )

  it.scopedLive(
    "gives up on a request that gets no answer within the per-request timeout",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const client = yield* KubeClient.make(Redacted.make(fake.kubeconfig), { requestTimeout: Duration.millis(300) })
        yield* fake.hangRequests(true)
        const failure = yield* Effect.flip(
          client.request("list secrets", (options) => client.core.listNamespacedSecret({ namespace: "default" }, options))
        )
        expect(failure.reason).toBe("Timeout")
        expect(failure.isRetryable).toBe(true)
        expect(KubeClient.toClusterError(failure).reason).toBe("Unreachable")
        yield* fake.hangRequests(false)
        const list = yield* client.request("list secrets", (options) => client.core.listNamespacedSecret({ namespace: "default" }, options))
        expect(list.items).toEqual([])
      }),
    30_000
  )

  it.scopedLive(
    "probes reachability with backoff until the server answers, and reports a spent budget",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const client = yield* KubeClient.make(Redacted.make(fake.kubeconfig))
        yield* fake.failNext(3, 503)
        const reachable = yield* client.awaitReachable({ initialDelay: Duration.millis(10), maxDelay: Duration.millis(40) })
        expect(reachable).toBe(true)
        expect((yield* fake.requests).map((request) => `${request.path} ${request.status}`)).toEqual([
          "/version 503",
          "/version 503",
          "/version 503",
          "/version 200"
        ])
        yield* fake.failNext(1000, 503)
        const spent = yield* client.awaitReachable({
          initialDelay: Duration.millis(10),
          maxDelay: Duration.millis(20),
          budget: Duration.millis(200)
        })
        expect(spent).toBe(false)
      }),
    30_000
  )

  it.scopedLive(
    "a wrong bearer token fails the watch with Forbidden instead of retrying forever",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        const watched = yield* firstEventOf(fake.kubeconfigWith({ token: "wrong" }))
        expect(Either.isLeft(watched) && watched.left.reason).toBe("Forbidden")
        expect(Either.isLeft(watched) && watched.left.message).not.toContain(fake.token)
      }),
    30_000
  )

  it.scopedLive(
    "a patch with another content type keeps the verified transport (hostAliases replaced, not merged)",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeKubernetesApi.make()
        yield* fake.put({
          apiVersion: "apps/v1",
          kind: "DaemonSet",
          metadata: { name: "cilium", namespace: "kube-system" },
          spec: {
            template: { spec: { containers: [{ name: "agent" }], hostAliases: [{ ip: "10.0.0.1", hostnames: ["old.mesh.cilium.io"] }] } }
          }
        })
        const client = yield* KubeClient.make(Redacted.make(fake.kubeconfig))
        const body = {
          spec: { template: { spec: { hostAliases: [{ $patch: "replace" }, { ip: "10.0.0.2", hostnames: ["new.mesh.cilium.io"] }] } } }
        }
        const patched = yield* client.request("patch DaemonSet cilium", (options) =>
          client.apps.patchNamespacedDaemonSet(
            { name: "cilium", namespace: "kube-system", body },
            k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch, options)
          )
        )
        expect(patched.spec?.template.spec?.hostAliases).toEqual([{ ip: "10.0.0.2", hostnames: ["new.mesh.cilium.io"] }])
        const missing = yield* Effect.flip(
          client.request("read DaemonSet absent", (options) =>
            client.apps.readNamespacedDaemonSet({ name: "absent", namespace: "kube-system" }, options)
          )
        )
        expect(missing.reason).toBe("NotFound")
      }),
    30_000
  )
})
