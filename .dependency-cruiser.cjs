/**
 * The dependency rule (SPEC §1) as rules over the module graph dependency-cruiser builds with the
 * TypeScript compiler's own parser: every form of import is seen (static, side-effect, re-export,
 * type-only, dynamic `import()`, `require`, `import x = require()`), in sources, tests, examples
 * and bench alike, and workspace packages are judged by the file an import resolves to.
 */

/** What each package's sources may import: workspace packages and npm packages ("*": any it declares). */
const allowed = {
  "packages/core": { sovereign: [], external: ["effect"] },
  "packages/testkit": { sovereign: ["core"], external: "*" },
  // typescript (tests only): the README example is type-checked as written.
  "packages/adapter-simulator": { sovereign: ["core"], external: ["effect"], testExternal: ["typescript"] },
  "packages/adapter-hetzner": { sovereign: ["core"], external: ["effect", "@effect/platform"] },
  "packages/adapter-powerdns": { sovereign: ["core"], external: ["effect", "@effect/platform"] },
  // js-yaml: the parser @kubernetes/client-node itself uses; the adapter parses kubeconfigs with it into core's Schema (issue 16).
  "packages/adapter-kubernetes": { sovereign: ["core"], external: ["effect", "@effect/platform", "@kubernetes/client-node", "js-yaml"] },
  // etcd3 (tests only): the real etcd client the trust tests read the clustermesh store with.
  "packages/adapter-cilium": {
    sovereign: ["core", "adapter-kubernetes"],
    external: ["effect", "@effect/platform", "node-forge"],
    testExternal: ["etcd3"]
  },
  // The server's tests build the bundle `npm start` runs with the build script itself.
  "packages/server": { sovereign: "*", external: "*", testPaths: ["^scripts/build\\.mjs$"] },
  // The web console talks to the server over HTTP only (SPEC §1): Preact and nothing of the workspace.
  // Its tests drive Debian's Chromium with playwright-core against the real server bundle (built by
  // the build script), composing flows with core and the testkit's kit.
  "packages/console": {
    sovereign: [],
    external: ["preact"],
    testSovereign: ["core"],
    testExternal: ["playwright-core"],
    testPaths: ["^scripts/build\\.mjs$"]
  },
  // The browser console: core's types and Schemas, preact; its tests drive Chromium with playwright-core.
  "packages/console": {
    sovereign: ["core"],
    external: ["preact"],
    testExternal: ["playwright-core"],
    testPaths: ["^scripts/build\\.mjs$"]
  },
  // A third-party adapter: core's public surface and effect, like any adapter outside this repository.
  "examples/custom-cloud-adapter": { sovereign: ["core"], external: ["effect"] }
}
/** Tests may also use the testkit, the test tooling and Node's built-ins. */
const testExtras = {
  sovereign: ["testkit"],
  external: ["@effect/vitest", "vitest", "fast-check", "@effect/platform", "@effect/platform-node"]
}

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")
const sovereignPaths = (names) => (names === "*" ? ["^packages/[^/]+/src/"] : names.map((name) => `^packages/${escape(name)}/src/`))
const externalPaths = (names) => (names === "*" ? ["(^|/)node_modules/"] : names.map((name) => `(^|/)node_modules/${escape(name)}/`))
const union = (a, b) => (a === "*" || b === "*" ? "*" : [...a, ...b])

const scopeRules = Object.entries(allowed).flatMap(([dir, rule]) => {
  const own = `^${escape(dir)}/`
  const name = dir.split("/")[1]
  const permits = (sovereign, external) => [own, ...sovereignPaths(sovereign), ...externalPaths(external)]
  return [
    {
      name: `${name}:src-imports`,
      comment: `${dir}/src may import only ${JSON.stringify(rule)} (SPEC §1)`,
      severity: "error",
      from: { path: `^${escape(dir)}/src/` },
      to: { pathNot: permits(rule.sovereign, rule.external), dependencyTypesNot: ["core"] }
    },
    {
      name: `${name}:test-imports`,
      comment: `${dir}/test may import what its sources may, plus the testkit, the test tooling and Node's built-ins`,
      severity: "error",
      from: { path: `^${escape(dir)}/test/` },
      to: {
        pathNot: permits(
          union(union(rule.sovereign, testExtras.sovereign), rule.testSovereign ?? []),
          union(union(rule.external, testExtras.external), rule.testExternal ?? [])
        ).concat(rule.testPaths ?? []),
        dependencyTypesNot: ["core"]
      }
    }
  ]
})

module.exports = {
  forbidden: [
    ...scopeRules,
    {
      name: "core-does-no-io",
      comment: "core does no I/O: no Node built-in in its sources (SPEC §1)",
      severity: "error",
      from: { path: "^packages/core/src/" },
      to: { dependencyTypes: ["core"] }
    },
    {
      name: "console-runs-in-the-browser",
      comment: "the console's sources run in the browser: no Node built-in",
      severity: "error",
      from: { path: "^packages/console/src/" },
      to: { dependencyTypes: ["core"] }
    },
    {
      name: "own-package-by-name",
      comment: "a package imports its own modules relatively, never through its own package name",
      severity: "error",
      from: { path: "^(packages|examples)/([^/]+)/" },
      to: { path: "^$1/$2/", dependencyTypes: ["aliased-workspace"] }
    },
    {
      name: "other-package-by-path",
      comment: "another workspace package is imported by its name (its public exports), never by a relative path into it",
      severity: "error",
      from: { path: "^(packages|examples)/([^/]+)/" },
      to: { path: "^(packages|examples)/", pathNot: "^$1/$2/", dependencyTypesNot: ["aliased-workspace"] }
    },
    {
      name: "other-package-internal",
      comment: "a package's internal/ modules are its own; others use its public modules",
      severity: "error",
      from: { path: "^(packages|examples)/([^/]+)/" },
      to: { path: "^(packages|examples)/[^/]+/src/internal/", pathNot: "^$1/$2/" }
    },
    {
      name: "src-not-to-test",
      comment: "sources never import test code",
      severity: "error",
      from: { path: "^(packages|examples)/[^/]+/src/" },
      to: { path: "^(packages|examples)/[^/]+/test/" }
    },
    {
      name: "not-to-unresolvable",
      comment: "every import resolves to a file on disk",
      severity: "error",
      from: {},
      to: { couldNotResolve: true }
    },
    {
      name: "not-to-undeclared",
      comment: "every npm package imported is declared in a package.json",
      severity: "error",
      from: {},
      to: { dependencyTypes: ["npm-no-pkg", "npm-unknown"] }
    }
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.base.json" },
    doNotFollow: { path: "(^|/)node_modules/" },
    exclude: { path: "(^|/)(build|dist)/" },
    exoticRequireStrings: ["createRequire(import.meta.url)"],
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types"],
      extensions: [".ts", ".tsx", ".mts", ".js", ".mjs", ".cjs", ".json", ".d.ts"]
    },
    combinedDependencies: true
  }
}
