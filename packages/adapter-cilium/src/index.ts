/** @sovereign/adapter-cilium: the mesh port over Cilium ClusterMesh. */
export * as Certificates from "./Certificates.js"
export * as CiliumCluster from "./CiliumCluster.js"
export * as CiliumMesh from "./CiliumMesh.js"
