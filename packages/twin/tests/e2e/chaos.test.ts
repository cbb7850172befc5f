/**
 * Chaos, short: the soak (packages/twin/soak) for half a minute of seeded workload on a fresh twin with the fault
 * layer on, then quiescence and the independent checker; every invariant must hold. Seeded (workload and faults), so
 * a failure replays with the command in the assertion's message (the soak's report, with each violation's history).
 *
 * The faults are every kind the pipeline must absorb within the test's few minutes: lost answers, 5xx, throttling,
 * latency, index lag, S3 events late / twice / out of order, Glue events lost / twice, StartJobRun errors after the
 * run started, WAITING → FAILED and internal failures, the slot lag, handler crashes. Two kinds are left to the
 * 10-minute soak (`--faults chaos`), because their repair waits on a timer longer than this test: a StartJobRun
 * error before the start (the sweeper frees a slot only after `startTimeoutSeconds`, 3 min) and a dropped S3 event
 * (found by listing input/ on the reconciler's schedule). The sweeper runs every 15 s here (5 min in the config).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatReport, runSoak } from "../../soak/soak.js";
import { type FaultConfig, faultConfig } from "../../src/faults/config.js";
import { projectPaths } from "../../src/paths.js";

const SEED = 20261130;
const MINUTES = 0.5;
const INTENSITY = 0.3;
const SWEEP_SECONDS = 15;
/** Long keys as S3 allows them (F1 in docs/notes/soak.md, keys over ~870 bytes lost, is fixed on main). */
const LONG_KEY_BYTES = [1000, 1024] as const;

export const CHAOS_TEST_FAULTS: Omit<FaultConfig, "seed"> = {
  rates: {
    lostAnswer: 0.03,
    serverError: 0.03,
    throttle: 0.03,
    latency: 0.2,
    gsiLag: 1,
    s3EventDuplicate: 0.1,
    s3EventDelay: 0.5,
    s3EventReorder: 0.1,
    glueEventLost: 0.2,
    glueEventDuplicate: 0.2,
    glueStartErrorAfterStart: 0.2,
    glueWaitingFailed: 0.1,
    glueInternalFailure: 0.1,
    glueSlotLag: 0.5,
    handlerCrash: 0.05,
  },
  latencyMs: 100,
  gsiLagMs: 1_000,
  s3EventDelayMs: 3_000,
};

describe("chaos: a short seeded soak on the twin, faults on", () => {
  it("ends quiet with every invariant holding (a-e)", async () => {
    const report = await runSoak({
      seed: SEED,
      minutes: MINUTES,
      intensity: INTENSITY,
      longKeyBytes: LONG_KEY_BYTES,
      faults: faultConfig(CHAOS_TEST_FAULTS, SEED),
      faultsLabel: "chaos-test",
      sweepIntervalMs: SWEEP_SECONDS * 1000,
      quiesceTimeoutMs: 300_000,
      // A crashed batch (batcher or recorder) comes back after its queue's visibility timeout: 32 s here for both
      // queues (362 s on AWS), as in faults.test.ts, so the test's quiescence does not wait out the prod timeout.
      // (CI once failed on the recorder queue alone: one recorder message was still invisible after 300 s.)
      twin: { queueVisibilityTimeoutSeconds: 32 },
      ...(process.env.TWIN_TEST_VERBOSE ? { log: (l: string) => console.log(`[soak] ${l}`) } : {}),
    });
    // The failure message is the whole report; the faults file makes the replay command exact.
    const faultsFile = join(projectPaths().twinDir, "chaos-test-faults.json");
    writeFileSync(faultsFile, JSON.stringify({ ...CHAOS_TEST_FAULTS, seed: SEED }));
    const replay = `pnpm run soak -- --minutes ${MINUTES} --seed ${SEED} --intensity ${INTENSITY} --long-key-bytes ${LONG_KEY_BYTES.join("-")} --faults ${faultsFile} --sweep-every ${SWEEP_SECONDS}`;
    expect(report.violations, formatReport(report, replay)).toEqual([]);
    // it did something: uploads went through, runs succeeded, faults were injected
    expect(report.uploads).toBeGreaterThanOrEqual(12);
    expect(report.glueRuns.SUCCEEDED ?? 0).toBeGreaterThanOrEqual(1);
    expect(report.uploadsByStatus.processed ?? 0).toBeGreaterThanOrEqual(8);
    expect(Object.values(report.faultsInjected ?? {}).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });
});
