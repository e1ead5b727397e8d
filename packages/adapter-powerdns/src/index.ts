/** @sovereign/adapter-powerdns: Sovereign's DNS port over the PowerDNS Authoritative HTTP API. */
export * as PowerDnsClient from "./PowerDnsClient.js"
export * as PowerDnsProvider from "./PowerDnsProvider.js"
export * as PowerDnsSchema from "./PowerDnsSchema.js"
