/** Compares what a Helm release rendered into a clustermesh Secret with what it should hold, as Cilium reads it (configs parsed, files byte-exact). */
import * as Yaml from "@sovereign/adapter-kubernetes/Yaml"
import { Either } from "effect"

interface EtcdConfig {
  readonly endpoints: ReadonlyArray<string>
  readonly trustedCaFile: unknown
  readonly certFile: unknown
  readonly keyFile: unknown
  /** `cilium-host-aliases`, hostnames sorted, their IPs sorted. */
  readonly hostAliases: ReadonlyArray<{ readonly hostname: string; readonly ips: ReadonlyArray<string> }>
}

/** The fields Cilium reads from an etcd client config file; undefined when the text is not one. */
export const parse = (text: string): EtcdConfig | undefined => {
  const parsed = Either.getOrUndefined(Yaml.parse(text))
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined
  const fields = parsed as Record<string, unknown>
  const aliases = Array.isArray(fields["cilium-host-aliases"])
    ? (fields["cilium-host-aliases"] as ReadonlyArray<Record<string, unknown>>)
    : []
  return {
    endpoints: Array.isArray(fields["endpoints"]) ? fields["endpoints"].map(String) : [],
    trustedCaFile: fields["trusted-ca-file"],
    certFile: fields["cert-file"],
    keyFile: fields["key-file"],
    hostAliases: aliases
      .map((alias) => ({ hostname: String(alias["hostname"]), ips: (Array.isArray(alias["ips"]) ? alias["ips"].map(String) : []).sort() }))
      .sort((left, right) => (left.hostname < right.hostname ? -1 : left.hostname > right.hostname ? 1 : 0))
  }
}

/** The keys of `secretName` whose rendered value differs from the expected one (`<secret>/<key>`). */
export const differences = (
  secretName: string,
  rendered: Readonly<Record<string, string>> | undefined,
  expected: Readonly<Record<string, string>>
): ReadonlyArray<string> =>
  Object.entries(expected).flatMap(([key, value]) => {
    const actual = rendered?.[key]
    if (actual === undefined) return [`${secretName}/${key} missing`]
    if (actual === value) return []
    const [left, right] = [parse(actual), parse(value)]
    const same = left !== undefined && right !== undefined && value.includes("endpoints:") && JSON.stringify(left) === JSON.stringify(right)
    return same ? [] : [`${secretName}/${key} differs`]
  })
