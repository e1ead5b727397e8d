import { DnsProviderSuite } from "@sovereign/testkit"
import { powerDnsWorld } from "./support.js"

DnsProviderSuite.run("powerdns", { layer: powerDnsWorld(["conformance.test."]), zone: "conformance.test." })
