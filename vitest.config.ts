import { defineConfig } from "vitest/config"

// One workspace: every package (and example) is a project named after its package.json.
export default defineConfig({
  test: {
    projects: ["packages/*", "examples/*"],
    testTimeout: 60_000,
    hookTimeout: 120_000
  }
})
