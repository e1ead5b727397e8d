/** Names and labels of the resources one deployment owns, and the boundary-checked name match the purge uses. */
import { CloudProvider, Deployment } from "@sovereign/core"

/** `<first FQDN label>-<region key>`: every resource name of the region starts with it. */
export const regionPrefix = (fqdn: string, regionKey: string): string => `${Deployment.firstLabel(fqdn)}-${regionKey}`

export const names = {
  network: (prefix: string) => `${prefix}-net`,
  firewall: (prefix: string) => `${prefix}-fw`,
  sshKey: (prefix: string) => `${prefix}-ssh`,
  controlPlane: (prefix: string, index: number) => `${prefix}-cp${index + 1}`,
  worker: (prefix: string, index: number) => `${prefix}-w${index + 1}`,
  loadBalancer: (prefix: string) => `${prefix}-lb`,
  consoleLoadBalancer: (prefix: string) => `${prefix}-console-lb`
} as const

export const roles = {
  network: "network",
  firewall: "firewall",
  sshKey: "ssh-key",
  controlPlane: "control-plane",
  worker: "worker",
  loadBalancer: "load-balancer",
  consoleLoadBalancer: "console-load-balancer"
} as const

export const deploymentLabel = "sovereign.dev/deployment"
export const regionLabel = "sovereign.dev/region"
export const roleLabel = "sovereign.dev/role"
export const indexLabel = "sovereign.dev/index"

export const labels = CloudProvider.ownershipLabels

/** `k=v,k2=v2`, the API's label selector syntax. */
export const selector = (terms: Readonly<Record<string, string>>): string =>
  Object.entries(terms)
    .map(([key, value]) => `${key}=${value}`)
    .join(",")

export const deploymentSelector = (deploymentId: string) => selector({ [deploymentLabel]: deploymentId })

export const regionSelector = (deploymentId: string, regionKey: string) =>
  selector({ [deploymentLabel]: deploymentId, [regionLabel]: regionKey })

export const roleSelector = (deploymentId: string, regionKey: string, role: string) =>
  selector({ [deploymentLabel]: deploymentId, [regionLabel]: regionKey, [roleLabel]: role })

/**
 * Whether `name` belongs to the region whose prefix is `prefix`: exactly the prefix, or the prefix,
 * a `-`, and a suffix that starts with a letter. The letter rule is the boundary: `t1-fsn1` never
 * matches `t10-fsn1-cp1` (no `-` after `t1`) nor `t1-fsn1-2-cp1` (region `fsn1-2`, a digit).
 */
export const nameBelongsTo = (name: string, prefix: string): boolean =>
  name === prefix || (name.startsWith(`${prefix}-`) && /^[a-z]/.test(name.slice(prefix.length + 1)))

/** Hetzner names are RFC 1123 labels (servers) and must stay ≤ 63 characters. */
export const validName = (name: string): boolean => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)
