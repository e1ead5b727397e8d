/** Label and field selectors (`a=b,c!=d,e in (f,g),!h`, `metadata.name=x`), as list and watch filter with them. */
import type { KubeObject } from "../../FakeKubernetesApi.js"
import { badRequest } from "./status.js"

type Requirement = (labels: Readonly<Record<string, string>>) => boolean

/** Splits on commas outside parentheses (`a in (b,c),d` → `a in (b,c)`, `d`). */
const splitTopLevel = (selector: string): Array<string> => {
  const parts: Array<string> = []
  let depth = 0
  let current = ""
  for (const character of selector) {
    if (character === "(") depth++
    if (character === ")") depth--
    if (character === "," && depth === 0) {
      parts.push(current)
      current = ""
    } else current += character
  }
  if (current.trim() !== "") parts.push(current)
  return parts.map((part) => part.trim()).filter((part) => part !== "")
}

export const parseLabelSelector = (selector: string | undefined): Requirement => {
  if (selector === undefined || selector.trim() === "") return () => true
  const requirements = splitTopLevel(selector).map((part): Requirement => {
    const setMatch = /^([^\s!=]+)\s+(in|notin)\s+\((.*)\)$/.exec(part)
    if (setMatch !== null) {
      const key = setMatch[1]!
      const values = setMatch[3]!.split(",").map((value) => value.trim())
      return setMatch[2] === "in"
        ? (labels) => values.includes(labels[key] ?? "\u0000")
        : (labels) => !values.includes(labels[key] ?? "\u0000")
    }
    const inequality = /^([^\s!=]+)\s*!=\s*(.*)$/.exec(part)
    if (inequality !== null) return (labels) => labels[inequality[1]!] !== inequality[2]!.trim()
    const equality = /^([^\s!=]+)\s*==?\s*(.*)$/.exec(part)
    if (equality !== null) return (labels) => labels[equality[1]!] === equality[2]!.trim()
    if (part.startsWith("!")) return (labels) => !(part.slice(1) in labels)
    return (labels) => part in labels
  })
  return (labels) => requirements.every((requirement) => requirement(labels))
}

export const parseFieldSelector = (selector: string | undefined): ((object: KubeObject) => boolean) => {
  if (selector === undefined || selector.trim() === "") return () => true
  const requirements = splitTopLevel(selector).map((part) => {
    const match = /^([^!=]+)(!=|==|=)(.*)$/.exec(part)
    if (match === null) throw badRequest(`invalid field selector: ${part}`)
    const field = match[1]!.trim()
    const negate = match[2] === "!="
    const value = match[3]!.trim()
    return (object: KubeObject) => {
      let current: unknown = object
      for (const segment of field.split("."))
        current = typeof current === "object" && current !== null ? (current as Record<string, unknown>)[segment] : undefined
      const matches = String(current ?? "") === value
      return negate ? !matches : matches
    }
  })
  return (object) => requirements.every((requirement) => requirement(object))
}

const labelsOf = (object: KubeObject): Readonly<Record<string, string>> => object.metadata.labels ?? {}

/** What a list or watch request selects with its `labelSelector` and `fieldSelector`. */
export const selectorOf = (query: URLSearchParams): ((object: KubeObject) => boolean) => {
  const labels = parseLabelSelector(query.get("labelSelector") ?? undefined)
  const fields = parseFieldSelector(query.get("fieldSelector") ?? undefined)
  return (object) => labels(labelsOf(object)) && fields(object)
}
