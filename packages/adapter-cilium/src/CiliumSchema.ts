/** The Kubernetes wire fields ClusterMesh reads (everything else is ignored). */
import { Schema } from "effect"

const nullable = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { nullable: true })
const StringMap = Schema.Record({ key: Schema.String, value: Schema.String })

export const Service = Schema.Struct({
  spec: nullable(
    Schema.Struct({
      type: nullable(Schema.String),
      ports: nullable(Schema.Array(Schema.Struct({ name: nullable(Schema.String), port: Schema.Number })))
    })
  ),
  status: nullable(
    Schema.Struct({
      loadBalancer: nullable(
        Schema.Struct({
          ingress: nullable(Schema.Array(Schema.Struct({ ip: nullable(Schema.String), hostname: nullable(Schema.String) })))
        })
      )
    })
  )
})
export type Service = typeof Service.Type

/** Secret `data` is base64; `stringData` is never returned by the server. */
export const Secret = Schema.Struct({
  metadata: nullable(Schema.Struct({ labels: nullable(StringMap), annotations: nullable(StringMap) })),
  data: nullable(StringMap)
})

export const ConfigMap = Schema.Struct({
  data: nullable(StringMap)
})

export const HostAliasWire = Schema.Struct({
  ip: nullable(Schema.String),
  hostnames: nullable(Schema.Array(Schema.String))
})

/** A DaemonSet or Deployment: the pod template's containers and hostAliases. */
export const Workload = Schema.Struct({
  spec: nullable(
    Schema.Struct({
      template: nullable(
        Schema.Struct({
          spec: nullable(
            Schema.Struct({
              containers: nullable(Schema.Array(Schema.Struct({ name: Schema.String, image: nullable(Schema.String) }))),
              hostAliases: nullable(Schema.Array(HostAliasWire))
            })
          )
        })
      )
    })
  )
})

/** A Flux HelmRelease (`helm.toolkit.fluxcd.io/v2`): its values, their sources, and whether it has reconciled. */
export const HelmRelease = Schema.Struct({
  metadata: Schema.Struct({ generation: nullable(Schema.Number), annotations: nullable(StringMap) }),
  spec: nullable(
    Schema.Struct({
      values: nullable(Schema.Unknown),
      valuesFrom: nullable(Schema.Array(Schema.Record({ key: Schema.String, value: Schema.Unknown })))
    })
  ),
  status: nullable(
    Schema.Struct({
      observedGeneration: nullable(Schema.Number),
      lastHandledReconcileAt: nullable(Schema.String),
      conditions: nullable(
        Schema.Array(
          Schema.Struct({ type: Schema.String, status: Schema.String, reason: nullable(Schema.String), message: nullable(Schema.String) })
        )
      )
    })
  )
})

export const Status = Schema.Struct({
  message: nullable(Schema.String),
  reason: nullable(Schema.String),
  code: nullable(Schema.Number)
})
