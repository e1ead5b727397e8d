export * as DnsProviderSuite from "./DnsProviderSuite.js"
export * as PowerDnsServer from "./PowerDnsServer.js"
export * as FakeKubernetesApi from "./FakeKubernetesApi.js"
export * as MeshProviderSuite from "./MeshProviderSuite.js"
