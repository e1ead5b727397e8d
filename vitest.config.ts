import { existsSync, readFileSync, readdirSync } from "node:fs"
import { defineConfig } from "vitest/config"

// One workspace: every package and example is a project named after its package.json, and each
// inherits the root's test options (timeouts), which a plain project glob would not.
const projectsUnder = (folder: string) =>
  existsSync(folder)
    ? readdirSync(folder, { withFileTypes: true })
        .filter((entry) => entry.isDirectory() && existsSync(`${folder}/${entry.name}/package.json`))
        .map((entry) => `${folder}/${entry.name}`)
    : []

const nameOf = (dir: string): string => (JSON.parse(readFileSync(`${dir}/package.json`, "utf8")) as { name: string }).name

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      ...[...projectsUnder("packages"), ...projectsUnder("examples")].map((dir) => ({
        extends: true,
        test: {
          name: nameOf(dir),
          root: dir,
          include: ["test/**/*.test.ts"],
          // A project may prepare something once for all its test files (the server: its bundle).
          ...(existsSync(`${dir}/test/globalSetup.ts`) ? { globalSetup: ["test/globalSetup.ts"] } : {})
        }
      })),
      // The repository's own tooling (the lint's rules).
      { extends: true, test: { name: "scripts", root: "scripts", include: ["test/**/*.test.ts"] } }
    ]
  }
})
