import { describe, expect, it } from "@effect/vitest"
import * as Orchestrator from "@sovereign/core/Orchestrator"
import { Duration, Effect } from "effect"
import { checkReplay, checkSnapshot } from "./flowChecks.js"
import {
  advance,
  advanceUntil,
  dnsRecords,
  eventsOf,
  inventory,
  jobsOf,
  layer,
  makeWorld,
  publishedFlow,
  request,
  statusOf
} from "./harness.js"
import { SimulatorWorld } from "../src/SimulatorWorld.js"
import { Option, Redacted } from "effect"
import { JobRepo } from "@sovereign/core/JobRepo"
import { DnsProvider } from "@sovereign/core/DnsProvider"
import { Kubeconfigs } from "@sovereign/core/Kubeconfigs"
import * as Kubeconfig from "@sovereign/core/Kubeconfig"

const terminal = ["ready", "failed", "partial-failure", "wiped"]

const logsOf = (id: string, jobName: string) =>
  Effect.gen(function* () {
    const jobs = yield* JobRepo
    const job = yield* Effect.orDie(jobs.get(id, jobName))
    if (job._tag === "None") return []
    const lines = []
    for (const execution of job.value.executions)
      lines.push(...(yield* Effect.orDie(jobs.logs(id, execution.id, 1, 5000))).lines.map((l) => l.message))
    return lines
  })

describe("Orchestrator failure paths", () => {
  it.scoped("a stalled chart fails the deployment, naming the chart and the region, and fails what depends on it", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(1), "ops@omani.works")
      const record = yield* advanceUntil(created.id, terminal)
      expect(record.status).toBe("failed")
      expect(record.error).toContain("bp-seaweedfs")
      expect(record.error).toContain("fsn1")
      expect(record.error).toContain("/retry")
      const jobs = yield* jobsOf(created.id)
      expect(jobs.find((job) => job.jobName === "install-seaweedfs")?.status).toBe("failed")
      const harbor = jobs.find((job) => job.jobName === "install-harbor")
      expect(harbor?.status).toBe("failed")
      expect(harbor?.reason).toBe("dependency install-seaweedfs failed")
      expect(jobs.find((job) => job.jobName === "install-grafana")?.reason).toMatch(/^dependency install-(loki|mimir|tempo) failed$/)
      expect(jobs.find((job) => job.jobName === "install-cilium")?.status).toBe("succeeded")
      expect((yield* logsOf(created.id, "install-seaweedfs")).some((line) => line.includes("retries exhausted"))).toBe(true)
      const events = yield* eventsOf(created.id)
      expect(events.some((event) => event.component === "seaweedfs" && event.state === "failed" && event.level === "error")).toBe(true)
      const flow = yield* publishedFlow(created.id)
      const snapshot = checkReplay(created.id, ["fsn1"], flow, jobs, false)
      checkSnapshot(snapshot, created.id)
      expect(snapshot.flow.status).toBe("failed")
    }).pipe(Effect.provide(layer(makeWorld(), { faults: { failCharts: ["seaweedfs"] } })))
  )

  it.scoped("a permanent cloud error fails the step and the deployment with what to do next", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(1), "ops@omani.works")
      const record = yield* advanceUntil(created.id, terminal)
      expect(record.status).toBe("failed")
      expect(record.error).toContain("Step control-plane failed in region fsn1")
      expect(record.error).toContain("/retry")
      expect(record.error).toContain("/wipe")
      const jobs = yield* jobsOf(created.id)
      expect(jobs.find((job) => job.jobName === "control-plane")?.status).toBe("failed")
      expect(jobs.find((job) => job.jobName === "workers")?.reason).toBe("dependency control-plane failed")
      expect(jobs.find((job) => job.jobName === "network")?.status).toBe("succeeded")
      expect((yield* logsOf(created.id, "control-plane")).some((line) => line.includes("resource_unavailable"))).toBe(true)
    }).pipe(Effect.provide(layer(makeWorld(), { faults: { regionFail: ["fsn1"] } })))
  )

  it.scoped("transient 429 and 5xx answers are retried with backoff, then the deployment is ready", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(2), "ops@omani.works")
      const record = yield* advanceUntil(created.id, terminal)
      expect(record.status).toBe("ready")
      const jobs = yield* jobsOf(created.id)
      const retried = []
      for (const job of jobs.filter((j) => !j.jobName.startsWith("install-"))) {
        const lines = yield* logsOf(created.id, job.jobName)
        if (lines.some((line) => line.includes("will retry"))) retried.push(job.jobName)
      }
      expect(retried.length).toBeGreaterThan(0)
    }).pipe(Effect.provide(layer(makeWorld(), { faults: { cloudErrorRate: 0.4 } })))
  )

  it.scoped("a call-back that never comes fails after 15 minutes saying so; the owner's kubeconfig revives the deployment", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(1), "ops@omani.works")
      const record = yield* advanceUntil(created.id, terminal)
      expect(record.status).toBe("failed")
      expect(record.error).toContain("never called back with its kubeconfig within 15 min")
      expect(record.results.phase1Outcome).toBe("kubeconfig-missing")
      // Phase 0 itself was fine: every step succeeded (DNS too); the handover never ran and says why.
      const jobs = yield* jobsOf(created.id)
      expect(jobs.filter((job) => job.status !== "succeeded").map((job) => `${job.jobName}: ${job.reason}`)).toEqual([
        "handover-access: not run: the deployment is failed; a retry runs it",
        "handover-token: not run: the deployment is failed; a retry runs it"
      ])
      const world = yield* SimulatorWorld
      const cluster = Option.getOrThrow(yield* Effect.orDie(world.read(created.id))).clusters["fsn1"]!
      const document = Redacted.make<unknown>(Kubeconfig.toDocument(world.kubeconfigFor(created.id, cluster)))
      // The postback token's window ended with the deployment's failure: a late call-back opens nothing.
      const late = yield* Effect.flip(orchestrator.kubeconfigArrived(created.id, undefined, document))
      expect(late.reason).toBe("NotOpen")
      // The owner repairs it through the same checks: the deployment continues.
      yield* orchestrator.kubeconfigArrived(created.id, undefined, document, { replace: true })
      const again = yield* Effect.flip(orchestrator.kubeconfigArrived(created.id, undefined, document))
      expect(again.reason).toBe("AlreadySet")
      expect((yield* advanceUntil(created.id, terminal)).status).toBe("ready")
      // Revived, the handover runs after all.
      const handover = (yield* jobsOf(created.id)).find((job) => job.jobName === "handover-token")
      expect(handover).toMatchObject({ status: "succeeded" })
      expect(handover?.reason).toBeUndefined()
    }).pipe(Effect.provide(layer(makeWorld(), { faults: { kubeconfigDelay: Duration.infinity } })))
  )

  it.scoped("a secondary region that cannot be built ends in partial-failure naming it; retry is offered", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(2), "ops@omani.works")
      const record = yield* advanceUntil(created.id, terminal)
      expect(record.status).toBe("partial-failure")
      expect(record.error).toContain("hel1-1")
      expect(record.results.regions.find((r) => r.regionKey === "hel1-1")?.phase0).toBe("failed")
      expect(record.results.regions.find((r) => r.regionKey === "fsn1")?.phase0).toBe("succeeded")
      const jobs = yield* jobsOf(created.id)
      expect(jobs.find((job) => job.jobName === "hel1-1:control-plane")?.status).toBe("failed")
      expect(jobs.find((job) => job.jobName === "control-plane")?.status).toBe("succeeded")
    }).pipe(Effect.provide(layer(makeWorld(), { faults: { regionFail: ["hel1"] } })))
  )

  it.scoped("a secondary whose chart stalls is reported degraded while the primary decides ready", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(2), "ops@omani.works")
      const record = yield* advanceUntil(created.id, terminal)
      expect(record.status).toBe("ready")
      yield* advance(60)
      const later = yield* statusOf(created.id)
      const secondary = later.results.regions.find((r) => r.regionKey === "hel1-1")
      expect(secondary?.phase1?.state).toBe("failed")
      expect(secondary?.error).toContain("bp-harbor")
      const events = yield* eventsOf(created.id)
      expect(
        events.some((event) => event.type === "region-degraded" && event.region === "hel1-1" && event.message.includes("/retry"))
      ).toBe(true)
      expect((yield* jobsOf(created.id)).find((job) => job.jobName === "install-hel1-1:harbor")?.status).toBe("failed")
    }).pipe(Effect.provide(layer(makeWorld(), { faults: { failCharts: ["harbor@hel1"] } })))
  )

  it.scoped("a Phase-1 timeout without progress fails, naming what never finished", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(1), "ops@omani.works")
      const record = yield* advanceUntil(created.id, terminal, 900, 60)
      expect(record.status).toBe("failed")
      expect(record.results.phase1Outcome).toBe("timeout")
      expect(record.error).toContain("timed out")
      expect(record.error).toContain("bp-grafana")
    }).pipe(Effect.provide(layer(makeWorld(), { faults: { hangCharts: ["grafana"] } })))
  )

  it.scoped("a Phase-1 deadline is deferred while releases keep installing, and the deployment becomes ready", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(1), "ops@omani.works")
      const record = yield* advanceUntil(created.id, terminal)
      expect(record.status).toBe("ready")
      const events = yield* eventsOf(created.id)
      expect(events.some((event) => event.type === "deadline-deferred")).toBe(true)
    }).pipe(
      Effect.provide(layer(makeWorld(), { settings: { phase1Timeout: Duration.minutes(10), phase1ProgressWindow: Duration.minutes(15) } }))
    )
  )

  it.scoped("a Phase-1 ceiling stops even a progressing deployment, never calling it ready", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(1), "ops@omani.works")
      const record = yield* advanceUntil(created.id, terminal)
      expect(record.status).toBe("failed")
      expect(record.results.phase1Outcome).toBe("timeout")
    }).pipe(
      Effect.provide(
        layer(makeWorld(), {
          settings: { phase1Timeout: Duration.minutes(5), phase1ProgressWindow: Duration.minutes(10), phase1Ceiling: Duration.minutes(12) }
        })
      )
    )
  )

  it.scoped("DNS is best effort: a record owned by someone else is left alone and reported as a warning", () =>
    Effect.gen(function* () {
      const dns = yield* DnsProvider
      yield* dns.apply("omani.works.", {
        create: [{ name: "grafana.t1.omani.works.", type: "A", ttl: 300, records: ["192.0.2.99"], owner: "5eedfeedfeedfeed" }],
        update: [],
        delete: []
      })
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(1), "ops@omani.works")
      expect((yield* advanceUntil(created.id, terminal)).status).toBe("ready")
      const warnings = (yield* eventsOf(created.id)).filter((event) => event.type === "dns-warning")
      expect(warnings.some((event) => event.level === "warn" && event.message.includes("grafana.t1.omani.works"))).toBe(true)
      const grafana = (yield* dnsRecords).find((record) => record.name === "grafana.t1.omani.works." && record.type === "A")
      expect(grafana).toMatchObject({ records: ["192.0.2.99"], owner: "5eedfeedfeedfeed" })
      expect((yield* dnsRecords).some((record) => record.name === "console.t1.omani.works." && record.owner === created.id)).toBe(true)
      // Nothing secret ever reaches an event or a log line: not the credentials, not the kubeconfig.
      const kubeconfig = Option.getOrThrow(yield* Effect.orDie(Effect.flatMap(Kubeconfigs, (k) => k.get(created.id, "fsn1"))))
      const token = /token: (\S+)/.exec(Redacted.value(kubeconfig))![1]!
      const logs = []
      for (const job of yield* jobsOf(created.id)) logs.push(...(yield* logsOf(created.id, job.jobName)))
      const everything = JSON.stringify([yield* eventsOf(created.id), logs, yield* statusOf(created.id)])
      expect(everything).not.toContain(token)
      expect(everything).not.toContain("secret-token-value")
    }).pipe(Effect.provide(layer(makeWorld(), { zones: ["omani.works."] })))
  )

  it.scoped("a wipe after ready removes every cloud resource and owned DNS record, then reports wiped", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(2), "ops@omani.works")
      expect((yield* advanceUntil(created.id, terminal)).status).toBe("ready")
      expect((yield* dnsRecords).some((r) => r.owner === created.id)).toBe(true)
      yield* orchestrator.wipe(created.id)
      const record = yield* advanceUntil(created.id, ["wiped", "failed"])
      expect(record.status).toBe("wiped")
      expect((yield* inventory).filter((r) => r.labels["sovereign.dev/deployment"] === created.id)).toEqual([])
      expect((yield* dnsRecords).filter((r) => r.owner === created.id)).toEqual([])
      // Its FQDN is free again.
      yield* orchestrator.create(request(1), "ops@omani.works")
    }).pipe(Effect.provide(layer(makeWorld())))
  )

  it.scoped("a wipe is refused in the first 30 minutes of Phase 1 unless forced; a Phase-0 wipe stops at the next step", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(1), "ops@omani.works")
      yield* advanceUntil(created.id, ["phase1-watching"])
      const refused = yield* Effect.flip(orchestrator.wipe(created.id))
      expect(refused.reason).toBe("Conflict")
      expect(refused.message).toContain("force")
      yield* orchestrator.wipe(created.id, { force: true })
      expect((yield* advanceUntil(created.id, ["wiped", "failed"])).status).toBe("wiped")

      const second = yield* orchestrator.create({ ...request(1), sovereignFQDN: "t2.omani.works" }, "ops@omani.works")
      yield* advance(1)
      yield* orchestrator.wipe(second.id)
      const wiped = yield* advanceUntil(second.id, ["wiped", "failed"])
      expect(wiped.status).toBe("wiped")
      expect((yield* inventory).filter((r) => r.labels["sovereign.dev/deployment"] === second.id)).toEqual([])
      const jobs = yield* jobsOf(second.id)
      expect(jobs.find((job) => job.jobName === "workers")?.status).not.toBe("running")
    }).pipe(Effect.provide(layer(makeWorld())))
  )

  it.scoped("a wipe while waiting for the call-back does not wait for the 15-minute timeout", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(1), "ops@omani.works")
      // Phase 0 is done (every step succeeded) and the call-back is due but never comes.
      for (let minute = 0; minute < 30; minute++) {
        const jobs = (yield* jobsOf(created.id)).filter((job) => job.parentId === `${created.id}:provisioner`)
        if (jobs.length > 0 && jobs.every((job) => job.status === "succeeded")) break
        yield* advance(1)
      }
      expect((yield* statusOf(created.id)).status).toBe("provisioning")
      yield* orchestrator.wipe(created.id)
      yield* advance(3)
      expect((yield* statusOf(created.id)).status).toBe("wiped")
    }).pipe(Effect.provide(layer(makeWorld(), { faults: { kubeconfigDelay: Duration.infinity } })))
  )

  it.scoped("a wipe the cloud keeps refusing fails saying to wipe again, and such a deployment cannot be retried", () =>
    Effect.gen(function* () {
      const orchestrator = yield* Orchestrator.Orchestrator
      const created = yield* orchestrator.create(request(1), "ops@omani.works")
      const failed = yield* advanceUntil(created.id, terminal)
      expect(failed.status).toBe("failed")
      expect(failed.error).toContain("still failing after")
      yield* orchestrator.wipe(created.id)
      const record = yield* advanceUntil(created.id, ["wiped", "failed"])
      expect(record.status).toBe("failed")
      expect(record.error).toContain("wipe again")
      expect((yield* Effect.flip(orchestrator.retry(created.id))).message).toContain("wipe it again")
    }).pipe(Effect.provide(layer(makeWorld(), { faults: { cloudErrorRate: 1 } })))
  )

  it.scoped("retry re-runs a failed Phase 0 from the failed step without repeating finished ones", () =>
    Effect.gen(function* () {
      const world = makeWorld()
      const failedId = yield* Effect.gen(function* () {
        const orchestrator = yield* Orchestrator.Orchestrator
        const created = yield* orchestrator.create(request(1), "ops@omani.works")
        expect((yield* advanceUntil(created.id, terminal)).status).toBe("failed")
        return created.id
      }).pipe(Effect.provide(layer(world, { faults: { regionFail: ["fsn1"] } })), Effect.scoped)
      // The region recovers (a new process without the fault); the operator retries.
      yield* Effect.gen(function* () {
        const orchestrator = yield* Orchestrator.Orchestrator
        const retried = yield* orchestrator.retry(failedId)
        expect(retried.status).toBe("provisioning")
        expect((yield* advanceUntil(failedId, terminal)).status).toBe("ready")
        const network = (yield* jobsOf(failedId)).find((job) => job.jobName === "network")
        const runs = yield* Effect.flatMap(JobRepo, (jobs) => Effect.orDie(jobs.get(failedId, "network")))
        expect(network?.status).toBe("succeeded")
        expect(runs._tag === "Some" && runs.value.executions.length).toBe(1)
      }).pipe(Effect.provide(layer(world)), Effect.scoped)
    })
  )
})
