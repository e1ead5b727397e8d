/**
 * Runs every `bench/*.bench.ts` (each default-exports `async () => Record<metric, { value, unit, goal? }>`),
 * prints the figures with their goals, and writes `bench/results.json` as `{ "<metric>": { value, unit } }`.
 * `npm run bench -- flow` runs only the benchmark files whose name contains `flow`.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

export interface Metric {
  readonly value: number
  readonly unit: string
  /** Human-readable goal, e.g. `<= 1`. */
  readonly goal?: string
}
export type Benchmark = () => Promise<Record<string, Metric>>

const directory = path.dirname(fileURLToPath(import.meta.url))
const filters = process.argv.slice(2)

const files = (await fs.readdir(directory))
  .filter((name) => name.endsWith(".bench.ts"))
  .filter((name) => filters.length === 0 || filters.some((filter) => name.includes(filter)))
  .sort()

const results: Record<string, { value: number; unit: string }> = {}
const rows: Array<readonly [string, string, string, string]> = []
let failures = 0

for (const file of files) {
  const started = performance.now()
  try {
    const module = (await import(pathToFileURL(path.join(directory, file)).href)) as { default?: unknown }
    if (typeof module.default !== "function") throw new Error("does not default-export a benchmark function")
    const metrics = (await (module.default as Benchmark)()) as Record<string, Metric>
    for (const [name, metric] of Object.entries(metrics)) {
      results[name] = { value: metric.value, unit: metric.unit }
      rows.push([name, format(metric.value), metric.unit, metric.goal ?? ""])
    }
    console.error(`${file}: ${Object.keys(metrics).length} metrics in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  } catch (error) {
    failures++
    console.error(`${file}: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  }
}

function format(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString("en-US")
  return Math.abs(value) >= 100 ? value.toFixed(1) : Math.abs(value) >= 1 ? value.toFixed(3) : value.toPrecision(3)
}

const header = ["metric", "value", "unit", "goal"] as const
const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)))
const line = (cells: ReadonlyArray<string>) =>
  cells
    .map((cell, column) => (column === 1 ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
    .join("  ")
    .trimEnd()
console.log(line(header))
console.log(widths.map((width) => "-".repeat(width)).join("  "))
for (const row of rows) console.log(line(row))

// Merge into what a partial run (a filter) did not measure, so results.json stays complete.
const resultsPath = path.join(directory, "results.json")
const previous =
  filters.length > 0
    ? await fs.readFile(resultsPath, "utf8").then(
        (text) => JSON.parse(text) as Record<string, unknown>,
        () => ({})
      )
    : {}
const sorted = Object.fromEntries(Object.entries({ ...previous, ...results }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
await fs.writeFile(resultsPath, JSON.stringify(sorted, null, 2) + "\n")
console.log(`\nwrote ${path.relative(process.cwd(), resultsPath)} (${Object.keys(sorted).length} metrics)`)
if (failures > 0) process.exitCode = 1
