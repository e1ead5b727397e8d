import { describe, expect, it } from "@effect/vitest"
import { CloudProvider } from "@sovereign/core"
import { CloudProviderSuite, FakeHetznerApi } from "@sovereign/testkit"
import { Deferred, Effect, Fiber, Layer, Redacted } from "effect"
import * as HetznerCloud from "../src/HetznerCloud.js"
import * as HetznerNames from "../src/HetznerNames.js"
import { adapterLayer, inProcessAdapterLayer, scaled } from "./world.js"

const threeRegions = [
  { provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx32", workerSize: "cpx42", workerCount: 1 },
  { provider: "hetzner", cloudRegion: "nbg1", controlPlaneSize: "cpx32", workerCount: 0 },
  { provider: "hetzner", cloudRegion: "hel1", controlPlaneSize: "cpx32", workerCount: 0 }
]

const t1 = CloudProviderSuite.sampleDeployment({
  id: "0123456789abcdef",
  fqdn: "t1.omani.works",
  regions: threeRegions,
  postbackToken: "postback-secret-0042"
})
const t10 = CloudProviderSuite.sampleDeployment({ id: "fedcba9876543210", fqdn: "t10.omani.works", regions: threeRegions.slice(0, 1) })

/** The resources the plan of `deployment` stands for, as `kind/name`. */
const plannedNames = (deployment: CloudProvider.CloudDeployment): ReadonlyArray<string> => {
  const primary = HetznerNames.regionPrefix(deployment.spec.sovereignFQDN, deployment.regions[0]!.key)
  return [
    `ssh_keys/${primary}-ssh`,
    ...deployment.regions.flatMap((region) => {
      const prefix = HetznerNames.regionPrefix(deployment.spec.sovereignFQDN, region.key)
      return [
        `networks/${prefix}-net`,
        `firewalls/${prefix}-fw`,
        ...Array.from({ length: deployment.spec.haControlPlane ? 3 : 1 }, (_, index) => `servers/${prefix}-cp${index + 1}`),
        ...Array.from({ length: region.workerCount }, (_, index) => `servers/${prefix}-w${index + 1}`),
        `load_balancers/${prefix}-lb`
      ]
    })
  ].sort()
}

const namesOf = (resources: ReadonlyArray<FakeHetznerApi.FakeResource>) =>
  resources.map((resource) => `${resource.kind}/${resource.name}`).sort()

/** A neighbour whose names share the `t1` prefix without the boundary, and an unlabelled CCM leftover of ours. */
const seedNeighbours = (fake: FakeHetznerApi.FakeHetznerApi) =>
  Effect.all([
    fake.seed("servers", { name: "t10-fsn1-cp1" }),
    fake.seed("load_balancers", { name: "t10-fsn1-lb" }),
    fake.seed("networks", { name: "t1-fsn1-2-net" }),
    fake.seed("servers", { name: "t1-fsn1-cp9", labels: { [HetznerNames.deploymentLabel]: "aaaaaaaaaaaaaaaa" } })
  ])

const neighbourNames = ["load_balancers/t10-fsn1-lb", "networks/t1-fsn1-2-net", "servers/t1-fsn1-cp9", "servers/t10-fsn1-cp1"]

const withFake = <A, E>(
  options: FakeHetznerApi.FakeHetznerOptions,
  body: (fake: FakeHetznerApi.FakeHetznerApi) => Effect.Effect<A, E, never>
) => scaled(Effect.scoped(Effect.flatMap(FakeHetznerApi.make(options), body)))

const cloudOf =
  (fake: FakeHetznerApi.FakeHetznerApi, extra: HetznerCloud.LayerOptions = {}) =>
  <A, E>(effect: Effect.Effect<A, E, CloudProvider.CloudProvider>) =>
    Effect.provide(effect, adapterLayer(fake, extra))

const inProcessCloudOf =
  (fake: FakeHetznerApi.FakeHetznerApi) =>
  <A, E>(effect: Effect.Effect<A, E, CloudProvider.CloudProvider>) =>
    Effect.provide(effect, inProcessAdapterLayer(fake))

const withCloud = <A, E>(f: (cloud: CloudProvider.CloudProviderService) => Effect.Effect<A, E>) =>
  Effect.flatMap(CloudProvider.CloudProvider, f)

describe("HetznerCloud.validate", () => {
  const cloud = HetznerCloud.make(
    {
      endpoint: "http://127.0.0.1:9",
      forToken: () => {
        throw new Error("no calls")
      }
    },
    { token: Redacted.make("x") }
  )
  const spec = (regions: ReadonlyArray<Record<string, unknown>>, credentials: Record<string, string> = {}) =>
    CloudProviderSuite.sampleDeployment({ id: "0123456789abcdef", fqdn: "t1.omani.works", regions: regions as never, credentials }).spec

  it.effect("names an unorderable SKU at its field, with the locations where it can be ordered", () =>
    Effect.gen(function* () {
      const issues = yield* cloud.validate(
        spec([
          { provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx32" },
          { provider: "hetzner", cloudRegion: "ash", controlPlaneSize: "cpx32", workerSize: "cpx21", workerCount: 1 }
        ])
      )
      expect(issues).toEqual([
        { path: "regions.1.controlPlaneSize", message: "server type 'cpx32' cannot be ordered in ash; orderable in fsn1, nbg1, hel1" },
        { path: "regions.1.workerSize", message: "server type 'cpx21' can no longer be ordered" }
      ])
    })
  )

  it.effect("accepts dedicated types everywhere and knows every location's network zone", () =>
    Effect.gen(function* () {
      const issues = yield* cloud.validate(
        spec(
          ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"].map((cloudRegion) => ({
            provider: "hetzner",
            cloudRegion,
            controlPlaneSize: "ccx23"
          }))
        )
      )
      expect(issues).toEqual([])
    })
  )

  it.effect("rejects unknown locations and server types, and a request without any token", () =>
    Effect.gen(function* () {
      const tokenless = HetznerCloud.make({
        endpoint: "http://127.0.0.1:9",
        forToken: () => {
          throw new Error("no calls")
        }
      })
      const issues = yield* tokenless.validate(
        spec([
          { provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx99" },
          { provider: "hetzner", cloudRegion: "eu-west-1", controlPlaneSize: "cpx32" },
          { provider: "simulator", cloudRegion: "anywhere", controlPlaneSize: "big" }
        ])
      )
      expect(issues.map((issue) => issue.path)).toEqual(["credentials.hetznerToken", "regions.0.controlPlaneSize", "regions.1.cloudRegion"])
      expect(
        yield* tokenless.validate(spec([{ provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx32" }], { hetznerToken: "t" }))
      ).toEqual([])
    })
  )

  it.effect("refuses a security-key SSH key, which the API does not accept", () =>
    Effect.gen(function* () {
      const request = spec([{ provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx32" }])
      const issues = yield* cloud.validate({
        ...request,
        sshPublicKey: "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t ops@x"
      })
      expect(issues.map((issue) => issue.path)).toEqual(["sshPublicKey"])
    })
  )

  it.effect("refuses a first label so long that resource names would exceed 63 characters", () =>
    Effect.gen(function* () {
      const long = CloudProviderSuite.sampleDeployment({
        id: "0123456789abcdef",
        fqdn: `${"a".repeat(55)}.omani.works`,
        regions: [{ provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx32" }]
      })
      expect((yield* cloud.validate(long.spec)).map((issue) => issue.path)).toEqual(["sovereignFQDN"])
    })
  )
})

describe("HetznerCloud.plan", () => {
  const cloud = (options: HetznerCloud.HetznerCloudOptions = {}) =>
    HetznerCloud.make(
      {
        endpoint: "http://127.0.0.1:9",
        forToken: () => {
          throw new Error("no calls")
        }
      },
      options
    )

  it.effect("plans the same steps for primary and secondaries, chained inside each region", () =>
    Effect.gen(function* () {
      const plan = yield* cloud().plan(t1)
      expect(plan.filter((step) => step.region === "fsn1").map((step) => [step.name, step.dependsOn])).toEqual([
        ["network", []],
        ["firewall", []],
        ["ssh-key", []],
        ["control-plane", ["network", "firewall", "ssh-key"]],
        ["workers", ["control-plane"]],
        ["load-balancer", ["network"]]
      ])
      expect(plan.filter((step) => step.region === "hel1-2").map((step) => step.name)).toEqual([
        "network",
        "firewall",
        "ssh-key",
        "control-plane",
        "load-balancer"
      ])
    })
  )

  it.effect("adds a console load balancer to the primary region only when asked", () =>
    Effect.gen(function* () {
      const plan = yield* cloud({ consoleLoadBalancer: true }).plan(t1)
      expect(plan.filter((step) => step.name === "console-load-balancer").map((step) => step.region)).toEqual(["fsn1"])
    })
  )
})

describe("HetznerCloud against the fake API", () => {
  it.live("builds exactly the planned resources, with their ownership labels and in the location's network zone", () =>
    withFake({}, (fake) =>
      Effect.gen(function* () {
        yield* CloudProviderSuite.applyAll(t1).pipe(cloudOf(fake))
        const resources = yield* fake.resources
        expect(namesOf(resources)).toEqual(plannedNames(t1))
        const cp = resources.find((resource) => resource.name === "t1-nbg1-1-cp1")!
        expect(cp.labels).toEqual({
          "sovereign.dev/deployment": t1.id,
          "sovereign.dev/region": "nbg1-1",
          "sovereign.dev/role": "control-plane",
          "sovereign.dev/index": "0"
        })
        expect(cp.body.server_type).toEqual({ name: "cpx32" })
        const network = resources.find((resource) => resource.name === "t1-hel1-2-net")!
        expect(network.body.ip_range).toBe("10.0.0.0/16")
        expect(network.body.subnets).toMatchObject([{ type: "cloud", ip_range: "10.0.1.0/24", network_zone: "eu-central" }])
        const lb = resources.find((resource) => resource.name === "t1-fsn1-lb")!
        expect((lb.body.services as Array<{ listen_port: number }>).map((service) => service.listen_port)).toEqual([80, 443, 53])
        const outputs = yield* withCloud((cloud) => cloud.outputs(t1)).pipe(cloudOf(fake))
        expect(outputs.map((output) => output.regionKey)).toEqual(["fsn1", "nbg1-1", "hel1-2"])
      })
    )
  )

  it.live("with HA, the other control planes join the first one's private address; the console load balancer is the primary's only", () =>
    withFake({}, (fake) =>
      Effect.gen(function* () {
        const ha = CloudProviderSuite.sampleDeployment({
          id: "0123456789abcdef",
          fqdn: "t1.omani.works",
          regions: threeRegions.slice(0, 2),
          haControlPlane: true
        })
        yield* CloudProviderSuite.applyAll(ha).pipe(cloudOf(fake, { consoleLoadBalancer: true }))
        const resources = yield* fake.resources
        const firstAddress = (name: string) =>
          (resources.find((resource) => resource.name === name)!.body.private_net as Array<{ ip: string }>)[0]!.ip
        const creates = (yield* fake.requests).filter((request) => request.method === "POST" && request.path === "/servers")
        const userData = (name: string) =>
          (creates.find((request) => (request.body as { name: string }).name === name)!.body as { user_data: string }).user_data
        for (const prefix of ["t1-fsn1", "t1-nbg1-1"]) {
          expect(userData(`${prefix}-cp1`)).toContain("cluster-init: true")
          for (const other of ["cp2", "cp3"])
            expect(userData(`${prefix}-${other}`)).toContain(`server: https://${firstAddress(`${prefix}-cp1`)}:6443`)
        }
        expect(userData("t1-fsn1-w1")).toContain(`server: https://${firstAddress("t1-fsn1-cp1")}:6443`)
        const outputs = yield* withCloud((cloud) => cloud.outputs(ha)).pipe(cloudOf(fake))
        expect(
          outputs.map((output) => [output.regionKey, output.controlPlaneIPs.length, output.consoleLoadBalancerIP !== undefined])
        ).toEqual([
          ["fsn1", 3, true],
          ["nbg1-1", 3, false]
        ])
      })
    )
  )

  it.live(
    "survives a crash after every single API call: the resumed run ends with exactly the plan, the purge leaves nothing of t1 and all of t10",
    () =>
      Effect.gen(function* () {
        // A clean run counts the calls a full provisioning makes (action polls included).
        const total = yield* withFake({}, (fake) =>
          Effect.gen(function* () {
            yield* CloudProviderSuite.applyAll(t1).pipe(inProcessCloudOf(fake))
            return (yield* fake.requests).length
          })
        )
        expect(total).toBeGreaterThan(20)
        let crashes = 0
        for (let call = 1; call <= total; call++) {
          yield* withFake({}, (fake) =>
            Effect.gen(function* () {
              yield* seedNeighbours(fake)
              const crashed = yield* fake.crashAt(call)
              // The first process dies right after the API acted on call `call`, before it sees the answer.
              const first = yield* CloudProviderSuite.applyAll(t1).pipe(inProcessCloudOf(fake), Effect.fork)
              yield* Effect.raceFirst(Deferred.await(crashed), Effect.asVoid(Fiber.await(first)))
              yield* Fiber.interrupt(first)
              if (yield* Deferred.isDone(crashed)) crashes += 1
              // Call counts vary with timing (action polls); a crash point the first run never reached is dropped.
              yield* fake.resetLog
              // A new process (fresh adapter, nothing cached) re-runs every step.
              yield* CloudProviderSuite.applyAll(t1).pipe(inProcessCloudOf(fake))
              const resources = yield* fake.resources
              const owned = resources.filter((resource) => resource.labels[HetznerNames.deploymentLabel] === t1.id)
              expect(namesOf(owned), `crash after call ${call}`).toEqual(plannedNames(t1))
              const unowned = resources.filter(
                (resource) => resource.name.startsWith("t1-") && resource.labels[HetznerNames.deploymentLabel] === undefined
              )
              expect(namesOf(unowned)).toEqual(["networks/t1-fsn1-2-net"])
              const report = yield* withCloud((cloud) => cloud.purge(t1)).pipe(inProcessCloudOf(fake))
              expect(report.remaining).toEqual([])
              expect(report.errors).toEqual([])
              expect(namesOf(yield* fake.resources), `after purge, crash after call ${call}`).toEqual(neighbourNames)
            })
          )
        }
        // Nearly every run really crashed (a run may need a call or two fewer than the clean one).
        expect(crashes).toBeGreaterThanOrEqual(total - 2)
      }),
    120_000
  )

  it.live(
    "a purge interrupted after any single API call is finished by the next purge, and t10 survives",
    () =>
      Effect.gen(function* () {
        const total = yield* withFake({}, (fake) =>
          Effect.gen(function* () {
            yield* CloudProviderSuite.applyAll(t1).pipe(inProcessCloudOf(fake))
            yield* fake.resetLog
            yield* withCloud((cloud) => cloud.purge(t1)).pipe(inProcessCloudOf(fake))
            return (yield* fake.requests).length
          })
        )
        let crashes = 0
        for (let call = 1; call <= total; call++) {
          yield* withFake({}, (fake) =>
            Effect.gen(function* () {
              yield* CloudProviderSuite.applyAll(t10).pipe(inProcessCloudOf(fake))
              yield* CloudProviderSuite.applyAll(t1).pipe(inProcessCloudOf(fake))
              const t10Before = namesOf(
                (yield* fake.resources).filter((resource) => resource.labels[HetznerNames.deploymentLabel] === t10.id)
              )
              const offset = (yield* fake.requests).length
              const crashed = yield* fake.crashAt(offset + call)
              const first = yield* withCloud((cloud) => cloud.purge(t1)).pipe(inProcessCloudOf(fake), Effect.fork)
              yield* Effect.raceFirst(Deferred.await(crashed), Effect.asVoid(Fiber.await(first)))
              yield* Fiber.interrupt(first)
              if (yield* Deferred.isDone(crashed)) crashes += 1
              // Call counts vary with timing (action polls); a crash point the first purge never reached is dropped.
              yield* fake.resetLog
              const report = yield* withCloud((cloud) => cloud.purge(t1)).pipe(inProcessCloudOf(fake))
              expect(report.remaining, `purge crashed after call ${call}`).toEqual([])
              expect(report.errors).toEqual([])
              const left = yield* fake.resources
              expect(left.filter((resource) => resource.name.startsWith("t1-"))).toEqual([])
              expect(namesOf(left.filter((resource) => resource.labels[HetznerNames.deploymentLabel] === t10.id))).toEqual(t10Before)
            })
          )
        }
        expect(crashes).toBeGreaterThanOrEqual(total - 2)
      }),
    120_000
  )

  it.live("purges by label, then unlabelled leftovers by name with a boundary, detaching and retrying a firewall still in use", () =>
    withFake({ firewallInUseTimes: 2 }, (fake) =>
      Effect.gen(function* () {
        yield* CloudProviderSuite.applyAll(t10).pipe(cloudOf(fake))
        yield* CloudProviderSuite.applyAll(t1).pipe(cloudOf(fake))
        yield* seedNeighbours(fake)
        yield* fake.seed("load_balancers", { name: "t1-fsn1-clustermesh", labels: { "hcloud-ccm/service-uid": "abc" } })
        const t10Before = namesOf((yield* fake.resources).filter((resource) => resource.name.startsWith("t10-")))
        const report = yield* withCloud((cloud) => cloud.purge(t1)).pipe(cloudOf(fake, { inUseBackoff: "1 second" }))
        expect(report.errors).toEqual([])
        expect(report.remaining).toEqual([])
        expect(report.deleted.map((resource) => resource.name)).toContain("t1-fsn1-clustermesh")
        const left = yield* fake.resources
        expect(left.filter((resource) => resource.labels[HetznerNames.deploymentLabel] === t1.id)).toEqual([])
        expect(namesOf(left.filter((resource) => resource.name.startsWith("t10-")))).toEqual(t10Before)
        expect(left.map((resource) => resource.name)).toEqual(expect.arrayContaining(["t1-fsn1-2-net", "t1-fsn1-cp9"]))
        const requests = yield* fake.requests
        const firewallDeletes = requests.filter((request) => request.method === "DELETE" && request.path.startsWith("/firewalls/"))
        expect(firewallDeletes.filter((request) => request.status === 422).length).toBe(2 * 3)
        expect(requests.some((request) => request.path.endsWith("/actions/remove_from_resources"))).toBe(true)
      })
    )
  )

  it.live("completes the plan under a script of 429s and 5xx without ever exceeding the budget the headers allow", () =>
    withFake({ rateLimit: { limit: 8, refillPerSecond: 0.05 } }, (fake) =>
      Effect.gen(function* () {
        yield* fake.inject(
          { status: 429, code: "rate_limit_exceeded", method: "POST", path: "/servers" },
          { status: 503, code: "unavailable", method: "POST", path: "/networks" },
          { status: 500, code: "server_error", method: "GET", path: "/load_balancers" },
          { status: 429, code: "rate_limit_exceeded", method: "GET" },
          { status: 502, code: "bad_gateway", method: "POST", path: "/load_balancers" },
          { status: 409, code: "conflict", method: "POST", path: "/firewalls" },
          { status: 423, code: "locked", method: "POST", path: "/servers" },
          { status: 429, code: "rate_limit_exceeded", method: "POST" }
        )
        // In-process, so the budget is not refilled by socket latency scaled a thousandfold.
        yield* CloudProviderSuite.applyAll(t1).pipe(inProcessCloudOf(fake))
        expect(namesOf(yield* fake.resources)).toEqual(plannedNames(t1))
        expect(yield* fake.violations).toBe(0)
        const statuses = (yield* fake.requests).map((request) => request.status)
        expect(statuses.filter((status) => status === 429).length).toBe(3)
        expect(statuses.filter((status) => status >= 500).length).toBe(3)
      })
    )
  )

  it.live("stops at once on a permanent error and says which step and region failed", () =>
    withFake({}, (fake) =>
      Effect.gen(function* () {
        yield* fake.inject({
          status: 403,
          code: "resource_limit_exceeded",
          method: "POST",
          path: "/networks",
          message: "network limit exceeded"
        })
        const cloud = yield* CloudProvider.CloudProvider.pipe(cloudOf(fake))
        const plan = yield* cloud.plan(t1)
        const error = yield* Effect.flip(cloud.apply(t1, plan[0]!))
        expect(error).toMatchObject({ reason: "QuotaExceeded", region: "fsn1", step: "network", provider: "hetzner" })
        expect(error.isRetryable).toBe(false)
        expect((yield* fake.requests).filter((request) => request.method === "POST").length).toBe(1)
      })
    )
  )

  it.live("maps a rejected token to Unauthorized without retrying, and never puts a token in an error or a step log", () =>
    withFake({}, (fake) =>
      Effect.gen(function* () {
        const bad = CloudProviderSuite.sampleDeployment({
          id: "0123456789abcdef",
          fqdn: "t1.omani.works",
          regions: threeRegions,
          credentials: { hetznerToken: "rotated-token-1234" }
        })
        const error = yield* Effect.flip(withCloud((cloud) => cloud.inventory(bad)).pipe(cloudOf(fake)))
        expect(error.reason).toBe("Unauthorized")
        expect(JSON.stringify(error)).not.toContain("rotated-token-1234")
        expect((yield* fake.requests).length).toBe(1)
        const results = yield* CloudProviderSuite.applyAll(t1).pipe(cloudOf(fake))
        const logs = JSON.stringify([...results.values()])
        expect(logs).not.toContain("postback-secret-0042")
        expect(logs).not.toContain(fake.token)
        expect(logs).toContain("created server t1-fsn1-cp1")
      })
    )
  )
})

describe("HetznerCloud: one SSH key for many deployments", () => {
  // Five deployments of one operator: the same key (the sample's), other names and ids.
  const sharing = Array.from({ length: 5 }, (_, index) =>
    CloudProviderSuite.sampleDeployment({
      id: `00000000000000${String(index + 10)}`,
      fqdn: `k${index}.omani.works`,
      regions: threeRegions.slice(0, 1)
    })
  )
  const uniquenessAnswers = (requests: ReadonlyArray<FakeHetznerApi.RecordedRequest>) =>
    requests.filter((request) => request.status === 409 && request.method === "POST" && request.path === "/ssh_keys").length

  it.live(
    "five deployments applied at the same moment in one process: every plan applies, one key is uploaded, no create races another",
    () =>
      withFake({}, (fake) =>
        Effect.gen(function* () {
          yield* Effect.forEach(sharing, (deployment) => CloudProviderSuite.applyAll(deployment), {
            concurrency: "unbounded",
            discard: true
          })
          const resources = yield* fake.resources
          expect(resources.filter((resource) => resource.kind === "ssh_keys")).toHaveLength(1)
          for (const deployment of sharing) {
            const prefix = HetznerNames.regionPrefix(deployment.spec.sovereignFQDN, deployment.regions[0]!.key)
            expect(resources.some((resource) => resource.name === `${prefix}-cp1`)).toBe(true)
          }
          expect(uniquenessAnswers(yield* fake.requests)).toBe(0)
        }).pipe(cloudOf(fake))
      )
  )

  it.live("a key another process uploads between our look-up and our create is read again and reused, never a failure", () =>
    withFake({}, (fake) =>
      Effect.gen(function* () {
        // Five processes (five adapters, no shared lock), each with one deployment, all at once.
        yield* Effect.forEach(sharing, (deployment) => CloudProviderSuite.applyAll(deployment).pipe(cloudOf(fake)), {
          concurrency: "unbounded",
          discard: true
        })
        const resources = yield* fake.resources
        expect(resources.filter((resource) => resource.kind === "ssh_keys")).toHaveLength(1)
        // The race did happen (the fake refused the later uploads), and every deployment went on.
        expect(uniquenessAnswers(yield* fake.requests)).toBeGreaterThan(0)
        expect(resources.filter((resource) => resource.kind === "servers")).toHaveLength(sharing.length * 2)
      })
    )
  )

  it.live("the later deployment neither owns nor purges the key it reused; the owner's purge removes it", () =>
    withFake({}, (fake) =>
      Effect.gen(function* () {
        const [first, second] = [sharing[0]!, sharing[1]!]
        const firstResults = yield* CloudProviderSuite.applyAll(first).pipe(cloudOf(fake))
        const secondResults = yield* CloudProviderSuite.applyAll(second).pipe(cloudOf(fake))
        expect([...firstResults.entries()].find(([key]) => key.endsWith(":ssh-key"))?.[1].resources).toHaveLength(1)
        const reused = [...secondResults.entries()].find(([key]) => key.endsWith(":ssh-key"))?.[1]
        expect(reused?.resources).toHaveLength(0)
        expect(reused?.log.some((line) => line.includes("belongs to someone else"))).toBe(true)
        yield* withCloud((cloud) => cloud.purge(second)).pipe(cloudOf(fake))
        expect((yield* fake.resources).filter((resource) => resource.kind === "ssh_keys")).toHaveLength(1)
        yield* withCloud((cloud) => cloud.purge(first)).pipe(cloudOf(fake))
        expect((yield* fake.resources).filter((resource) => resource.kind === "ssh_keys")).toHaveLength(0)
      })
    )
  )
})

describe("HetznerCloud wiring", () => {
  it.effect("reads HCLOUD_TOKEN and HCLOUD_ENDPOINT", () =>
    Effect.gen(function* () {
      const { ConfigProvider } = yield* Effect.promise(() => import("effect"))
      const read = (env: Record<string, string>) =>
        HetznerCloud.config.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
      const defaults = yield* read({})
      expect(defaults.endpoint).toBe("https://api.hetzner.cloud/v1")
      const set = yield* read({ HCLOUD_TOKEN: "abc", HCLOUD_ENDPOINT: "http://127.0.0.1:1/v1" })
      expect(set.endpoint).toBe("http://127.0.0.1:1/v1")
      expect(set.token._tag === "Some" && Redacted.value(set.token.value)).toBe("abc")
      expect(Layer.isLayer(HetznerCloud.layerConfig())).toBe(true)
    })
  )
})

describe("HetznerCloud step order", () => {
  it.live("a step whose dependency is missing fails as NotFound naming its region and step, and creates nothing", () =>
    withFake({}, (fake) =>
      Effect.gen(function* () {
        const cloud = yield* CloudProvider.CloudProvider.pipe(cloudOf(fake))
        const plan = yield* cloud.plan(t1)
        const controlPlane = plan.find((step) => step.region === "nbg1-1" && step.name === "control-plane")!
        const error = yield* Effect.flip(cloud.apply(t1, controlPlane))
        expect(error).toMatchObject({ reason: "NotFound", region: "nbg1-1", step: "control-plane" })
        expect(error.isRetryable).toBe(false)
        expect(yield* fake.resources).toEqual([])
      })
    )
  )
})
