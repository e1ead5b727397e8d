/** helm-controller log lines → release-attributed log entries (the three shapes Flux writes). */
import type { Job } from "@sovereign/core"

export interface ParsedLine {
  /** The HelmRelease the line names. */
  readonly release: string
  readonly level: Job.LogLevel
  readonly message: string
  /** Unix milliseconds from the line's own timestamp, when it has one. */
  readonly timestamp: number | undefined
}

const name = "([a-z0-9][a-z0-9.-]*)"
const namePatterns: ReadonlyArray<RegExp> = [
  // Flux v2.4 JSON: "HelmRelease":{"name":"bp-x","namespace":"flux-system"}
  new RegExp(`"helmrelease"\\s*:\\s*\\{[^}]*"name"\\s*:\\s*"${name}"`, "i"),
  // flat JSON key: "helmrelease":"flux-system/bp-x"
  new RegExp(`"helmrelease"\\s*:\\s*"(?:[a-z0-9.-]+/)?${name}"`, "i"),
  // logr text: helmrelease="flux-system/bp-x"
  new RegExp(`helmrelease="(?:[a-z0-9.-]+/)?${name}"`, "i")
]

const levelOf = (line: string): Job.LogLevel =>
  /level"?\s*[:=]\s*"?error/i.test(line)
    ? "ERROR"
    : /level"?\s*[:=]\s*"?warn/i.test(line)
      ? "WARN"
      : /level"?\s*[:=]\s*"?debug/i.test(line)
        ? "DEBUG"
        : "INFO"

const timestampOf = (line: string): number | undefined => {
  const match = /"ts"\s*:\s*"([^"]+)"/.exec(line) ?? /"ts"\s*:\s*([0-9.]+)/.exec(line)
  if (match === null) return undefined
  const value = match[1]!
  const parsed = /^[0-9.]+$/.test(value) ? Math.round(Number(value) * 1000) : Date.parse(value)
  return Number.isFinite(parsed) ? parsed : undefined
}

/** The release a line is about (when its name has `prefix`), with level and timestamp; undefined for noise. */
export const parse = (raw: string, prefix: string): ParsedLine | undefined => {
  const line = raw.trim()
  if (line === "") return undefined
  for (const pattern of namePatterns) {
    const match = pattern.exec(line)
    if (match !== null && match[1]!.startsWith(prefix)) {
      return { release: match[1]!, level: levelOf(line), message: line, timestamp: timestampOf(line) }
    }
  }
  return undefined
}
