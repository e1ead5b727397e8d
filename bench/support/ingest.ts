/**
 * Watch ingestion through the real Phase-1 path: a scripted `ClusterWatch` feeds the orchestrator of
 * a one-region deployment, whose Phase 1 (gate, jobs, executions, log lines, deployment events, flow
 * deltas, region health) writes into the server's SQL store on PGlite in a temporary data directory.
 */
import { Simulator, SimulatorCloud, SimulatorConfig, SimulatorWorld } from "@sovereign/adapter-simulator"
import { ClusterWatch, DeploymentRepo, Ids, JobRepo, Orchestrator, type HelmRelease } from "@sovereign/core"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Chunk, Duration, Effect, Layer, ManagedRuntime, Option, Stream } from "effect"
import { bootstrapKit, type KitRelease } from "../../packages/adapter-simulator/src/internal/bootstrapKit.js"
import * as Database from "../../packages/server/src/Database.js"
import * as Instrumented from "../../packages/server/src/Instrumented.js"
import { Pglite } from "../../packages/server/src/PgliteClient.js"
import * as KubeconfigInspector from "../../packages/server/src/KubeconfigInspector.js"
import * as SecretBox from "../../packages/server/src/SecretBox.js"
import * as SqlSimulatorStore from "../../packages/server/src/SqlSimulatorStore.js"
import * as SqlLeases from "../../packages/server/src/SqlLeases.js"
import * as SqlStore from "../../packages/server/src/SqlStore.js"
import { requestJson } from "../../packages/server/test/support/fixtures.js"

const ready = (status: "True" | "False" | "Unknown", reason: string, message: string): HelmRelease.Condition => ({
  type: "Ready",
  status,
  reason,
  message
})

// The conditions the simulated helm-controller writes (SimulatorCluster's timeline), so the gate derives what it would in a cluster.
const progressing = [
  ready("Unknown", "Progressing", "Reconciliation in progress"),
  { type: "Reconciling", status: "True" as const, reason: "Progressing", message: "Reconciliation in progress" }
]
const installFailed = [ready("False", "InstallFailed", "Helm install failed: context deadline exceeded")]
const installSucceeded = [ready("True", "InstallSucceeded", "Helm install succeeded")]
const cycle = [progressing, installFailed, installSucceeded] as const

const observed = (release: KitRelease, conditions: ReadonlyArray<HelmRelease.Condition>, resourceVersion: number) =>
  ClusterWatch.ReleaseEvent.Observed({
    release: {
      name: release.name,
      namespace: release.namespace,
      generation: 1,
      // A release not reconciled yet has no status at all (the simulator's first moment).
      ...(conditions.length === 0 ? {} : { observedGeneration: 1 }),
      suspend: false,
      conditions,
      dependsOn: release.dependsOn,
      resourceVersion: String(resourceVersion)
    }
  })

/**
 * About `events` watch events (up to 35 fewer) for the 35 releases of the bootstrap kit: the initial
 * list (nothing reconciled yet) and `Synced` in one chunk, as an informer's first list arrives; then
 * releases cycling installing → retrying → installed → installing ... in chunks of 250, each release
 * a third of a cycle apart from its neighbours so the census is never all installed and the gate
 * cannot decide early; then Ready for every release not installed yet, the last of which decides
 * `ready`.
 *
 * `repeats`: how many further watch events follow each change without changing the derived state.
 * With 0 every Observed changes its release's state and goes all the way through `project`: the
 * worst case. A real watch mostly delivers repeats: helm-controller patches a release's status several
 * times per reconcile (progress messages, history, observedGeneration, lastAttempted* fields) and the
 * watch re-lists every release at each resync; the original deduplicated exactly these ("resyncs,
 * observedGeneration touches and recensus repeats produce nothing", helmwatch §3.2). Repeats are
 * derived and stop at the gate.
 */
export const script = (
  events: number,
  repeats = 0
): { readonly chunks: ReadonlyArray<Chunk.Chunk<ClusterWatch.ReleaseEvent>>; readonly changes: number } => {
  const kit = bootstrapKit
  let resourceVersion = 1
  const initial = [...kit.map((release) => observed(release, [], resourceVersion++)), ClusterWatch.ReleaseEvent.Synced()]
  // The tail needs at most one event per release; the churn takes the rest.
  const phase = new Map<string, number>()
  const churn: Array<ClusterWatch.ReleaseEvent> = []
  const churnChanges = Math.max(0, Math.floor((events - initial.length - kit.length) / (1 + repeats)))
  for (let sequence = 0; sequence < churnChanges; sequence++) {
    const index = sequence % kit.length
    const release = kit[index]!
    const step = (Math.floor(sequence / kit.length) + index) % cycle.length
    phase.set(release.name, step)
    for (let copy = 0; copy <= repeats; copy++) churn.push(observed(release, cycle[step]!, resourceVersion++))
  }
  const unfinished = kit.filter((release) => phase.get(release.name) !== cycle.length - 1)
  const tail = unfinished.map((release) => observed(release, installSucceeded, resourceVersion++))
  const rest = [...churn, ...tail]
  const chunks: Array<Chunk.Chunk<ClusterWatch.ReleaseEvent>> = [Chunk.unsafeFromArray(initial)]
  for (let offset = 0; offset < rest.length; offset += 250) chunks.push(Chunk.unsafeFromArray(rest.slice(offset, offset + 250)))
  return { chunks, changes: kit.length + churnChanges + tail.length }
}

interface StatementCounts {
  statements: number
  transactions: number
}

/**
 * Counts what is sent to PGlite: each statement is a round trip to the store (over a network with
 * Postgres), and a transaction opens with BEGIN. The client's only ways in are `query` and `exec`.
 */
const countStatements = (db: typeof Pglite.Service, counts: StatementCounts) => {
  const query = db.query.bind(db)
  const exec = db.exec.bind(db)
  const count = (sql: string) => {
    counts.statements++
    if (/^\s*BEGIN\b/i.test(sql)) counts.transactions++
  }
  db.query = ((sql: string, ...rest: Array<never>) => {
    count(sql)
    return query(sql, ...rest)
  }) as typeof db.query
  db.exec = ((sql: string, ...rest: Array<never>) => {
    count(sql)
    return exec(sql, ...rest)
  }) as typeof db.exec
}

export interface IngestResult {
  readonly events: number
  readonly eventsPerSecond: number
  readonly roundTripsPerEvent: number
  readonly transactionsPerEvent: number
}

/**
 * The server's composition (Main.coreLayer) minus HTTP, DNS, mesh and handover: SqlStore over
 * PGlite on disk, the orchestrator, the simulator's cloud at 10,000× (Phase 0 is not measured, only
 * got through honestly) with its kubeconfig call-back put straight into the store, and the scripted
 * watch. The clock runs from the moment Phase 1 starts pulling the watch stream to the moment the
 * committed `ready` status is announced: every event has then been through the gate, projected and
 * persisted, the flow published and the region's health patched.
 */
export const ingest = async (
  events: number,
  repeats = 0,
  options: {
    /**
     * The server's tracing layer (`Tracing.layer`) under the composition, the watch then decorated as
     * the server does (`Instrumented.watch`): what tracing costs is measured with it on and off.
     */
    readonly tracing?: Layer.Layer<never>
    /** Runs under a lease (`SqlLeases`, as every server does): each write of the run then checks its fencing epoch. */
    readonly leases?: boolean
  } = {}
): Promise<IngestResult> => {
  const { chunks, changes } = script(events, repeats)
  // On disk, as the server keeps it (SOVEREIGN_DATA_DIR).
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-ingest-"))
  const scripted = chunks.reduce((n, chunk) => n + Chunk.size(chunk), 0)
  const counts: StatementCounts = { statements: 0, transactions: 0 }
  const marks = { startedAt: 0, attached: 0, countsAtStart: { ...counts } }
  const watch: ClusterWatch.ClusterWatchService = {
    watch: () =>
      Stream.suspend(() => {
        // A second attach would replay the script and measure something else.
        if (marks.attached++ > 0) return Stream.dieMessage("the scripted watch was attached twice")
        marks.startedAt = performance.now()
        marks.countsAtStart = { ...counts }
        // A real watch stays open after its last event; the gate's decision ends it.
        return Stream.concat(Stream.fromChunks(...chunks), Stream.never)
      })
  }
  const storage = SqlStore.layer().pipe(
    Layer.provideMerge(SecretBox.layerKey(Buffer.alloc(32, 1))),
    Layer.provideMerge(Database.layerPglite(path.join(dataDir, "pgdata")))
  )
  const cloud = SimulatorCloud.layer.pipe(
    Layer.provide(SimulatorWorld.layer({ speed: 10_000, seed: 1, faults: SimulatorConfig.noFaults })),
    Layer.provide(SqlSimulatorStore.layer({ shared: false })),
    Layer.provide(Simulator.deliverToKubeconfigs)
  )
  const orchestrator = Orchestrator.layer.pipe(
    Layer.provide(
      Layer.mergeAll(
        cloud,
        Layer.succeed(ClusterWatch.ClusterWatch, options.tracing === undefined ? watch : Instrumented.watch(watch)),
        Ids.layerCrypto,
        KubeconfigInspector.layer,
        // A broken composition fails in seconds instead of waiting the production 15 minutes for a call-back.
        Orchestrator.layerSettings({ kubeconfigArrivalTimeout: Duration.seconds(30) })
      )
    )
  )
  const leased =
    options.leases === true
      ? orchestrator.pipe(Layer.provide(SqlLeases.layer({ ttl: Duration.seconds(15), exclusive: true, notify: false })))
      : orchestrator
  const composed = leased.pipe(Layer.provideMerge(storage))
  const runtime = ManagedRuntime.make(options.tracing === undefined ? composed : composed.pipe(Layer.provide(options.tracing)))
  try {
    countStatements(await runtime.runPromise(Pglite), counts)
    const program = Effect.gen(function* () {
      const repo = yield* DeploymentRepo.DeploymentRepo
      const jobs = yield* JobRepo.JobRepo
      const record = yield* Effect.orDie(
        Effect.flatMap(Orchestrator.Orchestrator, (o) => o.create(requestJson("ingest.example.com", 1), "bench@example.com"))
      )
      const outcome = yield* repo.tail(record.id, 0).pipe(
        Stream.filter(
          (event) => event.type === "status" && (event.state === "ready" || event.state === "failed" || event.state === "partial-failure")
        ),
        Stream.runHead,
        Effect.orDie,
        Effect.timeoutFail({
          duration: Duration.minutes(10),
          onTimeout: () => new Error("the deployment did not conclude within 10 minutes")
        })
      )
      const endedAt = performance.now()
      const ended = { ...counts }
      const state = Option.getOrUndefined(Option.flatMapNullable(outcome, (event) => event.state))
      if (state !== "ready") {
        const last = yield* Effect.orDie(repo.get(record.id))
        return yield* Effect.dieMessage(
          `the deployment ended ${state}: ${Option.getOrUndefined(Option.flatMapNullable(last, (r) => r.error))}`
        )
      }
      // The figure is only worth something if the path really did the work.
      const stored = yield* Effect.orDie(jobs.list(record.id))
      const installs = stored.filter((job) => job.status === "succeeded" && job.jobName.startsWith("install-"))
      if (installs.length < bootstrapKit.length)
        return yield* Effect.dieMessage(`only ${installs.length} of ${bootstrapKit.length} install jobs succeeded`)
      const projected = (yield* Effect.orDie(repo.events(record.id, 0))).filter((event) => event.type === "component").length
      if (projected !== changes) return yield* Effect.dieMessage(`${projected} of the ${changes} scripted changes were projected`)
      const seconds = (endedAt - marks.startedAt) / 1000
      return {
        events: scripted,
        eventsPerSecond: scripted / seconds,
        roundTripsPerEvent: (ended.statements - marks.countsAtStart.statements) / scripted,
        transactionsPerEvent: (ended.transactions - marks.countsAtStart.transactions) / scripted
      }
    })
    return await runtime.runPromise(program)
  } finally {
    await runtime.dispose()
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}
