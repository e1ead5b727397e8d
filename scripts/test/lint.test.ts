/**
 * The dependency rule is checked on the module graph, not by a regex: each import form a regex
 * missed (a side-effect import, `require`, a re-export, a type-only import, `import()`, a test's
 * import, bench) fails `npm run lint` in a scratch tree that has this repository's packages and rules.
 */
import { describe, expect, it } from "vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const repo = fileURLToPath(new URL("../..", import.meta.url))

const scratchTree = (files: Record<string, string>): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-lint-"))
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true })
    fs.writeFileSync(path.join(dir, file), text)
  }
  for (const file of ["package.json", "tsconfig.base.json", "packages/core/package.json", "packages/testkit/package.json"])
    write(file, fs.readFileSync(path.join(repo, file), "utf8"))
  // Stand-ins for the npm packages the probes name (the graph needs their files, not their code);
  // the workspace packages are the scratch tree's own.
  for (const name of ["effect", "@effect/platform", "@kubernetes/client-node", "vitest"]) {
    write(
      `node_modules/${name}/package.json`,
      JSON.stringify({ name, version: "1.0.0", type: "module", main: "index.js", types: "index.d.ts" })
    )
    write(`node_modules/${name}/index.js`, "export {}\n")
    write(`node_modules/${name}/index.d.ts`, "export {}\n")
  }
  fs.mkdirSync(path.join(dir, "node_modules/@sovereign"), { recursive: true })
  for (const pkg of ["core", "testkit"]) fs.symlinkSync(path.join(dir, "packages", pkg), path.join(dir, "node_modules/@sovereign", pkg))
  write("packages/testkit/src/index.ts", `export const kit = 1\n`)
  write("packages/core/src/Clean.ts", `import { Effect } from "effect"\nexport const clean = Effect.void\n`)
  for (const [file, text] of Object.entries(files)) write(file, text)
  return dir
}

const lint = (dir: string) => {
  try {
    const run = spawnSync(process.execPath, [path.join(repo, "scripts/lint.mjs"), "--root", dir], { encoding: "utf8" })
    return { status: run.status, output: run.stdout + run.stderr }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

describe("npm run lint", () => {
  it("passes a core that imports only effect", () => {
    const run = lint(
      scratchTree({
        "packages/core/test/Clean.test.ts": `import { it } from "vitest"\nimport * as fs from "node:fs"\nimport { clean } from "../src/Clean.js"\n`
      })
    )
    expect(run.output).toContain("lint: dependency rule and safety rules hold")
    expect(run.status).toBe(0)
  })

  it("fails each import form that reaches past core's rule, naming the file and the rule", () => {
    const probes: Record<string, string> = {
      "packages/core/src/SideEffect.ts": `import "@effect/platform"\n`,
      "packages/core/src/Required.ts": `export const platform = require("@effect/platform")\n`,
      "packages/core/src/ReExport.ts": `export * from "@effect/platform"\n`,
      "packages/core/src/TypeOnly.ts": `import type { HttpClient } from "@effect/platform"\nexport type Client = HttpClient.HttpClient\n`,
      "packages/core/src/Dynamic.ts": `export const load = () => import("node:fs")\n`,
      "packages/core/src/Testkit.ts": `import "@sovereign/testkit"\n`,
      "packages/core/test/Kubernetes.test.ts": `import "@kubernetes/client-node"\n`,
      "bench/missing.bench.ts": `import "./nowhere.js"\n`
    }
    const run = lint(scratchTree(probes))
    expect(run.status).toBe(1)
    expect(run.output).toMatch(/core:src-imports: packages\/core\/src\/SideEffect\.ts → node_modules\/@effect\/platform\//)
    expect(run.output).toMatch(/core:src-imports: packages\/core\/src\/Required\.ts → node_modules\/@effect\/platform\//)
    expect(run.output).toMatch(/core:src-imports: packages\/core\/src\/ReExport\.ts → node_modules\/@effect\/platform\//)
    expect(run.output).toMatch(/core:src-imports: packages\/core\/src\/TypeOnly\.ts → node_modules\/@effect\/platform\//)
    expect(run.output).toMatch(/core-does-no-io: packages\/core\/src\/Dynamic\.ts → fs/)
    expect(run.output).toMatch(/core:src-imports: packages\/core\/src\/Testkit\.ts → packages\/testkit\//)
    expect(run.output).toMatch(/core:test-imports: packages\/core\/test\/Kubernetes\.test\.ts → node_modules\/@kubernetes\/client-node\//)
    expect(run.output).toMatch(/not-to-unresolvable: bench\/missing\.bench\.ts → \.\/nowhere\.js/)
    expect(run.output).not.toContain("Clean.ts")
  })

  it("fails a focused test and disabled TLS verification", () => {
    const run = lint(
      scratchTree({
        "packages/core/test/Focused.test.ts": `import { it } from "vitest"\nit.${"only"}("x", () => {})\n`,
        "packages/testkit/src/Insecure.ts": `export const options = { rejectUnauthorized: false }\n`
      })
    )
    expect(run.status).toBe(1)
    expect(run.output).toContain("packages/core/test/Focused.test.ts: focused test (.only)")
    expect(run.output).toContain("packages/testkit/src/Insecure.ts: TLS verification may never be disabled")
  })
})
