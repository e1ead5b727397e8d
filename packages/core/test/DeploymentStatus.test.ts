import { describe, expect, it } from "@effect/vitest"
import { Duration, Either, Schema } from "effect"
import { ownershipLabels } from "../src/CloudProvider.js"
import * as DeploymentStatus from "../src/DeploymentStatus.js"
import * as HelmRelease from "../src/HelmRelease.js"

type Status = DeploymentStatus.DeploymentStatus
const { StatusEvent } = DeploymentStatus

/** One representative of every event (parameterised events once per parameter that matters). */
const events = {
  Phase0Started: StatusEvent.Phase0Started(),
  Phase0Succeeded: StatusEvent.Phase0Succeeded(),
  PartiallyFailed: StatusEvent.PartiallyFailed({ regions: ["hel1-1"], reason: "server quota exceeded in hel1" }),
  Phase1Succeeded: StatusEvent.Phase1Succeeded(),
  Phase1Failed: StatusEvent.Phase1Failed({ reason: "region fsn1: bp-cilium failed" }),
  Phase1TimedOut: StatusEvent.Phase1TimedOut({ reason: "region fsn1: Phase 1 timed out after 120 min" }),
  Failed: StatusEvent.Failed({ reason: "step fsn1:network failed" }),
  WipeRequested: StatusEvent.WipeRequested(),
  WipeFailed: StatusEvent.WipeFailed({ reason: "2 servers remain" }),
  Wiped: StatusEvent.Wiped(),
  "Retry(phase0)": StatusEvent.Retry({ from: "phase0" }),
  "Retry(phase1)": StatusEvent.Retry({ from: "phase1" }),
  Finalised: StatusEvent.Finalised(),
  "Resumed(phase0)": StatusEvent.Resumed({ phase: "phase0" }),
  "Resumed(phase1)": StatusEvent.Resumed({ phase: "phase1" }),
  "Resumed(wipe)": StatusEvent.Resumed({ phase: "wipe" })
} as const
type EventName = keyof typeof events

/**
 * The whole machine, written out by hand: for every status, the events it accepts and where they
 * lead. Every cell not listed is an IllegalTransition.
 */
const expected: Record<Status, Partial<Record<EventName, Status>>> = {
  pending: {
    Phase0Started: "provisioning",
    Failed: "failed",
    WipeRequested: "wiping",
    "Resumed(phase0)": "pending"
  },
  provisioning: {
    Phase0Succeeded: "phase1-watching",
    PartiallyFailed: "partial-failure",
    Failed: "failed",
    WipeRequested: "wiping",
    "Resumed(phase0)": "provisioning"
  },
  "phase1-watching": {
    Phase1Succeeded: "ready",
    Phase1Failed: "failed",
    Phase1TimedOut: "failed",
    Failed: "failed",
    WipeRequested: "wiping",
    "Resumed(phase1)": "phase1-watching"
  },
  ready: {
    Finalised: "adopted",
    WipeRequested: "wiping"
  },
  failed: {
    "Retry(phase0)": "provisioning",
    "Retry(phase1)": "phase1-watching",
    WipeRequested: "wiping"
  },
  "partial-failure": {
    "Retry(phase0)": "provisioning",
    WipeRequested: "wiping"
  },
  wiping: {
    Wiped: "wiped",
    WipeFailed: "failed",
    WipeRequested: "wiping",
    "Resumed(wipe)": "wiping"
  },
  wiped: {
    WipeRequested: "wiping"
  },
  adopted: {}
}

const statuses = DeploymentStatus.DeploymentStatus.literals
const matrix = statuses.flatMap((from) =>
  (Object.keys(events) as Array<EventName>).map((name) => [from, name, expected[from][name] ?? null] as const)
)

describe("DeploymentStatus.transition: the full status × event matrix", () => {
  it("covers every status and every event tag", () => {
    expect(matrix).toHaveLength(9 * 16)
    const tags = new Set(Object.values(events).map((event) => event._tag))
    expect(tags.size).toBe(13)
  })

  it.each(matrix)("%s + %s → %s", (from, name, to) => {
    const result = DeploymentStatus.transition(from, events[name])
    if (to === null) {
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left).toBeInstanceOf(DeploymentStatus.IllegalTransition)
        expect(result.left.from).toBe(from)
        expect(result.left.event).toBe(name)
        expect(result.left.reason).toBe(from === "adopted" ? "Adopted" : "NotAllowed")
        expect(result.left.isRetryable).toBe(false)
      }
    } else {
      expect(result).toEqual(Either.right(to))
    }
  })

  it("acceptedEvents lists exactly the legal events of each status", () => {
    for (const status of statuses) {
      expect([...DeploymentStatus.acceptedEvents(status)].sort()).toEqual(Object.keys(expected[status]).sort())
    }
  })
})

describe("DeploymentStatus rules of SPEC 2.3", () => {
  const legalEdges = matrix.filter(([, , to]) => to !== null)

  it("ready is reached only by the explicit ready outcome of Phase 1", () => {
    expect(legalEdges.filter(([, , to]) => to === "ready").map(([from, name]) => [from, name])).toEqual([
      ["phase1-watching", "Phase1Succeeded"]
    ])
  })

  it("a Phase-1 timeout, a failed component or an unknown outcome is failed", () => {
    expect(DeploymentStatus.transition("phase1-watching", events.Phase1TimedOut)).toEqual(Either.right("failed"))
    expect(DeploymentStatus.transition("phase1-watching", events.Phase1Failed)).toEqual(Either.right("failed"))
    expect(DeploymentStatus.transition("phase1-watching", DeploymentStatus.phase1Event(undefined, "fsn1"))).toEqual(Either.right("failed"))
  })

  it("adopted is sticky: no event, late or not, changes it, and the error says why", () => {
    for (const event of Object.values(events)) {
      const result = DeploymentStatus.transition("adopted", event)
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) expect(result.left.message).toMatch(/handed over to its owner \(adopted\) and never changes/)
    }
  })

  it("adopted is reached only by finalising a ready deployment", () => {
    expect(legalEdges.filter(([, , to]) => to === "adopted").map(([from, name]) => [from, name])).toEqual([["ready", "Finalised"]])
  })

  it("retry applies to failed and partial-failure only", () => {
    const retried = legalEdges.filter(([, name]) => name.startsWith("Retry")).map(([from]) => from)
    expect(new Set(retried)).toEqual(new Set(["failed", "partial-failure"]))
  })

  it("a resume never changes the status, and only resumes the phase that was running", () => {
    for (const [from, name, to] of legalEdges.filter(([, name]) => name.startsWith("Resumed"))) {
      expect(to).toBe(from)
      expect(DeploymentStatus.isInFlight(from), `${from} ${name}`).toBe(true)
    }
  })

  it("wiping is reachable from every status but adopted", () => {
    for (const status of statuses) {
      expect(Either.isRight(DeploymentStatus.transition(status, events.WipeRequested))).toBe(status !== "adopted")
    }
  })

  it("an illegal transition explains what is allowed instead", () => {
    const result = DeploymentStatus.transition("ready", events["Retry(phase0)"])
    expect(Either.isLeft(result) && result.left.message).toBe(
      "Retry(phase0) is not allowed while the deployment is ready; allowed: Finalised, WipeRequested"
    )
  })

  it("every status is reachable from pending", () => {
    const reached = new Set<Status>(["pending"])
    for (let grew = true; grew;) {
      grew = false
      for (const [from, , to] of legalEdges) {
        if (reached.has(from) && to !== null && !reached.has(to)) {
          reached.add(to)
          grew = true
        }
      }
    }
    expect([...reached].sort()).toEqual([...statuses].sort())
  })

  it("the happy path: pending → provisioning → phase1-watching → ready → adopted", () => {
    const path = [events.Phase0Started, events.Phase0Succeeded, events.Phase1Succeeded, events.Finalised]
    const visited = path.reduce<Array<Status>>(
      (trail, event) => {
        const next = DeploymentStatus.transition(trail.at(-1)!, event)
        if (Either.isLeft(next)) throw next.left
        return [...trail, next.right]
      },
      ["pending"]
    )
    expect(visited).toEqual(["pending", "provisioning", "phase1-watching", "ready", "adopted"])
  })
})

describe("DeploymentStatus predicates", () => {
  it.each([
    ["pending", true, true, false],
    ["provisioning", true, true, false],
    ["phase1-watching", false, true, false],
    ["ready", false, false, true],
    ["failed", false, false, true],
    ["partial-failure", false, false, true],
    ["wiping", false, true, false],
    ["wiped", false, false, true],
    ["adopted", false, false, true]
  ] as const)("%s: phase-0 in flight %s, in flight %s, terminal %s", (status, phase0, inFlight, terminal) => {
    expect(DeploymentStatus.isPhase0InFlight(status)).toBe(phase0)
    expect(DeploymentStatus.isInFlight(status)).toBe(inFlight)
    expect(DeploymentStatus.isTerminal(status)).toBe(terminal)
  })
})

describe("DeploymentStatus events", () => {
  it("carry the reason that becomes the record's error", () => {
    expect(DeploymentStatus.failureReason(events.PartiallyFailed)).toBe("server quota exceeded in hel1 (regions not built: hel1-1)")
    expect(DeploymentStatus.failureReason(events.Phase1TimedOut)).toBe("region fsn1: Phase 1 timed out after 120 min")
    expect(DeploymentStatus.failureReason(events.Phase0Succeeded)).toBeUndefined()
  })

  it("map the gate's outcomes, saying what and where", () => {
    const failed = HelmRelease.Phase1Failed.make({
      failures: [{ release: "bp-cilium", message: "x" }],
      blocked: [],
      message: "Phase 1 finished with 1 failed component(s): bp-cilium (x)"
    })
    const timedOut = HelmRelease.Phase1TimedOut.make({
      installed: 1,
      total: 2,
      pending: ["bp-b"],
      elapsed: Duration.minutes(120),
      message: "Phase 1 timed out after 120 min"
    })
    expect(
      DeploymentStatus.phase1Event(
        HelmRelease.Phase1Ready.make({ installed: 3, suspended: [], message: "Phase 1 finished: 3 release(s) installed" }),
        "fsn1"
      )
    ).toEqual(StatusEvent.Phase1Succeeded())
    expect(DeploymentStatus.phase1Event(failed, "fsn1")).toEqual(
      StatusEvent.Phase1Failed({ reason: "region fsn1: Phase 1 finished with 1 failed component(s): bp-cilium (x)" })
    )
    expect(DeploymentStatus.phase1Event(timedOut, "fsn1")).toEqual(
      StatusEvent.Phase1TimedOut({ reason: "region fsn1: Phase 1 timed out after 120 min" })
    )
    expect(DeploymentStatus.phase1Event(undefined, "fsn1")).toEqual(
      StatusEvent.Phase1Failed({ reason: "region fsn1: Phase 1 ended without an outcome" })
    )
  })

  it("round-trip through their wire schema", () => {
    for (const event of Object.values(events)) {
      const json = JSON.parse(JSON.stringify(Schema.encodeSync(DeploymentStatus.StatusEventSchema)(event)))
      const decoded = Schema.decodeUnknownSync(DeploymentStatus.StatusEventSchema)(json)
      expect(DeploymentStatus.transition("failed", decoded)).toEqual(DeploymentStatus.transition("failed", event))
      expect(DeploymentStatus.describeEvent(decoded)).toBe(DeploymentStatus.describeEvent(event))
    }
  })
})

describe("DeploymentStatus.resumeDecision (restart policy)", () => {
  const { MarkFailed, NothingToDo, Resume } = DeploymentStatus.ResumeDecision
  const id = "b3b837a22d7a8e5c"
  const journal = [
    {
      jobName: "network",
      status: "succeeded",
      result: {
        resources: [
          { kind: "network", name: "t1-fsn1" },
          { kind: "firewall", name: "t1-fsn1" }
        ]
      }
    },
    { jobName: "hel1-1:control-plane", status: "running" }
  ]

  it.each([
    ["pending", true, Resume({ phase: "phase0" })],
    ["provisioning", true, Resume({ phase: "phase0" })],
    ["phase1-watching", true, Resume({ phase: "phase1" })],
    ["phase1-watching", false, Resume({ phase: "phase1" })],
    ["wiping", true, Resume({ phase: "wipe" })],
    ["wiping", false, Resume({ phase: "wipe" })],
    ["ready", true, NothingToDo()],
    ["failed", false, NothingToDo()],
    ["partial-failure", true, NothingToDo()],
    ["wiped", true, NothingToDo()],
    ["adopted", false, NothingToDo()]
  ] as const)("%s with resumable=%s → %o", (status, resumable, decision) => {
    expect(DeploymentStatus.resumeDecision({ id, status, journal }, { resumable })).toEqual(decision)
  })

  it("a restart never marks a resumable deployment failed", () => {
    for (const status of statuses) {
      expect(DeploymentStatus.resumeDecision({ id, status, journal }, { resumable: true })._tag).not.toBe("MarkFailed")
    }
  })

  it("every decision to resume is accepted by the status machine", () => {
    for (const status of statuses) {
      for (const resumable of [true, false]) {
        const decision = DeploymentStatus.resumeDecision({ id, status }, { resumable })
        if (decision._tag === "Resume") {
          expect(DeploymentStatus.transition(status, StatusEvent.Resumed({ phase: decision.phase }))).toEqual(Either.right(status))
        }
        if (decision._tag === "MarkFailed") {
          expect(DeploymentStatus.transition(status, StatusEvent.Failed({ reason: decision.message }))).toEqual(Either.right("failed"))
        }
      }
    }
  })

  it("a non-resumable adapter interrupted in Phase 0: failed, naming the possible orphans and offering the wipe", () => {
    const decision = DeploymentStatus.resumeDecision({ id, status: "provisioning", journal }, { resumable: false })
    expect(decision).toEqual(
      MarkFailed({
        message:
          "The server restarted while this deployment was provisioning, and its cloud adapter cannot resume an interrupted Phase 0. " +
          "These cloud resources may be orphaned: network t1-fsn1, firewall t1-fsn1. " +
          "Steps interrupted mid-way (they may have created more): hel1-1:control-plane. " +
          `Every resource it created carries the label sovereign.dev/deployment=${id}. ` +
          `Wipe the deployment (POST /api/v1/deployments/${id}/wipe) to remove them, then create it again.`
      })
    )
    expect(Object.keys(ownershipLabels(id, "fsn1", "network"))).toContain("sovereign.dev/deployment")
  })

  it("a non-resumable adapter still names the label when the journal is empty", () => {
    const decision = DeploymentStatus.resumeDecision({ id, status: "provisioning" }, { resumable: false })
    expect(decision._tag === "MarkFailed" && decision.message).toMatch(/label sovereign\.dev\/deployment=b3b837a22d7a8e5c.*\/wipe/)
  })

  it("a pending deployment that never started a step has nothing to orphan and starts, even when not resumable", () => {
    expect(DeploymentStatus.resumeDecision({ id, status: "pending", journal: [] }, { resumable: false })).toEqual(
      Resume({ phase: "phase0" })
    )
    expect(DeploymentStatus.resumeDecision({ id, status: "pending", journal }, { resumable: false })._tag).toBe("MarkFailed")
  })
})
