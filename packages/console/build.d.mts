/** Types of build.mjs, for the TypeScript that imports it (tests, benchmarks). */
export declare const consoleDist: string
export declare const buildConsole: () => Promise<{ readonly dir: string; readonly gzipBytes: number }>
