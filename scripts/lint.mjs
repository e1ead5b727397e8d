#!/usr/bin/env node
// The project's checks no type-checker makes:
// - SPEC §1's dependency rule, over the real module graph: dependency-cruiser with the rules in
//   `.dependency-cruiser.cjs` (every import form: static, side-effect, re-export, type-only,
//   `import()`, `require`; sources, tests, examples, bench and scripts);
// - safety rules that are about text, not imports: TLS verification never disabled (SPEC §7), no
//   focused test.
// `--root DIR` checks another tree with this repository's rules (the lint's own test does).
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const repo = fileURLToPath(new URL("..", import.meta.url))
const rootFlag = process.argv.indexOf("--root")
const root = rootFlag === -1 ? repo : process.argv[rootFlag + 1]
const scanned = ["packages", "examples", "bench", "scripts"].filter((dir) => existsSync(join(root, dir)))
const problems = []

const cruise = spawnSync(
  process.execPath,
  [
    join(repo, "node_modules/dependency-cruiser/bin/dependency-cruise.mjs"),
    "--config",
    join(repo, ".dependency-cruiser.cjs"),
    "--output-type",
    "err",
    ...scanned
  ],
  { cwd: root, encoding: "utf8" }
)
if (cruise.status !== 0) problems.push((cruise.stdout + cruise.stderr).trim())

const walk = (dir) =>
  !existsSync(dir)
    ? []
    : readdirSync(dir).flatMap((name) => {
        const path = join(dir, name)
        if (name === "node_modules" || name === "build" || name === "dist") return []
        return statSync(path).isDirectory() ? walk(path) : /\.(ts|mts|tsx|mjs|js)$/.test(name) ? [path] : []
      })

for (const file of scanned.flatMap((dir) => walk(join(root, dir)))) {
  if (relative(root, file) === "scripts/lint.mjs") continue
  const text = readFileSync(file, "utf8")
  const where = relative(root, file)
  if (/\/src\//.test(where) && /rejectUnauthorized:\s*false|skipTLSVerify:\s*true|NODE_TLS_REJECT_UNAUTHORIZED/.test(text))
    problems.push(`${where}: TLS verification may never be disabled (SPEC §7)`)
  if (/\b(it|test|describe)\.only\(/.test(text)) problems.push(`${where}: focused test (.only) silences the rest of the suite`)
}

if (problems.length > 0) {
  console.error(problems.join("\n"))
  process.exit(1)
}
console.log("lint: dependency rule and safety rules hold")
