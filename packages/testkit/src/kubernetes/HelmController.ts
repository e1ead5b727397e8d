/**
 * A helm-controller stand-in for the fake Kubernetes API: it watches HelmReleases over the API like
 * Flux does, and on a spec change, a `reconcile.fluxcd.io/requestedAt` request or an explicit
 * reconcile it composes the values (`valuesFrom` in order, then `spec.values`), renders the chart and
 * applies it with Helm's three-way merge: every field the chart renders is put back as rendered (a
 * patched pod spec reverts), fields it stopped rendering go, fields it never rendered are left alone.
 */
import { createHash } from "node:crypto"
import type { ClientRequest } from "node:http"
import { request } from "node:https"
import { Effect, FiberSet, Option, Runtime } from "effect"
import type { Scope } from "effect"
import yaml from "js-yaml"
import type { FakeKubernetesApi, KubeObject, ObjectRef } from "../FakeKubernetesApi.js"
import { deepEqual, type Json } from "./Patch.js"

export const requestedAtAnnotation = "reconcile.fluxcd.io/requestedAt"

export interface ChartInput {
  readonly chartVersion: string
  readonly namespace: string
  readonly releaseName: string
  readonly values: { readonly [key: string]: unknown }
}

export interface HelmControllerOptions {
  readonly api: FakeKubernetesApi
  /** The chart of every release this controller reconciles. */
  readonly render: (input: ChartInput) => ReadonlyArray<KubeObject>
}

export interface HelmController {
  /** Reconciles one release now, as `flux reconcile helmrelease` or the release's interval would. */
  readonly reconcile: (namespace: string, name: string) => Effect.Effect<void>
  /** Reconciles every release now. */
  readonly reconcileAll: Effect.Effect<void>
  /** Completed reconciles of any release. */
  readonly reconciles: Effect.Effect<number>
}

type JsonObject = { [key: string]: unknown }
const isObject = (value: unknown): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value)

/** Helm's merge of values: maps merge key by key, everything else (lists included) is replaced. */
export const mergeValues = (base: unknown, overlay: unknown): unknown => {
  if (!isObject(base) || !isObject(overlay)) return overlay
  const merged: JsonObject = { ...base }
  for (const [key, value] of Object.entries(overlay)) merged[key] = key in base ? mergeValues(base[key], value) : value
  return merged
}

/**
 * Helm's three-way merge of one object: `rendered` wins for every field it holds, fields the previous
 * rendering held and this one does not are removed, and fields only the live object holds stay.
 */
export const threeWayMerge = (previous: unknown, rendered: unknown, live: unknown): unknown => {
  if (!isObject(rendered) || !isObject(live)) return rendered
  const merged: JsonObject = { ...live }
  for (const [key, value] of Object.entries(rendered))
    merged[key] = key in live ? threeWayMerge(isObject(previous) ? previous[key] : undefined, value, live[key]) : value
  if (isObject(previous)) for (const key of Object.keys(previous)) if (!(key in rendered)) delete merged[key]
  return merged
}

const refOf = (object: KubeObject): ObjectRef => ({
  apiVersion: object.apiVersion,
  kind: object.kind,
  ...(object.metadata.namespace === undefined ? {} : { namespace: object.metadata.namespace }),
  name: object.metadata.name
})
const keyOf = (object: KubeObject) => `${object.apiVersion}/${object.kind}/${object.metadata.namespace ?? ""}/${object.metadata.name}`

interface ValuesReference {
  readonly kind: "Secret" | "ConfigMap"
  readonly name: string
  readonly valuesKey?: string
  readonly targetPath?: string
  readonly optional?: boolean
}

const setAt = (target: JsonObject, path: string, value: unknown): JsonObject => {
  const [head, ...rest] = path.split(".")
  if (head === undefined) return target
  return { ...target, [head]: rest.length === 0 ? value : setAt(isObject(target[head]) ? target[head] : {}, rest.join("."), value) }
}

/** Starts the controller against `api`; it stops watching when the scope closes. */
export const make = (options: HelmControllerOptions): Effect.Effect<HelmController, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { api } = options
    const lastRendered = new Map<string, Map<string, KubeObject>>()
    const lock = yield* Effect.makeSemaphore(1)
    let completed = 0

    const composeValues = (release: KubeObject, namespace: string) =>
      Effect.gen(function* () {
        const spec = (release["spec"] ?? {}) as JsonObject
        let values: unknown = {}
        for (const reference of (spec["valuesFrom"] ?? []) as ReadonlyArray<ValuesReference>) {
          const valuesKey = reference.valuesKey ?? "values.yaml"
          const found = yield* api.get({ apiVersion: "v1", kind: reference.kind, namespace, name: reference.name })
          const data = Option.getOrUndefined(found)?.["data"] as Record<string, string> | undefined
          const raw = data?.[valuesKey]
          if (raw === undefined) {
            if (reference.optional === true) continue
            return {
              error: `could not resolve ${reference.kind} chart values reference '${namespace}/${reference.name}' with key '${valuesKey}': ${Option.isNone(found) ? "not found" : "key not present"}`
            }
          }
          const text = reference.kind === "Secret" ? Buffer.from(raw, "base64").toString("utf8") : raw
          if (reference.targetPath !== undefined) {
            values = setAt(isObject(values) ? values : {}, reference.targetPath, text)
            continue
          }
          const parsed = yaml.load(text)
          if (parsed !== undefined && parsed !== null && !isObject(parsed)) {
            return {
              error: `unable to read values from key '${valuesKey}' in ${reference.kind} '${namespace}/${reference.name}': not a map`
            }
          }
          values = mergeValues(values, parsed ?? {})
        }
        return { values: mergeValues(values, spec["values"] ?? {}) as JsonObject }
      })

    const writeStatus = (ref: ObjectRef, status: (release: KubeObject) => JsonObject) =>
      api.modify(ref, (current) => ({ ...current, status: status(current) }))

    const reconcileNow = (namespace: string, name: string) =>
      Effect.gen(function* () {
        const ref: ObjectRef = { apiVersion: "helm.toolkit.fluxcd.io/v2", kind: "HelmRelease", namespace, name }
        const found = yield* api.get(ref)
        if (Option.isNone(found)) return
        const release = found.value
        const spec = (release["spec"] ?? {}) as JsonObject
        const requestedAt = release.metadata.annotations?.[requestedAtAnnotation]
        const generation = release.metadata.generation ?? 1
        const handled = (status: JsonObject) => ({
          ...status,
          observedGeneration: generation,
          ...(requestedAt === undefined ? {} : { lastHandledReconcileAt: requestedAt })
        })
        const now = new Date().toISOString().replace(/\.\d+Z$/, "Z")
        const composed = yield* composeValues(release, namespace)
        if ("error" in composed) {
          yield* writeStatus(ref, (current) =>
            handled({
              ...((current["status"] ?? {}) as JsonObject),
              conditions: [
                {
                  type: "Ready",
                  status: "False",
                  reason: "InitFailed",
                  message: composed.error,
                  observedGeneration: generation,
                  lastTransitionTime: now
                }
              ]
            })
          )
          completed++
          return
        }
        const targetNamespace = String(spec["targetNamespace"] ?? namespace)
        const releaseName = String(spec["releaseName"] ?? `${targetNamespace}-${name}`)
        const chartVersion = String(((spec["chart"] as JsonObject | undefined)?.["spec"] as JsonObject | undefined)?.["version"] ?? "")
        const rendered = options.render({ chartVersion, namespace: targetNamespace, releaseName, values: composed.values })
        const releaseKey = `${namespace}/${name}`
        const previous = lastRendered.get(releaseKey) ?? new Map<string, KubeObject>()
        for (const object of rendered) {
          const before = previous.get(keyOf(object))
          const live = yield* api.get(refOf(object))
          if (Option.isNone(live)) {
            yield* api.put(object)
            continue
          }
          const merged = threeWayMerge(before, object, live.value) as KubeObject
          if (!deepEqual(merged as unknown as Json, live.value as unknown as Json)) yield* api.modify(refOf(object), () => merged)
        }
        const renderedKeys = new Set(rendered.map(keyOf))
        for (const [key, object] of previous) if (!renderedKeys.has(key)) yield* api.remove(refOf(object))
        lastRendered.set(releaseKey, new Map(rendered.map((object) => [keyOf(object), object])))
        const revision =
          (((release["status"] as JsonObject | undefined)?.["history"] as ReadonlyArray<unknown> | undefined)?.length ?? 0) + 1
        const digest = `sha256:${createHash("sha256").update(JSON.stringify(composed.values)).digest("hex")}`
        yield* writeStatus(ref, () =>
          handled({
            conditions: [
              {
                type: "Ready",
                status: "True",
                reason: revision === 1 ? "InstallSucceeded" : "UpgradeSucceeded",
                message: `Helm ${revision === 1 ? "install" : "upgrade"} succeeded for release ${targetNamespace}/${releaseName}.v${revision} with chart cilium@${chartVersion}`,
                observedGeneration: generation,
                lastTransitionTime: now
              }
            ],
            lastAttemptedConfigDigest: digest,
            history: [{ chartVersion, configDigest: digest, status: "deployed", version: revision }]
          })
        )
        completed++
      }).pipe(lock.withPermits(1))

    const needsReconcile = (release: KubeObject): boolean => {
      const status = (release["status"] ?? {}) as JsonObject
      const requestedAt = release.metadata.annotations?.[requestedAtAnnotation]
      return (
        status["observedGeneration"] !== release.metadata.generation ||
        (requestedAt !== undefined && status["lastHandledReconcileAt"] !== requestedAt)
      )
    }

    // --- the watch, over HTTPS like the real controller -------------------------------------------
    const fibers = yield* FiberSet.make()
    const runtime = yield* Effect.runtime<never>()
    const run = Runtime.runFork(runtime)
    let stopped = false
    let current: ClientRequest | undefined
    let resourceVersion = ""

    const watch = (): void => {
      if (stopped) return
      const path = `/apis/helm.toolkit.fluxcd.io/v2/helmreleases?watch=true&allowWatchBookmarks=true${resourceVersion === "" ? "" : `&resourceVersion=${resourceVersion}`}`
      const outgoing = request(
        new URL(path, api.url),
        { ca: api.caPem, headers: { authorization: `Bearer ${api.token}` }, agent: false },
        (response) => {
          let buffer = ""
          response.on("data", (chunk: Buffer) => {
            buffer += chunk.toString("utf8")
            let newline = buffer.indexOf("\n")
            while (newline >= 0) {
              const line = buffer.slice(0, newline)
              buffer = buffer.slice(newline + 1)
              newline = buffer.indexOf("\n")
              if (line.trim() === "") continue
              const event = JSON.parse(line) as { readonly type: string; readonly object: KubeObject }
              if (event.type === "ERROR") {
                resourceVersion = ""
                continue
              }
              resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion
              if ((event.type === "ADDED" || event.type === "MODIFIED") && needsReconcile(event.object)) {
                const namespace = event.object.metadata.namespace ?? "default"
                run(FiberSet.run(fibers, reconcileNow(namespace, event.object.metadata.name)))
              }
            }
          })
          response.on("end", () => setTimeout(watch, 20).unref())
          response.on("error", () => undefined)
        }
      )
      outgoing.on("error", () => setTimeout(watch, 50).unref())
      outgoing.end()
      current = outgoing
    }
    yield* Effect.acquireRelease(Effect.sync(watch), () =>
      Effect.sync(() => {
        stopped = true
        current?.destroy()
      })
    )

    const reconcileAll = Effect.flatMap(api.list({ apiVersion: "helm.toolkit.fluxcd.io/v2", kind: "HelmRelease" }), (releases) =>
      Effect.forEach(releases, (release) => reconcileNow(release.metadata.namespace ?? "default", release.metadata.name), { discard: true })
    )
    return { reconcile: reconcileNow, reconcileAll, reconciles: Effect.sync(() => completed) }
  })
