/** Cloud-init user-data of each node, rendered from the deployment's derivations (k3s, Cilium, Flux, kubeconfig call-back). */
import type { CloudProvider, Deployment } from "@sovereign/core"
import { Redacted } from "effect"

export interface CloudInitOptions {
  /** k3s release installed on every node. */
  readonly k3sVersion: string
  /** Cilium chart version the Cilium CLI installs. */
  readonly ciliumVersion: string
  readonly ciliumCliVersion: string
  readonly fluxVersion: string
  /** The Git repository Flux reconciles. */
  readonly gitopsRepositoryUrl: string
  readonly gitopsBranch: string
  /** Path in the repository of one region's cluster; default `./clusters/<fqdn>/<regionKey>`. */
  readonly gitopsPath?: (fqdn: string, regionKey: string) => string
}

export const defaultOptions: CloudInitOptions = {
  k3sVersion: "v1.31.4+k3s1",
  ciliumVersion: "1.16.5",
  ciliumCliVersion: "v0.16.22",
  fluxVersion: "2.4.0",
  gitopsRepositoryUrl: "https://github.com/openova-io/openova",
  gitopsBranch: "main"
}

/** Hetzner rejects user-data above 32 KiB. */
export const userDataLimitBytes = 32 * 1024

export const sizeInBytes = (userData: string): number => new TextEncoder().encode(userData).length

/**
 * The region's k3s join secret: a random value per region, drawn when the deployment was created and
 * sealed with its credentials. Never derived from the postback token, so the user data of one node
 * (which holds its region's postback token) tells nothing about another region's cluster.
 */
export const k3sToken = (deployment: CloudProvider.CloudDeployment, regionKey: string): Redacted.Redacted<string> => {
  const secret = deployment.clusterJoinSecrets[regionKey]
  if (secret === undefined) throw new Error(`no cluster join secret for region ${regionKey}`)
  return secret
}

/** The region's own postback token: it opens this region's call-back and no other. */
export const postbackToken = (deployment: CloudProvider.CloudDeployment, regionKey: string): Redacted.Redacted<string> => {
  const token = deployment.postback.tokens[regionKey]
  if (token === undefined) throw new Error(`no postback token for region ${regionKey}`)
  return token
}

/** `PUT <base>/api/v1/deployments/<id>/kubeconfig`, with `?region=<key>` for a secondary only. */
export const kubeconfigUrl = (deployment: CloudProvider.CloudDeployment, region: Deployment.Region): string => {
  const base = deployment.postback.baseUrl.replace(/\/+$/, "")
  const url = `${base}/api/v1/deployments/${deployment.id}/kubeconfig`
  return region.primary ? url : `${url}?region=${encodeURIComponent(region.key)}`
}

/** Single-quoted for sh: nothing inside is expanded. */
const shellQuote = (value: string): string => `'${value.replace(/'/g, `'"'"'`)}'`

const indent = (text: string, spaces: number): string =>
  text
    .split("\n")
    .map((line) => (line.length === 0 ? line : " ".repeat(spaces) + line))
    .join("\n")

interface File {
  readonly path: string
  readonly permissions: string
  readonly content: string
}

const cloudConfig = (files: ReadonlyArray<File>, commands: ReadonlyArray<string>): string =>
  [
    "#cloud-config",
    "write_files:",
    ...files.map((file) =>
      [`  - path: ${file.path}`, `    permissions: "${file.permissions}"`, "    content: |", indent(file.content, 6)].join("\n")
    ),
    "runcmd:",
    ...commands.map((command) => `  - ${JSON.stringify(command)}`),
    ""
  ].join("\n")

// Hetzner's metadata service tells a node its own addresses; nothing else knows them before boot.
const discoverAddresses = [
  "meta=http://169.254.169.254/hetzner/v1/metadata",
  'until public_ip=$(curl -sf $meta/public-ipv4) && [ -n "$public_ip" ]; do sleep 2; done',
  "until private_ip=$(curl -sf $meta/private-networks | sed -n 's/^ *ip: *//p' | head -n1) && [ -n \"$private_ip\" ]; do sleep 2; done",
  "arch=$(uname -m | sed 's/x86_64/amd64/;s/aarch64/arm64/')"
].join("\n")

const k3sConfig = (
  region: Deployment.Region,
  token: Redacted.Redacted<string>,
  role: { readonly _tag: "first" | "join" | "agent"; readonly ha?: boolean; readonly joinAddress?: string }
): string => {
  const lines = [`token: ${Redacted.value(token)}`, "node-label:", `  - sovereign.dev/region=${region.key}`]
  if (role._tag === "agent") return [...lines, `server: https://${role.joinAddress}:6443`].join("\n")
  // Cilium replaces flannel, the network policy controller and kube-proxy.
  lines.push(
    "flannel-backend: none",
    "disable-network-policy: true",
    "disable-kube-proxy: true",
    "disable:",
    "  - traefik",
    "  - servicelb",
    `cluster-cidr: ${region.podCidr}`,
    `service-cidr: ${region.serviceCidr}`
  )
  if (role._tag === "first" && role.ha === true) lines.push("cluster-init: true")
  if (role._tag === "join") lines.push(`server: https://${role.joinAddress}:6443`)
  return lines.join("\n")
}

const installK3s = (options: CloudInitOptions, mode: "server" | "agent") =>
  [
    `curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=${shellQuote(options.k3sVersion)} sh -s - ${mode} \\`,
    `  --node-ip "$private_ip" --node-external-ip "$public_ip"${mode === "server" ? ' --tls-san "$public_ip"' : ""}`
  ].join("\n")

const fluxSync = (deployment: CloudProvider.CloudDeployment, region: Deployment.Region, options: CloudInitOptions) => {
  const fqdn = deployment.spec.sovereignFQDN
  const path = options.gitopsPath?.(fqdn, region.key) ?? `./clusters/${fqdn}/${region.key}`
  return [
    "apiVersion: source.toolkit.fluxcd.io/v1",
    "kind: GitRepository",
    "metadata: {name: sovereign, namespace: flux-system}",
    "spec:",
    "  interval: 1m",
    `  url: ${JSON.stringify(options.gitopsRepositoryUrl)}`,
    `  ref: {branch: ${JSON.stringify(options.gitopsBranch)}}`,
    "---",
    "apiVersion: kustomize.toolkit.fluxcd.io/v1",
    "kind: Kustomization",
    "metadata: {name: sovereign, namespace: flux-system}",
    "spec:",
    "  interval: 5m",
    "  prune: true",
    `  path: ${JSON.stringify(path)}`,
    "  sourceRef: {kind: GitRepository, name: sovereign}",
    "  postBuild:",
    "    substitute:",
    `      SOVEREIGN_FQDN: ${JSON.stringify(fqdn)}`,
    `      SOVEREIGN_DEPLOYMENT_ID: ${JSON.stringify(deployment.id)}`,
    `      SOVEREIGN_REGION_KEY: ${JSON.stringify(region.key)}`,
    `      CLUSTER_NAME: ${JSON.stringify(region.clusterName)}`,
    `      CLUSTER_ID: ${JSON.stringify(String(region.clusterId))}`,
    `      POD_CIDR: ${JSON.stringify(region.podCidr)}`,
    `      SERVICE_CIDR: ${JSON.stringify(region.serviceCidr)}`
  ].join("\n")
}

const bootstrapFirstServer = (deployment: CloudProvider.CloudDeployment, region: Deployment.Region, options: CloudInitOptions) =>
  [
    "#!/bin/sh",
    "set -eu",
    discoverAddresses,
    installK3s(options, "server"),
    "export KUBECONFIG=/etc/rancher/k3s/k3s.yaml",
    "until k3s kubectl get --raw /readyz >/dev/null 2>&1; do sleep 5; done",
    `curl -sfL "https://github.com/cilium/cilium-cli/releases/download/${options.ciliumCliVersion}/cilium-linux-$arch.tar.gz" | tar -xz -C /usr/local/bin`,
    [
      `cilium install --version ${shellQuote(options.ciliumVersion)}`,
      `--set cluster.name=${shellQuote(region.clusterName)} --set cluster.id=${region.clusterId}`,
      `--set ipam.mode=cluster-pool --set ipam.operator.clusterPoolIPv4PodCIDRList=${shellQuote(region.podCidr)}`,
      '--set kubeProxyReplacement=true --set k8sServiceHost="$private_ip" --set k8sServicePort=6443'
    ].join(" \\\n  "),
    `curl -sfL "https://github.com/fluxcd/flux2/releases/download/v${options.fluxVersion}/flux_${options.fluxVersion}_linux_$arch.tar.gz" | tar -xz -C /usr/local/bin`,
    "until flux install; do sleep 10; done",
    "until k3s kubectl apply -f /etc/sovereign/flux-sync.yaml; do sleep 10; done",
    // The kubeconfig names 127.0.0.1; the server reaches the node on its public address.
    'sed "s#https://127.0.0.1:6443#https://$public_ip:6443#" /etc/rancher/k3s/k3s.yaml > /etc/sovereign/kubeconfig.yaml',
    // 204 = stored; 403 = already stored by an earlier attempt whose answer was lost. Anything else: retry.
    "until code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H @/etc/sovereign/postback-headers \\",
    "    -H 'Content-Type: application/x-yaml' --data-binary @/etc/sovereign/kubeconfig.yaml \\",
    `    ${shellQuote(kubeconfigUrl(deployment, region))}) && { [ "$code" = 204 ] || [ "$code" = 200 ] || [ "$code" = 403 ]; }; do sleep 10; done`,
    "rm -f /etc/sovereign/kubeconfig.yaml"
  ].join("\n")

const bootstrapJoin = (options: CloudInitOptions, mode: "server" | "agent") =>
  ["#!/bin/sh", "set -eu", discoverAddresses, installK3s(options, mode)].join("\n")

export interface ControlPlaneInput {
  readonly deployment: CloudProvider.CloudDeployment
  readonly region: Deployment.Region
  /** 0 for the first control plane (installs Cilium and Flux, posts the kubeconfig back). */
  readonly index: number
  /** Private IPv4 of the first control plane; required for index > 0. */
  readonly joinAddress?: string
  readonly options?: CloudInitOptions
}

/** User-data of one control plane. The first one bootstraps the cluster; the others join it. */
export const controlPlane = (input: ControlPlaneInput): string => {
  const options = input.options ?? defaultOptions
  const token = k3sToken(input.deployment, input.region.key)
  const ha = input.deployment.spec.haControlPlane
  if (input.index > 0) {
    if (input.joinAddress === undefined) throw new Error("a joining control plane needs the first control plane's address")
    return cloudConfig(
      [
        {
          path: "/etc/rancher/k3s/config.yaml",
          permissions: "0600",
          content: k3sConfig(input.region, token, { _tag: "join", joinAddress: input.joinAddress })
        },
        { path: "/etc/sovereign/bootstrap.sh", permissions: "0700", content: bootstrapJoin(options, "server") }
      ],
      ["/etc/sovereign/bootstrap.sh > /var/log/sovereign-bootstrap.log 2>&1"]
    )
  }
  return cloudConfig(
    [
      { path: "/etc/rancher/k3s/config.yaml", permissions: "0600", content: k3sConfig(input.region, token, { _tag: "first", ha }) },
      { path: "/etc/sovereign/flux-sync.yaml", permissions: "0600", content: fluxSync(input.deployment, input.region, options) },
      // A header file keeps the token out of the process list; the script never echoes it.
      {
        path: "/etc/sovereign/postback-headers",
        permissions: "0600",
        content: `Authorization: Bearer ${Redacted.value(postbackToken(input.deployment, input.region.key))}`
      },
      { path: "/etc/sovereign/bootstrap.sh", permissions: "0700", content: bootstrapFirstServer(input.deployment, input.region, options) }
    ],
    ["/etc/sovereign/bootstrap.sh > /var/log/sovereign-bootstrap.log 2>&1"]
  )
}

export interface WorkerInput {
  readonly deployment: CloudProvider.CloudDeployment
  readonly region: Deployment.Region
  /** Private IPv4 of the region's first control plane. */
  readonly joinAddress: string
  readonly options?: CloudInitOptions
}

/** User-data of one worker: a k3s agent joining the region's first control plane. */
export const worker = (input: WorkerInput): string => {
  const options = input.options ?? defaultOptions
  return cloudConfig(
    [
      {
        path: "/etc/rancher/k3s/config.yaml",
        permissions: "0600",
        content: k3sConfig(input.region, k3sToken(input.deployment, input.region.key), { _tag: "agent", joinAddress: input.joinAddress })
      },
      { path: "/etc/sovereign/bootstrap.sh", permissions: "0700", content: bootstrapJoin(options, "agent") }
    ],
    ["/etc/sovereign/bootstrap.sh > /var/log/sovereign-bootstrap.log 2>&1"]
  )
}
