/** Builds the server bundle once before this project's tests: the end-to-end tests run it as `npm start` does. */
import { buildServer } from "../../../scripts/build.mjs"

export default async function setup(): Promise<void> {
  await buildServer()
}
