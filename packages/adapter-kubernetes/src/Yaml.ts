/** YAML as Kubernetes tools read it (the loader `@kubernetes/client-node` ships), for adapters that read manifests, values or configs. */
import * as k8s from "@kubernetes/client-node"
import { Either } from "effect"

/** The document `text` holds, or why it is not YAML (never the text itself: it may hold secrets). */
export const parse = (text: string): Either.Either<unknown, string> => {
  try {
    return Either.right(k8s.loadYaml<unknown>(text))
  } catch (error) {
    const reason = error instanceof Error ? (error as Error & { readonly reason?: unknown }).reason : undefined
    return Either.left(typeof reason === "string" ? reason : "not YAML")
  }
}
