/** `GET …/dns/plan`: the DNS dry run of a deployment the caller may see. Core computes it; this maps its errors to answers. */
import type { DeploymentRepo } from "@sovereign/core"
import type { DnsPlanError } from "@sovereign/core/Orchestrator"
import { Effect } from "effect"
import { Conflict, NotFound, Unavailable } from "./Api.js"
import { Control } from "./Control.js"

const answerOf = (error: DnsPlanError): Effect.Effect<never, NotFound | Conflict | Unavailable> => {
  switch (error.reason) {
    case "NotFound":
      return Effect.fail(NotFound.deployment())
    case "Disabled":
      return Effect.fail(new Conflict({ error: "dns-disabled", message: error.message }))
    case "NoLoadBalancer":
      return Effect.fail(new Conflict({ error: "no-load-balancer", message: error.message }))
    case "Withdrawn":
      return Effect.fail(new Conflict({ error: "conflict", message: error.message }))
    case "Unavailable":
      return Effect.zipRight(
        Effect.logError("DNS plan failed", error.message),
        Effect.fail(new Unavailable({ error: "unavailable", message: error.message }))
      )
  }
}

/** The plan for a deployment already checked to be the caller's (`owned`). */
export const dnsPlan = (record: DeploymentRepo.DeploymentRecord) =>
  Effect.flatMap(Control, (control) => Effect.catchAll(control.dnsPlan(record.id), answerOf))
