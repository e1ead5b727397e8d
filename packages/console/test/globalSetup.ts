/** Builds what the browser tests run, once: the server bundle (`npm start`'s) and the console it serves. */
import { buildServer } from "../../../scripts/build.mjs"
import { buildConsole } from "../build.mjs"

export default async function setup(): Promise<void> {
  await Promise.all([buildServer(), buildConsole()])
}
