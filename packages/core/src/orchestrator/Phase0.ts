/** Phase 0 (SPEC §4.1–4.4): cloud steps from the adapter's plan, journaled, regions in parallel; outputs, DNS, the primary kubeconfig. */
import { Duration, Effect, Option } from "effect"
import type { CloudDeployment, CloudError, CloudStep, StepResult } from "../CloudProvider.js"
import type { DeploymentRecord, JournalEntry } from "../DeploymentRepo.js"
import { StatusEvent } from "../DeploymentStatus.js"
import * as Job from "../Job.js"
import { publishDns } from "./Dns.js"
import {
  announce,
  applyStatus,
  cloudDeployment,
  load,
  now,
  patchRegion,
  retrySchedule,
  statusLeaves,
  Superseded,
  type Environment,
  type FlowPublisher
} from "./Environment.js"
import { storeCall } from "./StoreWait.js"

const phase0Statuses = ["pending", "provisioning"]

type RegionOutcome =
  | { readonly _tag: "Built"; readonly regionKey: string }
  | { readonly _tag: "Failed"; readonly regionKey: string; readonly message: string }
  /** The status changed under the run (a wipe): the region stopped at a step boundary. */
  | { readonly _tag: "Stopped"; readonly regionKey: string; readonly status: string }

/** Steps of one region in dependency order (the adapter's order breaks ties). */
export const orderSteps = (steps: ReadonlyArray<CloudStep>): ReadonlyArray<CloudStep> => {
  const done = new Set<string>()
  const out: Array<CloudStep> = []
  let remaining = [...steps]
  while (remaining.length > 0) {
    const ready = remaining.filter((step) =>
      step.dependsOn.every((dependency) => done.has(dependency) || !steps.some((s) => s.name === dependency))
    )
    const next = ready.length > 0 ? ready : remaining.slice(0, 1) // a cycle: keep the adapter's order
    for (const step of next) {
      out.push(step)
      done.add(step.name)
    }
    remaining = remaining.filter((step) => !next.includes(step))
  }
  return out
}

const stepFailureMessage = (
  record: DeploymentRecord,
  jobName: string,
  regionKey: string,
  cloudRegion: string,
  error: CloudError,
  attempts: number
) => {
  const what = error.isRetryable
    ? `still failing after ${attempts} attempts (${error.reason}): ${error.message}. The cloud API is overloaded or unavailable`
    : `${error.reason}: ${error.message}`
  return (
    `Step ${jobName} failed in region ${regionKey} (${cloudRegion}): ${what}. ` +
    `Nothing after it was started in ${regionKey}. Fix the cause, then POST /api/v1/deployments/${record.id}/retry ` +
    `to continue from this step, or POST /api/v1/deployments/${record.id}/wipe to remove what was created.`
  )
}

const runStep = (
  env: Environment,
  record: DeploymentRecord,
  deployment: CloudDeployment,
  step: CloudStep,
  journal: ReadonlyMap<string, JournalEntry>,
  flow: FlowPublisher
) =>
  Effect.gen(function* () {
    const region = deployment.regions.find((r) => r.key === step.region)!
    const jobName = Job.stepJobName(region, step.name)
    const previous = journal.get(jobName)
    // An execution left running by an interrupted process is closed before anything else happens to the job.
    const stored = yield* storeCall(env, `reading a job of deployment ${record.id}`, env.jobs.get(record.id, jobName))
    const open = Option.flatMapNullable(stored, (s) => s.executions.find((execution) => execution.status === "running"))
    if (previous?.status === "succeeded") {
      if (Option.isSome(open)) {
        yield* storeCall(
          env,
          `logging a step of deployment ${record.id}`,
          env.jobs.appendLog(record.id, open.value.id, [
            { timestamp: previous.at, level: "INFO", message: "finished before the server restarted (from the step journal)" }
          ])
        )
        yield* storeCall(
          env,
          `finishing a step's execution of deployment ${record.id}`,
          env.jobs.finishExecution(record.id, open.value.id, "succeeded", previous.at)
        )
      } else if (Option.exists(stored, (s) => s.job.status !== "succeeded")) {
        yield* storeCall(
          env,
          `recording a step's job of deployment ${Job.stepJob}`,
          env.jobs.upsert(Job.stepJob({ deploymentId: record.id, region, step, status: "succeeded" }))
        )
      }
      return { _tag: "Done" as const }
    }
    // Step boundary: a wipe (or anything else) that changed the status stops the run here.
    const current = yield* load(env, record.id)
    if (!phase0Statuses.includes(current.status)) return yield* Effect.fail(new Superseded({ status: current.status }))

    const startedAt = yield* now
    if (Option.isSome(open)) {
      yield* storeCall(
        env,
        `logging a step of deployment ${record.id}`,
        env.jobs.appendLog(record.id, open.value.id, [
          {
            timestamp: startedAt,
            level: "WARN",
            message: "interrupted by a restart of the server; the step runs again (it finds what it created by label)"
          }
        ])
      )
      yield* storeCall(
        env,
        `finishing a step's execution of deployment ${record.id}`,
        env.jobs.finishExecution(record.id, open.value.id, "failed", startedAt)
      )
    }
    const executionId = yield* env.ids.executionId
    yield* storeCall(
      env,
      `recording a step's job of deployment ${Job.stepJob}`,
      env.jobs.upsert(Job.stepJob({ deploymentId: record.id, region, step, status: "running" }))
    )
    yield* storeCall(
      env,
      `starting a step's execution of deployment ${record.id}`,
      env.jobs.startExecution(record.id, jobName, executionId, startedAt)
    )
    const attemptsBefore = previous?.attempts ?? 0
    // "running" in the journal says: this step may have created something (the restart policy reads it).
    yield* storeCall(
      env,
      `journaling a step of deployment ${record.id}`,
      env.repo.recordStep({
        deploymentId: record.id,
        jobName,
        region: region.key,
        step: step.name,
        status: "running",
        attempts: attemptsBefore + 1,
        at: startedAt
      })
    )
    yield* flow.publish

    let attempts = 0
    const log = (level: "INFO" | "WARN" | "ERROR", message: string) =>
      Effect.flatMap(now, (timestamp) =>
        storeCall(
          env,
          `logging a step of deployment ${record.id}`,
          env.jobs.appendLog(record.id, executionId, [{ timestamp, level, message }])
        )
      )
    yield* log("INFO", `${step.displayName}: applying in ${region.cloudRegion}${attemptsBefore > 0 ? ` (run ${attemptsBefore + 1})` : ""}`)
    const result = yield* env.cloud.apply(deployment, step).pipe(
      Effect.tap(() => Effect.sync(() => void attempts++)),
      Effect.tapError((error) =>
        Effect.zipRight(
          Effect.sync(() => void attempts++),
          log(
            error.isRetryable ? "WARN" : "ERROR",
            `attempt ${attempts}: ${error.reason}: ${error.message}${error.isRetryable ? " (will retry with backoff)" : ""}`
          )
        )
      ),
      Effect.retry({ schedule: retrySchedule(env.settings), while: (error) => error.isRetryable }),
      Effect.either
    )
    const finishedAt = yield* now
    if (result._tag === "Right") {
      const stepResult: StepResult = result.right
      // The journal first: once recorded, a restart never runs this step again.
      yield* storeCall(
        env,
        `journaling a step of deployment ${record.id}`,
        env.repo.recordStep({
          deploymentId: record.id,
          jobName,
          region: region.key,
          step: step.name,
          status: "succeeded",
          attempts: attemptsBefore + 1,
          at: finishedAt,
          result: stepResult
        })
      )
      if (stepResult.log.length > 0) {
        yield* storeCall(
          env,
          `logging a step of deployment ${record.id}`,
          env.jobs.appendLog(
            record.id,
            executionId,
            stepResult.log.map((message) => ({ timestamp: finishedAt, level: "INFO" as const, message }))
          )
        )
      }
      yield* storeCall(
        env,
        `finishing a step's execution of deployment ${record.id}`,
        env.jobs.finishExecution(record.id, executionId, "succeeded", finishedAt)
      )
      yield* announce(env, record.id, [
        {
          phase: "provisioner",
          level: "info",
          type: "step",
          component: jobName,
          state: "succeeded",
          region: region.key,
          message: `${step.displayName} ready in ${region.key}`
        }
      ])
      yield* flow.publish
      return { _tag: "Done" as const }
    }
    const message = stepFailureMessage(record, jobName, region.key, region.cloudRegion, result.left, attempts)
    yield* storeCall(
      env,
      `journaling a step of deployment ${record.id}`,
      env.repo.recordStep({
        deploymentId: record.id,
        jobName,
        region: region.key,
        step: step.name,
        status: "failed",
        attempts: attemptsBefore + 1,
        at: finishedAt,
        error: message
      })
    )
    yield* log("ERROR", message)
    yield* storeCall(
      env,
      `finishing a step's execution of deployment ${record.id}`,
      env.jobs.finishExecution(record.id, executionId, "failed", finishedAt)
    )
    yield* storeCall(
      env,
      `recording a step's job of deployment ${record.id}`,
      env.jobs.upsert({ ...Job.stepJob({ deploymentId: record.id, region, step, status: "failed" }), reason: message })
    )
    yield* announce(env, record.id, [
      {
        phase: "provisioner",
        level: "error",
        type: "step",
        component: jobName,
        state: "failed",
        region: region.key,
        message
      }
    ])
    yield* flow.publish
    return { _tag: "Failed" as const, message }
  }).pipe(
    Effect.annotateLogs({ step: step.name, region: step.region }),
    Effect.withSpan("deployment.step", { attributes: { "deployment.id": record.id, step: step.name, region: step.region } })
  )

const runRegion = (
  env: Environment,
  record: DeploymentRecord,
  deployment: CloudDeployment,
  steps: ReadonlyArray<CloudStep>,
  journal: ReadonlyMap<string, JournalEntry>,
  flow: FlowPublisher,
  regionKey: string
) =>
  Effect.gen(function* () {
    const regionSteps = orderSteps(steps.filter((step) => step.region === regionKey))
    yield* patchRegion(env, record.id, regionKey, (r) => ({ ...r, phase0: "running" }))
    for (const step of regionSteps) {
      const outcome = yield* runStep(env, record, deployment, step, journal, flow)
      if (outcome._tag === "Failed") {
        yield* patchRegion(env, record.id, regionKey, (r) => ({ ...r, phase0: "failed", error: outcome.message }))
        return { _tag: "Failed", regionKey, message: outcome.message } satisfies RegionOutcome
      }
    }
    yield* patchRegion(env, record.id, regionKey, (r) => {
      const { error: _error, ...rest } = r
      return { ...rest, phase0: "succeeded" }
    })
    return { _tag: "Built", regionKey } satisfies RegionOutcome
  }).pipe(
    // Each region finishes the step it is in and stops at its next boundary; the others are not interrupted.
    Effect.catchTag("Superseded", (error) => Effect.succeed({ _tag: "Stopped", regionKey, status: error.status } satisfies RegionOutcome))
  )

/**
 * Runs (or continues) Phase 0. Ends with the deployment in `phase1-watching`, `failed` or
 * `partial-failure`, or fails with `Superseded` when the status was changed under it (a wipe).
 */
export const phase0 = (env: Environment, initial: DeploymentRecord, flow: FlowPublisher) =>
  Effect.gen(function* () {
    if (initial.status === "pending") yield* applyStatus(env, initial.id, StatusEvent.Phase0Started())
    const record = yield* load(env, initial.id)
    if (record.status !== "provisioning") return yield* Effect.fail(new Superseded({ status: record.status }))
    const deployment = yield* cloudDeployment(env, record).pipe(
      Effect.catchAll((error) =>
        Effect.zipRight(
          applyStatus(
            env,
            record.id,
            StatusEvent.Failed({ reason: `The deployment's credentials cannot be read (${error.message}); wipe it and create it again.` })
          ),
          Effect.fail(new Superseded({ status: "failed" }))
        )
      )
    )
    const planned = yield* env.cloud
      .plan(deployment)
      .pipe(Effect.retry({ schedule: retrySchedule(env.settings), while: (error) => error.isRetryable }), Effect.either)
    if (planned._tag === "Left") {
      yield* applyStatus(
        env,
        record.id,
        StatusEvent.Failed({
          reason: `The cloud adapter could not plan the deployment (${planned.left.reason}: ${planned.left.message}). Fix the cause, then retry.`
        })
      )
      return
    }
    const steps = planned.right
    yield* storeCall(
      env,
      `recording the jobs of deployment ${record.id}`,
      env.jobs.upsertMany([
        ...steps.map((step) => {
          const region = deployment.regions.find((r) => r.key === step.region)!
          return Job.stepJob({ deploymentId: record.id, region, step })
        })
      ])
    )
    yield* flow.publish
    const journal = new Map(
      (yield* storeCall(env, `reading the step journal of deployment ${record.id}`, env.repo.journal(record.id))).map(
        (entry) => [entry.jobName, entry] as const
      )
    )

    const outcomes = yield* Effect.forEach(
      deployment.regions,
      (region) => runRegion(env, record, deployment, steps, journal, flow, region.key),
      { concurrency: "unbounded" }
    )
    const stopped = outcomes.find((outcome) => outcome._tag === "Stopped")
    if (stopped !== undefined) return yield* Effect.fail(new Superseded({ status: stopped.status }))
    const failed = outcomes.filter((outcome): outcome is Extract<RegionOutcome, { _tag: "Failed" }> => outcome._tag === "Failed")
    const primaryKey = deployment.regions[0]!.key
    const primaryFailure = failed.find((outcome) => outcome.regionKey === primaryKey)
    if (primaryFailure !== undefined) {
      yield* applyStatus(env, record.id, StatusEvent.Failed({ reason: primaryFailure.message }))
      return
    }
    if (failed.length > 0) {
      yield* applyStatus(
        env,
        record.id,
        StatusEvent.PartiallyFailed({
          regions: failed.map((outcome) => outcome.regionKey),
          reason: failed.map((outcome) => outcome.message).join(" ")
        })
      )
      return
    }

    // Every region is built: record what the cloud reports, publish DNS (best effort), await the primary kubeconfig.
    const outputs = yield* env.cloud
      .outputs(deployment)
      .pipe(Effect.retry({ schedule: retrySchedule(env.settings), while: (error) => error.isRetryable }), Effect.either)
    if (outputs._tag === "Right") {
      for (const output of outputs.right) {
        yield* patchRegion(env, record.id, output.regionKey, (r) => ({
          ...r,
          controlPlaneIPs: output.controlPlaneIPs,
          ...(output.loadBalancerIP === "" ? {} : { loadBalancerIP: output.loadBalancerIP }),
          ...(output.consoleLoadBalancerIP === undefined ? {} : { consoleLoadBalancerIP: output.consoleLoadBalancerIP })
        }))
      }
      yield* publishDns(env, record.id, flow)
    } else {
      yield* announce(env, record.id, [
        {
          phase: "provisioner",
          level: "warn",
          type: "outputs",
          message: `The cloud did not report the regions' addresses (${outputs.left.message}); DNS is not published yet.`
        }
      ])
    }

    const primary = deployment.regions[0]!
    // Waiting for the call-back is a step boundary too: a wipe does not wait for the timeout.
    const arrived = yield* Effect.raceFirst(
      env.kubeconfigs
        .await(record.id, primary.key)
        .pipe(
          (effect) => storeCall(env, `awaiting the kubeconfig of ${record.id}/${primary.key}`, effect),
          Effect.timeoutOption(env.settings.kubeconfigArrivalTimeout)
        ),
      Effect.flatMap(statusLeaves(env, record.id, phase0Statuses), (status) => Effect.fail(new Superseded({ status })))
    )
    if (Option.isNone(arrived)) {
      const minutes = Math.round(Duration.toMinutes(env.settings.kubeconfigArrivalTimeout))
      yield* applyStatus(
        env,
        record.id,
        StatusEvent.Failed({
          reason:
            `The control plane of region ${primary.key} never called back with its kubeconfig within ${minutes} min ` +
            `(PUT ${env.settings.publicUrl}/api/v1/deployments/${record.id}/kubeconfig). Check that this URL is reachable from ` +
            `the cloud and look at the server's cloud-init log; a late call-back resumes the deployment, or POST …/retry, or wipe it.`
        }),
        (r) => ({ results: { ...r.results, phase1Outcome: "kubeconfig-missing" } })
      )
      return
    }
    const at = yield* now
    yield* applyStatus(env, record.id, StatusEvent.Phase0Succeeded(), (r) => {
      const { phase1Outcome: _previous, ...results } = r.results
      return { phase1StartedAt: at, results }
    })
  })
