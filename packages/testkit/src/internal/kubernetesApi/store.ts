/**
 * The object store: the resource types served, objects by key, one global resourceVersion, and
 * the event history watches resume from (trimmed to a limit, or compacted on request; older
 * resourceVersions are gone).
 */
import { randomUUID } from "node:crypto"
import type { KubeMetadata, KubeObject } from "../../FakeKubernetesApi.js"
import { deepEqual } from "../../kubernetes/Patch.js"

export interface ResourceType {
  readonly group: string
  readonly version: string
  readonly kind: string
  readonly plural: string
  readonly namespaced: boolean
  /** Has a status subresource: the main resource ignores status writes. */
  readonly statusSubresource: boolean
  /** A changed spec increments metadata.generation. */
  readonly generation: boolean
  readonly custom: boolean
}

export const resourceTypes: ReadonlyArray<ResourceType> = [
  {
    group: "",
    version: "v1",
    kind: "Namespace",
    plural: "namespaces",
    namespaced: false,
    statusSubresource: true,
    generation: false,
    custom: false
  },
  {
    group: "",
    version: "v1",
    kind: "Secret",
    plural: "secrets",
    namespaced: true,
    statusSubresource: false,
    generation: false,
    custom: false
  },
  {
    group: "",
    version: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    namespaced: true,
    statusSubresource: false,
    generation: false,
    custom: false
  },
  {
    group: "",
    version: "v1",
    kind: "Service",
    plural: "services",
    namespaced: true,
    statusSubresource: true,
    generation: false,
    custom: false
  },
  { group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: true, statusSubresource: true, generation: false, custom: false },
  {
    group: "",
    version: "v1",
    kind: "ServiceAccount",
    plural: "serviceaccounts",
    namespaced: true,
    statusSubresource: false,
    generation: false,
    custom: false
  },
  {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    plural: "deployments",
    namespaced: true,
    statusSubresource: true,
    generation: true,
    custom: false
  },
  {
    group: "apps",
    version: "v1",
    kind: "DaemonSet",
    plural: "daemonsets",
    namespaced: true,
    statusSubresource: true,
    generation: true,
    custom: false
  },
  {
    group: "apps",
    version: "v1",
    kind: "StatefulSet",
    plural: "statefulsets",
    namespaced: true,
    statusSubresource: true,
    generation: true,
    custom: false
  },
  {
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "ClusterRoleBinding",
    plural: "clusterrolebindings",
    namespaced: false,
    statusSubresource: false,
    generation: false,
    custom: false
  },
  {
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "ClusterRole",
    plural: "clusterroles",
    namespaced: false,
    statusSubresource: false,
    generation: false,
    custom: false
  },
  {
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "RoleBinding",
    plural: "rolebindings",
    namespaced: true,
    statusSubresource: false,
    generation: false,
    custom: false
  },
  {
    group: "helm.toolkit.fluxcd.io",
    version: "v2",
    kind: "HelmRelease",
    plural: "helmreleases",
    namespaced: true,
    statusSubresource: true,
    generation: true,
    custom: true
  }
]

export const apiVersionOf = (type: ResourceType): string => (type.group === "" ? type.version : `${type.group}/${type.version}`)
export const qualifiedPlural = (type: ResourceType): string => (type.group === "" ? type.plural : `${type.plural}.${type.group}`)

export const typeByKind = (apiVersion: string, kind: string): ResourceType => {
  const type = resourceTypes.find((candidate) => apiVersionOf(candidate) === apiVersion && candidate.kind === kind)
  if (type === undefined) throw new Error(`FakeKubernetesApi does not serve ${apiVersion} ${kind}`)
  return type
}

/** The store's key; also the order of lists and of `continue` tokens. */
export const keyOf = (type: ResourceType, namespace: string | undefined, name: string): string =>
  `${qualifiedPlural(type)}/${type.namespaced ? (namespace ?? "") : ""}/${name}`

export const withoutKeys = (object: KubeObject, keys: ReadonlyArray<string>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(object).filter(([key]) => !keys.includes(key)))

export const withoutGeneration = (metadata: KubeMetadata): KubeMetadata => {
  const copy = { ...metadata }
  delete (copy as { generation?: number }).generation
  return copy
}

export interface StoredEvent {
  readonly resourceVersion: number
  readonly type: "ADDED" | "MODIFIED" | "DELETED"
  readonly resource: ResourceType
  readonly object: KubeObject
}

export class ObjectStore {
  private readonly objects = new Map<string, KubeObject>()
  private history: Array<StoredEvent> = []
  private current = 1
  /** Watches may resume from this resourceVersion or later. */
  private compacted = 0

  constructor(
    private readonly historyLimit: number,
    /** Called with each event once it is in the history (the watches' fan-out). */
    private readonly onEvent: (event: StoredEvent) => void
  ) {}

  get resourceVersion(): number {
    return this.current
  }

  get compactedResourceVersion(): number {
    return this.compacted
  }

  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.objects.get(keyOf(type, namespace, name))
  }

  has(type: ResourceType, namespace: string | undefined, name: string): boolean {
    return this.objects.has(keyOf(type, namespace, name))
  }

  /** The objects of a type (in a namespace, if given), in key order. */
  list(type: ResourceType, namespace: string | undefined): Array<KubeObject> {
    return [...this.objects.entries()]
      .filter(
        ([, object]) =>
          typeByKind(object.apiVersion, object.kind) === type && (namespace === undefined || object.metadata.namespace === namespace)
      )
      .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
      .map(([, object]) => object)
  }

  /** The events after `since`, oldest first. */
  eventsAfter(since: number): ReadonlyArray<StoredEvent> {
    return this.history.filter((event) => event.resourceVersion > since)
  }

  /**
   * Stores `object` over `previous` with a new resourceVersion, metadata filled in as the API
   * server does (uid, creationTimestamp, namespace, generation: kept when `explicitGeneration`,
   * else bumped by a spec change) and publishes ADDED or MODIFIED.
   */
  write(type: ResourceType, object: KubeObject, previous: KubeObject | undefined, explicitGeneration = false): KubeObject {
    const stored = this.stamp(type, object, previous, explicitGeneration)
    this.objects.set(keyOf(type, stored.metadata.namespace, stored.metadata.name), stored)
    this.publish(previous === undefined ? "ADDED" : "MODIFIED", type, stored)
    return stored
  }

  /** Deletes an object and publishes DELETED with a new resourceVersion; the tombstone, or undefined when absent. */
  remove(type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = keyOf(type, namespace, name)
    const existing = this.objects.get(key)
    if (existing === undefined) return undefined
    this.objects.delete(key)
    const tombstone: KubeObject = structuredClone({
      ...existing,
      metadata: { ...existing.metadata, resourceVersion: String(++this.current) }
    })
    this.publish("DELETED", type, tombstone)
    return tombstone
  }

  /** Forgets the history up to now: resuming from an older resourceVersion is `410 Gone`. */
  compact(): void {
    this.compacted = this.current
    this.history = this.history.filter((event) => event.resourceVersion > this.compacted)
  }

  private publish(type: StoredEvent["type"], resource: ResourceType, object: KubeObject): void {
    const event: StoredEvent = { resourceVersion: Number(object.metadata.resourceVersion), type, resource, object }
    this.history.push(event)
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit)
      this.compacted = Math.max(this.compacted, dropped[dropped.length - 1]!.resourceVersion)
    }
    this.onEvent(event)
  }

  private stamp(type: ResourceType, object: KubeObject, previous: KubeObject | undefined, explicitGeneration: boolean): KubeObject {
    const resourceVersion = String(++this.current)
    const specChanged = previous === undefined || !deepEqual(previous["spec"], object["spec"])
    const generation = type.generation
      ? explicitGeneration && object.metadata.generation !== undefined
        ? object.metadata.generation
        : previous === undefined
          ? 1
          : (previous.metadata.generation ?? 1) + (specChanged ? 1 : 0)
      : undefined
    const metadata: KubeMetadata = {
      ...object.metadata,
      ...(type.namespaced ? { namespace: object.metadata.namespace ?? "default" } : {}),
      uid: previous?.metadata.uid ?? object.metadata.uid ?? randomUUID(),
      creationTimestamp: previous?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      resourceVersion,
      ...(generation === undefined ? {} : { generation })
    }
    if (!type.namespaced) delete (metadata as { namespace?: string }).namespace
    return structuredClone({ ...object, apiVersion: apiVersionOf(type), kind: type.kind, metadata })
  }
}
