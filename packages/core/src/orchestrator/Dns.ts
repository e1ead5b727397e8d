/** DNS after Phase 0 and on wipe (SPEC 2.7, §4.4): best effort, never fails the deployment; warnings become events. */
import { Effect, Option } from "effect"
import { DnsProvider } from "../DnsProvider.js"
import * as DnsPublish from "../DnsPublish.js"
import { announce, load, mutate, now, type Environment } from "./Environment.js"

/** Publishes the deployment's names to the primary load balancer; skipped without a DnsProvider. */
export const publishDns = (env: Environment, id: string) =>
  Effect.gen(function*() {
    if (Option.isNone(env.dns)) return
    const record = yield* load(env, id)
    const primary = record.results.regions.find((region) => region.primary)
    if (primary?.loadBalancerIP === undefined) {
      yield* announce(env, id, [{ phase: "dns", level: "warn", type: "dns-warning", message: "DNS not published: the primary load balancer has no IP yet" }])
      return
    }
    const result = yield* DnsPublish.publish({
      deploymentId: id,
      fqdn: record.spec.sovereignFQDN,
      parentDomains: record.spec.parentDomains.map((parent) => parent.name),
      loadBalancers: { primary: primary.loadBalancerIP, console: primary.consoleLoadBalancerIP },
      subdomains: env.settings.dnsSubdomains
    }).pipe(
      Effect.provideService(DnsProvider, env.dns.value),
      Effect.timeout("2 minutes"),
      Effect.either
    )
    const at = yield* now
    if (result._tag === "Left") {
      yield* announce(env, id, [{
        phase: "dns", level: "warn", type: "dns-warning",
        message: `DNS was not published (${result.left.message}); the deployment continues. Publish the records by hand or retry later.`
      }])
      return
    }
    const count = (kind: "create" | "update" | "delete") => result.right.plans.reduce((n, plan) => n + (plan.applied ? plan.changes[kind].length : 0), 0)
    const dns = { at, created: count("create"), updated: count("update"), deleted: count("delete"), warnings: result.right.warnings.map((w) => w.message) }
    yield* mutate(env, id, (current) => ({
      changes: { results: { ...current.results, dns } },
      events: [
        {
          at, phase: "dns", level: "info", type: "dns",
          message: `DNS published: ${dns.created} created, ${dns.updated} updated, ${dns.deleted} deleted`
        },
        ...result.right.warnings.map((warning) => ({
          at, phase: "dns" as const, level: "warn" as const, type: "dns-warning", component: warning.name, state: warning.reason, message: warning.message
        }))
      ]
    }))
  })

/** Deletes exactly the records this deployment owns. Returns an error text, or undefined when done. */
export const unpublishDns = (env: Environment, id: string) =>
  Effect.gen(function*() {
    if (Option.isNone(env.dns)) return undefined
    const result = yield* DnsPublish.unpublish(id).pipe(
      Effect.provideService(DnsProvider, env.dns.value),
      Effect.retry({ times: 3, while: (error) => error.isRetryable }),
      Effect.either
    )
    if (result._tag === "Left") return `DNS records could not be removed: ${result.left.message}`
    const deleted = result.right.plans.reduce((n, plan) => n + plan.changes.delete.length, 0)
    yield* announce(env, id, [{ phase: "wipe", level: "info", type: "dns", message: `Removed ${deleted} DNS record set(s) owned by this deployment` }])
    return undefined
  })
