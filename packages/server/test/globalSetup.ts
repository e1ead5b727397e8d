/** Builds the server bundle once before this project's tests: the end-to-end tests run it as `npm start` does. */
import { buildServer } from "../../../scripts/build.mjs"

/** @public vitest runs it (globalSetup in vitest.config.ts) */
export default async function setup(): Promise<void> {
  await buildServer()
}
