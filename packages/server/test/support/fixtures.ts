/** Small records and requests shared by the server tests. */
import { Deployment, DeploymentRepo, Job } from "@sovereign/core"
import { Either } from "effect"

export const requestJson = (fqdn = "t1.omani.works", regions = 2) => ({
  sovereignFQDN: fqdn,
  orgName: "Omani Works",
  orgEmail: "ops@omani.works",
  regions: [
    { provider: "hetzner", cloudRegion: "fsn1", controlPlaneSize: "cpx32", workerSize: "cpx42", workerCount: 1 },
    { provider: "hetzner", cloudRegion: "hel1", controlPlaneSize: "cpx32", workerCount: 0 },
    { provider: "hetzner", cloudRegion: "nbg1", controlPlaneSize: "cpx32", workerCount: 0 }
  ].slice(0, regions),
  sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHdlbGxrbm93bnRlc3RrZXk ops@omani.works",
  credentials: { hetznerToken: "hcloud-secret-token-do-not-leak" }
})

export const spec = (fqdn = "t1.omani.works") => {
  const validated = Deployment.validate(requestJson(fqdn))
  if (Either.isLeft(validated)) throw new Error(validated.left.message)
  return validated.right
}

export const newDeployment = (
  id: string,
  options: { readonly fqdn?: string; readonly owner?: string; readonly createdAt?: number; readonly status?: DeploymentRepo.Status } = {}
): DeploymentRepo.NewDeployment => ({
  id,
  owner: options.owner ?? "ops@omani.works",
  status: options.status ?? "pending",
  spec: Deployment.publicSpec(spec(options.fqdn)),
  sealedCredentials: "sealed-blob",
  results: { regions: [] },
  createdAt: options.createdAt ?? 1_000
})

export const acceptedEvent: DeploymentRepo.NewDeploymentEvent = {
  at: 1_000,
  phase: "deployment",
  level: "info",
  message: "accepted",
  type: "status",
  state: "pending"
}

export const installJob = (deploymentId: string, chart: string, status: Job.JobStatus, dependsOn: ReadonlyArray<string> = []): Job.Job => ({
  id: Job.jobId(deploymentId, `install-${chart}`),
  deploymentId,
  jobName: `install-${chart}`,
  type: "install",
  appId: chart,
  region: "fsn1",
  parentId: "",
  dependsOn: dependsOn.map((dep) => `install-${dep}`),
  status,
  durationMs: 0
})
