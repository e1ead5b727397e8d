/** Failures as the API server writes them: a `Status` object with its code, reason and details. */
import type { Json } from "../../kubernetes/Patch.js"
import { qualifiedPlural, type ResourceType } from "./store.js"

export type JsonObject = { [key: string]: Json }

export class StatusFailure extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: JsonObject
  ) {
    super(message)
  }
  toStatus(): JsonObject {
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      ...(this.details === undefined ? {} : { details: this.details }),
      code: this.code
    }
  }
}

export const reasonOfCode = (code: number): string =>
  ({
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout"
  })[code] ?? "Unknown"

export const notFound = (type: ResourceType, name: string) =>
  new StatusFailure(404, "NotFound", `${qualifiedPlural(type)} "${name}" not found`, { name, group: type.group, kind: type.plural })
export const alreadyExists = (type: ResourceType, name: string) =>
  new StatusFailure(409, "AlreadyExists", `${qualifiedPlural(type)} "${name}" already exists`, {
    name,
    group: type.group,
    kind: type.plural
  })
export const conflict = (type: ResourceType, name: string) =>
  new StatusFailure(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualifiedPlural(type)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: type.group, kind: type.plural }
  )
export const expired = (message: string) => new StatusFailure(410, "Expired", message)
export const badRequest = (message: string) => new StatusFailure(400, "BadRequest", message)
/** The answer to a path the fake does not serve. */
export const noSuchResource = () => new StatusFailure(404, "NotFound", "the server could not find the requested resource")
export const methodNotAllowed = (message: string) => new StatusFailure(405, "MethodNotAllowed", message)
