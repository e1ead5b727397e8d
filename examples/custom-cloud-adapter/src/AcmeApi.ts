/**
 * The vendor's API as the adapter sees it: list by label selector, create, delete. In a real adapter
 * this is a thin typed HTTP client (see adapter-hetzner's HetznerClient); here it is an in-memory
 * stand-in so the example runs anywhere.
 */
import { Context, Effect, Layer, Schema } from "effect"

export class AcmeApiError extends Schema.TaggedError<AcmeApiError>()("AcmeApiError", {
  status: Schema.Number,
  message: Schema.String
}) {}

export interface AcmeResource {
  readonly id: string
  readonly kind: "network" | "load_balancer" | "server"
  readonly name: string
  readonly location: string
  readonly labels: Readonly<Record<string, string>>
  readonly ipv4?: string
}

export interface AcmeApiService {
  /** Every resource whose labels include all of `selector`. */
  readonly list: (selector: Readonly<Record<string, string>>) => Effect.Effect<ReadonlyArray<AcmeResource>, AcmeApiError>
  readonly create: (resource: Omit<AcmeResource, "id" | "ipv4">) => Effect.Effect<AcmeResource, AcmeApiError>
  readonly remove: (id: string) => Effect.Effect<void, AcmeApiError>
}

export class AcmeApi extends Context.Tag("example/AcmeApi")<AcmeApi, AcmeApiService>() {}

/** The in-memory Acme cloud: knows two locations and hands out documentation-range addresses. */
export const layerMemory = (locations: ReadonlyArray<string> = ["acme-north", "acme-south"]): Layer.Layer<AcmeApi> =>
  Layer.sync(AcmeApi, () => {
    const resources = new Map<string, AcmeResource>()
    let counter = 0
    const matches = (resource: AcmeResource, selector: Readonly<Record<string, string>>) =>
      Object.entries(selector).every(([key, value]) => resource.labels[key] === value)
    return {
      list: (selector) => Effect.sync(() => [...resources.values()].filter((resource) => matches(resource, selector))),
      create: (resource) =>
        Effect.suspend(() => {
          if (!locations.includes(resource.location)) {
            return Effect.fail(new AcmeApiError({ status: 422, message: `unknown location ${resource.location}` }))
          }
          const id = `acme-${++counter}`
          const created: AcmeResource =
            resource.kind === "network" ? { ...resource, id } : { ...resource, id, ipv4: `192.0.2.${(counter % 250) + 1}` }
          resources.set(id, created)
          return Effect.succeed(created)
        }),
      remove: (id) => Effect.sync(() => void resources.delete(id))
    }
  })
