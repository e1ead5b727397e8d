/** @sovereign/adapter-kubernetes: verified Kubernetes clients, the HelmRelease ClusterWatch and the handover access object. */
export * as HelmControllerLog from "./HelmControllerLog.js"
export * as KubeClient from "./KubeClient.js"
export * as KubernetesClusterAccess from "./KubernetesClusterAccess.js"
export * as KubernetesClusterWatch from "./KubernetesClusterWatch.js"
export * as KubernetesSchema from "./KubernetesSchema.js"
export * as Yaml from "./Yaml.js"
