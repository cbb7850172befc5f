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

describe("two versions of one key pending together", () => {
  it("runs only the newest and reports the older one failed as superseded", async () => {
    const w = makeWorld();
    await handleUploadBatch(w.deps, w.config, [w.upload("input/busy.csv").message]); // holds the slot
    w.clock.advance(1_000);
    const v1 = w.upload("input/a.csv", "v1");
    await handleUploadBatch(w.deps, w.config, [v1.message]);
    w.clock.advance(1_000);
    const v2 = w.upload("input/a.csv", "v2");
    await handleUploadBatch(w.deps, w.config, [v2.message]);
    const [first] = [...w.ledger.runs.values()];
    await w.writeStats(first?.runKey ?? "");
    w.glue.finish(first?.glueRunId ?? "", "SUCCEEDED");

    const { recordRunEnd } = await import("../../src/runs/completion.js");
    const r = await recordRunEnd(w.deps, w.config, {
      glueRunId: first?.glueRunId ?? "",
      state: "SUCCEEDED",
      message: null,
    });

    const next = r.next?.started ? r.next : null;
    expect((await w.manifestOf(next?.runKey ?? "")).uploads.map((u) => u.etag)).toEqual([v2.version.etag]);
    const old = [...w.ledger.uploads.values()].find((u) => u.etag === v1.version.etag);
    expect(old?.status).toBe("failed");
    expect(old?.error).toMatch(/^superseded: input\/a.csv was uploaded again/);
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
