/**
 * The bootstrap kit's 35 HelmReleases as the project's own fixture (`fixtures/bootstrap-kit.json`,
 * a verbatim copy of the kit's release list), so tests and benchmarks of a clone need nothing
 * beside the repository.
 */
import * as fs from "node:fs"

export interface KitRelease {
  readonly name: string
  readonly namespace: string
  readonly targetNamespace: string
  readonly dependsOn: ReadonlyArray<string>
}

/** Where the fixture lives (core's tests read it by this relative path: they cannot import the testkit). */
export const fixtureUrl: URL = new URL("../fixtures/bootstrap-kit.json", import.meta.url)

/** The releases in the fixture's order, with their in-kit dependencies. */
export const releases: ReadonlyArray<KitRelease> = (JSON.parse(fs.readFileSync(fixtureUrl, "utf8")) as ReadonlyArray<KitRelease>).map(
  ({ name, namespace, targetNamespace, dependsOn }) => ({ name, namespace, targetNamespace, dependsOn })
)
