/** Test harness: the orchestrator on in-memory repositories and the simulated world, driven by TestClock. */
import * as CloudProvider from "@sovereign/core/CloudProvider"
import * as ClusterWatch from "@sovereign/core/ClusterWatch"
import * as DeploymentRepo from "@sovereign/core/DeploymentRepo"
import * as DnsProvider from "@sovereign/core/DnsProvider"
import * as FlowEvents from "@sovereign/core/FlowEvents"
import * as Ids from "@sovereign/core/Ids"
import type * as Job from "@sovereign/core/Job"
import * as JobRepo from "@sovereign/core/JobRepo"
import * as Lifecycle from "@sovereign/core/Lifecycle"
import * as Secrets from "@sovereign/core/Secrets"
import * as Orchestrator from "@sovereign/core/Orchestrator"
import * as Memory from "@sovereign/core/testing/Memory"
import { type Context, type Duration, Effect, Layer, Option, TestClock } from "effect"
import * as Kubeconfigs from "@sovereign/core/Kubeconfigs"
import * as Simulator from "../src/Simulator.js"
import type { Faults } from "../src/SimulatorConfig.js"
import { noFaults } from "../src/SimulatorConfig.js"
import * as SimulatorStore from "../src/SimulatorStore.js"
import * as SimulatorWorld from "../src/SimulatorWorld.js"

export interface World {
  readonly memory: Memory.MemoryState
  readonly documents: Map<string, string>
  /** Ids are drawn from a counter that survives "restarts", so every run of a test sees the same ids. */
  readonly ids: { next: number }
}

export const makeWorld = (): World => ({ memory: Memory.makeState(), documents: new Map(), ids: { next: 1 } })

const countingIds = (world: World) =>
  Layer.succeed(Ids.Ids, {
    deploymentId: Effect.sync(() => (0x5eed000000000000n + BigInt(world.ids.next++)).toString(16)),
    executionId: Effect.sync(() => `e${String(world.ids.next++).padStart(15, "0")}`)
  })

export const request = (regions: number, extra: Record<string, unknown> = {}) => ({
  sovereignFQDN: "t1.omani.works",
  orgName: "Omani Works",
  orgEmail: "ops@omani.works",
  regions: ["fsn1", "hel1", "nbg1", "ash", "hil"].slice(0, regions).map((cloudRegion, index) => ({
    provider: "hetzner",
    cloudRegion,
    controlPlaneSize: "cpx32",
    ...(index === 0 ? { workerSize: "cpx42", workerCount: 2 } : { workerCount: 0 })
  })),
  sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx ops@omani.works",
  credentials: { hetznerToken: "secret-token-value" },
  ...extra
})

/** One process: the orchestrator and the simulator over the world's (surviving) stores. */
export const layer = (
  world: World,
  options: {
    readonly faults?: Partial<Faults>
    readonly settings?: Partial<Orchestrator.OrchestratorSettings>
    readonly seed?: number
    /** The cloud adapter declares itself non-resumable (the original restart policy applies). */
    readonly nonResumable?: boolean
    /** DNS zones that exist before any deployment. */
    readonly zones?: ReadonlyArray<string>
    /** Told of every JobRepo call (method and arguments) before it runs. */
    readonly spyJobs?: (method: keyof JobRepo.JobRepoService, args: ReadonlyArray<unknown>) => void
    /** Every JobRepo call takes this long (on the test clock), as a real database's would. */
    readonly jobsLatency?: Duration.DurationInput
    /** A watch in place of the simulated clusters' (the rest of the world stays simulated). */
    readonly watch?: ClusterWatch.ClusterWatchService
    /** While `fault` is set, every call of the store ports fails with it (an outage, or a broken store). */
    readonly store?: StoreFaults
  } = {}
) => {
  const memoryJobs =
    options.store === undefined
      ? Memory.jobRepo(world.memory)
      : faulty(JobRepo.JobRepo, Memory.jobRepo(world.memory), options.store, jobError)
  const jobRepo =
    options.spyJobs === undefined && options.jobsLatency === undefined
      ? memoryJobs
      : spiedJobRepo(memoryJobs, options.spyJobs ?? (() => {}), options.jobsLatency)
  const store = options.store
  const base = Layer.mergeAll(
    store === undefined
      ? Memory.deploymentRepo(world.memory)
      : faulty(DeploymentRepo.DeploymentRepo, Memory.deploymentRepo(world.memory), store, repoError),
    jobRepo,
    store === undefined
      ? Memory.flowEvents(world.memory)
      : faulty(FlowEvents.FlowEvents, Memory.flowEvents(world.memory), store, flowError),
    store === undefined
      ? Memory.kubeconfigs(world.memory)
      : faulty(Kubeconfigs.Kubeconfigs, Memory.kubeconfigs(world.memory), store, kubeconfigError),
    Memory.kubeconfigInspector(),
    Secrets.layerMemory(),
    countingIds(world),
    SimulatorStore.layerMemory(world.documents),
    Orchestrator.layerSettings({ readySentinel: "catalyst-platform", ...options.settings })
  )
  const simulated = Simulator.layer({
    speed: 1,
    seed: options.seed ?? 7,
    faults: { ...noFaults, ...options.faults },
    ...(options.zones === undefined ? {} : { zones: options.zones })
  }).pipe(Layer.provide(Simulator.deliverToKubeconfigs))
  const resumability =
    options.nonResumable === true
      ? Layer.provideMerge(
          Layer.effect(
            CloudProvider.CloudProvider,
            Effect.map(CloudProvider.CloudProvider, (cloud) => ({ ...cloud, capabilities: { resumable: false } }))
          ),
          simulated
        )
      : simulated
  // The second layer of a merge wins where both provide a service.
  const simulator =
    options.watch === undefined ? resumability : Layer.merge(resumability, Layer.succeed(ClusterWatch.ClusterWatch, options.watch))
  return Layer.provideMerge(Orchestrator.layer, Layer.provideMerge(simulator, base))
}

/** A store fault the test switches on and off: `reason` as the ports spell it, and the driver's words as the cause. */
export interface StoreFaults {
  fault: { readonly reason: "Unavailable" | "Unknown"; readonly cause: Error } | undefined
  /** Store calls that failed because of it. */
  failed: number
}

const repoError = (fault: NonNullable<StoreFaults["fault"]>) =>
  new DeploymentRepo.DeploymentRepoError({
    reason: fault.reason,
    message: `the database failed: ${fault.cause.message}`,
    cause: fault.cause
  })
const jobError = (fault: NonNullable<StoreFaults["fault"]>) =>
  new JobRepo.JobRepoError({ reason: fault.reason, message: `the database failed: ${fault.cause.message}`, cause: fault.cause })
const flowError = (fault: NonNullable<StoreFaults["fault"]>) =>
  new FlowEvents.FlowEventsError({ reason: fault.reason, message: `the database failed: ${fault.cause.message}`, cause: fault.cause })
const kubeconfigError = (fault: NonNullable<StoreFaults["fault"]>) =>
  new Kubeconfigs.KubeconfigError({ reason: fault.reason, message: `the database failed: ${fault.cause.message}`, cause: fault.cause })

/** The port with every Effect-returning call failing while the fault is set (streams are left alone). */
const faulty = <I, S extends object>(
  tag: Context.Tag<I, S>,
  inner: Layer.Layer<I>,
  faults: StoreFaults,
  error: (fault: NonNullable<StoreFaults["fault"]>) => unknown
): Layer.Layer<I> =>
  Layer.effect(
    tag,
    Effect.map(tag, (service) => {
      const wrapped = {} as Record<string, unknown>
      for (const [method, fn] of Object.entries(service)) {
        wrapped[method] =
          typeof fn !== "function"
            ? fn
            : (...args: ReadonlyArray<unknown>) => {
                const call = (fn as (...a: ReadonlyArray<unknown>) => unknown)(...args)
                if (!Effect.isEffect(call)) return call
                return Effect.suspend(() => {
                  if (faults.fault === undefined) return call
                  faults.failed++
                  return Effect.fail(error(faults.fault))
                })
              }
      }
      return wrapped as S
    })
  ).pipe(Layer.provide(inner))

const spiedJobRepo = (
  inner: Layer.Layer<JobRepo.JobRepo>,
  spy: (method: keyof JobRepo.JobRepoService, args: ReadonlyArray<unknown>) => void,
  latency: Duration.DurationInput | undefined
): Layer.Layer<JobRepo.JobRepo> =>
  Layer.effect(
    JobRepo.JobRepo,
    Effect.map(JobRepo.JobRepo, (jobs) => {
      const spied = {} as Record<string, unknown>
      for (const [method, fn] of Object.entries(jobs)) {
        spied[method] = (...args: ReadonlyArray<unknown>) => {
          spy(method as keyof JobRepo.JobRepoService, args)
          const call = (fn as (...a: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown>)(...args)
          return latency === undefined ? call : Effect.delay(call, latency)
        }
      }
      return spied as unknown as JobRepo.JobRepoService
    })
  ).pipe(Layer.provide(inner))

export const statusOf = (id: string) =>
  Effect.flatMap(DeploymentRepo.DeploymentRepo, (repo) => Effect.map(Effect.orDie(repo.get(id)), Option.getOrThrow))

/** Advances simulated time in steps until the deployment reaches one of `statuses` (or the budget runs out). */
export const advanceUntil = (id: string, statuses: ReadonlyArray<string>, budgetMinutes = 600, stepSeconds = 30) =>
  Effect.gen(function* () {
    for (let elapsed = 0; elapsed <= budgetMinutes * 60; elapsed += stepSeconds) {
      const record = yield* statusOf(id)
      if (statuses.includes(record.status)) return record
      yield* TestClock.adjust(`${stepSeconds} seconds`)
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
    }
    return yield* statusOf(id)
  })

/** Advances simulated time by `minutes`. */
export const advance = (minutes: number, stepSeconds = 30) =>
  Effect.gen(function* () {
    for (let elapsed = 0; elapsed < minutes * 60; elapsed += stepSeconds) {
      yield* TestClock.adjust(`${stepSeconds} seconds`)
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
    }
  })

export const jobsOf = (id: string) => Effect.flatMap(JobRepo.JobRepo, (jobs) => Effect.orDie(jobs.list(id)))
export const eventsOf = (id: string) => Effect.flatMap(DeploymentRepo.DeploymentRepo, (repo) => Effect.orDie(repo.events(id, 0)))

export const publishedFlow = (id: string) =>
  Effect.flatMap(FlowEvents.FlowEvents, (flow) =>
    Effect.map(Effect.orDie(flow.since(id, 0)), (events) => Option.getOrThrow(events).map((event) => event.message))
  )

export const inventory = Effect.flatMap(SimulatorWorld.SimulatorWorld, (world) => Effect.orDie(world.allResources))

export const creations = (id: string) =>
  Effect.flatMap(SimulatorWorld.SimulatorWorld, (world) =>
    Effect.map(Effect.orDie(world.read(id)), (w) => Option.match(w, { onNone: () => ({}), onSome: (x) => x.creations }))
  )

export const dnsRecords = Effect.flatMap(DnsProvider.DnsProvider, (dns) =>
  Effect.gen(function* () {
    const zones = yield* Effect.orDie(dns.zones())
    const out = []
    for (const zone of zones) out.push(...(yield* Effect.orDie(dns.records(zone))))
    return out
  })
)

/** After the primary decided, the secondaries are still watched: advance until every region has concluded. */
export const advanceUntilRegionsConcluded = (id: string, budgetMinutes = 180) =>
  Effect.gen(function* () {
    for (let elapsed = 0; elapsed <= budgetMinutes * 60; elapsed += 30) {
      const record = yield* statusOf(id)
      if (
        record.results.regions.every(
          (region) => region.phase1 !== undefined && region.phase1.state !== "watching" && region.phase1.state !== "waiting"
        )
      )
        return record
      yield* TestClock.adjust("30 seconds")
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
    }
    return yield* statusOf(id)
  })

/** A job with its executions (newest first) and every log line of them. */
export const jobWithLogs = (id: string, jobName: string) =>
  Effect.gen(function* () {
    const jobs = yield* JobRepo.JobRepo
    const found = Option.getOrThrow(yield* Effect.orDie(jobs.get(id, jobName)))
    const lines: Array<string> = []
    for (const execution of [...found.executions].reverse()) {
      lines.push(...(yield* Effect.orDie(jobs.logs(id, execution.id, 1, 5000))).lines.map((line) => line.message))
    }
    return { job: found.job, executions: found.executions, lines }
  })

/**
 * Advances simulated time until every lifecycle job (the steps after Phase 0) satisfies `done`
 * (default: finished, succeeded or failed), or the budget runs out.
 */
export const advanceUntilSettled = (
  id: string,
  done: (job: Job.Job) => boolean = (job) => job.status === "succeeded" || job.status === "failed",
  budgetMinutes = 240
) =>
  Effect.gen(function* () {
    for (let elapsed = 0; elapsed <= budgetMinutes * 60; elapsed += 30) {
      const jobs = (yield* jobsOf(id)).filter((job) => Lifecycle.stepOf(job.jobName) !== undefined)
      if (jobs.length > 0 && jobs.every(done)) return jobs
      yield* TestClock.adjust("30 seconds")
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
    }
    return (yield* jobsOf(id)).filter((job) => Lifecycle.stepOf(job.jobName) !== undefined)
  })
