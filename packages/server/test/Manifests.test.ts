/**
 * `deploy/kubernetes/*.yaml`: every document is valid against the Kubernetes schemas of
 * `kubernetes-models` (and the Prometheus Operator's for the ServiceMonitor), and agrees with the
 * server: its env names are variables the server reads and its values pass `ServerConfig`; the probes
 * are the API's own routes; ports, selectors and Secret keys line up.
 */
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option } from "effect"
import yaml from "js-yaml"
import { Deployment } from "kubernetes-models/apps/v1/Deployment"
import { Namespace } from "kubernetes-models/v1/Namespace"
import { Secret } from "kubernetes-models/v1/Secret"
import { Service } from "kubernetes-models/v1/Service"
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy"
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { openApi } from "../src/Api.js"
import * as ServerConfig from "../src/ServerConfig.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..")
const folder = path.join(root, "deploy/kubernetes")

interface Manifest {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: { readonly name: string; readonly namespace?: string }
  readonly [key: string]: unknown
}

const models: Record<string, new (data: never) => { validate: () => void }> = {
  "apps/v1/Deployment": Deployment,
  "v1/Service": Service,
  "v1/Secret": Secret,
  "v1/Namespace": Namespace,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor
}

const documents = fs
  .readdirSync(folder)
  .filter((file) => file.endsWith(".yaml"))
  .flatMap((file) =>
    yaml.loadAll(fs.readFileSync(path.join(folder, file), "utf8")).map((document) => ({ file, document: document as Manifest }))
  )

const one = <A>(kind: string) => {
  const found = documents.filter((entry) => entry.document.kind === kind)
  expect(found, kind).toHaveLength(1)
  return found[0]!.document as unknown as A
}

interface Container {
  readonly ports: ReadonlyArray<{ readonly name: string; readonly containerPort: number }>
  readonly env: ReadonlyArray<{
    readonly name: string
    readonly value?: string
    readonly valueFrom?: { readonly secretKeyRef?: { readonly name: string; readonly key: string } }
  }>
  readonly livenessProbe: { readonly httpGet: { readonly path: string; readonly port: string } }
  readonly readinessProbe: { readonly httpGet: { readonly path: string; readonly port: string } }
  readonly startupProbe?: { readonly httpGet: { readonly path: string; readonly port: string } }
  readonly securityContext: {
    readonly readOnlyRootFilesystem?: boolean
    readonly runAsNonRoot?: boolean
    readonly allowPrivilegeEscalation?: boolean
  }
}

interface DeploymentShape {
  readonly spec: {
    readonly replicas: number
    readonly strategy: { readonly type: string }
    readonly selector: { readonly matchLabels: Record<string, string> }
    readonly template: {
      readonly metadata: { readonly labels: Record<string, string> }
      readonly spec: { readonly securityContext: { readonly runAsNonRoot?: boolean }; readonly containers: ReadonlyArray<Container> }
    }
  }
}

describe("the Kubernetes manifests", () => {
  it("are valid against the Kubernetes schemas", () => {
    expect(documents.length).toBeGreaterThanOrEqual(6)
    for (const { file, document } of documents) {
      const model = models[`${document.apiVersion}/${document.kind}`]
      expect(model, `${file}: no schema for ${document.apiVersion} ${document.kind}`).toBeDefined()
      expect(() => new model!(document as never).validate(), file).not.toThrow()
      expect(document.metadata.namespace ?? "sovereign", file).toBe("sovereign")
    }
  })

  it("a broken manifest is refused by the same validation", () => {
    const deployment = one<DeploymentShape>("Deployment")
    const broken = { ...deployment, spec: { ...deployment.spec, replicas: "three" } }
    expect(() => new Deployment(broken as never).validate()).toThrow()
  })

  it("run the server as the issue asks: 3 replicas, rolling updates, non-root, read-only root, probes on the API's own routes", () => {
    const deployment = one<DeploymentShape>("Deployment")
    expect(deployment.spec.replicas).toBe(3)
    expect(deployment.spec.strategy.type).toBe("RollingUpdate")
    expect(deployment.spec.template.spec.securityContext.runAsNonRoot).toBe(true)
    const [container] = deployment.spec.template.spec.containers
    expect(container!.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false })
    const routes = Object.entries(openApi.paths)
      .filter(([, item]) => (item as { readonly get?: unknown }).get !== undefined)
      .map(([route]) => route)
    expect(container!.livenessProbe.httpGet.path).toBe("/livez")
    expect(container!.readinessProbe.httpGet.path).toBe("/readyz")
    for (const probe of [container!.livenessProbe, container!.readinessProbe, container!.startupProbe!]) {
      expect(routes).toContain(probe.httpGet.path)
      expect(probe.httpGet.port).toBe("http")
    }

    // The env: only variables the server reads (its adapters' included), and values ServerConfig accepts.
    const known = new Set<string>(ServerConfig.variables)
    for (const variable of container!.env) expect(known.has(variable.name), variable.name).toBe(true)
    const secret = one<{ readonly metadata: { readonly name: string }; readonly stringData: Record<string, string> }>("Secret")
    const env = new Map(
      container!.env.map((variable) => {
        const ref = variable.valueFrom?.secretKeyRef
        if (ref !== undefined) {
          expect(ref.name).toBe(secret.metadata.name)
          expect(Object.keys(secret.stringData), variable.name).toContain(ref.key)
          return [variable.name, secret.stringData[ref.key]!] as const
        }
        return [variable.name, variable.value ?? ""] as const
      })
    )
    for (const name of ["DATABASE_URL", "SOVEREIGN_SECRET_KEY", "SOVEREIGN_API_TOKENS"]) {
      expect(
        container!.env.find((variable) => variable.name === name)?.valueFrom?.secretKeyRef,
        `${name} comes from the Secret`
      ).toBeDefined()
    }
    const config = Effect.runSync(Effect.withConfigProvider(ServerConfig.config, ConfigProvider.fromMap(env)))
    const port = (name: string) => container!.ports.find((entry) => entry.name === name)?.containerPort
    expect(config.port).toBe(port("http"))
    expect(config.metricsPort).toEqual(Option.some(port("metrics")))
    expect(config.logFormat).toBe("json")
    expect(config.host).toBe("0.0.0.0")
    expect(Option.isSome(config.databaseUrl)).toBe(true)

    // Service, ServiceMonitor, PodDisruptionBudget and NetworkPolicy select these pods and name these ports.
    const labels = deployment.spec.template.metadata.labels
    expect(labels).toMatchObject(deployment.spec.selector.matchLabels)
    const service = one<{
      readonly spec: {
        readonly selector: Record<string, string>
        readonly ports: ReadonlyArray<{ readonly name: string; readonly targetPort: string }>
      }
    }>("Service")
    expect(labels).toMatchObject(service.spec.selector)
    for (const entry of service.spec.ports) expect(port(entry.targetPort), entry.name).toBeDefined()
    const monitor = one<{
      readonly spec: {
        readonly selector: { readonly matchLabels: Record<string, string> }
        readonly endpoints: ReadonlyArray<{ readonly port: string; readonly path: string }>
      }
    }>("ServiceMonitor")
    expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: "metrics", path: "/metrics" })])
    expect(service.spec.ports.map((entry) => entry.name)).toContain("metrics")
    const pdb = one<{
      readonly spec: { readonly minAvailable: number; readonly selector: { readonly matchLabels: Record<string, string> } }
    }>("PodDisruptionBudget")
    expect(labels).toMatchObject(pdb.spec.selector.matchLabels)
    expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas)
    const policy = one<{
      readonly spec: {
        readonly podSelector: { readonly matchLabels: Record<string, string> }
        readonly ingress: ReadonlyArray<{ readonly ports: ReadonlyArray<{ readonly port: string }> }>
      }
    }>("NetworkPolicy")
    expect(labels).toMatchObject(policy.spec.podSelector.matchLabels)
    for (const rule of policy.spec.ingress) for (const entry of rule.ports) expect(port(entry.port), entry.port).toBeDefined()
  })

  it("the Containerfile builds the bundle the manifests run, as a non-root user", () => {
    const containerfile = fs.readFileSync(path.join(root, "Containerfile"), "utf8")
    expect(containerfile).toMatch(/npm run build/)
    expect(containerfile).toMatch(/^USER 10001/m)
    expect(containerfile).toMatch(/ENTRYPOINT \["node", "--enable-source-maps", "\/app\/dist\/sovereign\.mjs"\]/)
    expect(containerfile).toMatch(/EXPOSE 8080 9464/)
  })
})
