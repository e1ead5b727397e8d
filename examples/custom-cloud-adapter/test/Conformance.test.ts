import { CloudProviderSuite } from "@sovereign/testkit"
import { Layer } from "effect"
import * as AcmeApi from "../src/AcmeApi.js"
import * as AcmeCloud from "../src/AcmeCloud.js"

CloudProviderSuite.suite("acme (example)", AcmeCloud.layer.pipe(Layer.provide(Layer.suspend(() => AcmeApi.layerMemory()))), {
  regions: [
    { provider: "acme", cloudRegion: "acme-north", controlPlaneSize: "small", workerSize: "medium", workerCount: 1 },
    { provider: "acme", cloudRegion: "acme-south", controlPlaneSize: "small", workerCount: 0 }
  ],
  unknownCloudRegion: "mars-1"
})
