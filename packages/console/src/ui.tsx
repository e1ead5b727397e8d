/** Small shared pieces: status chips (an icon and a word, never colour alone) and times. */
export const statusIcon = (status: string) =>
  status === "succeeded" || status === "ready" || status === "wiped" || status === "adopted"
    ? "✓"
    : status === "failed" || status === "partial-failure"
      ? "✕"
      : status === "pending"
        ? "○"
        : "◐"

export const StatusChip = (props: { readonly status: string }) => (
  <span class="chip" data-status={props.status}>
    <span aria-hidden="true">{statusIcon(props.status)}</span> {props.status}
  </span>
)

export const time = (ms: number | undefined) =>
  ms === undefined || ms === 0 ? "—" : new Date(ms).toISOString().replace("T", " ").slice(0, 19)

export const duration = (ms: number | undefined) => {
  if (ms === undefined || !Number.isFinite(ms)) return "—"
  if (ms < 1000) return `${Math.round(ms)} ms`
  const seconds = Math.round(ms / 1000)
  return seconds < 120 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`
}
