#!/usr/bin/env node
// Bundles the server (`packages/server/src/bin.ts`) into `packages/server/dist/sovereign.mjs`, which
// `npm start`, the end-to-end tests and the benchmarks run. Why a bundle and not tsx: the server then
// starts in about a second and idles well under 200 MB, where tsx transpiling ~900 modules at start
// took ~3.5 s and ~340 MB (see the commit that introduced this file).
//
// - ESM with code splitting: each real adapter stays in its own chunk, loaded only when configured
//   (`@kubernetes/client-node` alone is ~20 MB of heap), as it is under tsx.
// - Whitespace and syntax minified, identifiers kept: stack traces still name our functions; the
//   linked source maps (`node --enable-source-maps`) map them back to the TypeScript.
// - Packages that load files next to themselves (PGlite's wasm), or are CommonJS with optional
//   native parts (pg), stay external and resolve from node_modules as usual.
import * as esbuild from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
export const serverEntry = path.join(root, "packages/server/dist/sovereign.mjs")

export const buildServer = async () => {
  // Built beside the old bundle and swapped in, so a server already running from it, or a second
  // build at the same time (npm start while the tests run), never sees a half-written directory.
  const dist = path.dirname(serverEntry)
  const outdir = `${dist}.${process.pid}.tmp`
  fs.rmSync(outdir, { recursive: true, force: true })
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: { sovereign: "packages/server/src/bin.ts" },
    outdir,
    outExtension: { ".js": ".mjs" },
    chunkNames: "chunks/[name]-[hash]",
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: "linked",
    external: ["@electric-sql/pglite", "pg", "@kubernetes/client-node", "node-forge"],
    // Bundled CommonJS (undici, ws) calls `require`, which an ES module does not have.
    banner: {
      js: "import { createRequire as __sovereignRequire } from 'node:module'; const require = __sovereignRequire(import.meta.url);"
    },
    logLevel: "warning"
  })
  const old = `${dist}.${process.pid}.old`
  try {
    if (fs.existsSync(dist)) fs.renameSync(dist, old)
    fs.renameSync(outdir, dist)
  } catch (error) {
    // A concurrent build swapped its (identical) bundle in first: keep that one.
    if (!fs.existsSync(serverEntry)) throw error
    fs.rmSync(outdir, { recursive: true, force: true })
  }
  fs.rmSync(old, { recursive: true, force: true })
  return serverEntry
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = performance.now()
  await buildServer()
  console.error(`build: ${path.relative(root, serverEntry)} in ${Math.round(performance.now() - started)} ms`)
  // `npm run build` builds the web console the server serves at `/` too.
  const { buildConsole } = await import("../packages/console/build.mjs")
  const consoleStarted = performance.now()
  const { dir, gzipBytes } = await buildConsole()
  console.error(
    `build: ${path.relative(root, dir)} in ${Math.round(performance.now() - consoleStarted)} ms (${(gzipBytes / 1024).toFixed(1)} KiB gzip)`
  )
}
