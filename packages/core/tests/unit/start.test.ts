import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { UploadStatus } from "../../src/ledger/types.js";
import { recordRunEnd } from "../../src/runs/completion.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { mapLimit } from "../../src/runs/start.js";
import { sweep } from "../../src/runs/sweeper.js";
import { crashingAfter } from "../../src/testing/fakes.js";
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

    // every upload put back is handed to the store with the record just read (DynamoLedger then puts without a read)
    const settle = w.ledger.settleUpload.bind(w.ledger);
    const handed: unknown[] = [];
    w.ledger.settleUpload = async (...args) => {
      handed.push(args[4]);
      return settle(...args);
    };

    const r = await handleUploadBatch(w.deps, w.config, messages);

    expect(handed.length).toBeGreaterThan(0);
    for (const h of handed) expect(h).toMatchObject({ status: "running", runKey: expect.any(String) });
    expect(r.failedMessageIds).toHaveLength(100);
    expect(w.ledger.slot.holder).toBeNull();
    expect([...w.ledger.runs.values()].map((x) => x.state)).toEqual(["start_failed"]);
    expect(new Set([...w.ledger.uploads.values()].map((u) => u.status))).toEqual(new Set(["pending"]));
    expect(w.glue.runs.size).toBe(0);
    // nothing goes on claiming after the handler answered (every pending callback gets its turn first)
    const after = claims;
    for (let i = 0; i < 100; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(claims).toBe(after);
  });
});

describe("two versions of one key pending together", () => {
  it("runs only the newest and reports the older one failed as superseded", async () => {
    const w = makeWorld();
    const { busy, v1, v2 } = await w.twoVersionsBehindABusyRun();
    await w.writeStats(busy.runKey);
    w.glue.finish(busy.glueRunId, "SUCCEEDED");

    const r = await recordRunEnd(w.deps, w.config, { glueRunId: busy.glueRunId, state: "SUCCEEDED", message: null });

    const next = r.next?.started ? r.next : null;
    expect((await w.manifestOf(next?.runKey ?? "")).uploads.map((u) => u.etag)).toEqual([v2.version.etag]);
    const old = [...w.ledger.uploads.values()].find((u) => u.etag === v1.version.etag);
    expect(old?.status).toBe("failed");
    expect(old?.error).toMatch(/^superseded: input\/a.csv was uploaded again/);
  });
});

describe("a superseded version is failed in one ledger write", () => {
  /** A busy run holds the slot while v1 then v2 of input/a.csv arrive; returns the world and both versions. */
  async function twoVersionsWaiting() {
    const w = makeWorld();
    const { busy, v1, v2 } = await w.twoVersionsBehindABusyRun();
    await w.writeStats(busy.runKey);
    w.glue.finish(busy.glueRunId, "SUCCEEDED");
    const idOf = (etag: string) => [...w.ledger.uploads.values()].find((u) => u.etag === etag)?.uploadId ?? "";
    const ended = { glueRunId: busy.glueRunId, state: "SUCCEEDED", message: null };
    return { w, oldId: idOf(v1.version.etag), newId: idOf(v2.version.etag), ended };
  }

  it("never passes through running", async () => {
    const { w, oldId, ended } = await twoVersionsWaiting();
    const seen: UploadStatus[] = [];
    const set = w.ledger.uploads.set.bind(w.ledger.uploads);
    w.ledger.uploads.set = (id, record) => {
      if (id === oldId) seen.push(record.status);
      return set(id, record);
    };

    await recordRunEnd(w.deps, w.config, ended);

    expect(seen).toEqual(["failed"]);
    expect(w.ledger.uploads.get(oldId)).toMatchObject({ status: "failed", runs: 0 });
  });

  it("a crash right after the first write to the older version leaves it failed, not running in a dead run", async () => {
    const { w, oldId, newId, ended } = await twoVersionsWaiting();
    const writes = new Set(["claimUpload", "settleUpload", "failPendingUpload"]);
    // The recorder dies right after its first ledger write that touches the older version.
    const crash = crashingAfter(w.ledger, (method, args) => writes.has(method) && args[0] === oldId);
    void recordRunEnd({ ...w.deps, ledger: crash.proxy }, w.config, ended);
    await crash.died;

    const old = w.ledger.uploads.get(oldId);
    expect(old?.status).toBe("failed");
    expect(old?.error).toMatch(/^superseded: input\/a.csv was uploaded again/);

    // What the crash left (a start without StartJobRun) is repaired by the sweeper: every upload ends settled.
    w.clock.advance((w.config.runs.startTimeoutSeconds + 1) * 1000);
    const report = await sweep(w.deps, w.config);
    expect(report.repairs).toEqual(["undid-failed-start", "started-pending"]);
    const next = report.next?.started ? report.next : null;
    await w.writeStats(next?.runKey ?? "");
    w.glue.finish(next?.glueRunId ?? "", "SUCCEEDED");
    await recordRunEnd(w.deps, w.config, { glueRunId: next?.glueRunId ?? "", state: "SUCCEEDED", message: null });
    expect(w.ledger.uploads.get(newId)?.status).toBe("processed");
    expect([...w.ledger.uploads.values()].filter((u) => u.status !== "processed").map((u) => u.uploadId)).toEqual([
      oldId,
    ]);
  });
});

describe("mapLimit (on a fake clock)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("keeps order and the concurrency bound", async () => {
    let inFlight = 0;
    let peak = 0;
    const run = mapLimit([5, 1, 3, 2, 4], 2, async (n) => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, n));
      inFlight--;
      return n * 10;
    });
    await vi.runAllTimersAsync();
    expect(await run).toEqual([50, 10, 30, 20, 40]);
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
    const outcome = run.catch((e: unknown) => e);
    await vi.runAllTimersAsync();
    expect(await outcome).toMatchObject({ message: "boom" });
    expect(started).toEqual([1, 2]);
    expect(settled).toBe(2);
  });
});

describe("a start that fails before its run item exists", () => {
  // Found by bench:coalescing (day scenario): a throttled pending read right after takeSlot left the slot held by a
  // run key with no run item; every batch then saw slot-held until the sweeper judged the slot stale (up to 8 min).
  it("gives the slot back when the pending read fails (batcher): the next batch starts a run at once", async () => {
    const w = makeWorld();
    w.ledger.failNext = { method: "listPending", error: new Error("ProvisionedThroughputExceededException") };
    const first = w.upload("input/a.csv").message;

    const r = await handleUploadBatch(w.deps, w.config, [first]);

    expect(r.failedMessageIds).toEqual([first.messageId]);
    expect(w.ledger.slot.holder).toBeNull();
    expect(w.ledger.runs.size).toBe(0);
    const next = await handleUploadBatch(w.deps, w.config, [w.upload("input/b.csv").message]);
    expect(next.run).toMatchObject({ started: true, files: 2 });
  });

  it("gives the slot back when the next start after a run end fails (recorder), so a batch can start", async () => {
    const w = makeWorld();
    const first = await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    const run = first.run?.started ? first.run : null;
    if (!run) throw new Error("no run started");
    await handleUploadBatch(w.deps, w.config, [w.upload("input/b.csv").message]); // pending behind the run
    await w.writeStats(run.runKey);
    w.glue.finish(run.glueRunId, "SUCCEEDED");
    // The run end settles and frees the slot; its next start takes the slot, then its pending read is throttled.
    const list = w.ledger.listPending.bind(w.ledger);
    let reads = 0;
    w.ledger.listPending = async (...args) => {
      if (++reads === 1) throw new Error("ProvisionedThroughputExceededException");
      return list(...args);
    };

    await expect(
      recordRunEnd(w.deps, w.config, { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null }),
    ).rejects.toThrow(/ProvisionedThroughput/);

    expect(w.ledger.runs.get(run.runKey)?.state).toBe("succeeded");
    expect(w.ledger.slot.holder).toBeNull();
    const next = await handleUploadBatch(w.deps, w.config, [w.upload("input/c.csv").message]);
    expect(next.run).toMatchObject({ started: true, files: 2 });
  });
});

describe("a start whose run item write fails", () => {
  // Found by bench:coalescing (100k day, after the fix above): createRun itself throttled left the slot held by a run
  // key with no run item (or with a "starting" one, when the write applied and its answer was lost) until the sweeper.
  it("gives the slot back when createRun is throttled (not applied): the next batch starts a run at once", async () => {
    const w = makeWorld();
    w.ledger.failNext = { method: "createRun", error: new Error("ThrottlingException") };
    const first = w.upload("input/a.csv").message;

    const r = await handleUploadBatch(w.deps, w.config, [first]);

    expect(r.failedMessageIds).toEqual([first.messageId]);
    expect(w.ledger.slot.holder).toBeNull();
    expect(w.ledger.runs.size).toBe(0);
    expect(w.ledger.uploads.size).toBe(1);
    expect([...w.ledger.uploads.values()][0]?.status).toBe("pending");
    const next = await handleUploadBatch(w.deps, w.config, [w.upload("input/b.csv").message]);
    expect(next.run).toMatchObject({ started: true, files: 2 });
  });

  it("closes the run item and gives the slot back when createRun applied but its answer was lost", async () => {
    const w = makeWorld();
    const create = w.ledger.createRun.bind(w.ledger);
    let lost = 1;
    w.ledger.createRun = async (...args) => {
      await create(...args);
      if (lost-- > 0) throw new Error("socket hang up");
    };
    const first = w.upload("input/a.csv").message;

    const r = await handleUploadBatch(w.deps, w.config, [first]);

    expect(r.failedMessageIds).toEqual([first.messageId]);
    expect(w.ledger.slot.holder).toBeNull();
    const [abandoned] = [...w.ledger.runs.values()];
    expect(abandoned).toMatchObject({ state: "abandoned", error: "run start failed: Error: socket hang up" });
    expect(w.glue.runs.size).toBe(0);
    const next = await handleUploadBatch(w.deps, w.config, [w.upload("input/b.csv").message]);
    expect(next.run).toMatchObject({ started: true, files: 2 });
    expect(w.ledger.runs.size).toBe(2);
  });
});
