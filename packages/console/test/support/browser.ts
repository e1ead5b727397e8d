/**
 * Debian's Chromium driven by playwright-core (no downloaded browser), with the launch flags this
 * machine needs; every console error and page error of every page is recorded, so a test can demand
 * none; screenshots go to `packages/console/artifacts/` (the tests' artifacts, not committed).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core"

export const chromiumPath = process.env.SOVEREIGN_CHROMIUM ?? "/usr/bin/chromium"
export const chromiumFlags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

export const artifacts = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../artifacts")

export const launch = (): Promise<Browser> => chromium.launch({ executablePath: chromiumPath, args: chromiumFlags, headless: true })

export interface Watched {
  readonly context: BrowserContext
  readonly page: Page
  /** Console errors and uncaught page errors, as text. */
  readonly errors: Array<string>
}

export const openPage = async (browser: Browser, viewport = { width: 1600, height: 1000 }): Promise<Watched> => {
  const context = await browser.newContext({ viewport })
  const page = await context.newPage()
  const errors: Array<string> = []
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`)
  })
  page.on("pageerror", (error) => errors.push(`page error: ${error.message}`))
  return { context, page, errors }
}

export const screenshot = async (page: Page, name: string): Promise<string> => {
  fs.mkdirSync(artifacts, { recursive: true })
  const file = path.join(artifacts, `${name}.png`)
  await page.screenshot({ path: file })
  return file
}
