#!/usr/bin/env node
// Makes a fresh clone runnable: `npm start` and `npm test` call this first, so the README's two
// commands are the whole set-up. Installs npm dependencies when missing or stale; with `--build`,
// bundles the server (scripts/build.mjs); with `--build` and `--tests`, builds the web console
// (packages/console/build.mjs) that the server serves at `/`; with `--tests`, installs the Debian
// packages the integration tests run for real (PowerDNS, etcd, sqlite3, Chromium for the console's
// browser tests).
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, statSync } from "node:fs"

const forTests = process.argv.includes("--tests")
const build = process.argv.includes("--build")
const run = (command, args) => {
  console.error(`setup: ${command} ${args.join(" ")}`)
  execFileSync(command, args, { stdio: "inherit" })
}
const has = (command) => spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0

const installed = "node_modules/.package-lock.json"
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync("package-lock.json").mtimeMs) {
  run("npm", ["ci", "--no-audit", "--no-fund"])
}

if (forTests) {
  const wanted = [
    ["pdns_server", ["pdns-server", "pdns-backend-sqlite3"]],
    ["sqlite3", ["sqlite3"]],
    ["etcd", ["etcd-server"]],
    ["openssl", ["openssl"]],
    ["chromium", ["chromium"]]
  ]
  const missing = wanted.filter(([command]) => !has(command)).flatMap(([, packages]) => packages)
  if (missing.length > 0) {
    if (process.getuid?.() === 0 && has("apt-get")) {
      const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
      console.error(`setup: installing ${missing.join(" ")}`)
      execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env })
      execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { stdio: "inherit", env })
    } else {
      console.error(`setup: the integration tests need ${missing.join(", ")} (Debian packages); install them as root`)
    }
  }
}

if (build) {
  // Imported only now: esbuild is one of the dependencies installed above.
  const { buildServer } = await import("./build.mjs")
  await buildServer()
}

if (build || forTests) {
  const { buildConsole } = await import("../packages/console/build.mjs")
  await buildConsole()
}
