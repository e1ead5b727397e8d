/**
 * The console in a real browser against the real server process (the bundle `npm start` runs, on the
 * simulated world): sign in, create a 3-region deployment through the form, watch it converge with
 * every job's `data-status` equal to the API's within 2 s and no reload, open a job's logs, see a
 * failed chart's blocking chain (a simulator fault), wipe with typed confirmation, delete a record.
 * No browser console errors anywhere. Screenshots of the list, the graph and the drawer are saved in
 * `packages/console/artifacts/`.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { launch, openPage, screenshot } from "./support/browser.js"
import { bundle, start, testToken, waitUntil, type ServerProcess } from "./support/server.js"
import { execFile } from "node:child_process"
import { promisify } from "node:util"

const token = testToken("console-admin")
let server: ServerProcess
let browser: Browser
let dataDir: string

const apiGet = async (route: string): Promise<any> => {
  const response = await fetch(`${server.url}${route}`, { headers: { authorization: `Bearer ${token}` } })
  expect(response.status).toBe(200)
  return response.json()
}

const apiPost = async (route: string, body: unknown): Promise<any> => {
  const response = await fetch(`${server.url}${route}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  expect(response.status).toBe(201)
  return response.json()
}

const request = (fqdn: string, regions: ReadonlyArray<string>) => ({
  sovereignFQDN: fqdn,
  orgName: "Console Test",
  orgEmail: "ops@example.com",
  topology: regions.length === 1 ? "single-region" : "active-hotstandby",
  regions: regions.map((cloudRegion) => ({
    provider: "hetzner",
    cloudRegion,
    controlPlaneSize: "cpx32",
    workerSize: "cpx42",
    workerCount: 1
  })),
  parentDomains: [{ name: "example.com", role: "primary" }],
  sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com",
  haControlPlane: false,
  credentials: { hetznerToken: "simulated-token-for-the-console-test" }
})

const signIn = async (page: Page) => {
  await page.goto(`${server.url}/`)
  await page.fill("input[name=token]", token)
  await page.click("form button[type=submit]")
  await page.waitForSelector("nav.top")
}

/** The jobs' statuses as the DOM shows them. */
const domStatuses = (page: Page): Promise<Record<string, string>> =>
  page.evaluate(() => {
    const result: Record<string, string> = {}
    for (const element of document.querySelectorAll<HTMLElement>("[data-job-id]")) result[element.dataset.jobId!] = element.dataset.status!
    return result
  })

/**
 * Every job's `data-status` equals the API's within 2 s: the API is read before and after the DOM,
 * and each job's DOM status must be one of the two (a change between the reads is not a mismatch).
 */
const expectDomMatchesApi = async (page: Page, id: string) => {
  const deadline = Date.now() + 2000
  let mismatch = ""
  for (;;) {
    const before = await apiGet(`/api/v1/deployments/${id}/jobs`)
    const dom = await domStatuses(page)
    const after = await apiGet(`/api/v1/deployments/${id}/jobs`)
    const statusBefore = new Map<string, string>(before.jobs.map((job: any) => [job.id, job.status]))
    const leaves = after.jobs.filter((job: any) => job.type !== "group")
    const problems = leaves
      .filter((job: any) => dom[job.id] !== job.status && dom[job.id] !== statusBefore.get(job.id))
      .map((job: any) => `${job.jobName}: dom ${dom[job.id]} api ${job.status}`)
    if (problems.length === 0 && leaves.length > 0 && Object.keys(dom).length === leaves.length) return
    mismatch = `${problems.slice(0, 5).join("; ")} (dom ${Object.keys(dom).length} jobs, api ${leaves.length})`
    if (Date.now() > deadline) throw new Error(`the DOM does not match the API after 2 s: ${mismatch}`)
    await page.waitForTimeout(50)
  }
}

const deploymentStatus = async (id: string): Promise<string> => (await apiGet(`/api/v1/deployments/${id}`)).status

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-console-"))
  server = await start({
    SOVEREIGN_DATA_DIR: dataDir,
    SOVEREIGN_API_TOKENS: `${token}:admin:admin@example.com`,
    SOVEREIGN_SIM_SPEED: "40",
    // a chart that fails in one region: its dependants can never run (the blocking-chain test)
    SOVEREIGN_SIM_FAULTS: "fail-chart=cert-manager@hel1"
  })
  browser = await launch()
}, 180_000)

afterAll(async () => {
  await browser?.close()
  await server?.kill()
  if (dataDir !== undefined) fs.rmSync(dataDir, { recursive: true, force: true })
})

describe("the web console", () => {
  it("signs in, creates a 3-region deployment through the form, follows it live to the end, shows logs and a failed chart's blocking chain", async () => {
    const { page, errors, context } = await openPage(browser)
    await signIn(page)
    // the token is kept in sessionStorage, never in the URL
    expect(await page.evaluate(() => sessionStorage.getItem("sovereign.token"))).toBe(token)
    expect(page.url()).not.toContain(token)

    await page.click("nav.top >> text=New deployment")
    await page.fill("input[name=sovereignFQDN]", "c1.example.com")
    await page.fill("input[name=orgName]", "Console Test")
    await page.fill("input[name=orgEmail]", "ops@example.com")
    await page.fill("input[name=regions]", "fsn1, hel1, nbg1")
    await page.fill("input[name=sshPublicKey]", request("c1.example.com", []).sshPublicKey)
    await page.fill("input[name=hetznerToken]", "simulated-token-for-the-console-test")
    // the JSON editor holds the whole request, kept in step with the fields
    const json = JSON.parse(await page.inputValue("textarea[name=request]"))
    expect(json.regions.map((region: any) => region.cloudRegion)).toEqual(["fsn1", "hel1", "nbg1"])
    await page.click("form.new button[type=submit]")
    await page.waitForURL(/\/deployments\/[0-9a-f]+$/)
    const id = page.url().split("/").pop()!
    await page.evaluate(() => ((window as any).__sameDocument = true))
    await page.waitForSelector("[data-job-id]")

    // converge: sampled while it runs and at the end, the DOM follows the API within 2 s
    let samples = 0
    await waitUntil(
      async () => {
        await expectDomMatchesApi(page, id)
        samples++
        const status = await deploymentStatus(id)
        return status === "ready" || status === "partial-failure" || status === "failed"
      },
      240_000,
      () => "the deployment did not finish"
    )
    await expectDomMatchesApi(page, id)
    expect(samples).toBeGreaterThan(1)
    expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true) // never reloaded
    const groups = await page.locator("[data-group-id]").count()
    expect(groups).toBeGreaterThan(5 + 3)
    await page.waitForSelector(`[data-deployment-status="${await deploymentStatus(id)}"]`)
    await screenshot(page, "graph")

    // a failed chart's blocking chain: hel1's flux waits for its cert-manager, which failed
    const jobs = (await apiGet(`/api/v1/deployments/${id}/jobs`)).jobs as Array<any>
    const certManager = jobs.find((job) => job.jobName.endsWith(":cert-manager") && job.region.startsWith("hel1"))
    expect(certManager.status).toBe("failed")
    const flux = jobs.find((job) => job.jobName.endsWith(":flux") && job.region === certManager.region)
    await page.click(`[data-job-id="${flux.id}"]`)
    const summary = await page.textContent("[data-chain-summary]")
    expect(summary).toContain("cert-manager (failed")
    expect(await page.getAttribute(`[data-job-id="${certManager.id}"]`, "class")).toContain("chain")
    expect(await page.locator(`[data-chain-step="${certManager.id}"]`).count()).toBe(1)
    await screenshot(page, "blocking-chain")

    // a job's logs in the drawer
    const cilium = jobs.find((job) => job.jobName === "install-cilium")
    await page.click(`[data-job-id="${cilium.id}"]`)
    await page.waitForSelector(".drawer .log-lines li")
    expect(await page.locator(".drawer .log-lines li").count()).toBeGreaterThan(0)
    expect(await page.textContent(".drawer")).toContain("Executions")
    await screenshot(page, "drawer")

    // the list: the new deployment's row, linked, with its status
    await page.click(".drawer .close")
    await page.click("nav.top >> text=Deployments")
    await page.waitForSelector(`[data-deployment-id="${id}"]`)
    expect(await page.textContent(`[data-deployment-id="${id}"]`)).toContain("c1.example.com")
    await screenshot(page, "list")
    expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true)
    expect(errors).toEqual([])
    await context.close()
  }, 360_000)

  it("wipes with typed confirmation, then deletes the record", async () => {
    const created = await apiPost("/api/v1/deployments", request("c2.example.com", ["fsn1"]))
    const id = created.id as string
    await waitUntil(
      async () => (await deploymentStatus(id)) === "ready",
      240_000,
      () => "c2 did not become ready"
    )
    const { page, errors, context } = await openPage(browser)
    await signIn(page)
    await page.click(`[data-deployment-id="${id}"] a`)
    await page.waitForSelector('[data-deployment-status="ready"]')

    await page.click("text=Wipe…")
    const confirm = page.locator("form.confirm button[type=submit]")
    expect(await confirm.isDisabled()).toBe(true)
    await page.fill("form.confirm input[name=confirm]", "c2.example.co")
    expect(await confirm.isDisabled()).toBe(true)
    await page.fill("form.confirm input[name=confirm]", "c2.example.com")
    await confirm.click()
    await page.waitForSelector(".actions-panel .answer >> text=202")
    await page.waitForSelector('[data-deployment-status="wiped"]', { timeout: 120_000 })

    await page.click("text=Delete…")
    await page.check("form.confirm input[value=record-only]")
    await page.fill("form.confirm input[name=confirm]", "c2.example.com")
    await page.click("form.confirm button[type=submit]")
    await page.waitForURL(`${server.url}/`)
    await page.waitForSelector("main.page h1:text('Deployments')")
    await page.waitForFunction(
      () =>
        document.querySelector("main.page table.deployments") !== null ||
        (document.querySelector("main.page")?.textContent ?? "").includes("No deployments yet")
    )
    expect(await page.locator(`[data-deployment-id="${id}"]`).count()).toBe(0)
    const answer = await fetch(`${server.url}/api/v1/deployments/${id}`, { headers: { authorization: `Bearer ${token}` } })
    expect(answer.status).toBe(404)
    expect(errors).toEqual([])
    await context.close()
  }, 360_000)

  it("serves deep links, refuses a wrong token at sign-in, and a 401 later returns to the sign-in with a message", async () => {
    const { page, context } = await openPage(browser)
    await page.goto(`${server.url}/deployments/0123456789abcdef`)
    await page.fill("input[name=token]", "x".repeat(40))
    await page.click("form button[type=submit]")
    await page.waitForSelector(".signin .error >> text=401")
    await page.fill("input[name=token]", token)
    await page.click("form button[type=submit]")
    await page.waitForSelector("text=404")
    // the token stops working (here: replaced in storage) → the next call's 401 signs out
    await page.evaluate(() => sessionStorage.setItem("sovereign.token", "y".repeat(40)))
    await page.click("nav.top >> text=Deployments")
    await page.waitForSelector(".signin .error")
    expect(await page.textContent(".signin .error")).toContain("401")
    await context.close()
  }, 120_000)

  it("the CLI's deploy prints the console URL of the new deployment, which opens its page", async () => {
    const file = path.join(dataDir, "c3.json")
    fs.writeFileSync(file, JSON.stringify(request("c3.example.com", ["fsn1"])))
    const { stdout } = await promisify(execFile)(process.execPath, [bundle, "deploy", file], {
      env: { ...process.env, SOVEREIGN_URL: server.url, SOVEREIGN_TOKEN: token, NO_COLOR: "1" }
    })
    const match = /Console: (\S+)/.exec(stdout)
    expect(match, stdout).not.toBeNull()
    const url = match![1]!
    const id = /accepted/.test(stdout) ? /Deployment ([0-9a-f]+) accepted/.exec(stdout)![1]! : ""
    expect(url).toBe(`${server.url}/deployments/${id}`)
    const { page, errors, context } = await openPage(browser)
    await signIn(page)
    await page.goto(url)
    await page.waitForSelector("[data-job-id]")
    expect(await page.textContent("main.deployment h1")).toBe("c3.example.com")
    expect(errors).toEqual([])
    await context.close()
  }, 120_000)

  it("shows the server's 400 issues on the fields their path names", async () => {
    const { page, errors, context } = await openPage(browser)
    await signIn(page)
    await page.click("nav.top >> text=New deployment")
    await page.fill("input[name=sovereignFQDN]", "Not A Domain")
    await page.fill("input[name=regions]", "fsn1, bad region")
    await page.click("form.new button[type=submit]")
    await page.waitForSelector('[data-field="sovereignFQDN"] .issue')
    expect(await page.textContent('[data-field="sovereignFQDN"] .issue')).toContain("sovereignFQDN")
    expect(await page.locator('[data-field="regions"] .issue[data-issue-path="regions.1.cloudRegion"]').count()).toBe(1)
    expect(await page.textContent(".actions .answer")).toContain("400")
    expect(page.url()).toBe(`${server.url}/new`)
    // the browser reports the refused request itself; nothing else is an error
    expect(errors.filter((error) => !error.includes("status of 400"))).toEqual([])
    await context.close()
  }, 120_000)

  it("folds and unfolds groups; a hidden tab closes its streams and a shown one resumes them", async () => {
    const created = await apiPost("/api/v1/deployments", request("c4.example.com", ["fsn1", "nbg1"]))
    const id = created.id as string
    const { page, errors, context } = await openPage(browser)
    const streams: Array<string> = []
    page.on("request", (request) => {
      if (request.url().includes("/stream") || request.url().endsWith("/events")) streams.push(request.url())
    })
    await signIn(page)
    await page.goto(`${server.url}/deployments/${id}`)
    await page.waitForSelector("[data-job-id]")
    const group = `${id}:provisioner`
    await page.click(`[data-group-id="${group}"] [data-fold]`)
    await page.waitForSelector(`[data-group-id="${group}"].folded`)
    // the folded group's jobs stay in the DOM with their status, hidden
    expect(await page.locator(`[data-job-id="${id}:network"]`).getAttribute("class")).toContain("hidden")
    await page.click(`[data-group-id="${group}"] [data-fold]`)
    await page.waitForSelector(`[data-group-id="${group}"]:not(.folded)`)
    expect(await page.locator(`[data-job-id="${id}:network"]`).isVisible()).toBe(true)

    const opened = streams.length
    expect(opened).toBeGreaterThanOrEqual(2)
    await page.evaluate(() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true })
      document.dispatchEvent(new Event("visibilitychange"))
    })
    await page.waitForSelector('[data-stream^="paused"]')
    await page.evaluate(() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => false })
      document.dispatchEvent(new Event("visibilitychange"))
    })
    await page.waitForSelector('[data-stream="open"]')
    expect(streams.length).toBeGreaterThan(opened)
    expect(errors).toEqual([])
    await context.close()
  }, 120_000)

  it("deletes a record after wiping it (the second delete mode), confirmed by typing the FQDN", async () => {
    const created = await apiPost("/api/v1/deployments", request("c5.example.com", ["fsn1"]))
    const id = created.id as string
    const { page, errors, context } = await openPage(browser)
    await signIn(page)
    await page.goto(`${server.url}/deployments/${id}`)
    await page.waitForSelector("[data-deployment-status]")
    await page.click("text=Delete…")
    await page.check("form.confirm input[value=record-and-wipe]")
    await page.fill("form.confirm input[name=confirm]", "c5.example.com")
    await page.click("form.confirm button[type=submit]")
    await page.waitForSelector(".actions-panel .answer >> text=202")
    // once wiped, the record goes and the list opens
    await page.waitForURL(`${server.url}/`, { timeout: 180_000 })
    const answer = await fetch(`${server.url}/api/v1/deployments/${id}`, { headers: { authorization: `Bearer ${token}` } })
    expect(answer.status).toBe(404)
    expect(errors).toEqual([])
    await context.close()
  }, 240_000)
})
