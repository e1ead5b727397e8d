/** @sovereign/adapter-cilium: the mesh port over Cilium ClusterMesh. */
export * as Certificates from "./Certificates.js"
export * as CiliumCluster from "./CiliumCluster.js"
export * as CiliumMesh from "./CiliumMesh.js"
export * as CiliumSchema from "./CiliumSchema.js"
export * as KubernetesClusters from "./KubernetesClusters.js"
