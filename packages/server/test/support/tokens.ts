/** API tokens for tests: as long and as random as the server demands (≥ 32 characters, many distinct ones). */
import { randomBytes } from "node:crypto"

export const testToken = (label: string): string => `${label}-${randomBytes(24).toString("hex")}`
