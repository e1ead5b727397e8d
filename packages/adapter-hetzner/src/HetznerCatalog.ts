/** What the adapter knows about Hetzner without asking: locations, their network zones, and where each server type can be ordered. */

/** Location → network zone (hel1 is `eu-central`, not `eu-north`: original fix #179). */
export const networkZones: Readonly<Record<string, string>> = {
  fsn1: "eu-central",
  nbg1: "eu-central",
  hel1: "eu-central",
  ash: "us-east",
  hil: "us-west",
  sin: "ap-southeast"
}

export const locations: ReadonlyArray<string> = Object.keys(networkZones)

const eu = ["fsn1", "nbg1", "hel1"] as const
const everywhere = locations

/**
 * Where each server type can be ordered. Shared-vCPU x86 types (cx, cpx) are sold in the EU
 * locations only (otech109/#916: cpx32 is unorderable in ash); the old cpx11..51 generation
 * is no longer orderable at all (#752); dedicated (ccx) types are sold everywhere; Arm (cax)
 * types only in the EU.
 */
const serverTypes: Readonly<Record<string, ReadonlyArray<string>>> = {
  cx22: eu,
  cx32: eu,
  cx42: eu,
  cx52: eu,
  cx23: eu,
  cx33: eu,
  cx43: eu,
  cx53: eu,
  cpx12: eu,
  cpx22: eu,
  cpx32: eu,
  cpx42: eu,
  cpx52: eu,
  cpx62: eu,
  cpx11: [],
  cpx21: [],
  cpx31: [],
  cpx41: [],
  cpx51: [],
  cax11: eu,
  cax21: eu,
  cax31: eu,
  cax41: eu,
  ccx13: everywhere,
  ccx23: everywhere,
  ccx33: everywhere,
  ccx43: everywhere,
  ccx53: everywhere,
  ccx63: everywhere
}

export type SkuVerdict =
  | { readonly _tag: "Orderable" }
  | { readonly _tag: "Unknown" }
  | { readonly _tag: "Unorderable"; readonly orderableIn: ReadonlyArray<string> }

export const skuVerdict = (serverType: string, location: string): SkuVerdict => {
  const where = serverTypes[serverType]
  if (where === undefined) return { _tag: "Unknown" }
  return where.includes(location) ? { _tag: "Orderable" } : { _tag: "Unorderable", orderableIn: where }
}

export const knownServerTypes: ReadonlyArray<string> = Object.keys(serverTypes)

/** Load balancer type used for every load balancer (the smallest: 5 services, 25 targets). */
export const loadBalancerType = "lb11"
/** Image every server boots. */
export const serverImage = "ubuntu-24.04"

/** SSH key types the API accepts (no security-key `sk-` variants). */
export const sshKeyTypes: ReadonlyArray<string> = [
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521"
]
