/** Core's `KubeconfigInspector` on Node: X.509 parsing for the CA check, the system resolver for names under the Sovereign's FQDN. */
import { Kubeconfig } from "@sovereign/core"
import { X509Certificate } from "node:crypto"
import { promises as dns } from "node:dns"
import { Duration, Effect, Layer } from "effect"

/** True when the first certificate of the PEM text parses and carries basicConstraints CA:TRUE. */
export const isCertificateAuthority = (pem: string): boolean => {
  try {
    return new X509Certificate(pem).ca
  } catch {
    return false
  }
}

export const make = (options: { readonly resolveTimeout?: Duration.DurationInput } = {}): Kubeconfig.KubeconfigInspectorService => ({
  isCertificateAuthority,
  resolve: (hostname) =>
    Effect.tryPromise(() => dns.lookup(hostname, { all: true, verbatim: true })).pipe(
      Effect.map((answers) => answers.map((answer) => answer.address)),
      Effect.timeout(options.resolveTimeout ?? Duration.seconds(5)),
      // A name that does not resolve (or not in time) resolves to nothing: the door refuses it.
      Effect.orElseSucceed((): ReadonlyArray<string> => [])
    )
})

export const layer: Layer.Layer<Kubeconfig.KubeconfigInspector> = Layer.succeed(Kubeconfig.KubeconfigInspector, make())
