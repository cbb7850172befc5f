/**
 * Property: whatever the interleaving of batchers, recorders, the sweeper and the Glue job, and whatever single
 * fault hits any call (see helpers/interleavings.ts), after quiescence the invariants of ARCHITECTURE.md hold.
 * Bounded here (the unit suite stays fast); `pnpm run explore` runs many more (EXPLORE_RUNS).
 * A counterexample that shrinking found is kept below as a named regression test.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runScenario, type Scenario } from "../helpers/interleavings.js";

const RUNS = Number(process.env.EXPLORE_RUNS ?? 40);
const SEED = process.env.EXPLORE_SEED === undefined ? undefined : Number(process.env.EXPLORE_SEED);

describe("interleavings with faults", () => {
  it(
    "nothing lost, nothing twice: every invariant holds after quiescence",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          (await import("../helpers/interleavings.js")).scenarioArb,
          fc.scheduler(),
          async (scenario, s) => {
            const { violations, trace } = await runScenario(scenario, s);
            if (violations.length > 0) throw new Error(`${violations.join("\n")}\n-- trace --\n${trace.join("\n")}`);
          },
        ),
        { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
      );
    },
    RUNS * 2_000,
  );
});

describe("counterexamples found by shrinking (kept as regressions)", () => {
  /** Replays one scenario with the scheduler releasing tasks in the order they were scheduled. */
  async function replay(scenario: Scenario) {
    const [s] = fc.sample(fc.scheduler({ act: async (f) => f() }), { numRuns: 1, seed: 1 });
    if (!s) throw new Error("no scheduler");
    return runScenario(scenario, s);
  }

  it.each<[string, Scenario]>([
    [
      "a lost StartJobRun answer whose retry met our own run",
      {
        uploads: [{ key: 0, sameSecond: false, batch: 0, duplicate: false }],
        faults: [],
        loseFirstEnd: false,
        duplicateFirstEnd: false,
      },
    ],
  ])("%s", async (_name, scenario) => {
    expect((await replay(scenario)).violations).toEqual([]);
  });
});
