import { CloudProviderSuite } from "@sovereign/testkit"
import { regions, scaled, worldLayer } from "./world.js"

CloudProviderSuite.run({
  name: "Hetzner adapter against the fake Hetzner Cloud API",
  layer: worldLayer(),
  regions,
  unknownCloudRegion: "mars1",
  around: scaled
})
