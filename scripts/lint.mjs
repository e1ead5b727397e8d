#!/usr/bin/env node
// Enforces SPEC §1's dependency rule and a few safety rules no type-checker sees.
import { readdirSync, readFileSync, statSync, existsSync } from "node:fs"
import { join, relative } from "node:path"

const root = new URL("..", import.meta.url).pathname
// Which workspace packages (and npm packages) each package's source may import.
const allowed = {
  core: { sovereign: [], external: ["effect"] },
  testkit: { sovereign: ["core"], external: "*" },
  "adapter-simulator": { sovereign: ["core"], external: ["effect"] },
  "adapter-hetzner": { sovereign: ["core"], external: ["effect", "@effect/platform"] },
  "adapter-powerdns": { sovereign: ["core"], external: ["effect", "@effect/platform"] },
  // js-yaml: the parser @kubernetes/client-node itself uses; the adapter parses kubeconfigs with it into core's Schema (issue 16).
  "adapter-kubernetes": { sovereign: ["core"], external: ["effect", "@effect/platform", "@kubernetes/client-node", "js-yaml"] },
  "adapter-cilium": { sovereign: ["core", "adapter-kubernetes"], external: ["effect", "@effect/platform", "node-forge"] },
  server: { sovereign: "*", external: "*" }
}
// Tests may additionally use the testkit and the test tooling.
const testExtras = { sovereign: ["testkit"], external: ["@effect/vitest", "vitest", "fast-check", "@effect/platform", "@effect/platform-node"] }

const walk = (dir) =>
  !existsSync(dir) ? [] : readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (name === "node_modules" || name === "build") return []
    return statSync(path).isDirectory() ? walk(path) : /\.(ts|mts|tsx)$/.test(name) ? [path] : []
  })

const importPattern = /(?:^|\n)\s*(?:import|export)[^"'`]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g
const problems = []
const permits = (rule, name) => rule === "*" || rule.includes(name)

for (const [pkg, rule] of Object.entries(allowed)) {
  for (const kind of ["src", "test"]) {
    for (const file of walk(join(root, "packages", pkg, kind))) {
      const text = readFileSync(file, "utf8")
      const where = relative(root, file)
      for (const match of text.matchAll(importPattern)) {
        const spec = match[1] ?? match[2]
        if (spec.startsWith(".") || spec.startsWith("node:")) {
          if (pkg === "core" && kind === "src" && spec.startsWith("node:")) problems.push(`${where}: core does no I/O and may not import ${spec}`)
          continue
        }
        if (spec.startsWith("@sovereign/")) {
          const target = spec.slice("@sovereign/".length).split("/")[0]
          if (target === pkg) { problems.push(`${where}: import the package's own modules relatively, not via ${spec}`); continue }
          const ok = permits(rule.sovereign, target) || (kind === "test" && permits(testExtras.sovereign, target))
          if (!ok) problems.push(`${where}: @sovereign/${pkg} may not import ${spec} (SPEC §1)`)
          continue
        }
        const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]
        const ok = permits(rule.external, name) || (kind === "test" && (permits(testExtras.external, name)))
        if (!ok && !(kind === "test")) problems.push(`${where}: @sovereign/${pkg} may not import ${name} (SPEC §1)`)
      }
      if (kind === "src" && /rejectUnauthorized:\s*false|skipTLSVerify:\s*true|NODE_TLS_REJECT_UNAUTHORIZED/.test(text))
        problems.push(`${where}: TLS verification may never be disabled (SPEC §7)`)
      if (/\b(it|test|describe)\.only\(/.test(text)) problems.push(`${where}: focused test (.only) silences the rest of the suite`)
    }
  }
}

if (problems.length > 0) {
  console.error(problems.join("\n"))
  console.error(`lint: ${problems.length} problem(s)`)
  process.exit(1)
}
console.log("lint: dependency rule and safety rules hold")
