import { meshProviderSuite } from "@sovereign/testkit/MeshProviderSuite"
import { Layer } from "effect"
import * as CiliumMesh from "../src/CiliumMesh.js"
import { makeMemoryWorld } from "./MemoryClusters.js"

// The mesh logic against in-memory clusters; Conformance.test.ts runs the same suite over the Kubernetes API.
meshProviderSuite(
  "CiliumMesh over in-memory clusters",
  Layer.suspend(() => {
    const { clustersLayer, worldLayer } = makeMemoryWorld()
    return Layer.merge(CiliumMesh.layer().pipe(Layer.provide(clustersLayer)), worldLayer)
  }),
  { mintsRemoteCertificates: true }
)
