/** The Kubernetes wire fields ClusterMesh reads (everything else is ignored). */
import { Schema } from "effect"

const nullable = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { nullable: true })

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
  data: nullable(Schema.Record({ key: Schema.String, value: Schema.String }))
})

export const ConfigMap = Schema.Struct({
  data: nullable(Schema.Record({ key: Schema.String, value: Schema.String }))
})

export const HostAliasWire = Schema.Struct({
  ip: nullable(Schema.String),
  hostnames: nullable(Schema.Array(Schema.String))
})

export const DaemonSet = Schema.Struct({
  spec: nullable(
    Schema.Struct({
      template: nullable(Schema.Struct({ spec: nullable(Schema.Struct({ hostAliases: nullable(Schema.Array(HostAliasWire)) })) }))
    })
  )
})

export const Status = Schema.Struct({
  message: nullable(Schema.String),
  reason: nullable(Schema.String),
  code: nullable(Schema.Number)
})
