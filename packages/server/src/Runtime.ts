/**
 * The runtime: core's orchestrator over the configured world and the SQL store, one supervised fiber
 * per active deployment, every non-terminal deployment resumed at start-up. `Control` is its face
 * towards the HTTP API; it maps errors and decides nothing.
 */
import type { Deployment, Kubeconfig } from "@sovereign/core"
import * as Orchestrator from "@sovereign/core/Orchestrator"
import { CloudProvider, ClusterWatch, DnsProvider, MeshProvider } from "@sovereign/core"
import { Context, Duration, Effect, Layer, Option, Ref } from "effect"
import { World } from "./Adapters.js"
import * as Instrumented from "./Instrumented.js"
import * as KubeconfigInspector from "./KubeconfigInspector.js"
import { Control, ControlError, type ControlService } from "./Control.js"
import { ServerConfig, publicUrlOf } from "./ServerConfig.js"

const fromOrchestrator = (
  error: Orchestrator.OrchestratorError | Deployment.InvalidRequest | Kubeconfig.KubeconfigRefused
): ControlError => {
  if (error._tag === "InvalidRequest") return new ControlError({ reason: "Invalid", message: error.message, issues: error.issues })
  if (error._tag === "KubeconfigRefused") {
    return new ControlError({
      reason: "Refused",
      refusal: error.reason,
      message: error.message,
      ...(error.field === undefined ? {} : { field: error.field }),
      ...(error.path === undefined ? {} : { path: error.path }),
      ...(error.allowed === undefined ? {} : { allowed: error.allowed })
    })
  }
  switch (error.reason) {
    case "NotFound":
      return new ControlError({ reason: "NotFound", message: error.message })
    case "Conflict":
      return new ControlError({ reason: error.message.includes("?force=true") ? "TooYoung" : "Conflict", message: error.message })
    case "Adopted":
      return new ControlError({ reason: "Adopted", message: error.message })
    case "AlreadySet":
      return new ControlError({ reason: "AlreadySet", message: error.message })
    case "Invalid":
      return new ControlError({ reason: "Empty", message: error.message })
    case "Unavailable":
      return new ControlError({ reason: "Unavailable", message: error.message })
    case "NotOpen":
      return new ControlError({ reason: "NotOpen", message: error.message })
    case "Closed":
      return new ControlError({ reason: "Closed", message: error.message })
  }
}

/** Orchestrator settings from the server configuration (SPEC §8). */
export const settingsLayer = Layer.effect(
  Orchestrator.OrchestratorConfig,
  Effect.map(ServerConfig, (config) => ({
    ...Orchestrator.defaultSettings,
    publicUrl: publicUrlOf(config).replace(/\/+$/, ""),
    phase1Timeout: config.phase1Timeout,
    phase1ProgressWindow: Duration.unsafeDivide(config.phase1Timeout, 4),
    phase1Ceiling: Duration.times(config.phase1Timeout, 2),
    readySentinel: Option.getOrUndefined(Option.filter(config.readySentinel, (sentinel) => sentinel.trim() !== "")),
    dnsSubdomains: Option.getOrUndefined(config.dnsSubdomains)
  }))
)

/** The world's ports as the services the orchestrator reads from its context. */
const worldPorts = Layer.effectContext(
  Effect.map(World, (world) => {
    // Every adapter call is a span and counted (Instrumented); the adapters themselves know nothing of it.
    let context = Context.make(CloudProvider.CloudProvider, Instrumented.cloud(world.cloud)).pipe(
      Context.add(ClusterWatch.ClusterWatch, Instrumented.watch(world.watch))
    )
    if (Option.isSome(world.access)) context = Context.add(context, ClusterWatch.ClusterAccess, Instrumented.access(world.access.value))
    if (Option.isSome(world.dns)) context = Context.add(context, DnsProvider.DnsProvider, Instrumented.dns(world.dns.value))
    if (Option.isSome(world.mesh)) context = Context.add(context, MeshProvider.MeshProvider, Instrumented.mesh(world.mesh.value))
    return context
  })
)

/** The orchestrator over the world (needs the store ports, `Ids`, `Secrets` and `Handover`). */
export const orchestratorLayer = Orchestrator.layer.pipe(
  Layer.provide(worldPorts),
  Layer.provide(Instrumented.storeLayer),
  Layer.provide(settingsLayer),
  Layer.provide(KubeconfigInspector.layer)
)

/** Whether start-up has resumed every deployment it found (`/readyz`). */
export class Resumed extends Context.Tag("@sovereign/server/Resumed")<Resumed, Ref.Ref<boolean>>() {}

export const resumedLayer = Layer.effect(Resumed, Ref.make(false))

/** `Control` over the orchestrator; `resumeAll` must run once the HTTP server listens (call-backs reach it). */
export const controlLayer = Layer.effect(
  Control,
  Effect.gen(function* () {
    const orchestrator = yield* Orchestrator.Orchestrator
    const world = yield* World
    const resumed = yield* Resumed
    const service: ControlService = {
      submit: (input, owner) => Effect.mapError(orchestrator.create(input, owner), fromOrchestrator),
      kubeconfigArrived: (id, regionKey, document, options) =>
        Effect.mapError(orchestrator.kubeconfigArrived(id, regionKey, document, options), fromOrchestrator),
      retry: (id) => Effect.mapError(orchestrator.retry(id), fromOrchestrator),
      wipe: (id, options) => Effect.mapError(orchestrator.wipe(id, options), fromOrchestrator),
      finalise: (id) => Effect.mapError(orchestrator.finalise(id), fromOrchestrator),
      inventory: Option.map(world.simulator, (simulator) =>
        simulator.allResources.pipe(
          Effect.map((resources) => resources.map(({ kind, name, region, labels }) => ({ kind, name, region, labels }))),
          Effect.mapError((error) => new ControlError({ reason: "Unavailable", message: error.message }))
        )
      ),
      dnsPlan: (id) => orchestrator.dnsPlan(id),
      ready: Ref.get(resumed)
    }
    return service
  })
)

/** Resumes every non-terminal deployment (SPEC 2.3), then reports ready. */
export const resumeAll = Effect.gen(function* () {
  const orchestrator = yield* Orchestrator.Orchestrator
  const ids = yield* orchestrator.resumeAll
  if (ids.length > 0) yield* Effect.logInfo(`resumed ${ids.length} deployment(s): ${ids.join(", ")}`)
  yield* Ref.set(yield* Resumed, true)
})
