/** Publishing and removing one deployment's DNS names through any DnsProvider: resolve zones, plan, apply only what changes (SPEC 2.7). */
import { Effect, Option, Schema } from "effect"
import { canonical, desiredRecords, DnsChanges, DnsPolicy, DnsWarning, isEmpty, isWithin, plan, resolveZone, wipePlan } from "./DnsPlan.js"
import type { RecordSet } from "./DnsPlan.js"
import { DnsProvider } from "./DnsProvider.js"
import type { DnsError } from "./DnsProvider.js"

/** One zone's plan; `applied` is false on a dry run and when there was nothing to change. */
export const ZonePlan = Schema.Struct({
  zone: Schema.String,
  changes: DnsChanges,
  applied: Schema.Boolean
})
export type ZonePlan = typeof ZonePlan.Type

/** What a publish or unpublish did (or, on a dry run, would do): the body of `GET …/dns/plan`. */
export const PublishResult = Schema.Struct({
  plans: Schema.Array(ZonePlan),
  warnings: Schema.Array(DnsWarning)
})
export type PublishResult = typeof PublishResult.Type

export interface PublishInput {
  readonly deploymentId: string
  readonly fqdn: string
  /** Names of the request's parent domains; empty means any zone that holds the FQDN. */
  readonly parentDomains: ReadonlyArray<string>
  readonly loadBalancers: {
    readonly primary: string
    readonly console?: string | undefined
  }
  readonly subdomains?: ReadonlyArray<string> | undefined
  readonly policy?: DnsPolicy | undefined
  readonly dryRun?: boolean | undefined
}

/**
 * Publishes every name of a deployment. Zones are read once, each name goes to its zone, and a
 * zone gets one atomic apply only when its plan is non-empty. Under `sync`, zones around the FQDN
 * that receive no names are planned too, so records left behind by a moved zone are removed.
 */
export const publish = (input: PublishInput): Effect.Effect<PublishResult, DnsError, DnsProvider> =>
  Effect.gen(function* () {
    const provider = yield* DnsProvider
    const policy = input.policy ?? "sync"
    const fqdn = canonical(input.fqdn)
    const zones = (yield* provider.zones()).map(canonical)
    const desired = desiredRecords({
      deploymentId: input.deploymentId,
      fqdn,
      subdomains: input.subdomains,
      primaryLoadBalancerIP: input.loadBalancers.primary,
      consoleLoadBalancerIP: input.loadBalancers.console
    })

    const byZone = new Map<string, Array<RecordSet>>()
    const warnings: Array<DnsWarning> = []
    for (const record of desired) {
      const zone = resolveZone(record.name, zones, input.parentDomains, fqdn)
      if (Option.isNone(zone)) {
        warnings.push({
          name: record.name,
          type: record.type,
          reason: "zone-missing",
          message: `no zone on the DNS server holds ${record.name} (parent domains: ${input.parentDomains.join(", ") || "any"})`
        })
        continue
      }
      byZone.set(zone.value, [...(byZone.get(zone.value) ?? []), record])
    }
    if (policy === "sync") {
      for (const zone of zones) {
        if (!byZone.has(zone) && (isWithin(fqdn, zone) || isWithin(zone, fqdn))) byZone.set(zone, [])
      }
    }

    const plans: Array<ZonePlan> = []
    for (const [zone, wanted] of [...byZone].sort(([a], [b]) => a.localeCompare(b))) {
      const current = yield* provider.records(zone)
      const result = plan(current, wanted, policy, input.deploymentId)
      warnings.push(...result.warnings)
      const apply = input.dryRun !== true && !isEmpty(result.changes)
      if (apply) yield* provider.apply(zone, result.changes)
      if (wanted.length > 0 || !isEmpty(result.changes)) plans.push({ zone, changes: result.changes, applied: apply })
    }
    return { plans, warnings }
  })

export interface UnpublishOptions {
  readonly dryRun?: boolean | undefined
}

/** Removes exactly the rrsets this deployment owns, in every zone of the server (a wipe, #4764). */
export const unpublish = (deploymentId: string, options: UnpublishOptions = {}): Effect.Effect<PublishResult, DnsError, DnsProvider> =>
  Effect.gen(function* () {
    const provider = yield* DnsProvider
    const zones = (yield* provider.zones()).map(canonical)
    const plans: Array<ZonePlan> = []
    for (const zone of [...zones].sort()) {
      const changes = wipePlan(yield* provider.records(zone), deploymentId)
      if (isEmpty(changes)) continue
      const apply = options.dryRun !== true
      if (apply) yield* provider.apply(zone, changes)
      plans.push({ zone, changes, applied: apply })
    }
    return { plans, warnings: [] }
  })
