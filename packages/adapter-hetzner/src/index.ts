/** @sovereign/adapter-hetzner: the cloud port over the Hetzner Cloud API. */
export * as CloudInit from "./CloudInit.js"
export * as HetznerCatalog from "./HetznerCatalog.js"
export * as HetznerClient from "./HetznerClient.js"
export * as HetznerCloud from "./HetznerCloud.js"
export * as HetznerNames from "./HetznerNames.js"
export * as HetznerSchema from "./HetznerSchema.js"
