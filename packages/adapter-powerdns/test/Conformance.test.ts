import { DnsProviderSuite } from "@sovereign/testkit"
import { providerOnRealPowerDns } from "./support.js"

DnsProviderSuite.run("powerdns", { layer: providerOnRealPowerDns(["conformance.test."]), zone: "conformance.test." })
