import { defineConfig } from "vitest/config";

// The suites StrykerJS runs against each mutant of packages/core/src and packages/adapters/src (`pnpm run mutation`):
// every unit test, and the adapters' integration tests against ONE moto server per Stryker worker (started by the
// global setup and handed to the tests with `provide`), instead of one per test file per mutant.
export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["packages/*/tests/unit/**/*.test.ts"] } },
      {
        test: {
          name: "integration",
          include: ["packages/adapters/tests/integration/**/*.test.ts"],
          globalSetup: ["packages/adapters/tests/integration/moto-global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
