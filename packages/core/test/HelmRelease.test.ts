import { describe, expect, it } from "@effect/vitest"
import { Duration, Schema } from "effect"
import * as fc from "fast-check"
import * as HelmRelease from "../src/HelmRelease.js"
import { ReleaseEvent } from "../src/ClusterWatch.js"

type Observation = HelmRelease.HelmReleaseObservation
type Condition = HelmRelease.Condition

const ready = (status: Condition["status"], reason?: string, message?: string): Condition => ({
  type: "Ready",
  status,
  ...(reason === undefined ? {} : { reason }),
  ...(message === undefined ? {} : { message })
})
const stalled: Condition = { type: "Stalled", status: "True", reason: "RetriesExceeded", message: "install retries exhausted" }

const release = (name: string, conditions: ReadonlyArray<Condition>, extra: Partial<Observation> = {}): Observation => ({
  name,
  namespace: "flux-system",
  generation: 1,
  observedGeneration: 1,
  suspend: false,
  conditions,
  dependsOn: [],
  ...extra
})

const withoutObservedGeneration = (observation: Observation): Observation => {
  const { observedGeneration: _omitted, ...rest } = observation
  return rest
}

describe("HelmRelease.deriveState: one test per row of SPEC 2.6", () => {
  const rows: ReadonlyArray<readonly [string, Observation, HelmRelease.ComponentState, boolean]> = [
    ["2 spec.suspend → installed (suspended)", release("bp-a", [ready("False", "InstallFailed")], { suspend: true }), "installed", true],
    ["3 no Ready condition → pending", release("bp-a", [{ type: "Reconciling", status: "True" }]), "pending", false],
    ["3 no conditions at all → pending", release("bp-a", []), "pending", false],
    [
      "4 observedGeneration < generation → installing",
      release("bp-a", [ready("True")], { generation: 3, observedGeneration: 2 }),
      "installing",
      false
    ],
    ["5 Ready=True → installed", release("bp-a", [ready("True", "InstallSucceeded")]), "installed", false],
    ["6 Ready=Unknown → installing", release("bp-a", [ready("Unknown", "Progressing")]), "installing", false],
    ["7 Ready=False and Stalled=True → failed", release("bp-a", [ready("False", "InstallFailed"), stalled]), "failed", false],
    ["7 Ready=False reason RetriesExceeded → failed", release("bp-a", [ready("False", "RetriesExceeded")]), "failed", false],
    ["8 Ready=False reason DependencyNotReady → pending", release("bp-a", [ready("False", "DependencyNotReady")]), "pending", false],
    [
      "8 Ready=False message dependency '…' is not ready → pending",
      release("bp-a", [ready("False", "ReconciliationFailed", "dependency 'flux-system/bp-cert-manager' is not ready")]),
      "pending",
      false
    ],
    ["9 Ready=False reason InstallFailed → retrying", release("bp-a", [ready("False", "InstallFailed")]), "retrying", false],
    ["9 Ready=False reason UpgradeFailed → retrying", release("bp-a", [ready("False", "UpgradeFailed")]), "retrying", false],
    ["9 Ready=False reason ChartPullError → retrying", release("bp-a", [ready("False", "ChartPullError")]), "retrying", false],
    ["9 Ready=False reason ChartLoadError → retrying", release("bp-a", [ready("False", "ChartLoadError")]), "retrying", false],
    ["9 Ready=False reason ArtifactFailed → retrying", release("bp-a", [ready("False", "ArtifactFailed")]), "retrying", false],
    ["10 Ready=False reason TestFailed → installing", release("bp-a", [ready("False", "TestFailed")]), "installing", false],
    ["10 Ready=False without a reason → installing", release("bp-a", [ready("False")]), "installing", false]
  ]

  it.each(rows)("%s", (_row, observation, state, suspended) => {
    const derived = HelmRelease.deriveState(observation)
    expect(derived.state).toBe(state)
    expect(derived.suspended).toBe(suspended)
  })
})

describe("HelmRelease.deriveState: the first matching rule wins", () => {
  const orderings: ReadonlyArray<readonly [string, Observation, HelmRelease.ComponentState]> = [
    ["2 before 3: suspended without a Ready condition", release("bp-a", [], { suspend: true }), "installed"],
    ["2 before 7: suspended and stalled", release("bp-a", [ready("False", "InstallFailed"), stalled], { suspend: true }), "installed"],
    ["3 before 4: no Ready and a stale generation", release("bp-a", [], { generation: 2, observedGeneration: 1 }), "pending"],
    [
      "4 before 5: Ready=True for an older generation",
      release("bp-a", [ready("True")], { generation: 2, observedGeneration: 1 }),
      "installing"
    ],
    [
      "4 before 7: stalled for an older generation",
      release("bp-a", [ready("False", "RetriesExceeded"), stalled], { generation: 2, observedGeneration: 1 }),
      "installing"
    ],
    ["5 before 7: Ready=True although Stalled=True lingers", release("bp-a", [ready("True"), stalled]), "installed"],
    ["6 before 7: Ready=Unknown although Stalled=True lingers", release("bp-a", [ready("Unknown"), stalled]), "installing"],
    [
      "7 before 8: RetriesExceeded with a dependency message",
      release("bp-a", [ready("False", "RetriesExceeded", "dependency 'flux-system/bp-x' is not ready")]),
      "failed"
    ],
    ["7 before 8: stalled while DependencyNotReady", release("bp-a", [ready("False", "DependencyNotReady"), stalled]), "failed"],
    ["7 before 9: InstallFailed and stalled", release("bp-a", [ready("False", "InstallFailed"), stalled]), "failed"],
    [
      "8 before 9: InstallFailed with a dependency message",
      release("bp-a", [ready("False", "InstallFailed", "dependency 'flux-system/bp-x' is not ready")]),
      "pending"
    ],
    [
      "8 before 10: an unknown reason with a dependency message",
      release("bp-a", [ready("False", "Whatever", "Dependency 'flux-system/bp-x' is not ready")]),
      "pending"
    ],
    ["Stalled=False does not fail", release("bp-a", [ready("False", "InstallFailed"), { type: "Stalled", status: "False" }]), "retrying"],
    ["reasons match exactly (installfailed is another reason)", release("bp-a", [ready("False", "installfailed")]), "installing"],
    [
      "a missing observedGeneration is not stale",
      withoutObservedGeneration(release("bp-a", [ready("True")], { generation: 5 })),
      "installed"
    ]
  ]

  it.each(orderings)("%s", (_name, observation, state) => {
    expect(HelmRelease.deriveState(observation).state).toBe(state)
  })
})

describe("HelmRelease.deriveState messages", () => {
  it("carry Flux's own Ready message", () => {
    const derived = HelmRelease.deriveState(
      release("bp-a", [ready("False", "InstallFailed", "install retries exhausted: timed out waiting")])
    )
    expect(derived.message).toBe("install retries exhausted: timed out waiting")
  })

  it("fall back to a text per state when Flux gave none", () => {
    expect(HelmRelease.deriveState(release("bp-a", [])).message).toBe("HelmRelease observed, waiting for its first reconcile")
    expect(HelmRelease.deriveState(release("bp-a", [ready("True", "InstallSucceeded", "")])).message).toBe(
      "Helm install complete (Ready=True)"
    )
  })

  it("say which generation is not reconciled yet", () => {
    expect(HelmRelease.deriveState(release("bp-a", [ready("True")], { generation: 3, observedGeneration: 2 })).message).toBe(
      "generation 3 not reconciled yet (last reconciled 2)"
    )
  })

  it("say that a suspended release counts as installed", () => {
    expect(HelmRelease.deriveState(release("bp-a", [], { suspend: true })).message).toMatch(/suspended.*counted as installed/)
  })
})

describe("HelmRelease.jobStatusOf", () => {
  it.each([
    ["installed", "succeeded"],
    ["failed", "failed"],
    ["pending", "pending"],
    ["installing", "running"],
    ["retrying", "running"]
  ] as const)("%s → %s", (state, status) => {
    expect(HelmRelease.jobStatusOf(state)).toBe(status)
  })

  it("terminal states are exactly installed and failed", () => {
    expect(HelmRelease.ComponentState.literals.filter(HelmRelease.isTerminalState)).toEqual(["installed", "failed"])
  })
})

// ---------------------------------------------------------------------------------------------
// The gate

const minute = 60_000
const t0 = 1_700_000_000_000
const at = (minutes: number) => t0 + minutes * minute

const { Deleted, Observed, Synced, Tick } = HelmRelease.GateInput
const installed = (name: string, dependsOn: ReadonlyArray<string> = []) => release(name, [ready("True", "InstallSucceeded")], { dependsOn })
const installing = (name: string, dependsOn: ReadonlyArray<string> = []) => release(name, [ready("Unknown", "Progressing")], { dependsOn })
const failed = (name: string) => release(name, [ready("False", "InstallFailed", `${name}: install retries exhausted`), stalled])
const waiting = (name: string, dependsOn: ReadonlyArray<string>) =>
  release(name, [ready("False", "DependencyNotReady", `dependency 'flux-system/${dependsOn[0]}' is not ready`)], { dependsOn })

const start = (options: Partial<HelmRelease.GateOptions> = {}) =>
  HelmRelease.makeGate({ ...HelmRelease.defaultGateOptions, ...options }, t0)
const run = (inputs: ReadonlyArray<HelmRelease.GateInput>, options: Partial<HelmRelease.GateOptions> = {}) =>
  HelmRelease.stepAll(start(options), inputs)
const tags = (notices: ReadonlyArray<HelmRelease.GateNotice>) => notices.map((notice) => notice._tag)
const completed = (notices: ReadonlyArray<HelmRelease.GateNotice>) =>
  notices.flatMap((notice) => (notice._tag === "Completed" ? [notice.outcome] : []))

describe("Phase1 gate: the initial-sync gate", () => {
  it("never completes before the initial list has synced, however ready the releases look", () => {
    const { gate, notices } = run([
      Observed({ release: installed("bp-a"), now: at(1) }),
      Observed({ release: installed("bp-b"), now: at(1) })
    ])
    expect(gate.outcome).toBeUndefined()
    expect(tags(notices)).toEqual(["ReleaseReported", "ReleaseReported"])
  })

  it("completes right at the sync when everything is already installed (a resumed watch)", () => {
    const { gate, notices } = run([
      Observed({ release: installed("bp-a"), now: at(0) }),
      Observed({ release: installed("bp-b", ["bp-a"]), now: at(0) }),
      Synced({ now: at(0) })
    ])
    expect(gate.outcome).toEqual({ _tag: "Ready", installed: 2, suspended: [], message: "Phase 1 finished: 2 release(s) installed" })
    expect(tags(notices)).toEqual(["ReleaseReported", "ReleaseReported", "Completed"])
  })

  it("after the sync, completes on the event that makes the last release terminal", () => {
    const before = run([
      Observed({ release: installed("bp-a"), now: at(0) }),
      Observed({ release: installing("bp-b"), now: at(0) }),
      Synced({ now: at(0) })
    ])
    expect(before.gate.outcome).toBeUndefined()
    const after = HelmRelease.step(before.gate, Observed({ release: installed("bp-b"), now: at(7) }))
    expect(after.gate.outcome?._tag).toBe("Ready")
    expect(HelmRelease.nextDeadline(after.gate)).toBeUndefined()
  })
})

describe("Phase1 gate: release events", () => {
  it("report the first observation of every release, even one already installed", () => {
    const { notices } = run([Observed({ release: installed("bp-a"), now: at(0) })])
    expect(notices).toEqual([
      HelmRelease.GateNotice.ReleaseReported({
        name: "bp-a",
        status: { state: "installed", suspended: false, message: "Helm install complete (Ready=True)" },
        dependsOn: [],
        first: true
      })
    ])
  })

  it("report a change once and a repeated identical observation not at all", () => {
    const { notices } = run([
      Observed({ release: installing("bp-a"), now: at(0) }),
      Observed({ release: installing("bp-a"), now: at(1) }),
      Observed({ release: installed("bp-a"), now: at(2) }),
      Observed({ release: installed("bp-a"), now: at(3) })
    ])
    expect(notices.map((notice) => notice._tag === "ReleaseReported" && [notice.status.state, notice.first])).toEqual([
      ["installing", true],
      ["installed", false]
    ])
  })

  it("report a change of dependencies, so the graph learns edges that arrive late", () => {
    const { notices } = run([
      Observed({ release: installing("bp-b"), now: at(0) }),
      Observed({ release: installing("bp-b", ["bp-a"]), now: at(1) })
    ])
    expect(notices.map((notice) => notice._tag === "ReleaseReported" && notice.dependsOn)).toEqual([[], ["bp-a"]])
  })

  it("report a failure the moment it is observed, before any outcome", () => {
    const { gate, notices } = run([
      Synced({ now: at(0) }),
      Observed({ release: installing("bp-b"), now: at(1) }),
      Observed({ release: failed("bp-a"), now: at(2) })
    ])
    expect(gate.outcome).toBeUndefined()
    const last = notices.at(-1)!
    expect(last._tag === "ReleaseReported" && last.status.state).toBe("failed")
  })
})

describe("Phase1 gate: outcomes", () => {
  it("an empty census is never ready: synced with nothing observed waits, then times out", () => {
    const synced = run([Synced({ now: at(0) }), Tick({ now: at(60) })])
    expect(synced.gate.outcome).toBeUndefined()
    const { gate } = HelmRelease.step(synced.gate, Tick({ now: at(120) }))
    expect(gate.outcome?._tag).toBe("TimedOut")
    if (gate.outcome?._tag === "TimedOut") {
      expect(gate.outcome.total).toBe(0)
      expect(gate.outcome.message).toMatch(/no HelmRelease named bp-\* was ever observed/)
    }
  })

  it("deleting every release empties the census, which is not ready", () => {
    const { gate } = run([
      Observed({ release: installing("bp-a"), now: at(0) }),
      Synced({ now: at(0) }),
      Deleted({ name: "bp-a", now: at(1) })
    ])
    expect(gate.outcome).toBeUndefined()
    expect(gate.census.size).toBe(0)
  })

  it("deletion removes a release from the census and unblocks completion", () => {
    const { gate, notices } = run([
      Observed({ release: installed("bp-a"), now: at(0) }),
      Observed({ release: installing("bp-stuck"), now: at(0) }),
      Synced({ now: at(0) }),
      Deleted({ name: "bp-stuck", now: at(5) })
    ])
    expect(tags(notices).slice(-2)).toEqual(["ReleaseRemoved", "Completed"])
    expect(gate.outcome).toEqual({ _tag: "Ready", installed: 1, suspended: [], message: "Phase 1 finished: 1 release(s) installed" })
  })

  it("deleting a release that was never observed changes nothing", () => {
    const { notices } = run([Observed({ release: installing("bp-a"), now: at(0) }), Deleted({ name: "bp-zzz", now: at(1) })])
    expect(tags(notices)).toEqual(["ReleaseReported"])
  })

  it("retrying is not terminal", () => {
    const { gate } = run([Observed({ release: release("bp-a", [ready("False", "InstallFailed")]), now: at(0) }), Synced({ now: at(0) })])
    expect(gate.outcome).toBeUndefined()
  })

  it("suspended releases count as installed and are named in the outcome", () => {
    const { gate } = run([
      Observed({ release: installed("bp-a"), now: at(0) }),
      Observed({ release: release("bp-off", [], { suspend: true }), now: at(0) }),
      Synced({ now: at(0) })
    ])
    expect(gate.outcome).toEqual({
      _tag: "Ready",
      installed: 2,
      suspended: ["bp-off"],
      message: "Phase 1 finished: 2 release(s) installed (suspended, counted as installed: bp-off)"
    })
  })

  it("a failure waits for independent releases to settle, then fails naming every failure", () => {
    const first = run([
      Observed({ release: failed("bp-a"), now: at(0) }),
      Observed({ release: installing("bp-b"), now: at(0) }),
      Synced({ now: at(0) })
    ])
    expect(first.gate.outcome).toBeUndefined()
    const { gate } = HelmRelease.step(first.gate, Observed({ release: failed("bp-b"), now: at(3) }))
    expect(gate.outcome?._tag).toBe("Failed")
    if (gate.outcome?._tag === "Failed") {
      expect(gate.outcome.failures.map((failure) => failure.release)).toEqual(["bp-a", "bp-b"])
      expect(gate.outcome.message).toBe(
        "Phase 1 finished with 2 failed component(s): bp-a (bp-a: install retries exhausted); bp-b (bp-b: install retries exhausted)"
      )
    }
  })

  it("releases blocked (transitively) by a failure do not delay the verdict", () => {
    const { gate } = run([
      Observed({ release: failed("bp-cilium"), now: at(0) }),
      Observed({ release: waiting("bp-cert-manager", ["bp-cilium"]), now: at(0) }),
      Observed({ release: waiting("bp-keycloak", ["bp-cert-manager"]), now: at(0) }),
      Observed({ release: installed("bp-flux"), now: at(0) }),
      Synced({ now: at(0) })
    ])
    expect(gate.outcome).toEqual(
      HelmRelease.Phase1Failed.make({
        failures: [{ release: "bp-cilium", message: "bp-cilium: install retries exhausted" }],
        blocked: ["bp-cert-manager", "bp-keycloak"],
        message:
          "Phase 1 finished with 1 failed component(s): bp-cilium (bp-cilium: install retries exhausted); blocked by them: bp-cert-manager, bp-keycloak"
      })
    )
  })

  it("a release still progressing beside a failure delays the verdict", () => {
    const { gate } = run([
      Observed({ release: failed("bp-cilium"), now: at(0) }),
      Observed({ release: waiting("bp-cert-manager", ["bp-cilium"]), now: at(0) }),
      Observed({ release: installing("bp-flux"), now: at(0) }),
      Synced({ now: at(0) })
    ])
    expect(gate.outcome).toBeUndefined()
    expect(HelmRelease.summarise(gate)).toMatchObject({ unfinished: ["bp-flux"], blocked: ["bp-cert-manager"] })
  })

  it("a decided gate ignores every further input", () => {
    const done = run([Observed({ release: installed("bp-a"), now: at(0) }), Synced({ now: at(0) })])
    const after = HelmRelease.stepAll(done.gate, [Observed({ release: failed("bp-a"), now: at(1) }), Tick({ now: at(500) })])
    expect(after.notices).toEqual([])
    expect(after.gate).toBe(done.gate)
  })

  it("outcomes are Schema values that survive a round trip through JSON", () => {
    const { gate } = run([Synced({ now: at(0) }), Observed({ release: installing("bp-a"), now: at(0) }), Tick({ now: at(120) })])
    const encoded = JSON.parse(JSON.stringify(Schema.encodeSync(HelmRelease.Phase1Outcome)(gate.outcome!)))
    expect(encoded).toMatchObject({ _tag: "TimedOut", elapsed: 120 * minute })
    expect(Schema.decodeUnknownSync(HelmRelease.Phase1Outcome)(encoded)).toEqual(gate.outcome)
  })
})

describe("Phase1 gate: the ready sentinel", () => {
  const sentinel = { sentinel: "catalyst-platform" }

  it("holds completion until the sentinel is observed (with or without the bp- prefix)", () => {
    const without = run([Observed({ release: installed("bp-a"), now: at(0) }), Synced({ now: at(0) })], sentinel)
    expect(without.gate.outcome).toBeUndefined()
    const arrives = HelmRelease.step(without.gate, Observed({ release: installing("bp-catalyst-platform"), now: at(1) }))
    expect(arrives.gate.outcome).toBeUndefined()
    const done = HelmRelease.step(arrives.gate, Observed({ release: installed("bp-catalyst-platform"), now: at(9) }))
    expect(done.gate.outcome).toMatchObject({ _tag: "Ready", installed: 2, suspended: [] })

    const exact = run([Observed({ release: installed("bp-catalyst-platform"), now: at(0) }), Synced({ now: at(0) })], {
      sentinel: "bp-catalyst-platform"
    })
    expect(exact.gate.outcome?._tag).toBe("Ready")
  })

  it("a sentinel observed as failed ends the gate as failed", () => {
    const { gate } = run([Observed({ release: failed("bp-catalyst-platform"), now: at(0) }), Synced({ now: at(0) })], sentinel)
    expect(gate.outcome?._tag).toBe("Failed")
  })

  it("a sentinel never observed runs into the timeout, which says so", () => {
    const { gate } = run([Observed({ release: installed("bp-a"), now: at(0) }), Synced({ now: at(0) }), Tick({ now: at(120) })], sentinel)
    expect(gate.outcome?._tag).toBe("TimedOut")
    if (gate.outcome?._tag === "TimedOut") expect(gate.outcome.message).toMatch(/ready sentinel catalyst-platform was never observed/)
  })

  it("a release named like the sentinel of another prefix does not count", () => {
    const { gate } = run([Observed({ release: installed("xx-catalyst-platform"), now: at(0) }), Synced({ now: at(0) })], sentinel)
    expect(gate.outcome).toBeUndefined()
  })
})

describe("Phase1 gate: timeouts", () => {
  const stuckAt = (minutes: number) => [
    Observed({ release: installed("bp-a"), now: at(0) }),
    Observed({ release: installing("bp-b"), now: at(0) }),
    Observed({ release: waiting("bp-c", ["bp-b"]), now: at(0) }),
    Synced({ now: at(0) }),
    Tick({ now: at(minutes) })
  ]

  it("nothing happens before the soft deadline", () => {
    const { gate } = run(stuckAt(119))
    expect(gate.outcome).toBeUndefined()
    expect(HelmRelease.nextDeadline(gate)).toBe(at(120))
  })

  it("without progress, times out at the soft deadline (120 min), naming what did not finish", () => {
    const { gate } = run(stuckAt(120))
    expect(gate.outcome).toEqual(
      HelmRelease.Phase1TimedOut.make({
        installed: 1,
        total: 3,
        pending: ["bp-b", "bp-c"],
        elapsed: Duration.minutes(120),
        message: "Phase 1 timed out after 120 min; 1 of 3 releases installed; not finished: bp-b, bp-c"
      })
    )
  })

  it("honours a configured soft timeout and progress window", () => {
    const options = { softTimeout: Duration.minutes(10), progressWindow: Duration.minutes(5) }
    expect(run(stuckAt(9), options).gate.outcome).toBeUndefined()
    expect(run(stuckAt(10), options).gate.outcome?._tag).toBe("TimedOut")
    // The installed count rose at minute 0, which is within a 30-minute window of minute 10.
    expect(run(stuckAt(10), { softTimeout: Duration.minutes(10) }).gate.outcome).toBeUndefined()
  })

  it("says when the initial list never completed", () => {
    const { gate } = run([Observed({ release: installing("bp-a"), now: at(0) }), Tick({ now: at(120) })])
    if (gate.outcome?._tag !== "TimedOut") throw new Error("expected a timeout")
    expect(gate.outcome.message).toMatch(/initial list of HelmReleases never completed/)
  })

  it("with progress in the last 30 min, defers to 30 min after the last progress, then times out", () => {
    const progressed = run([...stuckAt(0).slice(0, 4), Observed({ release: installed("bp-b"), now: at(100) }), Tick({ now: at(120) })])
    expect(progressed.gate.outcome).toBeUndefined()
    expect(progressed.notices.at(-1)).toEqual(HelmRelease.GateNotice.DeadlineDeferred({ installed: 2, total: 3, deadline: at(130) }))
    expect(HelmRelease.nextDeadline(progressed.gate)).toBe(at(130))
    expect(HelmRelease.step(progressed.gate, Tick({ now: at(129) })).gate.outcome).toBeUndefined()
    expect(HelmRelease.step(progressed.gate, Tick({ now: at(130) })).gate.outcome?._tag).toBe("TimedOut")
  })

  it("progress older than the window does not defer", () => {
    const { gate } = run([...stuckAt(0).slice(0, 4), Observed({ release: installed("bp-b"), now: at(90) }), Tick({ now: at(120) })])
    expect(gate.outcome?._tag).toBe("TimedOut")
  })

  it("a release flapping back to installed is not progress (the installed count must reach a new high)", () => {
    const { gate } = run([
      Observed({ release: installed("bp-a"), now: at(0) }),
      Observed({ release: installing("bp-b"), now: at(0) }),
      Synced({ now: at(0) }),
      Observed({ release: installing("bp-a"), now: at(110) }),
      Observed({ release: installed("bp-a"), now: at(115) }),
      Tick({ now: at(120) })
    ])
    expect(gate.outcome?._tag).toBe("TimedOut")
  })

  it("keeps deferring while progress continues, up to the hard ceiling (240 min)", () => {
    const names = Array.from({ length: 30 }, (_, index) => `bp-r${index}`)
    const inputs: Array<HelmRelease.GateInput> = [
      ...names.map((name) => Observed({ release: installing(name), now: at(0) })),
      Synced({ now: at(0) })
    ]
    // One more release installs every 10 minutes; 25 of 30 by minute 250; a tick every minute.
    for (let minutes = 1; minutes <= 250; minutes++) {
      if (minutes % 10 === 0) inputs.push(Observed({ release: installed(names[minutes / 10 - 1]!), now: at(minutes) }))
      inputs.push(Tick({ now: at(minutes) }))
    }
    const { gate, notices } = run(inputs)
    const outcome = completed(notices)
    expect(outcome).toHaveLength(1)
    expect(outcome[0]?._tag).toBe("TimedOut")
    if (gate.outcome?._tag === "TimedOut") {
      expect(gate.outcome.elapsed).toEqual(Duration.minutes(240))
      expect(gate.outcome.installed).toBe(24)
    }
    const deferrals = notices.filter((notice) => notice._tag === "DeadlineDeferred")
    expect(deferrals.length).toBeGreaterThan(0)
    expect(deferrals.every((notice) => notice._tag === "DeadlineDeferred" && notice.deadline <= at(240))).toBe(true)
  })

  it("the last progress is measured from the gate's own clock input, not from wall time", () => {
    const inputs = stuckAt(0).slice(0, 4)
    const { gate } = run(inputs)
    expect(gate.lastProgressAt).toBe(at(0))
    expect(gate.installedHighWater).toBe(1)
  })
})

describe("Phase1 gate: watch events", () => {
  it("maps every watch event but log lines to a gate input", () => {
    const observed = installed("bp-a")
    expect(HelmRelease.gateInputOf(ReleaseEvent.Observed({ release: observed }), 5)).toEqual(Observed({ release: observed, now: 5 }))
    expect(HelmRelease.gateInputOf(ReleaseEvent.Deleted({ name: "bp-a" }), 5)).toEqual(Deleted({ name: "bp-a", now: 5 }))
    expect(HelmRelease.gateInputOf(ReleaseEvent.Synced(), 5)).toEqual(Synced({ now: 5 }))
    expect(HelmRelease.gateInputOf(ReleaseEvent.Log({ release: "bp-a", level: "INFO", message: "x", timestamp: 1 }), 5)).toBeUndefined()
  })
})

describe("Phase1 gate: invariants over random event sequences", () => {
  const names = ["bp-a", "bp-b", "bp-c", "bp-catalyst-platform"]
  const observation = (name: string, kind: number): Observation => {
    switch (kind) {
      case 0:
        return installed(name)
      case 1:
        return installing(name)
      case 2:
        return failed(name)
      case 3:
        return waiting(name, [names[(names.indexOf(name) + 1) % names.length]!])
      case 4:
        return release(name, [ready("False", "InstallFailed")])
      default:
        return release(name, [], { suspend: true })
    }
  }
  const action = fc.oneof(
    fc.record({ kind: fc.constant("observe" as const), name: fc.constantFrom(...names), state: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant("delete" as const), name: fc.constantFrom(...names) }),
    fc.record({ kind: fc.constant("sync" as const) }),
    fc.record({ kind: fc.constant("advance" as const), minutes: fc.integer({ min: 0, max: 45 }) })
  )

  it.prop(
    "never ready without sync, census, sentinel and every release installed; one verdict at most; no timeout before the soft deadline",
    { actions: fc.array(action, { maxLength: 40 }), withSentinel: fc.boolean() },
    ({ actions, withSentinel }) => {
      let gate = start(withSentinel ? { sentinel: "catalyst-platform" } : {})
      let now = t0
      let verdicts = 0
      for (const next of actions) {
        if (next.kind === "advance") now += next.minutes * minute
        const input =
          next.kind === "observe"
            ? Observed({ release: observation(next.name, next.state), now })
            : next.kind === "delete"
              ? Deleted({ name: next.name, now })
              : next.kind === "sync"
                ? Synced({ now })
                : Tick({ now })
        const decidedBefore = gate.outcome !== undefined
        const result = HelmRelease.step(gate, input)
        if (decidedBefore) expect(result.notices).toEqual([])
        verdicts += completed(result.notices).length
        const outcome = result.gate.outcome
        if (!decidedBefore && outcome !== undefined) {
          const entries = Array.from(result.gate.census.values())
          switch (outcome._tag) {
            case "Ready":
              expect(result.gate.synced).toBe(true)
              expect(entries.length).toBeGreaterThan(0)
              expect(entries.every((entry) => entry.status.state === "installed")).toBe(true)
              if (withSentinel) expect(entries.some((entry) => entry.name === "bp-catalyst-platform")).toBe(true)
              break
            case "Failed":
              expect(result.gate.synced).toBe(true)
              expect(entries.some((entry) => entry.status.state === "failed")).toBe(true)
              break
            case "TimedOut":
              expect(now - t0).toBeGreaterThanOrEqual(120 * minute)
              break
          }
        }
        gate = result.gate
      }
      expect(verdicts).toBeLessThanOrEqual(1)
    },
    { fastCheck: { numRuns: 500 } }
  )
})
