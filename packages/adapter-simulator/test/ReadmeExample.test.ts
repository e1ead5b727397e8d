/**
 * The README's "Use" example, taken from the README itself (not a copy of it): its code block is
 * written out as a module, type-checked with the project's compiler options, imported, and the
 * `app` it composes runs a deployment to `ready`. An edit of the README that breaks the example
 * fails here.
 */
import { describe, expect, it } from "@effect/vitest"
import { type DeploymentRepo, Orchestrator } from "@sovereign/core"
import { Effect, type Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { advanceUntil, request } from "./harness.js"

const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** The first `ts` block after the `## Use` heading. */
const useExample = (): string => {
  const readme = fs.readFileSync(path.join(packageDir, "README.md"), "utf8")
  const section = readme.slice(readme.indexOf("\n## Use\n"))
  const block = /```ts\n([\s\S]*?)```/.exec(section)
  if (!readme.includes("\n## Use\n") || block === null) throw new Error("README.md has no ts block under ## Use")
  return block[1]!
}

/** Compiler errors of a module, with the options every package builds with. */
const typeErrors = (file: string): ReadonlyArray<string> => {
  const configPath = path.resolve(packageDir, "../../tsconfig.base.json")
  const config = ts.parseJsonConfigFileContent(ts.readConfigFile(configPath, ts.sys.readFile).config, ts.sys, path.dirname(configPath))
  const program = ts.createProgram([file], {
    ...config.options,
    noEmit: true,
    composite: false,
    incremental: false,
    declaration: false,
    declarationMap: false,
    emitDeclarationOnly: false
  })
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"))
}

describe("README example", () => {
  // Under the package (so its imports resolve as the README's reader's would), in build/ (not source).
  const file = path.join(packageDir, "build", "readme", `ReadmeExample.${process.pid}.ts`)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, `${useExample()}\nexport { app, state }\n`)

  it("type-checks as written", () => {
    expect(typeErrors(file)).toEqual([])
  }, 120_000)

  it.scoped("composes the orchestrator over the simulator and in-memory stores, and runs a deployment to ready", () =>
    Effect.gen(function* () {
      const example = (yield* Effect.promise(() => import(file))) as {
        readonly app: Layer.Layer<Orchestrator.Orchestrator | DeploymentRepo.DeploymentRepo>
      }
      const status = yield* Effect.gen(function* () {
        const orchestrator = yield* Orchestrator.Orchestrator
        const created = yield* orchestrator.create(request(1), "ops@omani.works")
        return (yield* advanceUntil(created.id, ["ready", "failed"], 60, 5)).status
      }).pipe(Effect.provide(example.app))
      expect(status).toBe("ready")
    }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(file, { force: true }))))
  )
})
