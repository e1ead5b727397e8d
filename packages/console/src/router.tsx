/** Client-side navigation with the history API: deep links work, the page never reloads. */
export const listeners = new Set<() => void>()
export const navigate = (to: string) => {
  if (to !== location.pathname) history.pushState(null, "", to)
  for (const listener of listeners) listener()
}
addEventListener("popstate", () => listeners.forEach((listener) => listener()))

export const Link = (props: { readonly href: string; readonly children: preact.ComponentChildren; readonly class?: string }) => (
  <a
    href={props.href}
    class={props.class}
    onClick={(event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return
      event.preventDefault()
      navigate(props.href)
    }}
  >
    {props.children}
  </a>
)
