import { defineConfig } from "vitest/config";

// One place for the TS test suites: `unit` (pure logic + handlers with SDK mocks), `integration` (against a real
// moto server), `infra` (the SST app under Pulumi mocks), `e2e` (the twin end to end).
export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["packages/*/tests/unit/**/*.test.ts"] } },
      {
        test: {
          name: "integration",
          include: ["packages/*/tests/integration/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      { test: { name: "infra", include: ["infra/tests/**/*.test.ts"], testTimeout: 120_000, hookTimeout: 120_000 } },
      {
        test: {
          name: "e2e",
          include: ["packages/twin/tests/e2e/**/*.test.ts"],
          testTimeout: 600_000,
          hookTimeout: 300_000,
          // two files at once, each with its own twin (own emulator, ports, state folder): most of an e2e test is
          // waiting (batching windows, visibility timeouts, a Spark JVM starting), so two overlap well on 2 cores
          maxWorkers: 2,
        },
      },
    ],
  },
});
