import { defineConfig } from "vitest/config";

// The suites StrykerJS runs against each mutant of packages/core/src and packages/adapters/src (`pnpm run mutation`):
// every unit test, and the adapters' integration tests against ONE moto server per Stryker worker (started by the
// global setup and handed to the tests with `provide`), instead of one per test file per mutant.
// MUTATION_PROJECTS=unit runs only core's and the adapters' own unit tests (no moto integration tests, no handler,
// twin or CLI tests): on a small shared machine a mutant the whole suite covers takes minutes instead of seconds; the
// score measured so is a lower bound (the tests left out could only kill more mutants).
const unitOnly = process.env.MUTATION_PROJECTS === "unit";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: unitOnly
            ? ["packages/{core,adapters}/tests/unit/**/*.test.ts"]
            : ["packages/*/tests/unit/**/*.test.ts"],
        },
      },
      ...(unitOnly
        ? []
        : [
            {
              test: {
                name: "integration",
                include: ["packages/adapters/tests/integration/**/*.test.ts"],
                globalSetup: ["packages/adapters/tests/integration/moto-global-setup.ts"],
                testTimeout: 60_000,
                hookTimeout: 60_000,
              },
            },
          ]),
    ],
  },
});
