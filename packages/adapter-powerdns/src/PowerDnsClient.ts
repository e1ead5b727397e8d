/** A thin typed client for the PowerDNS Authoritative HTTP API: list zones, read a zone's rrsets, PATCH rrsets; every answer Schema-decoded. */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import type { HttpClientResponse } from "@effect/platform"
import { DnsProvider } from "@sovereign/core"
import { Duration, Effect, Redacted, Schedule, Schema } from "effect"
import { ApiError, PatchZone, Zone, ZoneList } from "./PowerDnsSchema.js"
import type { ZoneSummary } from "./PowerDnsSchema.js"

type DnsError = DnsProvider.DnsError
const DnsError = DnsProvider.DnsError

export interface RetryOptions {
  /** Retries after the first attempt; default 3. */
  readonly times?: number
  /** First delay, doubled on every retry; default 250 ms (external-dns uses the same). */
  readonly base?: Duration.DurationInput
}

export interface PowerDnsClientOptions {
  /** The webserver's base URL, e.g. `http://127.0.0.1:8081`; a trailing `/api/v1` is accepted too. */
  readonly apiUrl: string
  readonly apiKey: Redacted.Redacted<string>
  /** Default `localhost`, the only id PowerDNS Authoritative knows. */
  readonly serverId?: string | undefined
  readonly retry?: RetryOptions | undefined
  /** Per attempt; default 15 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
}

export interface PowerDnsClient {
  readonly listZones: () => Effect.Effect<ReadonlyArray<ZoneSummary>, DnsError>
  readonly getZone: (zone: string) => Effect.Effect<Zone, DnsError>
  /** One PATCH: PowerDNS applies all rrsets or none. */
  readonly patchZone: (zone: string, body: PatchZone) => Effect.Effect<void, DnsError>
}

/** `http://h:8081/`, `http://h:8081/api/v1` → `http://h:8081/api/v1`. */
export const apiBase = (apiUrl: string): string => {
  const trimmed = apiUrl.trim().replace(/\/+$/, "")
  return trimmed.endsWith("/api/v1") ? trimmed : `${trimmed}/api/v1`
}

/**
 * Which record a 422 is about. PowerDNS names it in the error text in one of a few shapes
 * (`RRset x. IN A: …`, `Record x./A '…': …`, `DNS Name 'x' is not canonical`); failing those, the
 * longest rrset name of the request that the text mentions.
 */
export const rejectedRecord = (text: string, names: ReadonlyArray<string>): string | undefined => {
  const rrset = /RRset (\S+) IN (\S+?):?(?:\s|$)/.exec(text)
  if (rrset?.[1] !== undefined && rrset[2] !== undefined) return `${rrset[1]} ${rrset[2]}`
  const record = /Record (\S+)\/(\S+) /.exec(text)
  if (record?.[1] !== undefined && record[2] !== undefined) return `${record[1]} ${record[2]}`
  const dnsName = /Name '([^']+)'/.exec(text)
  if (dnsName?.[1] !== undefined) return dnsName[1]
  return names.filter((name) => text.includes(name)).sort((x, y) => y.length - x.length)[0]
}

interface Context {
  readonly action: string
  readonly zone?: string | undefined
  readonly names?: ReadonlyArray<string>
}

const describeBody = (body: string): string => {
  const decoded = Schema.decodeUnknownOption(Schema.parseJson(ApiError))(body)
  return decoded._tag === "Some" ? decoded.value.error : body.slice(0, 256).trim()
}

/** Maps one non-2xx answer to the port's error; the vendor's status never leaks past this function. */
export const errorFromStatus = (status: number, body: string, context: Context): DnsError => {
  const detail = describeBody(body)
  const where = context.zone === undefined ? {} : { zone: context.zone }
  if (status === 401 || status === 403) {
    return new DnsError({
      reason: "Unauthorized",
      message: `PowerDNS refused the API key while trying to ${context.action} (${status})`,
      ...where
    })
  }
  if (status === 404 && context.zone !== undefined) {
    return new DnsError({
      reason: "ZoneNotFound",
      message: `zone ${context.zone} does not exist on PowerDNS (404 while trying to ${context.action})`,
      zone: context.zone
    })
  }
  if (status === 422) {
    const record = rejectedRecord(detail, context.names ?? [])
    return new DnsError({
      reason: "Rejected",
      message: `PowerDNS rejected the request to ${context.action}${record === undefined ? "" : ` because of ${record}`}: ${detail}`,
      ...where,
      ...(record === undefined ? {} : { record })
    })
  }
  if (status >= 500 || status === 429) {
    return new DnsError({
      reason: "Unavailable",
      message: `PowerDNS answered ${status} while trying to ${context.action}: ${detail}`,
      ...where
    })
  }
  return new DnsError({ reason: "Unknown", message: `PowerDNS answered ${status} while trying to ${context.action}: ${detail}`, ...where })
}

export const make = (options: PowerDnsClientOptions): Effect.Effect<PowerDnsClient, never, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const serverId = options.serverId ?? "localhost"
    const base = `${apiBase(options.apiUrl)}/servers/${encodeURIComponent(serverId)}`
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(15))
    const retrySchedule = Schedule.exponential(options.retry?.base ?? Duration.millis(250)).pipe(
      Schedule.intersect(Schedule.recurs(options.retry?.times ?? 3))
    )
    const http = (yield* HttpClient.HttpClient).pipe(
      HttpClient.mapRequest((request) =>
        request.pipe(
          HttpClientRequest.prependUrl(base),
          HttpClientRequest.setHeader("X-API-Key", Redacted.value(options.apiKey)),
          HttpClientRequest.acceptJson
        )
      )
    )

    /** One request with timeout and retry of what may pass (5xx, network); a non-2xx answer becomes a DnsError. */
    const send = (request: HttpClientRequest.HttpClientRequest, context: Context) =>
      http.execute(request).pipe(
        Effect.mapError(
          (error) =>
            new DnsError({
              reason: "Unavailable",
              message: `PowerDNS is unreachable while trying to ${context.action}: ${error.message}`,
              ...(context.zone === undefined ? {} : { zone: context.zone })
            })
        ),
        Effect.flatMap((response) =>
          response.status >= 200 && response.status < 300
            ? Effect.succeed(response)
            : response.text.pipe(
                Effect.orElseSucceed(() => ""),
                Effect.flatMap((body) => Effect.fail(errorFromStatus(response.status, body, context)))
              )
        ),
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new DnsError({
              reason: "Unavailable",
              message: `PowerDNS did not answer within ${Duration.format(timeout)} while trying to ${context.action}`,
              ...(context.zone === undefined ? {} : { zone: context.zone })
            })
        }),
        Effect.retry({ schedule: retrySchedule, while: (error) => error.isRetryable })
      )

    const decode =
      <A, I>(schema: Schema.Schema<A, I>, context: Context) =>
      (response: HttpClientResponse.HttpClientResponse) =>
        response.json.pipe(
          Effect.flatMap(Schema.decodeUnknown(schema)),
          Effect.mapError(
            (error) =>
              new DnsError({
                reason: "Unknown",
                message: `unexpected answer from PowerDNS while trying to ${context.action}: ${error.message}`,
                ...(context.zone === undefined ? {} : { zone: context.zone })
              })
          )
        )

    const zonePath = (zone: string) => `/zones/${encodeURIComponent(zone)}`

    const listZones = () => {
      const context = { action: "list zones" }
      return send(HttpClientRequest.get("/zones"), context).pipe(Effect.flatMap(decode(ZoneList, context)))
    }

    const getZone = (zone: string) => {
      const context = { action: `read zone ${zone}`, zone }
      return send(HttpClientRequest.get(zonePath(zone)), context).pipe(Effect.flatMap(decode(Zone, context)))
    }

    const patchZone = (zone: string, body: PatchZone) => {
      const context = { action: `change zone ${zone}`, zone, names: body.rrsets.map((rrset) => rrset.name) }
      return Schema.encode(PatchZone)(body).pipe(
        Effect.orDie,
        Effect.flatMap((encoded) => send(HttpClientRequest.patch(zonePath(zone)).pipe(HttpClientRequest.bodyUnsafeJson(encoded)), context)),
        Effect.asVoid
      )
    }

    return { listZones, getZone, patchZone }
  })
