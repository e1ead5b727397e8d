/** Types of scripts/build.mjs, for the TypeScript that imports it (tests, benchmarks). */
export declare const serverEntry: string
export declare const buildServer: () => Promise<string>
