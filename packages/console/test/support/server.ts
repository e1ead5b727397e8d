/**
 * The real server process for the browser tests (testkit's `ServerProcess`): the bundle `npm start`
 * runs (`packages/server/dist/sovereign.mjs serve`, built by this project's global set-up) on a free
 * loopback port, serving the console's build.
 */
import { randomBytes } from "node:crypto"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as ServerProcesses from "@sovereign/testkit/ServerProcess"

const here = path.dirname(fileURLToPath(import.meta.url))
export const bundle = path.resolve(here, "../../../server/dist/sovereign.mjs")

export { waitUntil, type ServerProcess } from "@sovereign/testkit/ServerProcess"

/** A token as long and as random as the server demands (≥ 32 characters, many distinct ones). */
export const testToken = (label: string): string => `${label}-${randomBytes(24).toString("hex")}`

export const start = (env: Record<string, string>) => ServerProcesses.start(bundle, env)
