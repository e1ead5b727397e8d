import { DnsProviderSuite } from "@sovereign/testkit"
import { powerDnsWorld } from "./support.js"

DnsProviderSuite.suite("powerdns", powerDnsWorld(["conformance.test."]), { zone: "conformance.test." })
