/**
 * The deployment page: the live flow graph, beside it the deployment in words (status, per-region
 * Phase 0 and Phase 1, DNS and its plan, mesh per region, handover URL), the operator's actions, the
 * chain that holds a selected job, and the job drawer (executions, timings, paged live logs).
 *
 * Two streams per tab: the flow (graph) and the deployment's events (which refresh the state, at
 * most once a second). The graph is not Preact's: `FlowController` owns that DOM and patches it.
 */
import { useEffect, useRef, useState } from "preact/hooks"
import { api, call, describe, type Answer } from "./api.js"
import { blockingChain } from "./graph/analysis.js"
import { FlowController } from "./graph/controller.js"
import { Link, navigate } from "./router.js"
import * as Sse from "./stream.js"
import { StatusChip, duration, time } from "./ui.js"

interface RegionResult {
  readonly regionKey: string
  readonly cloudRegion: string
  readonly primary: boolean
  readonly phase0: string
  readonly phase1?: { readonly installed: number; readonly total: number; readonly failed: number; readonly state: string }
  readonly error?: string
}
interface MeshRegion {
  readonly regionKey: string
  readonly clusterName: string
  readonly peers: ReadonlyArray<{ readonly name: string; readonly configured: boolean; readonly error?: string }>
  readonly error?: string
  readonly readyAt?: number
}
interface DeploymentState {
  readonly id: string
  readonly status: string
  readonly owner: string
  readonly request: { readonly sovereignFQDN: string; readonly regions: ReadonlyArray<{ readonly cloudRegion: string }> }
  readonly results: {
    readonly regions: ReadonlyArray<RegionResult>
    readonly phase1Outcome?: string
    readonly dns?: {
      readonly at: number
      readonly created: number
      readonly updated: number
      readonly deleted: number
      readonly warnings: ReadonlyArray<string>
    }
    readonly mesh?: ReadonlyArray<MeshRegion>
  }
  readonly error?: string
  readonly createdAt: number
  readonly phase1StartedAt?: number
  readonly finishedAt?: number
  readonly handoverURL?: string
}

const statusWords: Readonly<Record<string, string>> = {
  pending: "Accepted; waiting to start.",
  provisioning: "Phase 0: creating the cloud resources of every region.",
  "phase1-watching": "Phase 1: the clusters install the bootstrap kit; watching every region.",
  ready: "Ready: every region is installed. Hand it over (finalise) when the owner has taken it.",
  failed: "Failed. Retry resumes from the first unfinished step; wipe removes everything.",
  "partial-failure": "Partly failed: some regions did not finish. Retry or wipe.",
  wiping: "Wiping: cloud resources and DNS records are being removed.",
  wiped: "Wiped: nothing of it is left in the cloud. Delete the record when you no longer need it.",
  adopted: "Handed over to its owner."
}

const Progress = (props: { readonly done: number; readonly total: number; readonly label: string }) => (
  <span class="progress" title={props.label}>
    <progress max={Math.max(1, props.total)} value={props.done} aria-label={props.label} /> {props.done}/{props.total}
  </span>
)

// ---------------------------------------------------------------------------------------------
// Side panel

const SidePanel = (props: { readonly state: DeploymentState }) => {
  const { state } = props
  const [plan, setPlan] = useState<Answer | undefined>(undefined)
  return (
    <section class="facts" aria-label="Deployment">
      <p class="words" data-deployment-status={state.status}>
        <StatusChip status={state.status} /> {statusWords[state.status] ?? state.status}
      </p>
      {state.error !== undefined && <p class="error">{state.error}</p>}
      {state.handoverURL !== undefined && (
        <p class="handover">
          Handover:{" "}
          <a href={state.handoverURL} target="_blank" rel="noreferrer noopener">
            {state.handoverURL}
          </a>
        </p>
      )}
      <table class="regions">
        <thead>
          <tr>
            <th>Region</th>
            <th>Phase 0</th>
            <th>Phase 1</th>
            <th>Mesh</th>
          </tr>
        </thead>
        <tbody>
          {state.results.regions.map((region) => {
            const mesh = state.results.mesh?.find((entry) => entry.regionKey === region.regionKey)
            const peers = mesh?.peers ?? []
            return (
              <tr data-region={region.regionKey}>
                <td>
                  {region.regionKey}
                  {region.primary ? " (primary)" : ""}
                </td>
                <td>
                  <StatusChip status={region.phase0} />
                </td>
                <td>
                  {region.phase1 === undefined ? (
                    "—"
                  ) : (
                    <>
                      <Progress done={region.phase1.installed} total={region.phase1.total} label={`Phase 1 of ${region.regionKey}`} />{" "}
                      {region.phase1.state}
                      {region.phase1.failed > 0 ? `, ${region.phase1.failed} failed` : ""}
                    </>
                  )}
                  {region.error !== undefined && <div class="error">{region.error}</div>}
                </td>
                <td>
                  {mesh === undefined ? (
                    "—"
                  ) : mesh.error !== undefined ? (
                    <span class="error">{mesh.error}</span>
                  ) : (
                    <>
                      {peers.filter((peer) => peer.configured).length}/{peers.length} peers
                      {peers
                        .filter((peer) => peer.error !== undefined)
                        .map((peer) => (
                          <div class="error">
                            {peer.name}: {peer.error}
                          </div>
                        ))}
                    </>
                  )}
                </td>
              </tr>
            )
          })}
        </tbody>
      </table>
      <p class="dns">
        DNS:{" "}
        {state.results.dns === undefined
          ? "not published yet"
          : `${state.results.dns.created} created, ${state.results.dns.updated} updated, ${state.results.dns.deleted} deleted at ${time(state.results.dns.at)}`}
        {state.results.dns?.warnings.map((warning) => (
          <span class="warning"> {warning}</span>
        ))}{" "}
        <button type="button" class="link" onClick={async () => setPlan(await call("GET", api.dnsPlan(state.id)))}>
          DNS plan
        </button>
      </p>
      {plan !== undefined && (
        <div class="plan">
          {plan.ok ? (
            (plan.body.plans as ReadonlyArray<any>).map((zone) => (
              <div>
                <b>{zone.zone}</b> {zone.applied ? "(applied)" : "(not applied)"}: {zone.changes.create.length} to create,{" "}
                {zone.changes.update.length} to update, {zone.changes.delete.length} to delete
                <ul>
                  {[
                    ...zone.changes.create.map((r: any) => ["+", r]),
                    ...zone.changes.update.map((r: any) => ["~", r]),
                    ...zone.changes.delete.map((r: any) => ["−", r])
                  ]
                    .slice(0, 40)
                    .map(([sign, record]) => (
                      <li>
                        <code>
                          {sign} {record.name ?? JSON.stringify(record)} {record.type ?? ""}{" "}
                          {Array.isArray(record.records) ? record.records.join(" ") : (record.content ?? "")}
                        </code>
                      </li>
                    ))}
                </ul>
              </div>
            ))
          ) : (
            <span>The server answered {describe(plan)}</span>
          )}
        </div>
      )}
      <p class="times">
        Started {time(state.createdAt)}
        {state.finishedAt !== undefined ? ` · finished ${time(state.finishedAt)}` : ""} · owner {state.owner}
      </p>
    </section>
  )
}

// ---------------------------------------------------------------------------------------------
// Actions

const guardMs = 30 * 60 * 1000
const inFlightStatuses = new Set(["pending", "provisioning", "phase1-watching", "wiping"])

const Actions = (props: { readonly state: DeploymentState; readonly refresh: () => void }) => {
  const { state } = props
  const fqdn = state.request.sovereignFQDN
  const [answer, setAnswer] = useState<string | undefined>(undefined)
  const [dialog, setDialog] = useState<"wipe" | "delete" | undefined>(undefined)
  const [typed, setTyped] = useState("")
  const [force, setForce] = useState(false)
  const [mode, setMode] = useState<"record-only" | "record-and-wipe">("record-only")
  const [busy, setBusy] = useState(false)
  // a 409 to a wipe (the Phase-1 guard) offers force even when the page's clock thinks otherwise
  const [refused, setRefused] = useState(false)
  const pendingDelete = useRef(false)
  const act = async (label: string, run: () => Promise<Answer>) => {
    setBusy(true)
    const result = await run()
    setBusy(false)
    setAnswer(`${label}: ${describe(result)}`)
    props.refresh()
    return result
  }
  const young =
    refused || (state.status === "phase1-watching" && state.phase1StartedAt !== undefined && Date.now() - state.phase1StartedAt < guardMs)
  const wipe = async () => {
    const result = await act("Wipe", () => call("POST", `${api.deployment(state.id)}/wipe${force ? "?force=true" : ""}`))
    if (result.status === 409) setRefused(true)
    return result
  }
  const deleteRecord = async () => {
    const result = await act("Delete", () => call("DELETE", api.deployment(state.id)))
    if (result.ok) navigate("/")
  }
  return (
    <section class="actions-panel" aria-label="Actions">
      <div class="buttons">
        <button
          type="button"
          disabled={busy || !(state.status === "failed" || state.status === "partial-failure")}
          onClick={() => act("Retry", () => call("POST", `${api.deployment(state.id)}/retry`))}
        >
          Retry
        </button>
        <button
          type="button"
          disabled={busy || state.status !== "ready"}
          onClick={() => act("Finalise", () => call("POST", `${api.deployment(state.id)}/finalise`))}
        >
          Finalise
        </button>
        <button
          type="button"
          class="danger"
          disabled={busy || state.status === "adopted" || state.status === "wiped"}
          onClick={() => {
            setDialog("wipe")
            setTyped("")
          }}
        >
          Wipe…
        </button>
        <button
          type="button"
          class="danger"
          disabled={busy || state.status === "adopted"}
          onClick={() => {
            setDialog("delete")
            setTyped("")
          }}
        >
          Delete…
        </button>
      </div>
      {dialog !== undefined && (
        <form
          class="confirm"
          data-dialog={dialog}
          onSubmit={async (event) => {
            event.preventDefault()
            if (typed !== fqdn) return
            setDialog(undefined)
            if (dialog === "wipe") {
              await wipe()
            } else if (mode === "record-only") {
              await deleteRecord()
            } else {
              if (state.status === "wiped") await deleteRecord()
              else if ((await wipe()).ok) pendingDelete.current = true
            }
          }}
        >
          {dialog === "wipe" ? (
            <p>
              Wiping removes every cloud resource and DNS record of <b>{fqdn}</b>. Type the FQDN to confirm.
            </p>
          ) : (
            <>
              <p>
                Delete <b>{fqdn}</b>:
              </p>
              <label>
                <input
                  type="radio"
                  name="mode"
                  value="record-only"
                  checked={mode === "record-only"}
                  onChange={() => setMode("record-only")}
                />{" "}
                the record only (its cloud resources stay)
              </label>
              <label>
                <input
                  type="radio"
                  name="mode"
                  value="record-and-wipe"
                  checked={mode === "record-and-wipe"}
                  onChange={() => setMode("record-and-wipe")}
                />{" "}
                the record, after wiping everything it created
              </label>
              <p>Type the FQDN to confirm.</p>
            </>
          )}
          {(dialog === "wipe" || mode === "record-and-wipe") && young && (
            <label class="force">
              <input type="checkbox" name="force" checked={force} onChange={(event) => setForce(event.currentTarget.checked)} /> force:
              Phase 1 started less than 30 minutes ago
            </label>
          )}
          <input
            name="confirm"
            autocomplete="off"
            placeholder={fqdn}
            value={typed}
            onInput={(event) => setTyped(event.currentTarget.value)}
            aria-label="Type the FQDN to confirm"
          />
          <button type="submit" class="danger" disabled={typed !== fqdn}>
            {dialog === "wipe" ? "Wipe" : "Delete"}
          </button>
          <button type="button" onClick={() => setDialog(undefined)}>
            Cancel
          </button>
        </form>
      )}
      {answer !== undefined && (
        <p class="answer" role="status">
          {answer}
        </p>
      )}
      <DeleteAfterWipe state={state} pending={pendingDelete} run={deleteRecord} />
    </section>
  )
}

/** "Record and wipe": the record is deleted once the wipe has finished. */
const DeleteAfterWipe = (props: {
  readonly state: DeploymentState
  readonly pending: { current: boolean }
  readonly run: () => Promise<void>
}) => {
  useEffect(() => {
    if (props.pending.current && props.state.status === "wiped") {
      props.pending.current = false
      void props.run()
    }
  }, [props.state.status])
  return props.pending.current ? <p class="answer">The record is deleted when the wipe has finished.</p> : null
}

// ---------------------------------------------------------------------------------------------
// Job drawer

interface Execution {
  readonly id: string
  readonly status: string
  readonly startedAt: number
  readonly finishedAt?: number
  readonly lineCount: number
}
interface LogLine {
  readonly lineNumber: number
  readonly timestamp: number
  readonly level: string
  readonly message: string
}

const pageSize = 200

const Logs = (props: { readonly deploymentId: string; readonly execution: Execution }) => {
  const [lines, setLines] = useState<ReadonlyArray<LogLine>>([])
  const [first, setFirst] = useState(1)
  const [total, setTotal] = useState(0)
  const [error, setError] = useState<string | undefined>(undefined)
  useEffect(() => {
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    let last = 0
    const page = (from: number) =>
      call<{ lines: ReadonlyArray<LogLine>; total: number; executionFinished: boolean }>(
        "GET",
        api.logs(props.deploymentId, props.execution.id, from, pageSize)
      )
    const start = async () => {
      // the newest page first
      let answer = await page(1)
      if (answer.ok && answer.body.total > pageSize) answer = await page(answer.body.total - pageSize + 1)
      if (stopped) return
      if (!answer.ok) return setError(describe(answer))
      setLines(answer.body.lines)
      setFirst(answer.body.lines[0]?.lineNumber ?? 1)
      setTotal(answer.body.total)
      last = answer.body.lines.at(-1)?.lineNumber ?? 0
      if (!answer.body.executionFinished) timer = setTimeout(follow, 2000)
    }
    // newest live: while the execution runs, the lines after the last one, every 2 s (not while hidden)
    const follow = async () => {
      if (document.hidden) {
        timer = setTimeout(follow, 2000)
        return
      }
      const answer = await page(last + 1)
      if (stopped || !answer.ok) return
      if (answer.body.lines.length > 0) {
        last = answer.body.lines.at(-1)!.lineNumber
        setLines((current) => [...current, ...answer.body.lines])
      }
      setTotal(answer.body.total)
      if (!answer.body.executionFinished) timer = setTimeout(follow, 2000)
    }
    void start()
    return () => {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
    }
  }, [props.deploymentId, props.execution.id])
  const older = async () => {
    const from = Math.max(1, first - pageSize)
    const answer = await call<{ lines: ReadonlyArray<LogLine> }>(
      "GET",
      api.logs(props.deploymentId, props.execution.id, from, first - from)
    )
    if (!answer.ok) return setError(describe(answer))
    setLines((current) => [...answer.body.lines, ...current])
    setFirst(from)
  }
  return (
    <div class="logs">
      {first > 1 && (
        <button type="button" class="link" onClick={older}>
          Older lines ({first - 1} more)
        </button>
      )}
      {error !== undefined && <p class="error">{error}</p>}
      <ol class="log-lines" start={first} data-total={total}>
        {lines.map((line) => (
          <li key={line.lineNumber} data-level={line.level}>
            <time>{time(line.timestamp).slice(11)}</time> <span class="level">{line.level}</span> {line.message}
          </li>
        ))}
      </ol>
      {lines.length === 0 && error === undefined && <p>No log lines.</p>}
    </div>
  )
}

/** "Why is this not done?": the chain that holds the selected job, each step selectable. */
const Chain = (props: {
  readonly label: string
  readonly chain: ReturnType<typeof blockingChain>
  readonly controller: FlowController
}) => (
  <section class="chain" aria-label="Why is this not done?">
    <h2>Why is {props.label} not done?</h2>
    <p class="summary" data-chain-summary>
      {props.chain.summary}
    </p>
    <ul>
      {props.chain.steps.map((step) => (
        <li style={{ marginLeft: `${step.depth}em` }}>
          <button
            type="button"
            class="link"
            data-chain-step={step.id}
            onClick={() => {
              props.controller.reveal(step.id)
              props.controller.select(step.id)
            }}
          >
            {step.text}
          </button>
        </li>
      ))}
    </ul>
  </section>
)

const Drawer = (props: {
  readonly deploymentId: string
  readonly jobId: string
  readonly status: string | undefined
  readonly close: () => void
  readonly children?: preact.ComponentChildren
}) => {
  const jobName = props.jobId.startsWith(props.deploymentId + ":") ? props.jobId.slice(props.deploymentId.length + 1) : props.jobId
  const [job, setJob] = useState<Answer | undefined>(undefined)
  const [chosen, setChosen] = useState<string | undefined>(undefined)
  useEffect(() => {
    let stopped = false
    void call("GET", api.job(props.deploymentId, jobName)).then((answer) => !stopped && setJob(answer))
    return () => {
      stopped = true
    }
  }, [props.deploymentId, jobName, props.status])
  const executions: ReadonlyArray<Execution> = job?.ok ? job.body.executions : []
  const execution = executions.find((entry) => entry.id === chosen) ?? executions.at(-1)
  const data = job?.ok ? job.body.job : undefined
  return (
    <aside class="drawer" aria-label="Job" data-drawer-job={props.jobId}>
      <header>
        <b>{data?.displayName ?? jobName}</b> {data !== undefined && <StatusChip status={data.status} />}
        <button type="button" class="close" aria-label="Close" onClick={props.close}>
          ×
        </button>
      </header>
      {props.children}
      {job !== undefined && !job.ok && <p class="error">The server answered {describe(job)}</p>}
      {data !== undefined && (
        <dl class="timings">
          <dt>Job</dt>
          <dd>
            <code>{data.jobName}</code>
            {data.region ? ` in ${data.region}` : ""}
          </dd>
          <dt>Started</dt>
          <dd>{time(data.startedAt)}</dd>
          <dt>Finished</dt>
          <dd>{time(data.finishedAt)}</dd>
          <dt>Duration</dt>
          <dd>{duration(data.startedAt === undefined ? undefined : (data.finishedAt ?? Date.now()) - data.startedAt)}</dd>
          {data.dependsOn.length > 0 && (
            <>
              <dt>Depends on</dt>
              <dd>{data.dependsOn.join(", ")}</dd>
            </>
          )}
          {data.reason !== undefined && (
            <>
              <dt>Reason</dt>
              <dd>{data.reason}</dd>
            </>
          )}
        </dl>
      )}
      {executions.length > 0 && (
        <>
          <h3>Executions</h3>
          <ol class="executions">
            {executions.map((entry, index) => (
              <li>
                <button
                  type="button"
                  class={`link${entry === execution ? " current" : ""}`}
                  data-execution-id={entry.id}
                  onClick={() => setChosen(entry.id)}
                >
                  #{index + 1} {entry.status} · {time(entry.startedAt).slice(11)} ·{" "}
                  {duration((entry.finishedAt ?? Date.now()) - entry.startedAt)} · {entry.lineCount} lines
                </button>
              </li>
            ))}
          </ol>
        </>
      )}
      {data !== undefined && executions.length === 0 && <p>Not started yet: no executions, no logs.</p>}
      {execution !== undefined && <Logs key={execution.id} deploymentId={props.deploymentId} execution={execution} />}
    </aside>
  )
}

// ---------------------------------------------------------------------------------------------
// The page

export const DeploymentPage = (props: { readonly id: string }) => {
  const graphRoot = useRef<HTMLDivElement>(null)
  const controller = useRef<FlowController | undefined>(undefined)
  const [state, setState] = useState<DeploymentState | undefined>(undefined)
  const [missing, setMissing] = useState<string | undefined>(undefined)
  const [selected, setSelected] = useState<string | undefined>(undefined)
  const [, setTick] = useState(0)
  const [streamState, setStreamState] = useState("connecting")
  const [events, setEvents] = useState<ReadonlyArray<{ readonly seq: number; readonly message: string; readonly level: string }>>([])
  const refresh = useRef<() => void>(() => undefined)
  const openEvents = useRef<() => void>(() => undefined)

  useEffect(() => {
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    let lastLoad = 0
    const load = async () => {
      timer = undefined
      lastLoad = Date.now()
      const answer = await call<DeploymentState>("GET", api.deployment(props.id))
      if (stopped) return
      if (answer.ok) {
        setState(answer.body)
        if (inFlightStatuses.has(answer.body.status)) openEvents.current()
      } else setMissing(describe(answer))
    }
    // at most one state request a second, however many events arrive
    refresh.current = () => {
      if (timer !== undefined) return
      timer = setTimeout(load, Math.max(0, 1000 - (Date.now() - lastLoad)))
    }
    void load()
    const graph = new FlowController(graphRoot.current!, props.id, {
      changed: () => setTick((tick) => tick + 1),
      select: (id) => setSelected(id),
      streamState: setStreamState
    })
    controller.current = graph
    graph.start()
    // The events stream ends (`done`) once the deployment is no longer in flight; an action (retry,
    // wipe) puts it in flight again, and the stream is opened again after the last event seen.
    let eventStream: Sse.Stream | undefined
    openEvents.current = () => {
      if (stopped || (eventStream !== undefined && !eventStream.ended())) return
      const after = eventStream?.lastEventId()
      eventStream = Sse.open(
        api.events(props.id),
        {
          onEvent: (event, data) => {
            if (event === "heartbeat") return
            try {
              const parsed = JSON.parse(data) as { seq?: number; message?: string; level?: string }
              if (typeof parsed.seq === "number") {
                const entry = { seq: parsed.seq, message: parsed.message ?? event, level: parsed.level ?? "info" }
                setEvents((current) => (current.some((e) => e.seq === entry.seq) ? current : [...current.slice(-49), entry]))
              }
            } catch {
              // ignored
            }
            refresh.current()
          },
          endsOn: (event) => event === "done"
        },
        after
      )
    }
    openEvents.current()
    return () => {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
      graph.stop()
      eventStream?.close()
    }
  }, [props.id])

  const graph = controller.current
  const flow = graph?.model.flow
  const node = selected === undefined ? undefined : graph?.model.nodes.get(selected)
  const chain = node !== undefined && graph !== undefined && node.status !== "succeeded" ? blockingChain(graph.model, node.id) : undefined
  useEffect(() => {
    graph?.view.mark("chain", chain?.ids ?? new Set())
  })
  const isJob = node !== undefined && graph !== undefined && !graph.model.children.has(node.id) && node.family !== "group"

  if (missing !== undefined) {
    return (
      <main class="page">
        <h1>Deployment {props.id}</h1>
        <p class="error" role="alert">
          The server answered {missing}
        </p>
        <Link href="/">Back to the list</Link>
      </main>
    )
  }
  return (
    <main class="deployment">
      <div class="title">
        <h1>{state?.request.sovereignFQDN ?? props.id}</h1>
        <span class="flow-status" data-flow-status={flow?.status ?? ""}>
          flow: {flow?.status ?? "…"}
        </span>
        <span class="stream" data-stream={streamState}>
          {streamState}
        </span>
      </div>
      <div class="layout">
        <div class="graph-column">
          <div class="graph" ref={graphRoot} aria-label="Flow graph" />
          {chain !== undefined && node !== undefined && !isJob && <Chain label={node.label} chain={chain} controller={graph!} />}
        </div>
        <div class="side">
          {state === undefined ? (
            <p>Loading…</p>
          ) : (
            <>
              <SidePanel state={state} />
              <Actions state={state} refresh={() => refresh.current()} />
            </>
          )}
          <section class="events" aria-label="Events">
            <h2>Events</h2>
            <ol>
              {events
                .slice()
                .reverse()
                .slice(0, 12)
                .map((event) => (
                  <li data-level={event.level}>{event.message}</li>
                ))}
            </ol>
          </section>
        </div>
      </div>
      {isJob && selected !== undefined && (
        <Drawer deploymentId={props.id} jobId={selected} status={node?.status} close={() => graph?.select(undefined)}>
          {chain !== undefined && node !== undefined && <Chain label={node.label} chain={chain} controller={graph!} />}
        </Drawer>
      )}
    </main>
  )
}
