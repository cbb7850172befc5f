// @ts-check
/**
 * Mutation testing of the domain logic and the AWS adapters: `pnpm run mutation` (not in CI; see
 * docs/notes/reconciler.md for the score and the surviving mutants). Scope a run with `--mutate <file>`; results are
 * kept in reports/mutation/ and reused incrementally.
 *
 * Stryker runs the tests in a sandbox copy of the repo without .venv: the moto server the adapters' integration
 * tests use is the project's own, located here and handed down through the environment.
 */
import { join } from "node:path";

process.env.MUTATION_MOTO_SERVER ??= join(import.meta.dirname, ".venv", "bin", "moto_server");

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  packageManager: "pnpm",
  testRunner: "vitest",
  plugins: ["@stryker-mutator/vitest-runner"],
  vitest: {
    configFile: "vitest.mutation.config.ts",
    related: false,
  },
  mutate: [
    "packages/core/src/**/*.ts",
    "packages/adapters/src/**/*.ts",
    "!packages/core/src/testing/**",
    "!packages/core/src/index.ts",
    "!packages/adapters/src/index.ts",
  ],
  ignorePatterns: [".venv", ".twin", ".sst", "glue", "reports", "docs", "**/node_modules"],
  coverageAnalysis: "perTest",
  concurrency: 2,
  timeoutMS: 10000,
  incremental: true,
  incrementalFile: "reports/mutation/stryker-incremental.json",
  reporters: ["clear-text", "progress", "html", "json"],
  htmlReporter: {
    fileName: "reports/mutation/mutation.html",
  },
  jsonReporter: {
    fileName: "reports/mutation/mutation.json",
  },
  thresholds: {
    high: 90,
    low: 85,
    break: null,
  },
  tempDirName: ".stryker-tmp",
  cleanTempDir: "always",
};
