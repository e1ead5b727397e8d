/** Wipe (SPEC §4.6): purge by label and name, delete owned DNS records, verify nothing is left, then `wiped`. */
import { Effect } from "effect"
import type { DeploymentRecord } from "../DeploymentRepo.js"
import { StatusEvent } from "../DeploymentStatus.js"
import { unpublishDns } from "./Dns.js"
import { announce, applyStatus, cloudDeployment, retrySchedule, type Environment } from "./Environment.js"
import { storeCall } from "./StoreWait.js"

export const wipe = (env: Environment, record: DeploymentRecord) =>
  Effect.gen(function* () {
    const fail = (reason: string) =>
      applyStatus(
        env,
        record.id,
        StatusEvent.WipeFailed({ reason: `${reason} POST /api/v1/deployments/${record.id}/wipe again to continue.` }),
        (current, at) => ({ results: { ...current.results, wipeFailedAt: at } })
      )
    const deployment = yield* Effect.either(cloudDeployment(env, record))
    if (deployment._tag === "Left") return yield* fail(`The deployment's credentials cannot be read (${deployment.left.message}).`)
    const purged = yield* env.cloud
      .purge(deployment.right)
      .pipe(Effect.retry({ schedule: retrySchedule(env.settings), while: (error) => error.isRetryable }), Effect.either)
    if (purged._tag === "Left") return yield* fail(`The cloud purge failed (${purged.left.reason}: ${purged.left.message}).`)
    yield* announce(env, record.id, [
      {
        phase: "wipe",
        level: purged.right.errors.length > 0 ? "warn" : "info",
        type: "purge",
        message:
          `Deleted ${purged.right.deleted.length} cloud resource(s)` +
          (purged.right.errors.length > 0 ? `; errors: ${purged.right.errors.join("; ")}` : "")
      }
    ])
    const dnsProblem = yield* unpublishDns(env, record.id)
    const left = yield* env.cloud
      .inventory(deployment.right)
      .pipe(Effect.retry({ schedule: retrySchedule(env.settings), while: (error) => error.isRetryable }), Effect.either)
    if (left._tag === "Left") return yield* fail(`Could not verify that nothing is left (${left.left.message}).`)
    const remaining = [...purged.right.remaining, ...left.right.filter((r) => !purged.right.remaining.some((p) => p.id === r.id))]
    if (remaining.length > 0) {
      return yield* fail(`These resources are still there: ${remaining.map((r) => `${r.kind} ${r.name} (${r.region})`).join(", ")}.`)
    }
    if (dnsProblem !== undefined) return yield* fail(dnsProblem + ".")
    yield* storeCall(env, `removing the kubeconfigs of deployment ${record.id}`, env.kubeconfigs.remove(record.id))
    yield* applyStatus(env, record.id, StatusEvent.Wiped())
  })
