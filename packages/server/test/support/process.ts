/**
 * The real server process for end-to-end tests (testkit's `ServerProcess`): the bundle that
 * `npm start` runs (`packages/server/dist/sovereign.mjs`, built by this project's vitest global set-up
 * from the current sources), so the tests exercise the artifact an operator runs, lazy adapter chunks
 * included.
 */
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as ServerProcesses from "@sovereign/testkit/ServerProcess"

const here = path.dirname(fileURLToPath(import.meta.url))
export const bundle = path.resolve(here, "../../dist/sovereign.mjs")

export { freePort, waitUntil, type ServerProcess } from "@sovereign/testkit/ServerProcess"

export const start = (env: Record<string, string>, captured: { text: string } = { text: "" }) =>
  ServerProcesses.start(bundle, env, captured)
