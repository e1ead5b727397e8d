/** The three PATCH dialects of the Kubernetes API server: JSON Patch, JSON merge patch, strategic merge patch. */

export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }
type JsonObject = { [key: string]: Json }

const isObject = (value: unknown): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value)

const clone = <A>(value: A): A => structuredClone(value)

export class PatchError extends Error {}

// ---------------------------------------------------------------------------------------------
// RFC 7386 JSON merge patch: objects merge, null deletes, everything else (lists too) replaces.

export const jsonMergePatch = (target: Json | undefined, patch: Json): Json => {
  if (!isObject(patch)) return clone(patch)
  const result: JsonObject = isObject(target) ? clone(target) : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key]
    else result[key] = jsonMergePatch(result[key], value)
  }
  return result
}

// ---------------------------------------------------------------------------------------------
// RFC 6902 JSON Patch.

const decodePointer = (pointer: string): Array<string> => {
  if (pointer === "") return []
  if (!pointer.startsWith("/")) throw new PatchError(`invalid JSON pointer ${pointer}`)
  return pointer
    .slice(1)
    .split("/")
    .map((token) => token.replace(/~1/g, "/").replace(/~0/g, "~"))
}

const locate = (document: Json, tokens: ReadonlyArray<string>): Json => {
  let current: Json = document
  for (const token of tokens) {
    if (Array.isArray(current)) current = (current as ReadonlyArray<Json>)[Number(token)] as Json
    else if (isObject(current) && token in current) current = current[token] as Json
    else throw new PatchError(`path not found: /${tokens.join("/")}`)
    if (current === undefined) throw new PatchError(`path not found: /${tokens.join("/")}`)
  }
  return current
}

const deepEqual = (left: unknown, right: unknown): boolean => JSON.stringify(canonical(left)) === JSON.stringify(canonical(right))

const canonical = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(canonical)
  if (isObject(value))
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, canonical(value[key])])
    )
  return value
}

export { deepEqual }

export const jsonPatch = (target: Json, operations: Json): Json => {
  if (!Array.isArray(operations)) throw new PatchError("a JSON Patch is a list of operations")
  let document = clone(target)
  const parentOf = (tokens: ReadonlyArray<string>): { parent: Json; key: string } => {
    if (tokens.length === 0) throw new PatchError("cannot address the document root here")
    return { parent: locate(document, tokens.slice(0, -1)), key: tokens[tokens.length - 1]! }
  }
  const add = (tokens: ReadonlyArray<string>, value: Json): void => {
    if (tokens.length === 0) {
      document = clone(value)
      return
    }
    const { parent, key } = parentOf(tokens)
    if (Array.isArray(parent)) {
      const list = parent as Array<Json>
      const index = key === "-" ? list.length : Number(key)
      if (!Number.isInteger(index) || index < 0 || index > list.length) throw new PatchError(`index out of range: ${key}`)
      list.splice(index, 0, clone(value))
    } else if (isObject(parent)) (parent as JsonObject)[key] = clone(value)
    else throw new PatchError("parent is not a container")
  }
  const remove = (tokens: ReadonlyArray<string>): Json => {
    const { parent, key } = parentOf(tokens)
    const removed = locate(document, tokens)
    if (Array.isArray(parent)) (parent as Array<Json>).splice(Number(key), 1)
    else if (isObject(parent)) delete (parent as JsonObject)[key]
    return removed
  }
  for (const operation of operations) {
    if (!isObject(operation)) throw new PatchError("invalid operation")
    const op = operation["op"]
    const path = decodePointer(String(operation["path"] ?? ""))
    switch (op) {
      case "add":
        add(path, operation["value"] ?? null)
        break
      case "remove":
        remove(path)
        break
      case "replace":
        remove(path)
        add(path, operation["value"] ?? null)
        break
      case "test":
        if (!deepEqual(locate(document, path), operation["value"])) throw new PatchError("test operation failed")
        break
      case "move": {
        const value = remove(decodePointer(String(operation["from"] ?? "")))
        add(path, value)
        break
      }
      case "copy":
        add(path, locate(document, decodePointer(String(operation["from"] ?? ""))))
        break
      default:
        throw new PatchError(`unknown operation ${String(op)}`)
    }
  }
  return document
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch, with the patch metadata (merge keys) of the fields our kinds carry, as
// the Go types declare them. Lists without a strategy are replaced, as on a real API server.

const podSpecMergeKeys = (prefix: string): Record<string, string> => ({
  [`${prefix}.containers`]: "name",
  [`${prefix}.initContainers`]: "name",
  [`${prefix}.ephemeralContainers`]: "name",
  [`${prefix}.volumes`]: "name",
  [`${prefix}.imagePullSecrets`]: "name",
  [`${prefix}.hostAliases`]: "ip",
  [`${prefix}.containers[].env`]: "name",
  [`${prefix}.containers[].ports`]: "containerPort",
  [`${prefix}.containers[].volumeMounts`]: "mountPath",
  [`${prefix}.containers[].volumeDevices`]: "devicePath",
  [`${prefix}.initContainers[].env`]: "name",
  [`${prefix}.initContainers[].ports`]: "containerPort",
  [`${prefix}.initContainers[].volumeMounts`]: "mountPath"
})

const mergeKeys: Readonly<Record<string, string>> = {
  "metadata.ownerReferences": "uid",
  "spec.ports": "port",
  ...podSpecMergeKeys("spec.template.spec"),
  ...podSpecMergeKeys("spec")
}

const primitiveMergeLists: ReadonlySet<string> = new Set(["metadata.finalizers"])

const childPath = (path: string, key: string): string => (path === "" ? key : `${path}.${key}`)

const mergeMap = (original: JsonObject, patch: JsonObject, path: string): JsonObject => {
  const directive = patch["$patch"]
  if (directive === "replace") return mergeMap({}, Object.fromEntries(Object.entries(patch).filter(([key]) => key !== "$patch")), path)
  const result: JsonObject = clone(original)
  const orders: Array<[string, ReadonlyArray<Json>]> = []
  for (const [key, value] of Object.entries(patch)) {
    if (key === "$patch" || key === "$retainKeys") continue
    if (key.startsWith("$setElementOrder/")) {
      if (Array.isArray(value)) orders.push([key.slice("$setElementOrder/".length), value])
      continue
    }
    if (key.startsWith("$deleteFromPrimitiveList/")) {
      const field = key.slice("$deleteFromPrimitiveList/".length)
      const current = result[field]
      if (Array.isArray(current) && Array.isArray(value)) {
        result[field] = current.filter((item) => !value.some((removed) => deepEqual(removed, item)))
      }
      continue
    }
    if (value === null) {
      delete result[key]
      continue
    }
    if (isObject(value)) {
      if (value["$patch"] === "delete") {
        delete result[key]
        continue
      }
      const current = result[key]
      result[key] = mergeMap(isObject(current) ? current : {}, value, childPath(path, key))
      continue
    }
    if (Array.isArray(value)) {
      result[key] = mergeList(result[key], value, childPath(path, key))
      continue
    }
    result[key] = value
  }
  const retain = patch["$retainKeys"]
  if (Array.isArray(retain)) {
    for (const key of Object.keys(result)) if (!retain.includes(key)) delete result[key]
  }
  for (const [field, order] of orders) {
    const current = result[field]
    if (Array.isArray(current)) result[field] = reorder(current, order, mergeKeys[childPath(path, field)])
  }
  return result
}

const reorder = (list: ReadonlyArray<Json>, order: ReadonlyArray<Json>, mergeKey: string | undefined): Array<Json> => {
  const identity = (item: Json): Json => (mergeKey !== undefined && isObject(item) ? (item[mergeKey] ?? null) : item)
  const position = (item: Json): number => {
    const index = order.findIndex((entry) => deepEqual(identity(entry), identity(item)))
    return index === -1 ? order.length : index
  }
  return list
    .map((item, index) => ({ item, index }))
    .sort((a, b) => position(a.item) - position(b.item) || a.index - b.index)
    .map(({ item }) => item)
}

const stripDirectives = (value: Json, path: string): Json => {
  if (isObject(value)) return mergeMap({}, value, path)
  if (Array.isArray(value)) return mergeList(undefined, value, path)
  return value
}

const mergeList = (original: Json | undefined, patch: ReadonlyArray<Json>, path: string): Array<Json> => {
  const replace = patch.some((item) => isObject(item) && item["$patch"] === "replace")
  const items = patch.filter(
    (item) => !(isObject(item) && (item["$patch"] === "replace" || item["$patch"] === "merge") && Object.keys(item).length === 1)
  )
  const mergeKey = mergeKeys[path]
  const elementPath = `${path}[]`
  if (replace || !Array.isArray(original)) {
    return items.filter((item) => !(isObject(item) && item["$patch"] === "delete")).map((item) => stripDirectives(item, elementPath))
  }
  if (primitiveMergeLists.has(path)) {
    const result = [...original]
    for (const item of items) if (!result.some((existing) => deepEqual(existing, item))) result.push(item)
    return result
  }
  if (mergeKey === undefined) return items.map((item) => stripDirectives(item, elementPath))
  const result: Array<Json> = clone([...original])
  for (const item of items) {
    if (!isObject(item)) throw new PatchError(`list ${path} is merged by key ${mergeKey}; an item is not an object`)
    const key = item[mergeKey]
    if (key === undefined) throw new PatchError(`list ${path} item has no merge key ${mergeKey}`)
    const index = result.findIndex((existing) => isObject(existing) && deepEqual(existing[mergeKey], key))
    if (item["$patch"] === "delete") {
      if (index !== -1) result.splice(index, 1)
      continue
    }
    if (index === -1) result.push(mergeMap({}, item, elementPath))
    else result[index] = mergeMap(result[index] as JsonObject, item, elementPath)
  }
  return result
}

/** Applies a strategic merge patch (patchStrategy/patchMergeKey of the built-in kinds we serve). */
export const strategicMergePatch = (target: Json, patch: Json): Json => {
  if (!isObject(patch)) throw new PatchError("a strategic merge patch is an object")
  return mergeMap(isObject(target) ? target : {}, patch, "")
}
