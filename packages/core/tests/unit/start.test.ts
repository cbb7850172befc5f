import { describe, expect, it } from "vitest";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { mapLimit } from "../../src/runs/start.js";
import { makeWorld } from "../helpers/world.js";

describe("run start", () => {
  it("undoes at once a start whose claims fail midway: slot free, every upload pending, batch returned", async () => {
    const w = makeWorld();
    const messages = Array.from({ length: 100 }, (_, i) => w.upload(`input/f${i}.csv`).message);
    const claim = w.ledger.claimUpload.bind(w.ledger);
    let claims = 0;
    w.ledger.claimUpload = async (...args) => {
      if (++claims === 10) throw new Error("ProvisionedThroughputExceededException");
      return claim(...args);
    };

    const r = await handleUploadBatch(w.deps, w.config, messages);

    expect(r.failedMessageIds).toHaveLength(100);
    expect(w.ledger.slot.holder).toBeNull();
    expect([...w.ledger.runs.values()].map((x) => x.state)).toEqual(["start_failed"]);
    expect(new Set([...w.ledger.uploads.values()].map((u) => u.status))).toEqual(new Set(["pending"]));
    expect(w.glue.runs.size).toBe(0);
    // nothing goes on claiming after the handler answered
    const after = claims;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(claims).toBe(after);
  });
});

describe("mapLimit", () => {
  it("keeps order and the concurrency bound", async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 3, 2, 4], 2, async (n) => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, n));
      inFlight--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 30, 20, 40]);
    expect(peak).toBe(2);
  });

  it("starts nothing new after a failure and throws only when the in-flight work is done", async () => {
    const started: number[] = [];
    let settled = 0;
    const run = mapLimit([1, 2, 3, 4, 5, 6], 2, async (n) => {
      started.push(n);
      await new Promise((resolve) => setTimeout(resolve, n === 1 ? 1 : 15));
      settled++;
      if (n === 1) throw new Error("boom");
      return n;
    });
    await expect(run).rejects.toThrow("boom");
    expect(started).toEqual([1, 2]);
    expect(settled).toBe(2);
  });
});
