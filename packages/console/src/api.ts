/**
 * The server's HTTP API, from the browser: the operator's token lives in `sessionStorage` (gone with
 * the tab, never in a URL), goes in the `Authorization` header of every call, and a 401 from any call
 * signs the operator out with a message.
 */
const tokenKey = "sovereign.token"

export const getToken = (): string | null => sessionStorage.getItem(tokenKey)
export const setToken = (token: string) => sessionStorage.setItem(tokenKey, token)

type SignOutListener = (message: string) => void
const listeners = new Set<SignOutListener>()
export const onSignOut = (listener: SignOutListener) => {
  listeners.add(listener)
  return () => listeners.delete(listener)
}
export const signOut = (message: string) => {
  sessionStorage.removeItem(tokenKey)
  for (const listener of listeners) listener(message)
}

export interface Answer<A = any> {
  readonly ok: boolean
  readonly status: number
  readonly body: A
}

/** One call; the answer whatever its status (the pages show the API's answer), except a 401, which signs out. */
export const call = async <A = any>(method: string, route: string, body?: unknown, signal?: AbortSignal): Promise<Answer<A>> => {
  const token = getToken()
  const headers: Record<string, string> = { accept: "application/json" }
  if (token !== null) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers["content-type"] = "application/json"
  let response: Response
  try {
    response = await fetch(route, {
      method,
      headers,
      cache: "no-store",
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(signal === undefined ? {} : { signal })
    })
  } catch (error) {
    if (signal?.aborted) throw error
    return { ok: false, status: 0, body: { error: "unreachable", message: "the server cannot be reached" } as A }
  }
  const text = await response.text()
  let parsed: unknown = undefined
  try {
    parsed = text === "" ? undefined : JSON.parse(text)
  } catch {
    parsed = { error: "not-json", message: text.slice(0, 200) }
  }
  if (response.status === 401) {
    signOut(token === null ? "Sign in with an operator or admin token." : "The server refused the token (401): sign in again.")
  }
  return { ok: response.ok, status: response.status, body: parsed as A }
}

/** An answer in words: `202 Accepted: retrying from the first unfinished step`. */
export const describe = (answer: Answer): string => {
  const body = answer.body as { message?: string; error?: string; issues?: ReadonlyArray<{ path: string; message: string }> } | undefined
  const issues = body?.issues?.map((issue) => `${issue.path || "(request)"}: ${issue.message}`).join("; ")
  const text = body?.message ?? body?.error ?? ""
  return `${answer.status === 0 ? "no answer" : answer.status}${text === "" ? "" : ` ${text}`}${issues ? ` (${issues})` : ""}`
}

export const api = {
  deployments: () => "/api/v1/deployments",
  deployment: (id: string) => `/api/v1/deployments/${encodeURIComponent(id)}`,
  events: (id: string) => `/api/v1/deployments/${encodeURIComponent(id)}/events`,
  flow: (id: string) => `/api/v1/flows/${encodeURIComponent(id)}/stream`,
  job: (id: string, jobName: string) => `/api/v1/deployments/${encodeURIComponent(id)}/jobs/${encodeURIComponent(jobName)}`,
  logs: (id: string, execId: string, fromLine: number, limit: number) =>
    `/api/v1/deployments/${encodeURIComponent(id)}/executions/${encodeURIComponent(execId)}/logs?fromLine=${fromLine}&limit=${limit}`,
  dnsPlan: (id: string) => `/api/v1/deployments/${encodeURIComponent(id)}/dns/plan`
}
