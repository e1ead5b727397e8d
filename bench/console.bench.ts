/**
 * The web console in headless Chromium (Debian's, driven by playwright-core) against the API server in
 * this process (PGlite, the real store and SSE fan-out, a stand-in orchestrator): jobs are written
 * into the job store and their flow deltas published through `FlowEvents` exactly as the
 * orchestrator's publisher does (compose, diff, publish), so every figure runs store → SSE → browser.
 */
import { FlowEvents, FlowGraph, JobRepo, type Job } from "@sovereign/core"
import { Effect } from "effect"
import type { Page } from "playwright-core"
import { buildConsole } from "../packages/console/build.mjs"
import { launch, openPage } from "../packages/console/test/support/browser.js"
import { syntheticDeployment, type Synthetic } from "../packages/console/test/support/flows.js"
import { makeServer, tokens } from "../packages/server/test/support/apiServer.js"
import { requestJson } from "../packages/server/test/support/fixtures.js"
import type { Metric } from "./run.js"

const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  const sorted = samples.slice().sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))]!
}
const median = (samples: ReadonlyArray<number>) => percentile(samples, 0.5)
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits

type Server = ReturnType<typeof makeServer>

/** A deployment record (the stand-in orchestrator stores it) whose jobs are the synthetic ones. */
const deployment = async (server: Server, base: string, fqdn: string, shape: (id: string) => Synthetic) => {
  const created = await fetch(`${base}/api/v1/deployments`, {
    method: "POST",
    headers: { authorization: `Bearer ${tokens.admin}`, "content-type": "application/json" },
    body: JSON.stringify(requestJson(fqdn, 3))
  })
  const id = ((await created.json()) as { readonly id: string }).id
  const synthetic = shape(id)
  await server.runtime.runPromise(Effect.flatMap(JobRepo.JobRepo, (jobs) => jobs.upsertMany(synthetic.jobs)))
  return { id, synthetic }
}

/** Writes job changes into the store and publishes the flow's delta, as the orchestrator's publisher does. */
const publisher = (server: Server, synthetic: Synthetic, id: string) => {
  const jobs = new Map(synthetic.jobs.map((job) => [job.jobName, job]))
  const compose = () => FlowGraph.compose({ deploymentId: id, regions: synthetic.regionKeys, jobs: [...jobs.values()], inFlight: true })
  let previous = compose()
  return {
    /** Writes the jobs (the store merges them by its rules) and publishes; answers the jobs as stored. */
    change: (changed: ReadonlyArray<Job.Job>) =>
      server.runtime.runPromise(
        Effect.gen(function* () {
          const repo = yield* JobRepo.JobRepo
          const flow = yield* FlowEvents.FlowEvents
          const stored = yield* repo.upsertMany(changed)
          for (const job of stored) jobs.set(job.jobName, job)
          const next = compose()
          const messages = FlowGraph.diff(previous, next)
          previous = next
          if (messages.length > 0) yield* flow.publish(id, messages, Date.now())
          return stored
        })
      )
  }
}

const signIn = async (page: Page, base: string) => {
  await page.goto(`${base}/`)
  await page.fill("input[name=token]", tokens.admin)
  await page.click("form button[type=submit]")
  await page.waitForSelector("nav.top")
}

/** Navigation to the deployment's page until every job node is in the DOM; median of `runs`. */
const renderTime = async (page: Page, base: string, id: string, jobCount: number, runs: number) => {
  const times: Array<number> = []
  for (let run = 0; run < runs; run++) {
    await page.goto(`${base}/`)
    await page.waitForSelector("nav.top")
    const started = Date.now()
    // in-app navigation, as an operator clicks a row (the bundle is loaded already)
    await page.evaluate((to) => {
      history.pushState(null, "", to)
      dispatchEvent(new PopStateEvent("popstate"))
    }, `/deployments/${id}`)
    await page.waitForFunction((count) => document.querySelectorAll("[data-job-id]").length >= count, jobCount, {
      polling: "raf",
      timeout: 60_000
    })
    times.push(Date.now() - started)
  }
  return median(times)
}

export default async (): Promise<Record<string, Metric>> => {
  const { gzipBytes } = await buildConsole()
  const server = makeServer()
  const browser = await launch()
  try {
    const base = await server.url()
    const { page } = await openPage(browser, { width: 1600, height: 1000 })
    await signIn(page, base)

    // ---- render: 8 regions (35 charts each, Phase-0 steps, mixed statuses) and a 1,500-job flow
    const eight = await deployment(server, base, "eight.example.com", (id) => syntheticDeployment(8, 35, { deploymentId: id, seed: 8 }))
    const eightJobs = eight.synthetic.jobs.filter((job) => job.type !== "group").length
    const render8 = await renderTime(page, base, eight.id, eightJobs, 5)
    // the same as a fresh page load (a deep link): the page, the script, sign-in from session storage, the stream
    const fullLoads: Array<number> = []
    for (let run = 0; run < 3; run++) {
      const started = Date.now()
      await page.goto(`${base}/deployments/${eight.id}`)
      await page.waitForFunction((count) => document.querySelectorAll("[data-job-id]").length >= count, eightJobs, {
        polling: "raf",
        timeout: 60_000
      })
      fullLoads.push(Date.now() - started)
    }
    const big = await deployment(server, base, "big.example.com", (id) => syntheticDeployment(6, 250, { deploymentId: id, seed: 15 }))
    const bigJobs = big.synthetic.jobs.filter((job) => job.type !== "group").length
    const render1500 = await renderTime(page, base, big.id, bigJobs, 3)

    // ---- update lag: a job's status written into the store → the node's data-status in the DOM
    const three = await deployment(server, base, "three.example.com", (id) =>
      syntheticDeployment(3, 35, { deploymentId: id, status: () => "pending" })
    )
    const threePublisher = publisher(server, three.synthetic, three.id)
    await page.goto(`${base}/deployments/${three.id}`)
    await page.waitForFunction((count) => document.querySelectorAll("[data-job-id]").length >= count, three.synthetic.jobs.length - 1, {
      timeout: 60_000
    })
    await page.evaluate(() => {
      const seen: Array<[string, string, number]> = []
      ;(window as any).__statusSeen = seen
      new MutationObserver((records) => {
        const at = Date.now()
        for (const record of records) {
          const element = record.target as HTMLElement
          if (element.dataset.jobId !== undefined) seen.push([element.dataset.jobId, element.dataset.status!, at])
        }
      }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["data-status"] })
    })
    const installs = three.synthetic.jobs.filter((job) => job.jobName.startsWith("install-"))
    const written: Array<[string, string, number]> = []
    for (let i = 0; i < 120; i++) {
      const job = installs[i % installs.length]!
      const status: Job.JobStatus = i < installs.length ? "running" : "succeeded"
      const at = Date.now()
      await threePublisher.change([{ ...job, status, startedAt: at, ...(status === "succeeded" ? { finishedAt: at } : {}) }])
      written.push([job.id, status, at])
      await new Promise((resolve) => setTimeout(resolve, 40))
    }
    await page.waitForFunction((count) => ((window as any).__statusSeen as Array<unknown>).length >= count, written.length, {
      timeout: 30_000
    })
    const seen = (await page.evaluate(() => (window as any).__statusSeen)) as Array<[string, string, number]>
    const lags = written.map(([jobId, status, at]) => {
      const match = seen.find(([seenId, seenStatus, seenAt]) => seenId === jobId && seenStatus === status && seenAt >= at - 5)
      return match === undefined ? Number.POSITIVE_INFINITY : match[2] - at
    })

    // ---- frames while 100 status updates per second arrive (8-region graph)
    const busy = await deployment(server, base, "busy.example.com", (id) => syntheticDeployment(8, 35, { deploymentId: id, seed: 3 }))
    const busyPublisher = publisher(server, busy.synthetic, busy.id)
    await page.goto(`${base}/deployments/${busy.id}`)
    await page.waitForFunction((count) => document.querySelectorAll("[data-job-id]").length >= count, busy.synthetic.jobs.length - 1, {
      timeout: 60_000
    })
    await page.waitForTimeout(1000)
    // Per frame: the frame's start (the rAF timestamp, shared by every callback of the frame, the
    // console's batch included) to a task queued from it, which runs once the frame's style, layout
    // and paint are done: the main thread's work for that frame. And the interval between frames.
    // (a string: tsx would wrap named functions in a helper the page does not have)
    await page.evaluate(`(() => {
      const frames = []
      window.__frames = frames
      window.__framesOn = true
      const channel = new MessageChannel()
      let pending
      channel.port1.onmessage = () => {
        if (pending !== undefined) frames.push([pending, performance.now() - pending])
        pending = undefined
      }
      const loop = (timestamp) => {
        if (!window.__framesOn) return
        pending = timestamp
        channel.port2.postMessage(0)
        requestAnimationFrame(loop)
      }
      requestAnimationFrame(loop)
    })()`)
    await page.evaluate(`(() => {
      window.__jobStatusChanges = 0
      new MutationObserver((records) => {
        for (const record of records) if (record.target.dataset.jobId !== undefined) window.__jobStatusChanges++
      }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["data-status"] })
    })()`)
    const deltasBefore = (await page.evaluate(() => (window as any).sovereignConsole.nodeUpdates)) as number
    const receivedBefore = (await page.evaluate(() => (window as any).sovereignConsole.jobStatusChanges)) as number
    // 100 job status changes per second for 10 s, each written into the store as it falls due: one
    // job per store write and delta when the store keeps up, the jobs that fell due meanwhile in one
    // write and one delta when it does not (as the orchestrator's publisher batches what changed).
    const leaves = busy.synthetic.jobs.filter((job) => job.jobName.startsWith("install-"))
    const seconds = 10
    const started = Date.now()
    let sent = 0
    let accepted = 0
    let deltas = 0
    let cursor = 0
    while (Date.now() - started < seconds * 1000) {
      const due = Math.floor((Date.now() - started) / 10) + 1
      if (due <= sent) {
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + sent * 10 - Date.now())))
        continue
      }
      // each job in turn: running → succeeded, and anything else → running (a start or a re-run)
      const changed: Array<Job.Job> = []
      const positions: Array<number> = []
      for (let n = sent; n < due; n++) {
        const at = (cursor = (cursor + 1) % leaves.length)
        const job = leaves[at]!
        const now = Date.now()
        changed.push(
          job.status === "running"
            ? { ...job, status: "succeeded", finishedAt: now, durationMs: Math.max(0, now - (job.startedAt ?? now)) }
            : ({ ...job, status: "running", startedAt: now, finishedAt: undefined, durationMs: 0 } as unknown as Job.Job)
        )
        positions.push(at)
      }
      const stored = await busyPublisher.change(changed)
      stored.forEach((job, index) => {
        if (job.status !== leaves[positions[index]!]!.status) accepted++
        leaves[positions[index]!] = job
      })
      sent += changed.length
      deltas++
    }
    const sentSeconds = (Date.now() - started) / 1000
    await page.waitForTimeout(500)
    const deltasAfter = (await page.evaluate(() => (window as any).sovereignConsole.nodeUpdates)) as number
    const applied = (await page.evaluate(() => (window as any).__jobStatusChanges)) as number
    const received = ((await page.evaluate(() => (window as any).sovereignConsole.jobStatusChanges)) as number) - receivedBefore
    const layoutsDuring = (await page.evaluate(() => (window as any).sovereignConsole.layouts)) as number
    const frames = (await page.evaluate(() => {
      ;(window as any).__framesOn = false
      return (window as any).__frames
    })) as Array<[number, number]>
    // afterwards the DOM shows every job's stored status
    const stored = (await (
      await fetch(`${base}/api/v1/deployments/${busy.id}/jobs`, { headers: { authorization: `Bearer ${tokens.admin}` } })
    ).json()) as { jobs: ReadonlyArray<Job.Job> }
    const shown = (await page.evaluate(() =>
      Object.fromEntries(
        Array.from(document.querySelectorAll<HTMLElement>("[data-job-id]")).map((element) => [
          element.dataset.jobId!,
          element.dataset.status!
        ])
      )
    )) as Record<string, string>
    const mismatched = stored.jobs.filter((job) => job.type !== "group" && shown[job.id] !== job.status)
    if (mismatched.length > 0)
      console.error(
        "mismatched",
        mismatched.slice(0, 5).map((job) => `${job.jobName}: stored ${job.status}, shown ${shown[job.id]}`)
      )
    const mismatches = mismatched.length
    const windowFrames = frames.slice(2)
    const work = windowFrames.map(([, duration]) => duration)
    const intervals = windowFrames.slice(1).map(([at], index) => at - windowFrames[index]![0])

    return {
      "console.bundle_kb_gzip": { value: round(gzipBytes / 1024), unit: "KiB", goal: "lean" },
      "console.render.8_regions_ms": { value: render8, unit: "ms", goal: "<= 1000" },
      "console.render.8_regions.jobs": { value: eightJobs, unit: "jobs" },
      "console.render.8_regions.page_load_ms": { value: median(fullLoads), unit: "ms" },
      "console.render.1500_nodes_ms": { value: render1500, unit: "ms", goal: "<= 2000" },
      "console.render.1500_nodes.jobs": { value: bigJobs, unit: "jobs" },
      "console.update_lag.p95_ms": { value: percentile(lags, 0.95), unit: "ms", goal: "<= 1000" },
      "console.update_lag.p50_ms": { value: percentile(lags, 0.5), unit: "ms" },
      "console.frame.p95_ms": { value: round(percentile(work, 0.95)), unit: "ms", goal: "<= 16" },
      "console.frame.max_ms": { value: round(percentile(work, 1)), unit: "ms" },
      "console.frame.interval_p95_ms": { value: round(percentile(intervals, 0.95)), unit: "ms" },
      "console.frame.status_updates_written_per_s": { value: round(accepted / sentSeconds), unit: "updates/s", goal: ">= 100" },
      "console.frame.status_updates_arrived_per_s": { value: round(received / sentSeconds), unit: "updates/s", goal: ">= 100" },
      "console.frame.status_updates_in_dom_per_s": { value: round(applied / sentSeconds), unit: "updates/s" },
      "console.frame.layouts": { value: layoutsDuring, unit: "layouts" },
      "console.frame.dom_mismatches_after": { value: mismatches, unit: "jobs", goal: "0" },
      "console.frame.deltas_arrived_per_s": { value: round((deltasAfter - deltasBefore) / sentSeconds), unit: "deltas/s" }
    }
  } finally {
    await browser.close()
    await server.dispose()
  }
}
