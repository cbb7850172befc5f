/**
 * The fill hold (RunSettings.fillHold, runs/start.ts fillingUp): a small run waits while a fast stream fills it, never
 * past maxWaitSeconds, never once the stream has gone quiet, never for a failed run's retries. Literal expectations.
 */
import { describe, expect, it } from "vitest";
import type { RunSettings } from "../../src/config/pipeline.js";
import type { UploadRecord } from "../../src/ledger/types.js";
import { fillingUp, startNextRun } from "../../src/runs/start.js";
import { sweep } from "../../src/runs/sweeper.js";
import { toUpload } from "../../src/upload/identity.js";
import { BUCKET, makeWorld } from "../helpers/world.js";

const HOLD = { minFiles: 1_500, maxWaitSeconds: 330, quietSeconds: 75 };
const NOW = new Date("2026-04-01T10:10:00.000Z");

/** `n` fresh uploads, the oldest `oldestAgeS` before NOW, the newest `newestAgeS` before NOW (evenly between). */
function uploads(n: number, oldestAgeS: number, newestAgeS = 0, retryGroupSize: number | null = null): UploadRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const ageS = n === 1 ? oldestAgeS : oldestAgeS - ((oldestAgeS - newestAgeS) * i) / (n - 1);
    return { uploadId: `u${i}`, receivedAt: new Date(NOW.getTime() - ageS * 1000).toISOString(), retryGroupSize };
  }) as unknown as UploadRecord[];
}

function settings(fillHold: RunSettings["fillHold"]): RunSettings {
  return { ...makeWorld().config.runs, fillHold };
}

describe("fillingUp: when a small run waits for the stream to fill it", () => {
  it("holds 500 uploads that came over 100 s (5 a second: 1,500 within 330 s)", () => {
    // 500 × 330 = 165,000 ≥ 1,500 × 100 = 150,000
    expect(fillingUp(settings(HOLD), uploads(500, 100), NOW)).toBe(true);
  });

  it("does not hold a stream too slow to reach 1,500 by 330 s (500 over 120 s: 4.2 a second)", () => {
    // 500 × 330 = 165,000 < 1,500 × 120 = 180,000
    expect(fillingUp(settings(HOLD), uploads(500, 120), NOW)).toBe(false);
  });

  it("holds at exactly the rate that reaches minFiles at maxWaitSeconds (boundary included)", () => {
    // 500 × 330 = 1,500 × 110
    expect(fillingUp(settings(HOLD), uploads(500, 110), NOW)).toBe(true);
  });

  it("starts a run that is full enough (1,500 uploads)", () => {
    expect(fillingUp(settings(HOLD), uploads(1_500, 100), NOW)).toBe(false);
    expect(fillingUp(settings(HOLD), uploads(1_499, 100), NOW)).toBe(true);
  });

  it("never holds past maxWaitSeconds, however fast the stream", () => {
    // 1,499 × 330 = 494,670 ≥ 1,500 × 329 = 493,500
    expect(fillingUp(settings(HOLD), uploads(1_499, 329), NOW)).toBe(true);
    expect(fillingUp(settings(HOLD), uploads(1_499, 330), NOW)).toBe(false);
  });

  it("stops holding once the stream is quiet (nothing recorded for quietSeconds): a burst that ended", () => {
    expect(fillingUp(settings(HOLD), uploads(900, 100, 74), NOW)).toBe(true);
    expect(fillingUp(settings(HOLD), uploads(900, 100, 75), NOW)).toBe(false);
  });

  it("never holds a failed run's retries, an empty run, or with the hold off", () => {
    expect(fillingUp(settings(HOLD), uploads(500, 60, 0, 250), NOW)).toBe(false);
    expect(fillingUp(settings(HOLD), [], NOW)).toBe(false);
    expect(fillingUp(settings(null), uploads(500, 60), NOW)).toBe(false);
  });

  it("reads a just-recorded upload (age 0) as 1 s old: 5 uploads hold, 4 do not", () => {
    // 5 × 330 = 1,650 ≥ 1,500 × 1; 4 × 330 = 1,320 < 1,500
    expect(fillingUp(settings(HOLD), uploads(5, 0), NOW)).toBe(true);
    expect(fillingUp(settings(HOLD), uploads(4, 0), NOW)).toBe(false);
  });
});

describe("startNextRun with a fill hold", () => {
  async function worldWithPending(n: number) {
    const w = makeWorld();
    const runs: RunSettings = { ...w.config.runs, fillHold: HOLD };
    const known: UploadRecord[] = [];
    for (let i = 0; i < n; i++) {
      const { record } = await w.ledger.recordUpload(
        toUpload(w.objects.put(BUCKET, `input/f${i}.csv`, "id\n1\n")),
        w.clock.now().toISOString(),
      );
      known.push(record);
    }
    return { w, runs, known };
  }

  it("gives the slot back while filling; a sweep starts the run once the hold ends", async () => {
    const { w, runs, known } = await worldWithPending(200);
    expect(await startNextRun(w.deps, runs, { known })).toEqual({ started: false, reason: "filling" });
    expect(w.ledger.slot.holder).toBeNull();
    expect(w.glue.runs.size).toBe(0);

    // 30 s on, 200 uploads still project past 1,500 by 330 s (200 × 330 ≥ 1,500 × 30): a sweep leaves them waiting
    w.clock.advance(30_000);
    await sweep(w.deps, { ...w.config, runs });
    expect(w.glue.runs.size).toBe(0);

    // 75 s on, nothing new was recorded: the stream is quiet, the sweep starts all 200
    w.clock.advance(45_000);
    await sweep(w.deps, { ...w.config, runs });
    expect(w.glue.runs.size).toBe(1);
    expect(await w.ledger.listPending(1_000)).toEqual([]);
  });

  it("a wake-up that arrives while the holder looks is not lost: the holder looks again, then holds", async () => {
    const { w, runs, known } = await worldWithPending(20);
    const list = w.ledger.listPending.bind(w.ledger);
    let calls = 0;
    w.ledger.listPending = async (limit) => {
      if (calls++ === 0) await w.ledger.requestWakeup();
      return list(limit);
    };
    expect(await startNextRun(w.deps, runs, { known })).toEqual({ started: false, reason: "filling" });
    expect(w.ledger.slot).toMatchObject({ holder: null, wakeup: false });
  });
});
