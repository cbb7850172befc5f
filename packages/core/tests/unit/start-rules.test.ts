/**
 * The rules of a run start one by one (start.ts): backoff, burst hold, wake-ups, the settle window, claims that
 * fail, versions of one key, adoption of a lost start, the breaker, undoing a start. Literal expectations; the
 * world's clock only moves when a test moves it (its sleep lets other work run and counts here as a settle round).
 */
import { describe, expect, it } from "vitest";
import type { RunSettings } from "../../src/config/pipeline.js";
import type { UploadRecord } from "../../src/ledger/types.js";
import { recordRunEnd } from "../../src/runs/completion.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { isVersion, noteSystemFailure, startNextRun, systemRetryDelayMs } from "../../src/runs/start.js";
import { sweep } from "../../src/runs/sweeper.js";
import { GlueServiceError } from "../../src/testing/fakes.js";
import { toUpload } from "../../src/upload/identity.js";
import { BUCKET, makeWorld } from "../helpers/world.js";

const RUN_1 = "20260401T100000Z-00000001";
const T0 = "2026-04-01T10:00:00.000Z";

type World = ReturnType<typeof makeWorld>;

/** Records `key` as pending straight in the ledger (as a batcher did), returning the record. */
async function pendingUpload(w: World, key: string, body = "id\n1\n"): Promise<UploadRecord> {
  const { record } = await w.ledger.recordUpload(
    toUpload(w.objects.put(BUCKET, key, body)),
    w.clock.now().toISOString(),
  );
  return record;
}

/** Counts the settle rounds (clock sleeps) and slot takes of a world. */
function counting(w: World) {
  const counts = { sleeps: 0, takes: 0 };
  const sleep = w.clock.sleep.bind(w.clock);
  w.clock.sleep = async (ms) => {
    counts.sleeps++;
    return sleep(ms);
  };
  const take = w.ledger.takeSlot.bind(w.ledger);
  w.ledger.takeSlot = async (...args) => {
    counts.takes++;
    return take(...args);
  };
  return counts;
}

/** The pending index shows nothing for its first `calls` reads (index lag); `onRead` runs at each hidden read. */
function laggingIndex(w: World, calls: number, onRead: () => Promise<unknown> = async () => {}) {
  const list = w.ledger.listPending.bind(w.ledger);
  let n = 0;
  w.ledger.listPending = async (limit) => {
    if (++n <= calls) {
      await onRead();
      return [];
    }
    return list(limit);
  };
}

describe("systemRetryDelayMs: the backoff after n consecutive system failures", () => {
  const runs = { systemRetryBaseSeconds: 10, systemRetryMaxSeconds: 100, breakerThreshold: 4 } as RunSettings;
  it.each([
    [-1, 0],
    [0, 0],
    [1, 10_000],
    [2, 20_000],
    [3, 40_000],
    [4, 100_000],
    [9, 100_000],
  ])("n=%d → %d ms", (n, ms) => {
    expect(systemRetryDelayMs(n, runs)).toBe(ms);
  });

  it("is capped at systemRetryMaxSeconds before the breaker opens", () => {
    const capped = { systemRetryBaseSeconds: 10, systemRetryMaxSeconds: 15, breakerThreshold: 5 } as RunSettings;
    expect(systemRetryDelayMs(3, capped)).toBe(15_000);
  });
});

describe("backoff", () => {
  it("a closed breaker never delays a start, even when the last failure was recorded by a clock ahead of ours", async () => {
    const w = makeWorld();
    await pendingUpload(w, "input/a.csv");
    w.ledger.health = { consecutiveSystemFailures: 0, lastRunKey: "r0", lastFailureAt: "2026-04-01T10:05:00.000Z" };

    const r = await startNextRun(w.deps, w.config.runs);

    expect(r).toEqual({ started: true, runKey: RUN_1, glueRunId: "jr_000001", files: 1 });
  });

  it("after one system failure, starts wait systemRetryBaseSeconds (60 s), then go", async () => {
    const w = makeWorld();
    await pendingUpload(w, "input/a.csv");
    w.ledger.health = { consecutiveSystemFailures: 1, lastRunKey: "r0", lastFailureAt: T0 };

    w.clock.advance(59_999);
    expect(await startNextRun(w.deps, w.config.runs)).toEqual({ started: false, reason: "backing-off" });
    w.clock.advance(1);
    expect((await startNextRun(w.deps, w.config.runs)).started).toBe(true);
  });
});

describe("burst hold", () => {
  it("a full batch arriving while a run holds the slot leaves it held and asks for no wake-up", async () => {
    const w = makeWorld();
    await w.ledger.takeSlot("other", T0);
    const known = [await pendingUpload(w, "input/a.csv")];

    const r = await startNextRun(w.deps, w.config.runs, { known, burst: true });

    expect(r).toEqual({ started: false, reason: "slot-held" });
    expect(w.ledger.slot).toMatchObject({ holder: "other", wakeup: false });
  });

  it("holds a young burst (gives the slot back), and starts it once its oldest upload is burstHoldSeconds old", async () => {
    const w = makeWorld();
    const known = [await pendingUpload(w, "input/a.csv")];

    w.clock.advance(30_000);
    expect(await startNextRun(w.deps, w.config.runs, { known, burst: true })).toEqual({
      started: false,
      reason: "holding-burst",
      retryInSeconds: 60, // when the oldest upload is 90 s old: the batcher has a message come back then
    });
    w.clock.advance(59_999);
    expect(await startNextRun(w.deps, w.config.runs, { known, burst: true })).toEqual({
      started: false,
      reason: "holding-burst",
      retryInSeconds: 1,
    });
    expect(w.ledger.slot.holder).toBeNull();
    expect(w.glue.runs.size).toBe(0);

    w.clock.advance(1);
    const r = await startNextRun(w.deps, w.config.runs, { known, burst: true });
    expect(r).toEqual({ started: true, runKey: "20260401T100130Z-00000003", glueRunId: "jr_000001", files: 1 });
  });

  it("stops holding when a wake-up came meanwhile (the burst's last batch relies on the holder)", async () => {
    const w = makeWorld();
    const known = [await pendingUpload(w, "input/a.csv")];
    // The burst's last batch finds the slot held and asks for a wake-up while the holder looks at the burst's age.
    const list = w.ledger.listPending.bind(w.ledger);
    let first = true;
    w.ledger.listPending = async (limit) => {
      if (first) {
        first = false;
        await w.ledger.requestWakeup();
      }
      return list(limit);
    };

    const r = await startNextRun(w.deps, w.config.runs, { known, burst: true });

    expect(r).toEqual({ started: true, runKey: "20260401T100000Z-00000002", glueRunId: "jr_000001", files: 1 });
  });

  it("a burst with nothing pending at all is not held: nothing to start", async () => {
    const w = makeWorld();
    expect(await startNextRun(w.deps, w.config.runs, { burst: true })).toEqual({
      started: false,
      reason: "nothing-pending",
    });
    expect(w.ledger.slot.holder).toBeNull();
  });
});

describe("wake-ups and the settle window", () => {
  it("an idle pipeline: one slot take, no settle round, nothing pending", async () => {
    const w = makeWorld();
    const counts = counting(w);

    expect(await startNextRun(w.deps, w.config.runs)).toEqual({ started: false, reason: "nothing-pending" });
    expect(counts).toEqual({ sleeps: 0, takes: 1 });
  });

  it("a wake-up that arrives while the holder finds nothing: it goes round and waits for the lagging index", async () => {
    const w = makeWorld();
    await pendingUpload(w, "input/a.csv");
    const counts = counting(w);
    // Someone recorded input/a.csv and asked for a wake-up while we held the slot; the index shows it 2 reads late.
    let asked = false;
    laggingIndex(w, 2, async () => {
      if (asked) return;
      asked = true;
      await w.ledger.requestWakeup();
    });

    const r = await startNextRun(w.deps, w.config.runs);

    expect(r).toEqual({ started: true, runKey: "20260401T100000Z-00000002", glueRunId: "jr_000001", files: 1 });
    expect(counts).toEqual({ sleeps: 2, takes: 2 });
  });

  it("woken and the index still empty: waits 2 settle rounds, no more", async () => {
    const w = makeWorld();
    const counts = counting(w);

    expect(await startNextRun(w.deps, w.config.runs, { woken: true })).toEqual({
      started: false,
      reason: "nothing-pending",
    });
    expect(counts).toEqual({ sleeps: 2, takes: 1 });
  });

  it("wake-ups that keep coming with nothing to find: three rounds, then it leaves the rest to the sweeper", async () => {
    const w = makeWorld();
    const counts = counting(w);
    laggingIndex(w, 1000, () => w.ledger.requestWakeup());

    expect(await startNextRun(w.deps, w.config.runs)).toEqual({ started: false, reason: "nothing-pending" });
    expect(counts.takes).toBe(3);
    expect(w.ledger.slot.holder).toBeNull();
  });

  it("a list that stops growing settles after one round; a full run starts without waiting", async () => {
    const w = makeWorld();
    await pendingUpload(w, "input/a.csv");
    const counts = counting(w);
    expect((await startNextRun(w.deps, w.config.runs)).started).toBe(true);
    expect(counts.sleeps).toBe(1);

    const full = makeWorld({ maxFilesPerRun: 2 });
    await pendingUpload(full, "input/a.csv");
    await pendingUpload(full, "input/b.csv");
    const fullCounts = counting(full);
    expect(await startNextRun(full.deps, full.config.runs)).toMatchObject({ started: true, files: 2 });
    expect(fullCounts.sleeps).toBe(0);
  });
});

describe("claims the index was wrong about", () => {
  /** `a` is pending; `b` was already claimed by another run but the lagging index still lists it pending. */
  async function staleIndex(w: World) {
    const a = await pendingUpload(w, "input/a.csv", "aaaa");
    const b = await pendingUpload(w, "input/b.csv", "bb");
    await w.ledger.claimUpload(b.uploadId, "other", T0);
    const list = w.ledger.listPending.bind(w.ledger);
    w.ledger.listPending = async (limit) => [...(await list(limit)), b].slice(0, limit);
    return { a, b };
  }

  it("rewrites the manifest and the run's size to what it claimed", async () => {
    const w = makeWorld();
    const { a } = await staleIndex(w);

    const r = await startNextRun(w.deps, w.config.runs);

    expect(r).toEqual({ started: true, runKey: RUN_1, glueRunId: "jr_000001", files: 1 });
    expect((await w.manifestOf(RUN_1)).uploads.map((u) => u.uploadId)).toEqual([a.uploadId]);
    expect(w.ledger.runs.get(RUN_1)).toMatchObject({ fileCount: 1, bytes: 4, state: "running" });
    expect(w.log.lines).toContainEqual({
      level: "warn",
      message: "some pending uploads were already taken; rewriting the manifest",
      fields: { runKey: RUN_1, skipped: 1 },
    });
  });

  it("claiming nothing abandons the run and frees the slot; no Glue run", async () => {
    const w = makeWorld();
    const { a } = await staleIndex(w);
    await w.ledger.claimUpload(a.uploadId, "other", T0);
    const list = w.ledger.listPending.bind(w.ledger);
    w.ledger.listPending = async (limit) => [a, ...(await list(limit))].slice(0, limit);

    const r = await startNextRun(w.deps, w.config.runs);

    expect(r).toEqual({ started: false, reason: "nothing-pending" });
    expect(w.glue.runs.size).toBe(0);
    expect(w.ledger.slot.holder).toBeNull();
    const [first] = [...w.ledger.runs.values()];
    expect(first).toMatchObject({ runKey: RUN_1, state: "abandoned", endedAt: T0, error: "no upload claimed" });
  });
});

describe("versions of one key", () => {
  it("a single pending version is run as it is, even when S3 has a newer one whose event is still on its way", async () => {
    const w = makeWorld();
    const old = await pendingUpload(w, "input/a.csv", "v1");
    w.objects.put(BUCKET, "input/a.csv", "v2");

    await startNextRun(w.deps, w.config.runs);

    expect((await w.manifestOf(RUN_1)).uploads.map((u) => u.uploadId)).toEqual([old.uploadId]);
    expect(w.ledger.uploads.get(old.uploadId)?.status).toBe("running");
  });

  it("two pending versions, S3's current is a third: both failed as superseded, naming S3's etag", async () => {
    const w = makeWorld();
    const v1 = await pendingUpload(w, "input/a.csv", "v1");
    w.clock.advance(1_000);
    const v2 = await pendingUpload(w, "input/a.csv", "v2");
    const v3 = w.objects.put(BUCKET, "input/a.csv", "v3");

    expect(await startNextRun(w.deps, w.config.runs)).toEqual({ started: false, reason: "nothing-pending" });

    const why = `superseded: input/a.csv was uploaded again (etag ${v3.etag}) before this version was processed`;
    expect(w.ledger.uploads.get(v1.uploadId)).toMatchObject({ status: "failed", error: why });
    expect(w.ledger.uploads.get(v2.uploadId)).toMatchObject({ status: "failed", error: why });
    expect(w.log.lines).toContainEqual({
      level: "info",
      message: "upload not current",
      fields: { key: "input/a.csv", uploadId: v1.uploadId, error: why },
    });
  });

  it("two pending versions of a key deleted since: both failed as deleted", async () => {
    const w = makeWorld();
    const v1 = await pendingUpload(w, "input/a.csv", "v1");
    w.clock.advance(1_000);
    const v2 = await pendingUpload(w, "input/a.csv", "v2");
    w.objects.delete(BUCKET, "input/a.csv");

    await startNextRun(w.deps, w.config.runs);

    for (const v of [v1, v2]) {
      expect(w.ledger.uploads.get(v.uploadId)).toMatchObject({
        status: "failed",
        error: "the object was deleted before it could be processed",
      });
    }
  });

  it("a version another writer failed first is not logged as failed by us", async () => {
    const w = makeWorld();
    const v1 = await pendingUpload(w, "input/a.csv", "v1");
    w.clock.advance(1_000);
    await pendingUpload(w, "input/a.csv", "v2");
    w.ledger.failPendingUpload = async () => false;

    await startNextRun(w.deps, w.config.runs);

    expect(w.log.lines.filter((l) => l.message === "upload not current")).toEqual([]);
    expect(w.ledger.uploads.get(v1.uploadId)?.status).toBe("pending");
  });
});

describe("isVersion: is this upload S3's current version?", () => {
  const head = { bucket: BUCKET, key: "input/a.csv", size: 1, etag: '"e1"', lastModified: T0 };
  it.each([
    ["same version id", { versionId: "v1", etag: "e1", lastModified: T0 }, { versionId: "v1" }, true],
    [
      "other version id, same bytes and time",
      { versionId: "v1", etag: "e1", lastModified: T0 },
      { versionId: "v2" },
      false,
    ],
    [
      "unversioned upload, versioned head",
      { versionId: null, etag: "e1", lastModified: T0 },
      { versionId: "v1" },
      false,
    ],
    [
      "versioned upload, head says null",
      { versionId: "v1", etag: "e1", lastModified: T0 },
      { versionId: "null" },
      false,
    ],
    [
      "unversioned, same etag and second",
      { versionId: null, etag: "e1", lastModified: T0 },
      { versionId: "null" },
      true,
    ],
    [
      "unversioned, same etag, other second",
      { versionId: null, etag: "e1", lastModified: "2026-04-01T10:00:01.000Z" },
      { versionId: null },
      false,
    ],
    ["unversioned, other etag", { versionId: null, etag: "e2", lastModified: T0 }, { versionId: null }, false],
  ])("%s → %s", (_, u, h, want) => {
    expect(isVersion(u, { ...head, ...h })).toBe(want);
  });
});

describe("StartJobRun", () => {
  it("a normal start counts the run and its files", async () => {
    const w = makeWorld();
    await pendingUpload(w, "input/a.csv");
    await pendingUpload(w, "input/b.csv");

    await startNextRun(w.deps, w.config.runs);

    expect(w.metrics.get("RunsStarted")).toBe(1);
    expect(w.metrics.get("FilesPerRun")).toBe(2);
    expect(w.ledger.runs.get(RUN_1)).toMatchObject({ state: "running", glueRunId: "jr_000001", startedAt: T0 });
  });

  it("failed, but Glue has a run with our run key: adopted, counted, reported started", async () => {
    const w = makeWorld();
    await pendingUpload(w, "input/a.csv");
    w.glue.startFaults.push({ error: new GlueServiceError("InternalServiceException", 500, "lost"), started: true });

    const r = await startNextRun(w.deps, w.config.runs);

    expect(r).toEqual({ started: true, runKey: RUN_1, glueRunId: "jr_000001", files: 1 });
    expect(w.metrics.get("RunsStarted")).toBe(1);
    expect(w.metrics.get("FilesPerRun")).toBe(1);
    expect(w.ledger.runs.get(RUN_1)).toMatchObject({ state: "running", glueRunId: "jr_000001", startedAt: T0 });
    expect(w.log.lines).toContainEqual({
      level: "warn",
      message: "StartJobRun failed but Glue has the run; adopting it",
      fields: { runKey: RUN_1, glueRunId: "jr_000001" },
    });
  });

  it("a lost start adopted by the sweeper keeps Glue's start time; without one, the time it was adopted", async () => {
    for (const startedOn of [new Date(T0), null]) {
      const w = makeWorld();
      await pendingUpload(w, "input/a.csv");
      w.glue.startFaults.push({ error: new GlueServiceError("InternalServiceException", 500, "lost"), started: true });
      const recent = w.glue.recentRuns.bind(w.glue);
      w.glue.recentRuns = async () => [];
      await expect(startNextRun(w.deps, w.config.runs)).rejects.toThrow(/may have started/);
      w.glue.recentRuns = async (since) =>
        (await recent(new Date(0))).filter(() => since.getTime() <= Date.parse(T0)).map((r) => ({ ...r, startedOn }));
      w.clock.advance(181_000);

      expect((await sweep(w.deps, w.config)).repairs).toEqual(["adopted-lost-start"]);
      expect(w.ledger.runs.get(RUN_1)?.startedAt).toBe(startedOn ? T0 : "2026-04-01T10:03:01.000Z");
    }
  });

  it("refused: the uploads go back to pending with the reason, the run is closed start_failed", async () => {
    const w = makeWorld();
    const a = await pendingUpload(w, "input/a.csv");
    w.glue.startFaults.push({
      error: new GlueServiceError("ConcurrentRunsExceededException", 400, "busy"),
      started: false,
    });

    await expect(startNextRun(w.deps, w.config.runs)).rejects.toThrow(/not started/);

    const why = "StartJobRun failed: ConcurrentRunsExceededException: busy";
    expect(w.ledger.uploads.get(a.uploadId)).toMatchObject({ status: "pending", error: why, attempts: 0 });
    expect(w.ledger.runs.get(RUN_1)).toMatchObject({ state: "start_failed", error: why, endedAt: T0 });
  });
});

describe("a start that fails before StartJobRun", () => {
  it("claims fail midway: the claimed uploads go back to pending with the reason", async () => {
    const w = makeWorld();
    const a = await pendingUpload(w, "input/a.csv");
    const b = await pendingUpload(w, "input/b.csv");
    const claim = w.ledger.claimUpload.bind(w.ledger);
    w.ledger.claimUpload = async (id, ...rest) => {
      if (id === b.uploadId) throw new Error("Throttled");
      return claim(id, ...rest);
    };

    await expect(startNextRun(w.deps, w.config.runs)).rejects.toThrow("Throttled");

    for (const u of [a, b]) {
      expect(w.ledger.uploads.get(u.uploadId)).toMatchObject({
        status: "pending",
        error: u === a ? "run start failed: Error: Throttled" : null,
      });
    }
    expect(w.ledger.runs.get(RUN_1)).toMatchObject({
      state: "start_failed",
      error: "run start failed: Error: Throttled",
    });
    expect(w.ledger.slot.holder).toBeNull();
  });

  it("the manifest cannot be written: nothing was claimed, the run is closed and the slot freed", async () => {
    const w = makeWorld();
    await pendingUpload(w, "input/a.csv");
    w.objects.putJson = async () => {
      throw new Error("SlowDown");
    };

    await expect(startNextRun(w.deps, w.config.runs)).rejects.toThrow("SlowDown");

    expect(w.ledger.runs.get(RUN_1)).toMatchObject({
      state: "start_failed",
      error: "run start failed: Error: SlowDown",
    });
    expect(w.ledger.slot.holder).toBeNull();
  });

  it("S3 cannot say which version is current (before any manifest): the run is closed and the slot freed", async () => {
    const w = makeWorld();
    await pendingUpload(w, "input/a.csv", "v1");
    w.clock.advance(1_000);
    await pendingUpload(w, "input/a.csv", "v2");
    w.objects.head = async () => {
      throw new Error("SlowDown");
    };

    await expect(startNextRun(w.deps, w.config.runs)).rejects.toThrow("SlowDown");

    expect(w.ledger.runs.get("20260401T100001Z-00000001")).toMatchObject({ state: "start_failed" });
    expect(w.ledger.slot.holder).toBeNull();
    expect([...w.ledger.uploads.values()].map((u) => u.status)).toEqual(["pending", "pending"]);
  });

  it("the undo fails too: logged, left to the sweeper, and the first error is the one thrown", async () => {
    const w = makeWorld();
    await pendingUpload(w, "input/a.csv");
    w.ledger.failNext = { method: "claimUpload", error: new Error("Throttled") };
    const update = w.ledger.updateRun.bind(w.ledger);
    w.ledger.updateRun = async (runKey, from, patch) => {
      if (patch.state === "start_failed") throw new Error("ledger down");
      return update(runKey, from, patch);
    };

    await expect(startNextRun(w.deps, w.config.runs)).rejects.toThrow("Throttled");

    expect(w.log.lines).toContainEqual({
      level: "error",
      message: "could not undo the start; the sweeper will",
      fields: { runKey: RUN_1, error: "Error: ledger down" },
    });
  });
});

describe("noteSystemFailure: the breaker", () => {
  it("counts a run's failure once, warns below the threshold and opens the breaker at it", async () => {
    const w = makeWorld();
    const runs = { ...w.config.runs, breakerThreshold: 2 };

    await noteSystemFailure(w.deps, runs, "r1", "boom");
    await noteSystemFailure(w.deps, runs, "r1", "boom");
    expect(w.metrics.get("RunSystemFailures")).toBe(1);
    expect(w.metrics.get("CircuitOpen")).toBe(0);

    await noteSystemFailure(w.deps, runs, "r2", "boom again");
    expect(w.metrics.get("RunSystemFailures")).toBe(2);
    expect(w.metrics.get("CircuitOpen")).toBe(1);
    expect(w.log.lines).toEqual([
      {
        level: "warn",
        message: "system failure; the run is retried whole after a backoff",
        fields: { runKey: "r1", failures: 1, retryInSeconds: 60, why: "boom" },
      },
      {
        level: "error",
        message: "circuit breaker open: consecutive system failures",
        fields: { runKey: "r2", failures: 2, why: "boom again" },
      },
    ]);
  });

  it("a failure event delivered twice counts once", async () => {
    const w = makeWorld();
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    const ended = { glueRunId: "jr_000001", state: "ERROR", message: "Internal service error" };
    w.glue.finish("jr_000001", "FAILED", "Internal service error");
    await recordRunEnd(w.deps, w.config, ended);
    await recordRunEnd(w.deps, w.config, ended);
    expect(w.metrics.get("RunSystemFailures")).toBe(1);
  });
});
