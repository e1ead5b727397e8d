/** The cloud port: plan a deployment's resources as resumable steps, apply them, find and purge them (SPEC §3). */
import { Context, Schema } from "effect"
import type { Effect } from "effect"
import type { DeploymentId, DeploymentSpec, Region, ValidationIssue } from "./Deployment.js"
import type { Redacted } from "effect"

export const CloudErrorReason = Schema.Literal(
  "RateLimited",
  "Unavailable",
  "Conflict",
  "Unauthorized",
  "InvalidInput",
  "QuotaExceeded",
  "NotFound",
  "Unknown"
)
export type CloudErrorReason = typeof CloudErrorReason.Type

const retryableCloudReasons: ReadonlySet<CloudErrorReason> = new Set(["RateLimited", "Unavailable", "Conflict"])

export class CloudError extends Schema.TaggedError<CloudError>()("CloudError", {
  reason: CloudErrorReason,
  message: Schema.String,
  provider: Schema.String,
  region: Schema.optional(Schema.String),
  step: Schema.optional(Schema.String)
}) {
  get isRetryable(): boolean {
    return retryableCloudReasons.has(this.reason)
  }
}

/** Everything an adapter needs to build, find or remove one deployment's resources. */
export interface CloudDeployment {
  readonly id: DeploymentId
  readonly spec: DeploymentSpec
  readonly regions: ReadonlyArray<Region>
  /** Where each control plane PUTs its kubeconfig, and each region's own bearer token (region key → token). */
  readonly postback: {
    readonly baseUrl: string
    readonly tokens: Readonly<Record<string, Redacted.Redacted<string>>>
  }
  /** Each region's k3s join secret (region key → secret): random, never derived from a postback token. */
  readonly clusterJoinSecrets: Readonly<Record<string, Redacted.Redacted<string>>>
}

/** One resumable unit of Phase 0. `name` is the bare step name; the job name is derived from it. */
export interface CloudStep {
  readonly name: string
  readonly displayName: string
  /** Region key. */
  readonly region: string
  /** Bare step names in the same region. */
  readonly dependsOn: ReadonlyArray<string>
}

export const CloudResource = Schema.Struct({
  kind: Schema.String,
  id: Schema.String,
  name: Schema.String,
  /** Region key. */
  region: Schema.String,
  labels: Schema.Record({ key: Schema.String, value: Schema.String })
})
export type CloudResource = typeof CloudResource.Type

export const StepResult = Schema.Struct({
  /** Resources this step found or created (find-before-create: the same on a repeat). */
  resources: Schema.Array(CloudResource),
  /** Human-readable lines for the job's execution log. */
  log: Schema.Array(Schema.String)
})
export type StepResult = typeof StepResult.Type

export const RegionOutputs = Schema.Struct({
  regionKey: Schema.String,
  controlPlaneIPs: Schema.Array(Schema.String),
  loadBalancerIP: Schema.String,
  consoleLoadBalancerIP: Schema.optional(Schema.String)
})
export type RegionOutputs = typeof RegionOutputs.Type

export const PurgeReport = Schema.Struct({
  deleted: Schema.Array(CloudResource),
  /** What still carries the deployment's labels or names after the purge; empty when verified clean. */
  remaining: Schema.Array(CloudResource),
  errors: Schema.Array(Schema.String)
})
export type PurgeReport = typeof PurgeReport.Type

export interface CloudProviderService {
  /** The provider name requests use (`hetzner`); the simulator answers for every name. */
  readonly provider: string
  /** `resumable: false` gets the original restart policy: failed, with the possible orphans named. */
  readonly capabilities: { readonly resumable: boolean }
  /** Checks what only the adapter knows (regions, SKUs, credentials); issues name request fields. */
  readonly validate: (spec: DeploymentSpec) => Effect.Effect<ReadonlyArray<ValidationIssue>, CloudError>
  readonly plan: (deployment: CloudDeployment) => Effect.Effect<ReadonlyArray<CloudStep>, CloudError>
  /** Idempotent: finds what exists by ownership label before creating anything. */
  readonly apply: (deployment: CloudDeployment, step: CloudStep) => Effect.Effect<StepResult, CloudError>
  readonly outputs: (deployment: CloudDeployment) => Effect.Effect<ReadonlyArray<RegionOutputs>, CloudError>
  readonly inventory: (deployment: CloudDeployment) => Effect.Effect<ReadonlyArray<CloudResource>, CloudError>
  readonly purge: (deployment: CloudDeployment) => Effect.Effect<PurgeReport, CloudError>
}

export class CloudProvider extends Context.Tag("@sovereign/core/CloudProvider")<CloudProvider, CloudProviderService>() {}

/** Ownership labels every adapter puts on what it creates. */
export const ownershipLabels = (deploymentId: DeploymentId, regionKey: string, role: string, index?: number) => ({
  "sovereign.dev/deployment": deploymentId,
  "sovereign.dev/region": regionKey,
  "sovereign.dev/role": role,
  ...(index === undefined ? {} : { "sovereign.dev/index": String(index) })
})
