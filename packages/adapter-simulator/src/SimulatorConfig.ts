/** The simulator's knobs: time scale, seed and faults, parsed from the same strings the server reads. */
import { Duration, Either, Schema } from "effect"

export interface Faults {
  /**
   * Charts (`harbor` or `bp-harbor`) whose install never succeeds: InstallFailed retries, then Stalled.
   * `harbor@hel1` limits the fault to the clusters in cloud region `hel1`.
   */
  readonly failCharts: ReadonlyArray<string>
  /** Charts that stay Progressing for ever (a hung install: no failure, no progress); `@<cloudRegion>` as above. */
  readonly hangCharts: ReadonlyArray<string>
  /** Probability in 0..1 that one cloud API call answers 429 or 5xx (retryable). */
  readonly cloudErrorRate: number
  /** Extra time before a control plane calls back with its kubeconfig; `infinity` = never. */
  readonly kubeconfigDelay: Duration.Duration
  /** Cloud regions (`fsn1`) where every step fails permanently. */
  readonly regionFail: ReadonlyArray<string>
  /**
   * Cloud regions whose clusters the mesh cannot reach (their API server does not answer the mesh),
   * for ever, or (`hel1:90m`) until that long after the cluster booted.
   */
  readonly meshFaults: ReadonlyArray<MeshFault>
}

export interface MeshFault {
  readonly cloudRegion: string
  /** Simulated time after the cluster's boot at which the fault clears; infinity = never. */
  readonly until: Duration.Duration
}

export interface SimulatorOptions {
  /** Time scale: 1 = realistic minutes, 200 = 200× faster. */
  readonly speed: number
  readonly seed: number
  readonly faults: Faults
}

export const noFaults: Faults = {
  failCharts: [],
  hangCharts: [],
  cloudErrorRate: 0,
  kubeconfigDelay: Duration.zero,
  regionFail: [],
  meshFaults: []
}

export const defaultOptions: SimulatorOptions = { speed: 1, seed: 1, faults: noFaults }

export class InvalidFaults extends Schema.TaggedError<InvalidFaults>()("InvalidFaults", { message: Schema.String }) {}

const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/

/** `90s`, `15m`, `2h`, `500ms`, or `never`. */
export const parseDuration = (text: string): Either.Either<Duration.Duration, InvalidFaults> => {
  const trimmed = text.trim()
  if (trimmed === "never" || trimmed === "infinity") return Either.right(Duration.infinity)
  const match = durationPattern.exec(trimmed)
  if (match === null) return Either.left(new InvalidFaults({ message: `'${text}' is not a duration such as 90s, 15m or 2h` }))
  const value = Number(match[1])
  const unit = match[2] as "ms" | "s" | "m" | "h"
  const millis = unit === "ms" ? value : unit === "s" ? value * 1000 : unit === "m" ? value * 60_000 : value * 3_600_000
  return Either.right(Duration.millis(millis))
}

/**
 * `fail-chart=bp-harbor,cloud-error-rate=0.2,kubeconfig-delay=20m,region-fail=hel1,mesh-fault=nbg1:90m` (SOVEREIGN_SIM_FAULTS).
 * Keys may repeat (`fail-chart=a,fail-chart=b`); unknown keys are an error so typos do not pass silently.
 */
export const parseFaults = (text: string): Either.Either<Faults, InvalidFaults> => {
  let faults: { -readonly [K in keyof Faults]: Faults[K] } = { ...noFaults, failCharts: [], hangCharts: [], regionFail: [], meshFaults: [] }
  for (const entry of text
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "")) {
    const equals = entry.indexOf("=")
    const key = equals < 0 ? entry : entry.slice(0, equals).trim()
    const value = equals < 0 ? "" : entry.slice(equals + 1).trim()
    if (value === "") return Either.left(new InvalidFaults({ message: `fault '${key}' needs a value (key=value)` }))
    switch (key) {
      case "fail-chart":
        faults = { ...faults, failCharts: [...faults.failCharts, value] }
        break
      case "hang-chart":
        faults = { ...faults, hangCharts: [...faults.hangCharts, value] }
        break
      case "region-fail":
        faults = { ...faults, regionFail: [...faults.regionFail, value] }
        break
      case "cloud-error-rate": {
        const rate = Number(value)
        if (!Number.isFinite(rate) || rate < 0 || rate > 1) {
          return Either.left(new InvalidFaults({ message: `cloud-error-rate must be a number from 0 to 1, not '${value}'` }))
        }
        faults = { ...faults, cloudErrorRate: rate }
        break
      }
      case "mesh-fault": {
        const colon = value.indexOf(":")
        const cloudRegion = colon < 0 ? value : value.slice(0, colon).trim()
        const until = colon < 0 ? Either.right(Duration.infinity) : parseDuration(value.slice(colon + 1))
        if (Either.isLeft(until)) return Either.left(until.left)
        if (cloudRegion === "")
          return Either.left(
            new InvalidFaults({ message: `mesh-fault needs a cloud region (mesh-fault=hel1 or mesh-fault=hel1:90m), not '${value}'` })
          )
        faults = { ...faults, meshFaults: [...faults.meshFaults, { cloudRegion, until: until.right }] }
        break
      }
      case "kubeconfig-delay": {
        const delay = parseDuration(value)
        if (Either.isLeft(delay)) return Either.left(delay.left)
        faults = { ...faults, kubeconfigDelay: delay.right }
        break
      }
      default:
        return Either.left(
          new InvalidFaults({
            message: `unknown fault '${key}' (known: fail-chart, hang-chart, cloud-error-rate, kubeconfig-delay, region-fail, mesh-fault)`
          })
        )
    }
  }
  return Either.right(faults)
}

const matches = (entries: ReadonlyArray<string>, releaseName: string, cloudRegion: string): boolean =>
  entries.some((entry) => {
    const at = entry.lastIndexOf("@")
    const chart = at < 0 ? entry : entry.slice(0, at)
    const region = at < 0 ? undefined : entry.slice(at + 1)
    return (chart === releaseName || `bp-${chart}` === releaseName) && (region === undefined || region === cloudRegion)
  })

/** Whether a fail-chart fault names this release in this cloud region (`harbor`, `bp-harbor`, `harbor@hel1`). */
export const chartFails = (faults: Faults, releaseName: string, cloudRegion: string): boolean =>
  matches(faults.failCharts, releaseName, cloudRegion)

/** Whether a hang-chart fault names this release in this cloud region. */
export const chartHangs = (faults: Faults, releaseName: string, cloudRegion: string): boolean =>
  matches(faults.hangCharts, releaseName, cloudRegion)

/**
 * Whether a mesh-fault makes a cluster of `cloudRegion` unreachable for the mesh, `elapsed` (real
 * time) after it booted; `scaled` turns the fault's simulated duration into real time.
 */
export const meshFaultActive = (
  faults: Faults,
  cloudRegion: string,
  elapsed: Duration.Duration,
  scaled: (simulated: Duration.Duration) => Duration.Duration
): boolean =>
  faults.meshFaults.some(
    (fault) => fault.cloudRegion === cloudRegion && (!Duration.isFinite(fault.until) || Duration.lessThan(elapsed, scaled(fault.until)))
  )
