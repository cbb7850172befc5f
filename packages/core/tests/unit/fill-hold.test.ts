/**
 * The fill hold (RunSettings.fillHold, runs/start.ts fillingUp): a small run waits while a fast, still-flowing stream
 * fills it — never past maxWaitSeconds, never for one batch, a burst that has ended or a failed run's retries, never
 * when the caps already cut the run. Literal expectations.
 */
import { describe, expect, it } from "vitest";
import type { RunSettings } from "../../src/config/pipeline.js";
import type { UploadRecord } from "../../src/ledger/types.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { fillingUp, startNextRun } from "../../src/runs/start.js";
import { sweep } from "../../src/runs/sweeper.js";
import { toUpload } from "../../src/upload/identity.js";
import { BUCKET, makeWorld } from "../helpers/world.js";

const HOLD = { minFiles: 1_500, maxWaitSeconds: 330, quietSeconds: 75 };
const NOW = new Date("2026-04-01T10:10:00.000Z");

/** `n` fresh uploads recorded evenly from `oldestAgeS` to `newestAgeS` seconds before NOW. */
function uploads(n: number, oldestAgeS: number, newestAgeS = 0, retryGroupSize: number | null = null): UploadRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const ageS = n === 1 ? oldestAgeS : oldestAgeS - ((oldestAgeS - newestAgeS) * i) / (n - 1);
    return { uploadId: `u${i}`, receivedAt: new Date(NOW.getTime() - ageS * 1000).toISOString(), retryGroupSize };
  }) as unknown as UploadRecord[];
}

function settings(fillHold: RunSettings["fillHold"], maxFilesPerRun = 10_000): RunSettings {
  return { ...makeWorld().config.runs, fillHold, maxFilesPerRun };
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

  it("starts a run that is full enough (1,500 uploads), or as full as the manifest cap allows", () => {
    expect(fillingUp(settings(HOLD), uploads(1_500, 100), NOW)).toBe(false);
    expect(fillingUp(settings(HOLD), uploads(1_499, 100), NOW)).toBe(true);
    expect(fillingUp(settings(HOLD, 400), uploads(400, 60), NOW)).toBe(false);
    expect(fillingUp(settings(HOLD, 400), uploads(399, 60), NOW)).toBe(true);
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

  it("one batch (everything recorded within the same second) is not a stream: not held", () => {
    expect(fillingUp(settings(HOLD), uploads(900, 0.999, 0), NOW)).toBe(false);
    expect(fillingUp(settings(HOLD), uploads(900, 1, 0), NOW)).toBe(true);
  });

  it("a record time ahead of our clock (a writer's clock skewed) or unreadable: no hold", () => {
    // 10 uploads from 1 s ago to 600 s "ahead": read as they stand they would be held (10 × 330 ≥ 1,500 × 1)
    expect(fillingUp(settings(HOLD), uploads(10, 1, -600), NOW)).toBe(false);
    const unreadable = uploads(10, 20);
    (unreadable[0] as { receivedAt: string }).receivedAt = "not a date";
    expect(fillingUp(settings(HOLD), unreadable, NOW)).toBe(false);
  });

  it("never holds a failed run's retries, an empty run, or with the hold off", () => {
    expect(fillingUp(settings(HOLD), uploads(500, 60, 0, 250), NOW)).toBe(false);
    expect(fillingUp(settings(HOLD), [], NOW)).toBe(false);
    expect(fillingUp(settings(null), uploads(500, 60), NOW)).toBe(false);
  });
});

describe("startNextRun with a fill hold", () => {
  type World = ReturnType<typeof makeWorld>;
  /** Records `n` uploads one second apart (a stream), the clock ending at the last. */
  async function stream(w: World, n: number, prefix = "f"): Promise<UploadRecord[]> {
    const known: UploadRecord[] = [];
    for (let i = 0; i < n; i++) {
      if (i > 0) w.clock.advance(1_000);
      const { record } = await w.ledger.recordUpload(
        toUpload(w.objects.put(BUCKET, `input/${prefix}${i}.csv`, "id\n1\n")),
        w.clock.now().toISOString(),
      );
      known.push(record);
    }
    return known;
  }

  it("gives the slot back while filling; a sweep starts the run once the hold ends", async () => {
    const w = makeWorld();
    const runs: RunSettings = { ...w.config.runs, fillHold: { ...HOLD, minFiles: 200 } };
    const known = await stream(w, 100); // 100 uploads over 99 s: 100 × 330 = 33,000 ≥ 200 × 99
    expect(await startNextRun(w.deps, runs, { known })).toEqual({ started: false, reason: "filling" });
    expect(w.ledger.slot.holder).toBeNull();
    expect(w.glue.runs.size).toBe(0);

    // 10 s on (33,000 ≥ 200 × 109, the newest 10 s old): still filling, a sweep leaves it
    w.clock.advance(10_000);
    await sweep(w.deps, { ...w.config, runs });
    expect(w.glue.runs.size).toBe(0);

    // 75 s after the newest upload, nothing new: the stream is quiet, the sweep starts all 100
    w.clock.advance(65_000);
    await sweep(w.deps, { ...w.config, runs });
    expect(w.glue.runs.size).toBe(1);
    expect(await w.ledger.listPending(1_000)).toEqual([]);
  });

  it("a one-off batch is started at once, not held", async () => {
    const w = makeWorld();
    const config = { ...w.config, runs: { ...w.config.runs, fillHold: HOLD } };
    const messages = Array.from({ length: 5 }, (_, i) => w.upload(`input/one-off-${i}.csv`).message);
    const r = await handleUploadBatch(w.deps, config, messages);
    expect(r.run).toMatchObject({ started: true, files: 5 });
  });

  it("a selection cut short by the byte cap is started, not held", async () => {
    const w = makeWorld();
    // 20 over 19 s would be held for 21 (20 × 330 ≥ 21 × 19); 5 bytes each: 6 fit under 30, the run is full
    const runs: RunSettings = { ...w.config.runs, fillHold: { ...HOLD, minFiles: 21 }, maxBytesPerRun: 30 };
    const known = await stream(w, 20);
    expect(await startNextRun(w.deps, runs, { known })).toMatchObject({ started: true, files: 6 });
  });

  it("a wake-up during the hold whose upload fills the run: the holder looks again and starts it", async () => {
    const w = makeWorld();
    const runs: RunSettings = { ...w.config.runs, fillHold: { ...HOLD, minFiles: 21 } };
    const known = await stream(w, 20);
    const release = w.ledger.releaseSlot.bind(w.ledger);
    let first = true;
    w.ledger.releaseSlot = async (...args) => {
      if (first) {
        first = false;
        await w.ledger.recordUpload(
          toUpload(w.objects.put(BUCKET, "input/late.csv", "id\n1\n")),
          w.clock.now().toISOString(),
        );
        await w.ledger.requestWakeup();
      }
      return release(...args);
    };
    expect(await startNextRun(w.deps, runs, { known })).toMatchObject({ started: true, files: 21 });
  });

  it("wake-ups on every look: after its last round the holder reports filling (uploads still pending)", async () => {
    const w = makeWorld();
    const runs: RunSettings = { ...w.config.runs, fillHold: { ...HOLD, minFiles: 21 } };
    const known = await stream(w, 20);
    const list = w.ledger.listPending.bind(w.ledger);
    w.ledger.listPending = async (limit) => {
      await w.ledger.requestWakeup();
      return list(limit);
    };
    expect(await startNextRun(w.deps, runs, { known })).toEqual({ started: false, reason: "filling" });
    expect(await list(100)).toHaveLength(20);
  });
});
