/**
 * What the HTTP API asks of the runtime: submit, retry, wipe and finalise deployments. Implemented by
 * composing core's orchestration with the deployment supervisor; it decides nothing itself.
 */
import type { DeploymentRepo, DnsPublish } from "@sovereign/core"
import type { DnsPlanError } from "@sovereign/core/Orchestrator"
import { Kubeconfig } from "@sovereign/core"
import { Context, Schema } from "effect"
import type { Effect, Option, Redacted } from "effect"

export const ControlErrorReason = Schema.Literal(
  /** Unknown id (or not visible to the caller). */
  "NotFound",
  /** The request fails a rule only an adapter knows (`issues` name the fields). */
  "Invalid",
  /** The FQDN is in flight, or the action conflicts with the current status. */
  "Conflict",
  /** Wipe of a young Phase-1 deployment without `force`. */
  "TooYoung",
  /** The deployment was handed over: nothing may change it. */
  "Adopted",
  /** A region's kubeconfig was already delivered. */
  "AlreadySet",
  /** An empty kubeconfig. */
  "Empty",
  /** A region's call-back is not open (its control plane does not exist yet, or its Phase 0 ended). */
  "NotOpen",
  /** Wiping, wiped or handed over: no call-back is taken. */
  "Closed",
  /** The kubeconfig document was refused (`refusal` says why, `field`/`path`/`allowed` say what). */
  "Refused",
  "Unavailable"
)

export class ControlError extends Schema.TaggedError<ControlError>()("ControlError", {
  reason: ControlErrorReason,
  message: Schema.String,
  issues: Schema.optional(Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))),
  status: Schema.optional(Schema.String),
  retryAfterSec: Schema.optional(Schema.Number),
  refusal: Schema.optional(Kubeconfig.KubeconfigRefusalReason),
  field: Schema.optional(Schema.String),
  path: Schema.optional(Schema.String),
  allowed: Schema.optional(Schema.Array(Schema.String))
}) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

export interface InventoryEntry {
  readonly kind: string
  readonly name: string
  readonly region: string
  readonly labels: Readonly<Record<string, string>>
}

export interface ControlService {
  /** Validates (schema and adapters), persists (status `pending`) and starts the deployment. */
  readonly submit: (input: unknown, owner: string) => Effect.Effect<DeploymentRepo.DeploymentRecord, ControlError>
  /**
   * A region's kubeconfig (the caller checked the postback token, or that an owner replaces it): the
   * parsed YAML value, judged by core's door. `regionKey` undefined = the primary.
   */
  readonly kubeconfigArrived: (
    id: string,
    regionKey: string | undefined,
    document: Redacted.Redacted<unknown>,
    options: { readonly replace: boolean }
  ) => Effect.Effect<void, ControlError>
  readonly retry: (id: string) => Effect.Effect<DeploymentRepo.DeploymentRecord, ControlError>
  readonly wipe: (id: string, options: { readonly force: boolean }) => Effect.Effect<DeploymentRepo.DeploymentRecord, ControlError>
  readonly finalise: (id: string) => Effect.Effect<DeploymentRepo.DeploymentRecord, ControlError>
  /** Every simulated cloud resource; `None` outside simulator mode. */
  readonly inventory: Option.Option<Effect.Effect<ReadonlyArray<InventoryEntry>, ControlError>>
  /** The DNS dry run of a deployment (`GET …/dns/plan`): what publishing would change now; changes nothing. */
  readonly dnsPlan: (id: string) => Effect.Effect<DnsPublish.PublishResult, DnsPlanError>
  /** True once every non-terminal deployment found at start-up has been resumed. */
  readonly ready: Effect.Effect<boolean>
}

export class Control extends Context.Tag("@sovereign/server/Control")<Control, ControlService>() {}
