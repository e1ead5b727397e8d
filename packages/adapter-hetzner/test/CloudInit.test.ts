import { describe, expect, it } from "@effect/vitest"
import { CloudProviderSuite } from "@sovereign/testkit"
import { Redacted } from "effect"
import * as Yaml from "js-yaml"
import * as CloudInit from "../src/CloudInit.js"

// Eight regions over three locations: the derived names collide, so the longest explicit names are given.
const eightRegions = ["fsn1", "nbg1", "hel1", "fsn1", "nbg1", "hel1", "fsn1", "nbg1"].map((cloudRegion, index) => ({
  provider: "hetzner",
  cloudRegion,
  controlPlaneSize: "cpx32",
  workerSize: "cpx42",
  workerCount: 3,
  ...(index >= 3 ? { clusterMeshName: `t1-${"x".repeat(50)}-${index}` } : {})
}))

const deployment = CloudProviderSuite.sampleDeployment({
  id: "0123456789abcdef",
  fqdn: "t1.omani.works",
  regions: eightRegions,
  haControlPlane: true,
  postbackBaseUrl: "https://sovereign.omani.works/",
  postbackToken: "pbt-3f9a0c-secret-value"
})

describe("CloudInit", () => {
  it("keeps every node's user-data under Hetzner's 32 KiB limit for 8 HA regions", () => {
    for (const region of deployment.regions) {
      const first = CloudInit.controlPlane({ deployment, region, index: 0 })
      for (const userData of [
        first,
        CloudInit.controlPlane({ deployment, region, index: 1, joinAddress: "10.0.1.2" }),
        CloudInit.controlPlane({ deployment, region, index: 2, joinAddress: "10.0.1.2" }),
        CloudInit.worker({ deployment, region, joinAddress: "10.0.1.2" })
      ]) {
        expect(userData.startsWith("#cloud-config\n")).toBe(true)
        expect(CloudInit.sizeInBytes(userData)).toBeLessThan(CloudInit.userDataLimitBytes)
      }
    }
  })

  it("installs k3s without flannel and kube-proxy, and Cilium with the region's derived name, id and pod CIDR", () => {
    const secondary = deployment.regions[2]!
    const userData = CloudInit.controlPlane({ deployment, region: secondary, index: 0 })
    expect(userData).toContain("flannel-backend: none")
    expect(userData).toContain("disable-kube-proxy: true")
    expect(userData).toContain(`cluster-cidr: ${secondary.podCidr}`)
    expect(userData).toContain(`service-cidr: ${secondary.serviceCidr}`)
    expect(userData).toContain(`--set cluster.name='${secondary.clusterName}' --set cluster.id=${secondary.clusterId}`)
    expect(userData).toContain(`clusterPoolIPv4PodCIDRList='10.44.0.0/16'`)
    expect(secondary.clusterName).toBe("t1-hel")
    expect(userData).toContain("cluster-init: true")
    expect(userData).toContain("flux install")
    expect(userData).toContain("kind: GitRepository")
  })

  it("calls the kubeconfig back with the bearer token, ?region= only for secondaries, server rewritten to the public IPv4", () => {
    const primary = CloudInit.controlPlane({ deployment, region: deployment.regions[0]!, index: 0 })
    const secondary = CloudInit.controlPlane({ deployment, region: deployment.regions[1]!, index: 0 })
    expect(primary).toContain("'https://sovereign.omani.works/api/v1/deployments/0123456789abcdef/kubeconfig'")
    expect(primary).not.toContain("?region=")
    expect(secondary).toContain("'https://sovereign.omani.works/api/v1/deployments/0123456789abcdef/kubeconfig?region=nbg1-1'")
    // Each region's user data holds its own token only: the primary's node cannot open a secondary's call-back.
    expect(primary).toContain("Authorization: Bearer pbt-3f9a0c-secret-value-fsn1")
    expect(secondary).toContain("Authorization: Bearer pbt-3f9a0c-secret-value-nbg1-1")
    expect(primary).not.toContain("pbt-3f9a0c-secret-value-nbg1-1")
    expect(secondary).not.toContain("pbt-3f9a0c-secret-value-fsn1")
    for (const userData of [primary, secondary]) {
      expect(userData).toContain("-X PUT -H @/etc/sovereign/postback-headers")
      expect(userData).toContain("s#https://127.0.0.1:6443#https://$public_ip:6443#")
      expect(userData).toContain('--tls-san "$public_ip"')
    }
  })

  it("joins the other control planes and workers to the first, with a per-region secret only they share", () => {
    const [fsn1, nbg1] = deployment.regions
    const join = CloudInit.controlPlane({ deployment, region: fsn1!, index: 1, joinAddress: "10.0.1.2" })
    const worker = CloudInit.worker({ deployment, region: fsn1!, joinAddress: "10.0.1.2" })
    expect(join).toContain("server: https://10.0.1.2:6443")
    expect(worker).toContain("server: https://10.0.1.2:6443")
    expect(join).not.toContain("postback")
    expect(worker).not.toContain("Bearer")
    const token = Redacted.value(CloudInit.k3sToken(deployment, fsn1!.key))
    expect(join).toContain(`token: ${token}`)
    expect(worker).toContain(`token: ${token}`)
    expect(Redacted.value(CloudInit.k3sToken(deployment, nbg1!.key))).not.toBe(token)
    expect(token).not.toContain("pbt-3f9a0c")
    // The join secret is the region's own random value, handed over by the orchestrator, not derived from the postback token.
    expect(token).toBe(Redacted.value(deployment.clusterJoinSecrets[fsn1!.key]!))
  })

  it("renders valid cloud-config whose embedded k3s config and Flux objects parse as YAML", () => {
    const region = deployment.regions[1]!
    const parsed = Yaml.load(CloudInit.controlPlane({ deployment, region, index: 0 })) as {
      write_files: Array<{ path: string; permissions: string; content: string }>
      runcmd: Array<string>
    }
    expect(parsed.write_files.map((file) => [file.path, file.permissions])).toEqual([
      ["/etc/rancher/k3s/config.yaml", "0600"],
      ["/etc/sovereign/flux-sync.yaml", "0600"],
      ["/etc/sovereign/postback-headers", "0600"],
      ["/etc/sovereign/bootstrap.sh", "0700"]
    ])
    const k3s = Yaml.load(parsed.write_files[0]!.content) as Record<string, unknown>
    expect(k3s).toMatchObject({
      "flannel-backend": "none",
      "disable-kube-proxy": true,
      "cluster-cidr": region.podCidr,
      "service-cidr": region.serviceCidr,
      "node-label": [`sovereign.dev/region=${region.key}`],
      "cluster-init": true
    })
    const flux = Yaml.loadAll(parsed.write_files[1]!.content) as Array<{ kind: string; spec: Record<string, any> }>
    expect(flux.map((object) => object.kind)).toEqual(["GitRepository", "Kustomization"])
    expect(flux[1]!.spec.postBuild.substitute).toMatchObject({ CLUSTER_NAME: region.clusterName, CLUSTER_ID: String(region.clusterId) })
    expect(parsed.write_files[3]!.content.startsWith("#!/bin/sh\nset -eu\n")).toBe(true)
    expect(parsed.runcmd).toEqual(["/etc/sovereign/bootstrap.sh > /var/log/sovereign-bootstrap.log 2>&1"])
    const worker = Yaml.load(CloudInit.worker({ deployment, region, joinAddress: "10.0.1.2" })) as typeof parsed
    expect(Yaml.load(worker.write_files[0]!.content)).toMatchObject({ server: "https://10.0.1.2:6443" })
  })
})
