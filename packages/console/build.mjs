#!/usr/bin/env node
// Builds the web console into static files: `dist/index.html` and `dist/assets/app-<hash>.{js,css}`,
// which the server serves at `/` (packages/server/src/ConsoleAssets.ts). esbuild bundles and minifies
// the TypeScript and Preact in well under a second; the hashed names let the server cache the assets
// for ever while `index.html` is revalidated on every load.
import * as esbuild from "esbuild"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"

const here = path.dirname(fileURLToPath(import.meta.url))
export const consoleDist = path.join(here, "dist")

const hashOf = (bytes) => createHash("sha256").update(bytes).digest("hex").slice(0, 12)

/** Builds into a fresh directory beside `dist` and swaps it in, so a running server never sees half a build. */
export const buildConsole = async () => {
  const result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: ["src/main.tsx"],
    bundle: true,
    write: false,
    outdir: "out",
    format: "esm",
    platform: "browser",
    target: ["chrome110", "firefox115", "safari16"],
    jsx: "automatic",
    jsxImportSource: "preact",
    minify: true,
    legalComments: "none",
    logLevel: "warning"
  })
  const js = result.outputFiles.find((file) => file.path.endsWith(".js"))
  const css = fs.readFileSync(path.join(here, "src/style.css"))
  const jsName = `app-${hashOf(js.contents)}.js`
  const cssName = `app-${hashOf(css)}.css`
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sovereign</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/${cssName}">
<script type="module" src="/assets/${jsName}"></script>
</head>
<body><div id="app"></div></body>
</html>
`
  const outdir = `${consoleDist}.${process.pid}.tmp`
  fs.rmSync(outdir, { recursive: true, force: true })
  fs.mkdirSync(path.join(outdir, "assets"), { recursive: true })
  fs.writeFileSync(path.join(outdir, "assets", jsName), js.contents)
  fs.writeFileSync(path.join(outdir, "assets", cssName), css)
  fs.writeFileSync(path.join(outdir, "index.html"), html)
  const old = `${consoleDist}.${process.pid}.old`
  try {
    if (fs.existsSync(consoleDist)) fs.renameSync(consoleDist, old)
    fs.renameSync(outdir, consoleDist)
  } catch (error) {
    // A concurrent build swapped its (identical) build in first: keep that one.
    if (!fs.existsSync(path.join(consoleDist, "index.html"))) throw error
    fs.rmSync(outdir, { recursive: true, force: true })
  }
  fs.rmSync(old, { recursive: true, force: true })
  return {
    dir: consoleDist,
    /** What a browser downloads, gzip-compressed: the script and the style sheet (the page is a few hundred bytes). */
    gzipBytes: gzipSync(js.contents, { level: 9 }).length + gzipSync(css, { level: 9 }).length + gzipSync(html, { level: 9 }).length
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = performance.now()
  const { gzipBytes } = await buildConsole()
  console.error(`build: packages/console/dist in ${Math.round(performance.now() - started)} ms (${(gzipBytes / 1024).toFixed(1)} KiB gzip)`)
}
