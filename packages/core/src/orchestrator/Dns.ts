/** DNS after Phase 0 and on wipe (SPEC 2.7, §4.4): best effort, never fails the deployment; warnings become events. */
import { Effect, Option, Schema } from "effect"
import type { DeploymentRecord } from "../DeploymentRepo.js"
import { DnsProvider } from "../DnsProvider.js"
import * as DnsPublish from "../DnsPublish.js"
import * as Lifecycle from "../Lifecycle.js"
import { announce, load, mutate, now, regionsOf, retrySchedule, type Environment, type FlowPublisher } from "./Environment.js"
import { runStep, type StepOutcome } from "./Lifecycle.js"

/**
 * What `publish` needs for a deployment, from its record: FQDN, parent domains and the primary
 * region's load balancers. `None` while the primary load balancer has no IP (Phase 0 not finished).
 */
export const publishInputOf = (
  record: DeploymentRecord,
  subdomains: ReadonlyArray<string> | undefined
): Option.Option<DnsPublish.PublishInput> => {
  const primary = record.results.regions.find((region) => region.primary)
  if (primary?.loadBalancerIP === undefined) return Option.none()
  return Option.some({
    deploymentId: record.id,
    fqdn: record.spec.sovereignFQDN,
    parentDomains: record.spec.parentDomains.map((parent) => parent.name),
    loadBalancers: { primary: primary.loadBalancerIP, console: primary.consoleLoadBalancerIP },
    subdomains
  })
}

export const DnsPlanErrorReason = Schema.Literal(
  /** Unknown deployment. */
  "NotFound",
  /** No DnsProvider is configured (`SOVEREIGN_DNS=none`). */
  "Disabled",
  /** The primary load balancer has no IP yet (Phase 0 not finished). */
  "NoLoadBalancer",
  /** The deployment is being wiped or is wiped: its names are removed, not planned. */
  "Withdrawn",
  /** The store or the DNS server could not be read. */
  "Unavailable"
)

export class DnsPlanError extends Schema.TaggedError<DnsPlanError>()("DnsPlanError", {
  reason: DnsPlanErrorReason,
  message: Schema.String
}) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable" || this.reason === "NoLoadBalancer"
  }
}

/** The dry run of `publishDns`: what a publish would change now, zone by zone, and its warnings. Changes nothing. */
export const planDns = (env: Environment, id: string): Effect.Effect<DnsPublish.PublishResult, DnsPlanError> =>
  Effect.gen(function* () {
    if (Option.isNone(env.dns))
      return yield* new DnsPlanError({ reason: "Disabled", message: "DNS publishing is switched off (SOVEREIGN_DNS=none)" })
    const found = yield* env.repo
      .get(id)
      .pipe(Effect.mapError((error) => new DnsPlanError({ reason: "Unavailable", message: error.message })))
    if (Option.isNone(found)) return yield* new DnsPlanError({ reason: "NotFound", message: `deployment ${id} not found` })
    const record = found.value
    if (record.status === "wiping" || record.status === "wiped") {
      return yield* new DnsPlanError({
        reason: "Withdrawn",
        message: `the deployment is ${record.status}: its DNS records are removed, not published`
      })
    }
    const input = publishInputOf(record, env.settings.dnsSubdomains)
    if (Option.isNone(input)) {
      return yield* new DnsPlanError({
        reason: "NoLoadBalancer",
        message: "the primary load balancer has no IP yet: the plan exists once Phase 0 has finished"
      })
    }
    return yield* DnsPublish.publish({ ...input.value, dryRun: true }).pipe(
      Effect.provideService(DnsProvider, env.dns.value),
      Effect.mapError((error) => new DnsPlanError({ reason: "Unavailable", message: `the DNS server could not be read: ${error.message}` }))
    )
  })

/**
 * Publishes the deployment's names to the primary load balancer, as the `cutover-dns` job (one
 * execution per attempt; retryable DNS errors are retried with backoff within two minutes); skipped
 * without a DnsProvider. Best effort: a failure fails the job and is a warning event, never the
 * deployment. The results are stored before the job finishes, so a restart in between finds them.
 */
export const publishDns = (env: Environment, id: string, flow: FlowPublisher) =>
  Effect.gen(function* () {
    if (Option.isNone(env.dns)) return
    const dns = env.dns.value
    const record = yield* load(env, id)
    const primary = regionsOf(record)[0]!
    const job = Lifecycle.job({ deploymentId: id, region: primary, step: "cutover-dns" })
    yield* runStep(env, record, flow, job, (log) =>
      Effect.gen(function* () {
        const input = publishInputOf(record, env.settings.dnsSubdomains)
        if (Option.isNone(input)) {
          const reason = "DNS not published: the primary load balancer has no IP yet"
          yield* announce(env, id, [{ phase: "dns", level: "warn", type: "dns-warning", message: reason }])
          yield* log.error(reason)
          return { status: "failed", reason } satisfies StepOutcome
        }
        yield* log.info(
          `Publishing the names of ${record.spec.sovereignFQDN} to ${input.value.loadBalancers.primary}` +
            (input.value.loadBalancers.console === undefined ? "" : ` (console, api, marketplace to ${input.value.loadBalancers.console})`)
        )
        let attempts = 0
        const result = yield* DnsPublish.publish(input.value).pipe(
          Effect.provideService(DnsProvider, dns),
          Effect.tapError((error) =>
            Effect.zipRight(
              Effect.sync(() => void attempts++),
              error.isRetryable ? log.warn(`attempt ${attempts}: ${error.message} (will retry with backoff)`) : Effect.void
            )
          ),
          Effect.retry({ schedule: retrySchedule(env.settings), while: (error) => error.isRetryable }),
          Effect.timeout("2 minutes"),
          Effect.either
        )
        const at = yield* now
        if (result._tag === "Left") {
          yield* announce(env, id, [
            {
              phase: "dns",
              level: "warn",
              type: "dns-warning",
              message: `DNS was not published (${result.left.message}); the deployment continues. Publish the records by hand or retry later.`
            }
          ])
          yield* log.error(`DNS was not published: ${result.left.message}`)
          return { status: "failed", reason: `DNS was not published: ${result.left.message}` } satisfies StepOutcome
        }
        const count = (kind: "create" | "update" | "delete") =>
          result.right.plans.reduce((n, plan) => n + (plan.applied ? plan.changes[kind].length : 0), 0)
        const published = {
          at,
          created: count("create"),
          updated: count("update"),
          deleted: count("delete"),
          warnings: result.right.warnings.map((w) => w.message)
        }
        for (const plan of result.right.plans) {
          const changes = `${plan.changes.create.length} to create, ${plan.changes.update.length} to update, ${plan.changes.delete.length} to delete`
          yield* log.info(`zone ${plan.zone}: ${plan.applied ? changes : "already up to date"}`)
        }
        for (const warning of result.right.warnings) yield* log.warn(`${warning.name}: ${warning.message}`)
        yield* mutate(env, id, (current) => ({
          changes: { results: { ...current.results, dns: published } },
          events: [
            {
              at,
              phase: "dns",
              level: "info",
              type: "dns",
              message: `DNS published: ${published.created} created, ${published.updated} updated, ${published.deleted} deleted`
            },
            ...result.right.warnings.map((warning) => ({
              at,
              phase: "dns" as const,
              level: "warn" as const,
              type: "dns-warning",
              component: warning.name,
              state: warning.reason,
              message: warning.message
            }))
          ]
        }))
        const warnings = result.right.warnings.length
        return {
          status: "succeeded",
          reason: warnings === 0 ? undefined : `published with ${warnings} warning(s): ${result.right.warnings[0]!.message}`
        } satisfies StepOutcome
      })
    )
  })

/** Deletes exactly the records this deployment owns. Returns an error text, or undefined when done. */
export const unpublishDns = (env: Environment, id: string) =>
  Effect.gen(function* () {
    if (Option.isNone(env.dns)) return undefined
    const result = yield* DnsPublish.unpublish(id).pipe(
      Effect.provideService(DnsProvider, env.dns.value),
      Effect.retry({ times: 3, while: (error) => error.isRetryable }),
      Effect.either
    )
    if (result._tag === "Left") return `DNS records could not be removed: ${result.left.message}`
    const deleted = result.right.plans.reduce((n, plan) => n + plan.changes.delete.length, 0)
    yield* announce(env, id, [
      { phase: "wipe", level: "info", type: "dns", message: `Removed ${deleted} DNS record set(s) owned by this deployment` }
    ])
    return undefined
  })
