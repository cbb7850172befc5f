/**
 * Chaos, short: the soak (packages/twin/soak) for half a minute of seeded workload on a fresh twin, then
 * quiescence and the independent checker; every invariant must hold. The seed is fixed, so a failure replays with
 * `pnpm run soak -- --minutes 0.5 --seed 20261130 --intensity 0.5` (the report is the assertion's message).
 */
import { describe, expect, it } from "vitest";
import { formatReport, runSoak } from "../../soak/soak.js";

const SEED = 20261130;
const MINUTES = 0.5;
const INTENSITY = 0.5;

describe("chaos: a short seeded soak on the twin", () => {
  it("ends quiet with every invariant holding (a-e)", async () => {
    const report = await runSoak({
      seed: SEED,
      minutes: MINUTES,
      intensity: INTENSITY,
      quiesceTimeoutMs: 120_000,
      ...(process.env.TWIN_TEST_VERBOSE ? { log: (l: string) => console.log(`[soak] ${l}`) } : {}),
    });
    const replay = `pnpm run soak -- --minutes ${MINUTES} --seed ${SEED} --intensity ${INTENSITY}`;
    expect(report.violations, formatReport(report, replay)).toEqual([]);
    // it did something: uploads of every kind went through, runs succeeded, bad files were failed
    expect(report.uploads).toBeGreaterThanOrEqual(20);
    expect(report.glueRuns.SUCCEEDED ?? 0).toBeGreaterThanOrEqual(1);
    expect(report.uploadsByStatus.processed ?? 0).toBeGreaterThanOrEqual(15);
  });
});
