/** The Kubernetes wire fields this adapter reads, as Effect Schemas (everything else is ignored). */
import { HelmRelease } from "@sovereign/core"
import { Schema } from "effect"

const nullable = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { nullable: true })

/** A `metav1.Status`, as returned with an error response or inside a watch `ERROR` event. */
export const Status = Schema.Struct({
  kind: Schema.optional(Schema.String),
  status: nullable(Schema.String),
  message: nullable(Schema.String),
  reason: nullable(Schema.String),
  code: nullable(Schema.Number)
})
export type Status = typeof Status.Type

export const ObjectMeta = Schema.Struct({
  name: Schema.String,
  namespace: nullable(Schema.String),
  generation: nullable(Schema.Number),
  resourceVersion: nullable(Schema.String)
})

export const ListMeta = Schema.Struct({
  resourceVersion: nullable(Schema.String),
  continue: nullable(Schema.String)
})

/** Any list response: items are decoded one by one, so one malformed object cannot hide the rest. */
export const ObjectList = Schema.Struct({
  metadata: ListMeta,
  items: Schema.Array(Schema.Unknown)
})

/** The watch event envelope (`watch.Event`). */
export const WatchEvent = Schema.Struct({
  type: Schema.Literal("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"),
  object: Schema.Unknown
})
export type WatchEvent = typeof WatchEvent.Type

export const ResourceVersionOnly = Schema.Struct({ metadata: Schema.Struct({ resourceVersion: nullable(Schema.String) }) })

/** `helm.toolkit.fluxcd.io/v2` HelmRelease: only the fields that decide the component state. */
export const HelmReleaseResource = Schema.Struct({
  metadata: ObjectMeta,
  spec: nullable(
    Schema.Struct({
      suspend: nullable(Schema.Boolean),
      dependsOn: nullable(Schema.Array(Schema.Struct({ name: Schema.String, namespace: nullable(Schema.String) })))
    })
  ),
  status: nullable(
    Schema.Struct({
      observedGeneration: nullable(Schema.Number),
      conditions: nullable(Schema.Array(HelmRelease.Condition))
    })
  )
})
export type HelmReleaseResource = typeof HelmReleaseResource.Type

export const helmReleaseApi = { group: "helm.toolkit.fluxcd.io", version: "v2", plural: "helmreleases" } as const

/** The observation the ClusterWatch port reports for one HelmRelease. */
export const toObservation = (resource: HelmReleaseResource, fallbackNamespace: string): HelmRelease.HelmReleaseObservation => ({
  name: resource.metadata.name,
  namespace: resource.metadata.namespace ?? fallbackNamespace,
  generation: resource.metadata.generation ?? 0,
  ...(resource.status?.observedGeneration === undefined ? {} : { observedGeneration: resource.status.observedGeneration }),
  suspend: resource.spec?.suspend ?? false,
  conditions: resource.status?.conditions ?? [],
  dependsOn: (resource.spec?.dependsOn ?? []).map((dependency) => dependency.name),
  ...(resource.metadata.resourceVersion === undefined ? {} : { resourceVersion: resource.metadata.resourceVersion })
})
