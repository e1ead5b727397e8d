/** The console's shell: sign-in, routing (history API, deep links), the deployments list and the new-deployment form. */
import { render } from "preact"
import { useEffect, useMemo, useState } from "preact/hooks"
import { api, call, describe, getToken, onSignOut, setToken } from "./api.js"
import { DeploymentPage } from "./deployment.js"
import { Link, listeners, navigate } from "./router.js"
import { StatusChip, time } from "./ui.js"

// ---------------------------------------------------------------------------------------------
// Routing

type Route =
  { readonly page: "list" } | { readonly page: "new" } | { readonly page: "deployment"; readonly id: string } | { readonly page: "missing" }

const routeOf = (pathname: string): Route => {
  if (pathname === "/" || pathname === "") return { page: "list" }
  if (pathname === "/new") return { page: "new" }
  const match = /^\/deployments\/([^/]+)\/?$/.exec(pathname)
  if (match !== null) return { page: "deployment", id: decodeURIComponent(match[1]!) }
  return { page: "missing" }
}

// ---------------------------------------------------------------------------------------------
// Sign-in

const SignIn = (props: { readonly message: string | undefined; readonly done: () => void }) => {
  const [token, setValue] = useState("")
  const [error, setError] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  return (
    <main class="signin">
      <h1>Sovereign</h1>
      <form
        onSubmit={async (event) => {
          event.preventDefault()
          setBusy(true)
          setToken(token.trim())
          const answer = await call("GET", api.deployments())
          setBusy(false)
          if (answer.ok) props.done()
          else if (answer.status !== 401) setError(`The server answered ${describe(answer)}`)
          else setError("The server refused the token (401).")
        }}
      >
        <label for="token">Operator or admin token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          required
          value={token}
          onInput={(event) => setValue(event.currentTarget.value)}
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {(error ?? props.message) !== undefined && (
          <p class="error" role="alert">
            {error ?? props.message}
          </p>
        )}
        <p class="hint">The token stays in this tab (session storage) and is sent only to this server.</p>
      </form>
    </main>
  )
}

// ---------------------------------------------------------------------------------------------
// Deployments list

interface Summary {
  readonly id: string
  readonly status: string
  readonly sovereignFQDN: string
  readonly regions: ReadonlyArray<string>
  readonly createdAt: number
  readonly finishedAt?: number
  readonly owner: string
}

type Column = "sovereignFQDN" | "status" | "regions" | "createdAt" | "finishedAt"
const columns: ReadonlyArray<readonly [Column, string]> = [
  ["sovereignFQDN", "FQDN"],
  ["status", "Status"],
  ["regions", "Regions"],
  ["createdAt", "Started"],
  ["finishedAt", "Finished"]
]
const inFlight = new Set(["pending", "provisioning", "phase1-watching", "wiping"])

const valueOf = (summary: Summary, column: Column): string | number =>
  column === "regions" ? summary.regions.join(",") : column === "finishedAt" ? (summary.finishedAt ?? 0) : summary[column]

const DeploymentsList = () => {
  const [list, setList] = useState<ReadonlyArray<Summary> | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const [sort, setSort] = useState<{ readonly column: Column; readonly descending: boolean }>({ column: "createdAt", descending: true })
  useEffect(() => {
    // No list stream exists: the list is fetched again every 5 s while something is in flight and
    // every 60 s otherwise, and not at all while the tab is hidden.
    let timer: ReturnType<typeof setTimeout> | undefined
    let stopped = false
    const load = async () => {
      timer = undefined
      const answer = await call<{ deployments: ReadonlyArray<Summary> }>("GET", api.deployments())
      if (stopped) return
      if (answer.ok) {
        setList(answer.body.deployments)
        setError(undefined)
      } else setError(describe(answer))
      const busy = answer.ok && answer.body.deployments.some((summary) => inFlight.has(summary.status))
      if (!document.hidden) timer = setTimeout(load, busy ? 5_000 : 60_000)
    }
    const onVisibility = () => {
      if (document.hidden && timer !== undefined) {
        clearTimeout(timer)
        timer = undefined
      } else if (!document.hidden && timer === undefined) void load()
    }
    document.addEventListener("visibilitychange", onVisibility)
    void load()
    return () => {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
      document.removeEventListener("visibilitychange", onVisibility)
    }
  }, [])
  const sorted = useMemo(() => {
    if (list === undefined) return []
    const direction = sort.descending ? -1 : 1
    return list.slice().sort((a, b) => {
      const x = valueOf(a, sort.column)
      const y = valueOf(b, sort.column)
      return (x < y ? -1 : x > y ? 1 : 0) * direction || (a.createdAt - b.createdAt) * -1
    })
  }, [list, sort])
  return (
    <main class="page">
      <div class="title">
        <h1>Deployments</h1>
        <Link href="/new" class="button">
          New deployment
        </Link>
      </div>
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {list === undefined ? (
        <p>Loading…</p>
      ) : list.length === 0 ? (
        <p>
          No deployments yet. <Link href="/new">Create one</Link>.
        </p>
      ) : (
        <table class="deployments">
          <thead>
            <tr>
              {columns.map(([column, label]) => (
                <th aria-sort={sort.column === column ? (sort.descending ? "descending" : "ascending") : "none"}>
                  <button
                    type="button"
                    data-sort={column}
                    onClick={() =>
                      setSort(
                        sort.column === column
                          ? { column, descending: !sort.descending }
                          : { column, descending: column === "createdAt" || column === "finishedAt" }
                      )
                    }
                  >
                    {label} {sort.column === column ? (sort.descending ? "↓" : "↑") : ""}
                  </button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {sorted.map((summary) => (
              <tr key={summary.id} data-deployment-id={summary.id} onClick={() => navigate(`/deployments/${summary.id}`)}>
                <td>
                  <Link href={`/deployments/${summary.id}`}>{summary.sovereignFQDN}</Link>
                </td>
                <td>
                  <StatusChip status={summary.status} />
                </td>
                <td>{summary.regions.join(", ")}</td>
                <td>{time(summary.createdAt)}</td>
                <td>{time(summary.finishedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  )
}

// ---------------------------------------------------------------------------------------------
// New deployment

interface Common {
  sovereignFQDN: string
  orgName: string
  orgEmail: string
  regions: string
  sshPublicKey: string
  hetznerToken: string
}

const commonFields: ReadonlyArray<readonly [keyof Common, string, string]> = [
  ["sovereignFQDN", "FQDN", "sovereignFQDN"],
  ["orgName", "Organisation", "orgName"],
  ["orgEmail", "Organisation e-mail", "orgEmail"],
  ["regions", "Cloud regions (comma-separated, the first is the primary)", "regions"],
  ["sshPublicKey", "SSH public key", "sshPublicKey"],
  ["hetznerToken", "Hetzner token", "credentials"]
]

const requestOf = (common: Common, base: Record<string, unknown>): Record<string, unknown> => {
  const previous = Array.isArray(base.regions) ? (base.regions as Array<Record<string, unknown>>) : []
  const regions = common.regions
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "")
    .map((cloudRegion, index) => ({
      provider: "hetzner",
      controlPlaneSize: "cpx32",
      workerSize: "cpx42",
      workerCount: 1,
      ...(previous[index] ?? {}),
      cloudRegion
    }))
  // the two topologies the count of regions decides; another one chosen in the editor stays
  const topology =
    base.topology === undefined || base.topology === "single-region" || base.topology === "active-hotstandby"
      ? regions.length === 1
        ? "single-region"
        : "active-hotstandby"
      : base.topology
  return {
    haControlPlane: false,
    ...base,
    topology,
    sovereignFQDN: common.sovereignFQDN,
    orgName: common.orgName,
    orgEmail: common.orgEmail,
    regions,
    parentDomains: [{ name: common.sovereignFQDN.split(".").slice(1).join("."), role: "primary" }],
    sshPublicKey: common.sshPublicKey,
    credentials: { ...((base.credentials as object | undefined) ?? {}), hetznerToken: common.hetznerToken }
  }
}

const NewDeployment = () => {
  const [common, setCommon] = useState<Common>({
    sovereignFQDN: "",
    orgName: "",
    orgEmail: "",
    regions: "fsn1",
    sshPublicKey: "",
    hetznerToken: ""
  })
  const [json, setJson] = useState(() => JSON.stringify(requestOf(common, {}), null, 2))
  const [issues, setIssues] = useState<ReadonlyArray<{ readonly path: string; readonly message: string }>>([])
  const [answer, setAnswer] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  const update = (key: keyof Common, value: string) => {
    const next = { ...common, [key]: value }
    setCommon(next)
    let base: Record<string, unknown> = {}
    try {
      base = JSON.parse(json) as Record<string, unknown>
    } catch {
      // the editor holds invalid JSON: the fields start it afresh
    }
    setJson(JSON.stringify(requestOf(next, base), null, 2))
  }
  const issuesFor = (prefix: string) => issues.filter((issue) => issue.path === prefix || issue.path.startsWith(prefix + "."))
  const known = commonFields.map(([, , prefix]) => prefix)
  const others = issues.filter((issue) => !known.some((prefix) => issue.path === prefix || issue.path.startsWith(prefix + ".")))
  return (
    <main class="page">
      <div class="title">
        <h1>New deployment</h1>
        <Link href="/">Back to the list</Link>
      </div>
      <form
        class="new"
        onSubmit={async (event) => {
          event.preventDefault()
          let request: unknown
          try {
            request = JSON.parse(json)
          } catch (error) {
            setIssues([{ path: "", message: `the JSON is not valid: ${(error as Error).message}` }])
            return
          }
          setBusy(true)
          const created = await call<{ id: string; issues?: ReadonlyArray<{ path: string; message: string }> }>(
            "POST",
            api.deployments(),
            request
          )
          setBusy(false)
          if (created.ok) {
            navigate(`/deployments/${created.body.id}`)
            return
          }
          setIssues(created.body?.issues ?? [])
          setAnswer(describe(created))
        }}
      >
        <div class="fields">
          {commonFields.map(([key, label, prefix]) => (
            <div class="field" data-field={prefix}>
              <label for={`f-${key}`}>{label}</label>
              <input
                id={`f-${key}`}
                name={key}
                type={key === "hetznerToken" ? "password" : "text"}
                autocomplete="off"
                value={common[key]}
                aria-invalid={issuesFor(prefix).length > 0}
                onInput={(event) => update(key, event.currentTarget.value)}
              />
              {issuesFor(prefix).map((issue) => (
                <p class="issue" data-issue-path={issue.path}>
                  {issue.path}: {issue.message}
                </p>
              ))}
            </div>
          ))}
        </div>
        <div class="field json" data-field="">
          <label for="f-json">The whole request (JSON)</label>
          <textarea
            id="f-json"
            name="request"
            spellcheck={false}
            rows={22}
            value={json}
            onInput={(event) => setJson(event.currentTarget.value)}
          />
          {others.map((issue) => (
            <p class="issue" data-issue-path={issue.path}>
              {issue.path || "(request)"}: {issue.message}
            </p>
          ))}
        </div>
        <div class="actions">
          <button type="submit" disabled={busy}>
            Create deployment
          </button>
          {answer !== undefined && (
            <p class="answer" role="status">
              The server answered {answer}
            </p>
          )}
        </div>
      </form>
    </main>
  )
}

// ---------------------------------------------------------------------------------------------
// The app

const App = () => {
  const [route, setRoute] = useState<Route>(() => routeOf(location.pathname))
  const [signedIn, setSignedIn] = useState(() => getToken() !== null)
  const [message, setMessage] = useState<string | undefined>(undefined)
  useEffect(() => {
    const listener = () => setRoute(routeOf(location.pathname))
    listeners.add(listener)
    const off = onSignOut((text) => {
      setMessage(text)
      setSignedIn(false)
    })
    return () => {
      listeners.delete(listener)
      off()
    }
  }, [])
  if (!signedIn)
    return (
      <SignIn
        message={message}
        done={() => {
          setMessage(undefined)
          setSignedIn(true)
        }}
      />
    )
  return (
    <>
      <nav class="top">
        <Link href="/" class="brand">
          Sovereign
        </Link>
        <Link href="/">Deployments</Link>
        <Link href="/new">New deployment</Link>
        <button
          type="button"
          class="link"
          onClick={() => {
            sessionStorage.clear()
            setMessage("Signed out.")
            setSignedIn(false)
          }}
        >
          Sign out
        </button>
      </nav>
      {route.page === "list" && <DeploymentsList />}
      {route.page === "new" && <NewDeployment />}
      {route.page === "deployment" && <DeploymentPage key={route.id} id={route.id} />}
      {route.page === "missing" && (
        <main class="page">
          <h1>Not found</h1>
          <p>
            No page at {location.pathname}. <Link href="/">Deployments</Link>
          </p>
        </main>
      )}
    </>
  )
}

render(<App />, document.getElementById("app")!)
