/**
 * In-memory implementations of the persistence and environment ports, for tests and the embedded
 * simulator. State lives in a `MemoryState` created outside any layer, so a test can drop every
 * service built on it (a "restart") and build fresh ones over the same data.
 */
import { Effect, Either, Layer, Option, PubSub, Queue, Redacted, Stream } from "effect"
import type { DeploymentId } from "../Deployment.js"
import {
  DeploymentRepo,
  DeploymentRepoError,
  inFlight,
  type DeploymentEvent,
  type DeploymentRecord,
  type JournalEntry
} from "../DeploymentRepo.js"
import { FlowEvents, defaultRetention, type FlowEvent } from "../FlowEvents.js"
import * as Ids from "../Ids.js"
import type { Execution, Job, LogLine } from "../Job.js"
import { applyWrites, executionsReadBy, JobRepo, JobRepoError, JobWrite, type JobWithExecutions, type JobWriteState } from "../JobRepo.js"
import { KubeconfigInspector } from "../Kubeconfig.js"
import { KubeconfigError, Kubeconfigs, type KubeconfigArrival } from "../Kubeconfigs.js"
import * as Secrets from "../Secrets.js"
import { merge as mergeJob } from "../Job.js"

interface StoredKubeconfig {
  readonly value: string
  readonly arrival: KubeconfigArrival
}

export interface MemoryState {
  readonly deployments: Map<string, DeploymentRecord>
  readonly events: Map<string, Array<DeploymentEvent>>
  readonly journal: Map<string, Map<string, JournalEntry>>
  readonly jobs: Map<string, Map<string, Job>>
  readonly executions: Map<string, Execution>
  readonly logs: Map<string, Array<LogLine>>
  readonly flow: Map<string, { seq: number; events: Array<FlowEvent> }>
  readonly kubeconfigs: Map<string, Map<string, StoredKubeconfig>>
  readonly deploymentAnnouncements: PubSub.PubSub<DeploymentEvent>
  readonly flowAnnouncements: PubSub.PubSub<FlowEvent>
  readonly kubeconfigAnnouncements: PubSub.PubSub<{ readonly deploymentId: string; readonly regionKey: string }>
  readonly flowRetention: number
}

export const makeState = (options: { readonly flowRetention?: number } = {}): MemoryState => ({
  deployments: new Map(),
  events: new Map(),
  journal: new Map(),
  jobs: new Map(),
  executions: new Map(),
  logs: new Map(),
  flow: new Map(),
  kubeconfigs: new Map(),
  deploymentAnnouncements: Effect.runSync(PubSub.unbounded<DeploymentEvent>()),
  flowAnnouncements: Effect.runSync(PubSub.unbounded<FlowEvent>()),
  kubeconfigAnnouncements: Effect.runSync(PubSub.unbounded<{ deploymentId: string; regionKey: string }>()),
  flowRetention: options.flowRetention ?? defaultRetention
})

const getOrCreate = <K, V>(map: Map<K, V>, key: K, create: () => V): V => {
  const existing = map.get(key)
  if (existing !== undefined) return existing
  const created = create()
  map.set(key, created)
  return created
}

/** Replay then live, no gaps or duplicates: subscribe first, read the replay, then skip what it covered. */
const replayThenLive = <A extends { readonly seq: number; readonly deploymentId: string }>(
  pubsub: PubSub.PubSub<A>,
  deploymentId: string,
  afterSeq: number,
  replay: () => ReadonlyArray<A>
): Stream.Stream<A> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const subscription = yield* PubSub.subscribe(pubsub)
      const stored = replay().filter((event) => event.seq > afterSeq)
      let last = stored.length > 0 ? stored[stored.length - 1]!.seq : afterSeq
      const live = Stream.fromQueue(subscription).pipe(
        Stream.filter((event) => {
          if (event.deploymentId !== deploymentId || event.seq <= last) return false
          last = event.seq
          return true
        })
      )
      return Stream.concat(Stream.fromIterable(stored), live)
    })
  )

export const deploymentRepo = (state: MemoryState): Layer.Layer<DeploymentRepo> =>
  Layer.succeed(DeploymentRepo, {
    create: (record, event) =>
      Effect.suspend(() => {
        if (state.deployments.has(record.id)) {
          return Effect.fail(new DeploymentRepoError({ reason: "Conflict", message: `deployment ${record.id} exists` }))
        }
        for (const other of state.deployments.values()) {
          if (other.spec.sovereignFQDN === record.spec.sovereignFQDN && inFlight.includes(other.status)) {
            return Effect.fail(
              new DeploymentRepoError({
                reason: "Conflict",
                message: `${record.spec.sovereignFQDN} is already in flight as deployment ${other.id} (${other.status})`
              })
            )
          }
        }
        const stored: DeploymentRecord = { ...record, version: 1, updatedAt: record.createdAt }
        state.deployments.set(record.id, stored)
        const numbered: DeploymentEvent = { ...event, seq: 1, deploymentId: record.id }
        state.events.set(record.id, [numbered])
        return Effect.as(PubSub.publish(state.deploymentAnnouncements, numbered), stored)
      }),
    get: (id) => Effect.sync(() => Option.fromNullable(state.deployments.get(id))),
    list: (filter) =>
      Effect.sync(() =>
        [...state.deployments.values()]
          .filter((record) => filter.owner === undefined || record.owner === filter.owner)
          .filter((record) => filter.statuses === undefined || filter.statuses.includes(record.status))
          .sort((a, b) => b.createdAt - a.createdAt || a.id.localeCompare(b.id))
      ),
    update: (id, expectedVersion, changes, events, updatedAt) =>
      Effect.suspend(() => {
        const current = state.deployments.get(id)
        if (current === undefined) {
          return Effect.fail(new DeploymentRepoError({ reason: "NotFound", message: `deployment ${id} not found` }))
        }
        if (current.version !== expectedVersion) {
          return Effect.fail(
            new DeploymentRepoError({
              reason: "VersionConflict",
              message: `deployment ${id} is at version ${current.version}, not ${expectedVersion}`
            })
          )
        }
        const { clear, ...fields } = changes
        const next: Record<string, unknown> = { ...current, ...fields, version: current.version + 1, updatedAt }
        for (const key of clear ?? []) delete next[key]
        const record = next as unknown as DeploymentRecord
        state.deployments.set(id, record)
        const numbered = append(state, id, events)
        return Effect.as(PubSub.publishAll(state.deploymentAnnouncements, numbered), { record, events: numbered })
      }),
    appendEvents: (id, events) =>
      Effect.suspend(() => {
        if (!state.deployments.has(id)) {
          return Effect.fail(new DeploymentRepoError({ reason: "NotFound", message: `deployment ${id} not found` }))
        }
        const numbered = append(state, id, events)
        return Effect.as(PubSub.publishAll(state.deploymentAnnouncements, numbered), numbered)
      }),
    events: (id, afterSeq) => Effect.sync(() => (state.events.get(id) ?? []).filter((event) => event.seq > afterSeq)),
    tail: (id, afterSeq) => replayThenLive(state.deploymentAnnouncements, id, afterSeq, () => state.events.get(id) ?? []),
    recordStep: (entry) =>
      Effect.sync(() => {
        getOrCreate(state.journal, entry.deploymentId, () => new Map()).set(entry.jobName, entry)
      }),
    journal: (id) =>
      Effect.sync(() => [...(state.journal.get(id)?.values() ?? [])].sort((a, b) => a.at - b.at || a.jobName.localeCompare(b.jobName))),
    remove: (id) =>
      Effect.sync(() => {
        state.deployments.delete(id)
        state.events.delete(id)
        state.journal.delete(id)
      })
  })

const append = (
  state: MemoryState,
  id: string,
  events: ReadonlyArray<Omit<DeploymentEvent, "seq" | "deploymentId">>
): ReadonlyArray<DeploymentEvent> => {
  const log = getOrCreate(state.events, id, () => [])
  const numbered = events.map((event, index) => ({ ...event, seq: log.length + index + 1, deploymentId: id }))
  log.push(...numbered)
  return numbered
}

const jobNotFound = (deploymentId: string, what: string) =>
  new JobRepoError({ reason: "NotFound", message: `${what} not found in deployment ${deploymentId}` })

export const jobRepo = (state: MemoryState): Layer.Layer<JobRepo> => {
  const jobsOf = (deploymentId: string) => getOrCreate(state.jobs, deploymentId, () => new Map<string, Job>())
  const upsertOne = (job: Job): Job => {
    const jobs = jobsOf(job.deploymentId)
    const previous = jobs.get(job.jobName)
    const merged = mergeJob(previous, { ...job, id: `${job.deploymentId}:${job.jobName}`, dependsOn: job.dependsOn ?? [] })
    jobs.set(job.jobName, merged)
    return merged
  }
  // Folded over copies of what the writes touch, then stored: all or nothing, as a transaction.
  const record = (deploymentId: string, writes: ReadonlyArray<JobWrite>) =>
    Effect.suspend(() => {
      const jobs = jobsOf(deploymentId)
      const scratch: JobWriteState = { jobs: new Map(jobs), executions: new Map() }
      for (const id of executionsReadBy(writes)) {
        const execution = state.executions.get(id)
        if (execution !== undefined) scratch.executions.set(id, execution)
      }
      const applied = applyWrites(deploymentId, scratch, writes)
      if (Either.isLeft(applied)) return Effect.fail(applied.left)
      for (const job of applied.right.jobs) jobs.set(job.jobName, job)
      for (const execution of applied.right.executions) {
        state.executions.set(execution.id, execution)
        if (!state.logs.has(execution.id)) state.logs.set(execution.id, [])
      }
      for (const { executionId, line } of applied.right.lines) state.logs.get(executionId)!.push(line)
      return Effect.void
    })
  const bareName = (deploymentId: string, jobNameOrId: string) =>
    jobNameOrId.startsWith(`${deploymentId}:`) ? jobNameOrId.slice(deploymentId.length + 1) : jobNameOrId
  return Layer.succeed(JobRepo, {
    upsert: (job) => Effect.sync(() => upsertOne(job)),
    upsertMany: (jobs) => Effect.sync(() => jobs.map(upsertOne)),
    list: (deploymentId) =>
      Effect.sync(() => [...jobsOf(deploymentId).values()].sort((a, b) => (a.jobName < b.jobName ? -1 : a.jobName > b.jobName ? 1 : 0))),
    get: (deploymentId, jobNameOrId) =>
      Effect.sync(() => {
        const job = jobsOf(deploymentId).get(bareName(deploymentId, jobNameOrId))
        if (job === undefined) return Option.none<JobWithExecutions>()
        const executions = [...state.executions.values()]
          .filter((execution) => execution.jobId === job.id)
          .sort((a, b) => b.startedAt - a.startedAt)
        return Option.some({ job, executions })
      }),
    startExecution: (deploymentId, jobName, executionId, at) =>
      Effect.map(record(deploymentId, [JobWrite.Start({ jobName, executionId, at })]), () => state.executions.get(executionId)!),
    finishExecution: (deploymentId, executionId, status, at) => record(deploymentId, [JobWrite.Finish({ executionId, status, at })]),
    appendLog: (deploymentId, executionId, lines) => record(deploymentId, [JobWrite.Log({ executionId, lines })]),
    record,
    logs: (deploymentId, executionId, fromLine, limit) =>
      Effect.suspend(() => {
        const execution = state.executions.get(executionId)
        if (execution === undefined || execution.deploymentId !== deploymentId) {
          return Effect.fail(jobNotFound(deploymentId, `execution ${executionId}`))
        }
        const start = fromLine <= 0 ? 1 : fromLine
        const size = limit <= 0 ? 500 : Math.min(limit, 5000)
        const lines = (state.logs.get(executionId) ?? []).filter((line) => line.lineNumber >= start).slice(0, size)
        return Effect.succeed({ lines, total: execution.lineCount, executionFinished: execution.status !== "running" })
      }),
    remove: (deploymentId) =>
      Effect.sync(() => {
        state.jobs.delete(deploymentId)
        for (const [id, execution] of state.executions) {
          if (execution.deploymentId === deploymentId) {
            state.executions.delete(id)
            state.logs.delete(id)
          }
        }
      })
  })
}

export const flowEvents = (state: MemoryState): Layer.Layer<FlowEvents> => {
  const logOf = (deploymentId: string) => getOrCreate(state.flow, deploymentId, () => ({ seq: 0, events: [] as Array<FlowEvent> }))
  return Layer.succeed(FlowEvents, {
    publish: (deploymentId, messages, at) =>
      Effect.suspend(() => {
        const log = logOf(deploymentId)
        const published = messages.map((message) => ({ seq: ++log.seq, deploymentId, at, message }))
        log.events.push(...published)
        if (log.events.length > state.flowRetention) log.events.splice(0, log.events.length - state.flowRetention)
        return Effect.as(PubSub.publishAll(state.flowAnnouncements, published), published)
      }),
    since: (deploymentId, afterSeq) =>
      Effect.sync(() => {
        const log = logOf(deploymentId)
        const oldest = log.events[0]?.seq ?? log.seq + 1
        if (afterSeq < log.seq && afterSeq + 1 < oldest) return Option.none()
        return Option.some(log.events.filter((event) => event.seq > afterSeq))
      }),
    latestSeq: (deploymentId) => Effect.sync(() => logOf(deploymentId).seq),
    tail: (deploymentId, afterSeq) => replayThenLive(state.flowAnnouncements, deploymentId, afterSeq, () => logOf(deploymentId).events),
    remove: (deploymentId) => Effect.sync(() => void state.flow.delete(deploymentId))
  })
}

export const kubeconfigs = (state: MemoryState): Layer.Layer<Kubeconfigs> => {
  const regionsOf = (deploymentId: string) => getOrCreate(state.kubeconfigs, deploymentId, () => new Map<string, StoredKubeconfig>())
  const lookup = (deploymentId: DeploymentId, regionKey: string) =>
    Option.map(Option.fromNullable(state.kubeconfigs.get(deploymentId)?.get(regionKey)), (stored) => Redacted.make(stored.value))
  return Layer.succeed(Kubeconfigs, {
    put: (deploymentId, regionKey, kubeconfig, receivedAt) =>
      Effect.suspend(() => {
        const value = Redacted.value(kubeconfig)
        if (value.trim() === "") {
          return Effect.fail(new KubeconfigError({ reason: "Empty", message: "the kubeconfig is empty", region: regionKey }))
        }
        const regions = regionsOf(deploymentId)
        if (regions.has(regionKey)) {
          return Effect.fail(
            new KubeconfigError({
              reason: "AlreadySet",
              message: `region ${regionKey} already delivered its kubeconfig`,
              region: regionKey
            })
          )
        }
        regions.set(regionKey, { value, arrival: { regionKey, receivedAt } })
        return PubSub.publish(state.kubeconfigAnnouncements, { deploymentId, regionKey })
      }),
    replace: (deploymentId, regionKey, kubeconfig, receivedAt) =>
      Effect.suspend(() => {
        const value = Redacted.value(kubeconfig)
        if (value.trim() === "") {
          return Effect.fail(new KubeconfigError({ reason: "Empty", message: "the kubeconfig is empty", region: regionKey }))
        }
        regionsOf(deploymentId).set(regionKey, { value, arrival: { regionKey, receivedAt } })
        return PubSub.publish(state.kubeconfigAnnouncements, { deploymentId, regionKey })
      }),
    get: (deploymentId, regionKey) => Effect.sync(() => lookup(deploymentId, regionKey)),
    arrivals: (deploymentId) => Effect.sync(() => [...regionsOf(deploymentId).values()].map((stored) => stored.arrival)),
    await: (deploymentId, regionKey) =>
      Effect.scoped(
        Effect.gen(function* () {
          const subscription = yield* PubSub.subscribe(state.kubeconfigAnnouncements)
          while (true) {
            const found = lookup(deploymentId, regionKey)
            if (Option.isSome(found)) return found.value
            yield* Queue.take(subscription)
          }
        })
      ),
    remove: (deploymentId) => Effect.sync(() => void state.kubeconfigs.delete(deploymentId))
  })
}

/** Every persistence and environment port in memory, over one state (the kubeconfig inspector is the stand-in below). */
export const layer = (
  state: MemoryState,
  options: { readonly serverKey?: string; readonly ids?: "random" | "crypto" } = {}
): Layer.Layer<DeploymentRepo | JobRepo | FlowEvents | Kubeconfigs | Ids.Ids | Secrets.Secrets | KubeconfigInspector> =>
  Layer.mergeAll(
    deploymentRepo(state),
    jobRepo(state),
    flowEvents(state),
    kubeconfigs(state),
    options.ids === "crypto" ? Ids.layerCrypto : Ids.layerRandom,
    Secrets.layerMemory(options.serverKey),
    kubeconfigInspector()
  )

/**
 * A stand-in for the certificate and DNS checks of the kubeconfig door, for tests that do not parse
 * certificates: a PEM certificate counts as a CA unless its text is listed in `leaves`; names resolve
 * as `hosts` says (others not at all). The server's real one uses X.509 parsing and DNS.
 */
export const kubeconfigInspector = (
  options: { readonly leaves?: ReadonlyArray<string>; readonly hosts?: Readonly<Record<string, ReadonlyArray<string>>> } = {}
): Layer.Layer<KubeconfigInspector> =>
  Layer.succeed(KubeconfigInspector, {
    isCertificateAuthority: (pem) => /-----BEGIN CERTIFICATE-----/.test(pem) && !(options.leaves ?? []).includes(pem),
    resolve: (hostname) => Effect.succeed(options.hosts?.[hostname] ?? [])
  })
