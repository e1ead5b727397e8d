/**
 * The kubeconfig door as a property (issue 16): for generated kubeconfigs, random mixes of allowed and
 * forbidden fields and of servers, the door (our YAML parsing, core's rules, the server's X.509 and DNS
 * inspector) never accepts a forbidden field or a foreign server, and never touches a file; every
 * clean document with a region address is accepted and comes out normalised.
 */
import { describe, expect, it, vi } from "@effect/vitest"
import { Kubeconfig } from "@sovereign/core"
import { Effect, Either, Redacted } from "effect"
import * as fc from "fast-check"
import * as Yaml from "js-yaml"
import fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { execFileSync } from "node:child_process"
import * as KubeconfigInspector from "../src/KubeconfigInspector.js"
import { parseYaml } from "../src/KubeconfigDoor.js"

const directory = fs.mkdtempSync(path.join(os.tmpdir(), "sovereign-door-property-"))
const openssl = (...args: Array<string>) => execFileSync("openssl", args, { cwd: directory, stdio: ["ignore", "pipe", "pipe"] })
// A real CA, a leaf it signed, and the leaf's key: what a k3s kubeconfig carries.
openssl(
  "req",
  "-x509",
  "-newkey",
  "ec",
  "-pkeyopt",
  "ec_paramgen_curve:prime256v1",
  "-nodes",
  "-keyout",
  "ca.key",
  "-out",
  "ca.pem",
  "-days",
  "2",
  "-subj",
  "/CN=door-ca",
  "-addext",
  "basicConstraints=critical,CA:TRUE"
)
openssl(
  "req",
  "-newkey",
  "ec",
  "-pkeyopt",
  "ec_paramgen_curve:prime256v1",
  "-nodes",
  "-keyout",
  "leaf.key",
  "-out",
  "leaf.csr",
  "-subj",
  "/CN=admin"
)
openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "leaf.pem", "-days", "2")
const b64 = (file: string) => fs.readFileSync(path.join(directory, file)).toString("base64")
const ca = b64("ca.pem")
const leaf = b64("leaf.pem")
const key = b64("leaf.key")
// Files a forbidden field may name: they exist, so a read would succeed (and be seen by the spy).
const sentinel = path.join(directory, "sentinel-token")
fs.writeFileSync(sentinel, "a-token-a-client-would-send")

const allowed = { addresses: ["203.0.113.10", "198.51.100.20"], fqdn: "t1.omani.works" }
const inspector = KubeconfigInspector.make({ resolveTimeout: "2 seconds" })

/** The door as the server runs it, minus HTTP: YAML, then core's admission with the Node inspector. */
const door = (text: string): Effect.Effect<Either.Either<Kubeconfig.Kubeconfig, Kubeconfig.KubeconfigRefused | "yaml">> =>
  Either.match(parseYaml(text), {
    onLeft: () => Effect.succeed(Either.left("yaml" as const)),
    onRight: (document) =>
      Kubeconfig.admit(document, allowed).pipe(
        Effect.provideService(Kubeconfig.KubeconfigInspector, inspector),
        Effect.map((accepted) => Either.right(accepted)),
        Effect.catchAll((refused) => Effect.succeed(Either.left(refused)))
      )
  })

const forbidden = Object.keys(Kubeconfig.forbiddenFields)
const forbiddenValue = fc.constantFrom<unknown>(
  sentinel,
  true,
  { command: sentinel },
  { name: "oidc", config: { "id-token": "x" } },
  "http://127.0.0.1:3128"
)
const server = fc.constantFrom(
  "https://203.0.113.10:6443",
  "https://198.51.100.20",
  "https://127.0.0.1:6443",
  "https://10.0.0.1:6443",
  "https://evil.example.com:6443",
  "https://api.t1.omani.works:6443",
  "http://203.0.113.10:6443",
  "https://203.0.113.10:6443/path"
)

const credential = fc.constantFrom("token" as const, "certificate" as const)
const anyKubeconfig: fc.Arbitrary<Spec> = fc.record({
  server,
  credential,
  caIsLeaf: fc.boolean(),
  extras: fc.array(fc.tuple(fc.constantFrom("cluster", "user", "context", "top"), fc.constantFrom(...forbidden), forbiddenValue), {
    maxLength: 3
  }),
  unknown: fc.option(fc.constantFrom("extensions", "disable-compression", "preferences-extra"), { nil: undefined }),
  flow: fc.boolean()
})
/** Clean documents with a region address, so that acceptance is exercised as often as refusal. */
const cleanKubeconfig: fc.Arbitrary<Spec> = fc.record({
  server: fc.constantFrom("https://203.0.113.10:6443", "https://198.51.100.20"),
  credential,
  caIsLeaf: fc.constant(false),
  extras: fc.constant([]),
  unknown: fc.constant(undefined),
  flow: fc.boolean()
})
const arbitraryKubeconfig = fc.oneof({ arbitrary: anyKubeconfig, weight: 3 }, { arbitrary: cleanKubeconfig, weight: 1 })

interface Spec {
  readonly server: string
  readonly credential: "token" | "certificate"
  readonly caIsLeaf: boolean
  readonly extras: ReadonlyArray<readonly [string, string, unknown]>
  readonly unknown: string | undefined
  readonly flow: boolean
}

const render = (spec: Spec) => {
  const cluster: Record<string, unknown> = { server: spec.server, "certificate-authority-data": spec.caIsLeaf ? leaf : ca }
  const user: Record<string, unknown> =
    spec.credential === "token" ? { token: "k3s-token.abcdef" } : { "client-certificate-data": leaf, "client-key-data": key }
  const context: Record<string, unknown> = { cluster: "default", user: "default" }
  const document: Record<string, unknown> = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "default", cluster }],
    users: [{ name: "default", user }],
    contexts: [{ name: "default", context }],
    "current-context": "default"
  }
  for (const [where, field, value] of spec.extras) {
    const target = where === "cluster" ? cluster : where === "user" ? user : where === "context" ? context : document
    target[field] = value
  }
  if (spec.unknown !== undefined) cluster[spec.unknown] = "x"
  return Yaml.dump(document, { flowLevel: spec.flow ? 2 : -1 })
}

describe("the kubeconfig door (property)", () => {
  it(
    "never accepts a forbidden field or a foreign server, never touches a file, and accepts every clean document",
    { timeout: 120_000 },
    async () => {
      const touched: Array<string> = []
      const spies = (
        ["readFileSync", "readFile", "openSync", "open", "createReadStream", "accessSync", "existsSync", "statSync"] as const
      ).map((method) => {
        const original = fs[method] as (...args: Array<unknown>) => unknown
        return vi.spyOn(fs, method).mockImplementation(((...args: Array<unknown>) => {
          if (String(args[0]).startsWith(directory)) touched.push(String(args[0]))
          return original.apply(fs, args)
        }) as never)
      })
      const outcomes = { accepted: 0, refused: 0 }
      try {
        await fc.assert(
          fc.asyncProperty(arbitraryKubeconfig, async (spec) => {
            const verdict = await Effect.runPromise(door(render(spec)))
            const clean =
              spec.extras.length === 0 &&
              spec.unknown === undefined &&
              !spec.caIsLeaf &&
              (spec.server === "https://203.0.113.10:6443" || spec.server === "https://198.51.100.20")
            if (Either.isRight(verdict)) {
              outcomes.accepted++
              expect(clean).toBe(true)
              // What is stored is ours: it decodes to the same kubeconfig and holds no forbidden field.
              const normalised = Redacted.value(Kubeconfig.render(verdict.right))
              expect(Kubeconfig.decode(Yaml.load(normalised))).toEqual(Either.right(verdict.right))
              for (const field of forbidden) expect(normalised).not.toContain(`${field}:`)
            } else {
              outcomes.refused++
              expect(clean).toBe(false)
              const refusal = verdict.left
              if (refusal !== "yaml" && spec.extras.length > 0) {
                expect(refusal.reason).toBe("ForbiddenField")
                expect(forbidden).toContain(refusal.field)
              }
            }
          }),
          { numRuns: 300, seed: 1616 }
        )
      } finally {
        for (const spy of spies) spy.mockRestore()
      }
      expect(touched).toEqual([])
      // Both sides were exercised.
      expect(outcomes.accepted).toBeGreaterThan(5)
      expect(outcomes.refused).toBeGreaterThan(100)
    }
  )

  it("refuses YAML that is not one plain document: aliases, tags, several documents, deep nesting", async () => {
    const refusedBy = async (text: string) => {
      const verdict = await Effect.runPromise(door(text))
      return Either.isLeft(verdict) ? (verdict.left === "yaml" ? "yaml" : verdict.left.reason) : "accepted"
    }
    const base = render({
      server: "https://203.0.113.10:6443",
      credential: "token",
      caIsLeaf: false,
      extras: [],
      unknown: undefined,
      flow: false
    })
    expect(await refusedBy(base)).toBe("accepted")
    expect(await refusedBy(`${base}---\n${base}`)).toBe("yaml")
    expect(await refusedBy(base.replace("apiVersion: v1", "apiVersion: !!binary dGVzdA=="))).toBe("yaml")
    expect(await refusedBy("a: &x {b: 1}\nc: *x\nd: *x\n")).toBe("Malformed")
    expect(await refusedBy("[".repeat(100_000) + "]".repeat(100_000))).toMatch(/yaml|Malformed/)
  })
})
