import { CloudProviderSuite } from "@sovereign/testkit"
import { regions, scaled, worldLayer } from "./world.js"

CloudProviderSuite.suite("Hetzner adapter against the fake Hetzner Cloud API", worldLayer(), {
  regions,
  unknownCloudRegion: "mars1",
  around: scaled
})
