/** The 35 bootstrap-kit HelmReleases and their dependencies, generated from packages/testkit/fixtures/bootstrap-kit.json so the simulator ships with them. */

export interface KitRelease {
  readonly name: string
  readonly namespace: string
  readonly targetNamespace: string
  readonly dependsOn: ReadonlyArray<string>
}

export const bootstrapKit: ReadonlyArray<KitRelease> = [
  { name: "bp-cilium", namespace: "flux-system", targetNamespace: "kube-system", dependsOn: [] },
  { name: "bp-cert-manager", namespace: "flux-system", targetNamespace: "cert-manager", dependsOn: ["bp-cilium"] },
  { name: "bp-flux", namespace: "flux-system", targetNamespace: "flux-system", dependsOn: ["bp-cert-manager"] },
  { name: "bp-crossplane", namespace: "flux-system", targetNamespace: "crossplane-system", dependsOn: ["bp-flux"] },
  { name: "bp-sealed-secrets", namespace: "flux-system", targetNamespace: "kube-system", dependsOn: ["bp-cert-manager"] },
  { name: "bp-spire", namespace: "flux-system", targetNamespace: "spire-system", dependsOn: ["bp-cert-manager"] },
  { name: "bp-nats-jetstream", namespace: "flux-system", targetNamespace: "nats-system", dependsOn: ["bp-spire"] },
  { name: "bp-openbao", namespace: "flux-system", targetNamespace: "openbao", dependsOn: ["bp-spire"] },
  { name: "bp-keycloak", namespace: "flux-system", targetNamespace: "keycloak", dependsOn: ["bp-cert-manager"] },
  { name: "bp-gitea", namespace: "flux-system", targetNamespace: "gitea", dependsOn: ["bp-keycloak"] },
  { name: "bp-powerdns", namespace: "flux-system", targetNamespace: "powerdns", dependsOn: ["bp-cert-manager"] },
  { name: "bp-external-dns", namespace: "flux-system", targetNamespace: "external-dns", dependsOn: ["bp-cert-manager", "bp-powerdns"] },
  { name: "bp-catalyst-platform", namespace: "flux-system", targetNamespace: "catalyst-system", dependsOn: ["bp-gitea"] },
  { name: "bp-crossplane-claims", namespace: "flux-system", targetNamespace: "crossplane-system", dependsOn: ["bp-crossplane"] },
  {
    name: "bp-external-secrets",
    namespace: "flux-system",
    targetNamespace: "external-secrets-system",
    dependsOn: ["bp-openbao", "bp-cert-manager"]
  },
  { name: "bp-cnpg", namespace: "flux-system", targetNamespace: "cnpg-system", dependsOn: ["bp-flux"] },
  { name: "bp-valkey", namespace: "flux-system", targetNamespace: "valkey", dependsOn: ["bp-flux"] },
  { name: "bp-seaweedfs", namespace: "flux-system", targetNamespace: "seaweedfs", dependsOn: ["bp-flux", "bp-cert-manager"] },
  { name: "bp-harbor", namespace: "flux-system", targetNamespace: "harbor", dependsOn: ["bp-cnpg", "bp-seaweedfs", "bp-cert-manager"] },
  { name: "bp-opentelemetry", namespace: "flux-system", targetNamespace: "opentelemetry", dependsOn: ["bp-cert-manager"] },
  { name: "bp-alloy", namespace: "flux-system", targetNamespace: "alloy", dependsOn: ["bp-opentelemetry"] },
  { name: "bp-loki", namespace: "flux-system", targetNamespace: "loki", dependsOn: ["bp-seaweedfs"] },
  { name: "bp-mimir", namespace: "flux-system", targetNamespace: "mimir", dependsOn: ["bp-seaweedfs"] },
  { name: "bp-tempo", namespace: "flux-system", targetNamespace: "tempo", dependsOn: ["bp-seaweedfs"] },
  {
    name: "bp-grafana",
    namespace: "flux-system",
    targetNamespace: "grafana",
    dependsOn: ["bp-cnpg", "bp-loki", "bp-mimir", "bp-tempo", "bp-keycloak"]
  },
  { name: "bp-langfuse", namespace: "flux-system", targetNamespace: "langfuse", dependsOn: ["bp-cnpg", "bp-keycloak", "bp-cert-manager"] },
  { name: "bp-kyverno", namespace: "flux-system", targetNamespace: "kyverno", dependsOn: ["bp-cilium"] },
  { name: "bp-reloader", namespace: "flux-system", targetNamespace: "reloader", dependsOn: [] },
  { name: "bp-vpa", namespace: "flux-system", targetNamespace: "vpa", dependsOn: [] },
  { name: "bp-trivy", namespace: "flux-system", targetNamespace: "trivy-system", dependsOn: ["bp-cert-manager"] },
  { name: "bp-falco", namespace: "flux-system", targetNamespace: "falco", dependsOn: ["bp-cilium"] },
  { name: "bp-sigstore", namespace: "flux-system", targetNamespace: "sigstore-system", dependsOn: ["bp-cert-manager"] },
  { name: "bp-syft-grype", namespace: "flux-system", targetNamespace: "syft-grype", dependsOn: ["bp-cert-manager"] },
  { name: "bp-velero", namespace: "flux-system", targetNamespace: "velero", dependsOn: ["bp-seaweedfs"] },
  { name: "bp-coraza", namespace: "flux-system", targetNamespace: "coraza", dependsOn: ["bp-cilium", "bp-cert-manager"] }
]
