/**
 * Issue 10: the protocol under AWS's real semantics. One regression test (at least) per point; each failed on the code
 * before the fix (lost answers, retried conditional writes, index lag, random version ids, outages, event times,
 * counters).
 */
import { describe, expect, it } from "vitest";
import { pipelineConfig } from "../../src/config/pipeline.js";
import type { RunRecord, UploadRecord } from "../../src/ledger/types.js";
import { isSystemFailure, recordRunEnd } from "../../src/runs/completion.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { startNextRun } from "../../src/runs/start.js";
import { sweep } from "../../src/runs/sweeper.js";
import { crashingAfter, GlueServiceError } from "../../src/testing/fakes.js";
import { compareSequencers } from "../../src/upload/events.js";
import type { ObjectVersion } from "../../src/upload/identity.js";
import { BUCKET, makeWorld, objectCreatedEvent } from "../helpers/world.js";

type World = ReturnType<typeof makeWorld>;

const uploads = (w: World) => [...w.ledger.uploads.values()];
const runs = (w: World) => [...w.ledger.runs.values()];

/** A Glue error as the SDK throws it after `attempts` tries (attempts > 1: an earlier try may have applied). */
function sdkError(name: string, status: number, attempts = 1) {
  const e = new GlueServiceError(name, status, name);
  (e.$metadata as { attempts?: number }).attempts = attempts;
  return e;
}

/** The Glue job succeeds on every file of the run; the state-change event is delivered once. */
async function finishRun(w: World, runKey: string, glueRunId: string) {
  await w.writeStats(runKey);
  w.glue.finish(glueRunId, "SUCCEEDED");
  return recordRunEnd(w.deps, w.config, { glueRunId, state: "SUCCEEDED", message: null });
}

/** Stores a version of `key` with the etag and last-modified S3 would report (random etags, same-second writes). */
function putVersion(w: World, key: string, etag: string, lastModified: string, body = "id\n1\n"): ObjectVersion {
  const version: ObjectVersion = { bucket: BUCKET, key, versionId: null, etag, lastModified, size: body.length };
  w.objects.objects.set(`${BUCKET}/${key}`, { version, body });
  return version;
}

describe("1. a StartJobRun whose answer was lost", () => {
  it.each([
    ["a retry answered ConcurrentRunsExceeded (4xx) after the first try started the run", 400, 2],
    ["OperationTimeoutException, which the SDK marks a client fault", 400, 1],
  ])("is adopted, never undone: %s", async (_what, status, attempts) => {
    const w = makeWorld();
    const name = attempts > 1 ? "ConcurrentRunsExceededException" : "OperationTimeoutException";
    w.glue.startFaults.push({ error: sdkError(name, status, attempts), started: true });

    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);

    const [glueRun] = w.glue.active();
    const [run] = runs(w);
    expect(run).toMatchObject({ state: "running", glueRunId: glueRun?.id });
    expect(uploads(w)).toMatchObject([{ status: "running", runKey: run?.runKey }]);
    expect(w.ledger.slot.holder).toBe(run?.runKey);
    // the orphan-free end: the one Glue run's end settles the upload, processed once
    const end = await finishRun(w, run?.runKey ?? "", glueRun?.id ?? "");
    expect(end.applied).toBe(true);
    expect(uploads(w)).toMatchObject([{ status: "processed", runs: 1 }]);
    expect(w.glue.runs.size).toBe(1);
  });

  it("is left to the sweeper (slot and claims kept) when Glue has no run with its run key yet", async () => {
    const w = makeWorld();
    w.glue.startFaults.push({ error: sdkError("InternalServiceException", 500), started: false });
    const r = await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    expect(r.failedMessageIds).toEqual([]); // the upload is safe in the ledger; the sweeper owns the start now
    expect(runs(w)).toMatchObject([{ state: "starting" }]);
    expect(uploads(w)).toMatchObject([{ status: "running" }]);
  });

  it("is undone when Glue refused it on the first try (nothing started), charging no attempt", async () => {
    const w = makeWorld();
    w.glue.startFaults.push({ error: sdkError("ConcurrentRunsExceededException", 400, 1), started: false });
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    expect(runs(w)).toMatchObject([{ state: "start_failed" }]);
    expect(uploads(w)).toMatchObject([{ status: "pending", attempts: 0 }]);
    expect(w.ledger.slot.holder).toBeNull();
  });
});

describe("2. a conditional write retried after its answer was lost", () => {
  it("takeSlot: the holder that took the slot is told it did", async () => {
    const w = makeWorld();
    const take = w.ledger.takeSlot.bind(w.ledger);
    w.ledger.takeSlot = async (runKey, now) => (await take(runKey, now)) && take(runKey, now); // the SDK's retry

    const r = await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);

    expect(r.run).toMatchObject({ started: true, files: 1 });
    expect(uploads(w)).toMatchObject([{ status: "running" }]);
  });

  it("claimUpload: the claimed upload is in the run, not left running in an abandoned one", async () => {
    const w = makeWorld();
    const claim = w.ledger.claimUpload.bind(w.ledger);
    w.ledger.claimUpload = async (id, runKey, now) => (await claim(id, runKey, now)) && claim(id, runKey, now);

    const r = await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);

    expect(r.run).toMatchObject({ started: true, files: 1 });
    const [run] = runs(w);
    expect(run?.state).toBe("running");
    expect(uploads(w)).toMatchObject([{ status: "running", runKey: run?.runKey, attempts: 0 }]);
  });

  it("createRun: a retried create of the same run is not an error", async () => {
    const w = makeWorld();
    const create = w.ledger.createRun.bind(w.ledger);
    w.ledger.createRun = async (run: RunRecord) => {
      await create(run);
      await create(run);
    };
    const r = await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    expect(r.run).toMatchObject({ started: true, files: 1 });
  });
});

describe("3. the pending index lags (eventually consistent)", () => {
  it("a single upload to an idle pipeline starts its run although the index does not list it yet", async () => {
    const w = makeWorld();
    w.ledger.listPending = async () => [];

    const r = await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);

    expect(r.run).toMatchObject({ started: true, files: 1 });
    expect(w.glue.runs.size).toBe(1);
  });

  it("two concurrent batchers: each one's uploads reach a run while the index shows nothing", async () => {
    const w = makeWorld();
    const list = w.ledger.listPending.bind(w.ledger);
    let lagging = true;
    w.ledger.listPending = async (limit) => (lagging ? [] : list(limit));
    const a = w.upload("input/a.csv").message;
    const b = w.upload("input/b.csv").message;

    await Promise.all([handleUploadBatch(w.deps, w.config, [a]), handleUploadBatch(w.deps, w.config, [b])]);
    lagging = false; // the index catches up long before the run ends
    const [first] = runs(w);
    const end = await finishRun(w, first?.runKey ?? "", first?.glueRunId ?? "");
    if (end.next?.started) await finishRun(w, end.next.runKey, end.next.glueRunId);

    expect(uploads(w).map((u) => u.status)).toEqual(["processed", "processed"]);
  });
});

describe("3. (cont.) a run's end woken by a batcher whose uploads the index does not show yet", () => {
  it("waits for the index instead of spending the wake-up", async () => {
    const w = makeWorld();
    const r = await handleUploadBatch(w.deps, w.config, [w.upload("input/busy.csv").message]);
    const busy = r.run?.started ? r.run : null;
    const b = await handleUploadBatch(w.deps, w.config, [w.upload("input/b.csv").message]);
    expect(b.run).toEqual({ started: false, reason: "slot-held" });
    const list = w.ledger.listPending.bind(w.ledger);
    let lagging = 2; // the index lags behind by the next two reads
    w.ledger.listPending = async (limit) => (lagging-- > 0 ? [] : list(limit));

    const end = await finishRun(w, busy?.runKey ?? "", busy?.glueRunId ?? "");

    expect(end.next).toMatchObject({ started: true, files: 1 });
    expect(uploads(w).find((u) => u.key === "input/b.csv")?.status).toBe("running");
  });
});

describe("4. which version of a key is current is S3's answer", () => {
  it("two versions in the same second: the current one runs although its etag sorts first", async () => {
    const w = makeWorld();
    await handleUploadBatch(w.deps, w.config, [w.upload("input/busy.csv").message]);
    const [busy] = runs(w);
    const second = "2026-04-01T10:00:05.000Z";
    const older = putVersion(w, "input/a.csv", "ffff0000", second, "old");
    await handleUploadBatch(w.deps, w.config, [w.message(older)]);
    const current = putVersion(w, "input/a.csv", "0000ffff", second, "new");
    await handleUploadBatch(w.deps, w.config, [w.message(current)]);

    const end = await finishRun(w, busy?.runKey ?? "", busy?.glueRunId ?? "");

    const next = end.next?.started ? end.next : null;
    expect((await w.manifestOf(next?.runKey ?? "")).uploads.map((u) => u.etag)).toEqual(["0000ffff"]);
    const byEtag = new Map(uploads(w).map((u) => [u.etag, u]));
    expect(byEtag.get("ffff0000")).toMatchObject({ status: "failed", error: expect.stringMatching(/^superseded/) });
    expect(byEtag.get("0000ffff")?.status).toBe("running");
  });

  it("a multipart upload whose Last-Modified is earlier than a simple PUT it completed after is current", async () => {
    const w = makeWorld();
    await handleUploadBatch(w.deps, w.config, [w.upload("input/busy.csv").message]);
    const [busy] = runs(w);
    const simple = putVersion(w, "input/a.csv", "aaaa", "2026-04-01T10:00:07.000Z", "simple");
    await handleUploadBatch(w.deps, w.config, [w.message(simple)]);
    // initiated at :03, completed after the simple PUT: S3 reports the initiation time as its Last-Modified
    const multipart = putVersion(w, "input/a.csv", "bbbb-2", "2026-04-01T10:00:03.000Z", "multipart");
    await handleUploadBatch(w.deps, w.config, [w.message(multipart)]);

    const end = await finishRun(w, busy?.runKey ?? "", busy?.glueRunId ?? "");

    const next = end.next?.started ? end.next : null;
    expect((await w.manifestOf(next?.runKey ?? "")).uploads.map((u) => u.etag)).toEqual(["bbbb-2"]);
    expect(uploads(w).find((u) => u.etag === "aaaa")?.status).toBe("failed");
  });

  it.each([
    ["0055AED6DCD90281E5", "0055AED6DCD90281E6", -1],
    ["0055AED6DCD90281E6", "0055AED6DCD90281E5", 1],
    ["0055AED6DCD90281E5", "0055AED6DCD90281E5", 0],
    // different lengths: the shorter is right-padded with zeros before comparing (S3's rule)
    ["0055AED6DCD90281E5", "0055AED6DCD90281E500", 0],
    ["0055AED6DCD90281E5", "0055AED6DCD90281E501", -1],
    ["0056", "0055AED6DCD90281E5", 1],
    ["0055aed6dcd90281e6", "0055AED6DCD90281E5", 1],
  ])("compareSequencers(%s, %s) = %d", (a, b, want) => {
    expect(Math.sign(compareSequencers(a, b))).toBe(want);
  });
});

describe("5. failures that cannot be blamed on the files", () => {
  it("a Glue outage retries the whole run, charges no attempt, fails no healthy file, and trips the breaker", async () => {
    const w = makeWorld();
    const keys = ["input/a.csv", "input/b.csv", "input/c.csv", "input/d.csv"];
    await handleUploadBatch(
      w.deps,
      w.config,
      keys.map((k) => w.upload(k).message),
    );
    const runSizes: number[] = [];
    let started = 0;
    for (let outage = 0; outage < 9; outage++) {
      const run = runs(w).find((r) => r.state === "running");
      if (!run?.glueRunId) break;
      started++;
      runSizes.push(run.fileCount);
      w.glue.finish(run.glueRunId, "FAILED", "InternalServiceException: Glue had an internal error");
      await recordRunEnd(w.deps, w.config, {
        glueRunId: run.glueRunId,
        state: "FAILED",
        message: "InternalServiceException: Glue had an internal error",
      });
      // a failed run is retried only after the backoff: the sweeper starts it when it is due
      expect(w.glue.active()).toEqual([]);
      w.clock.advance(w.config.runs.systemRetryMaxSeconds * 1000);
      await sweep(w.deps, w.config);
    }
    expect(started).toBe(9);
    expect(runSizes).toEqual([4, 4, 4, 4, 4, 4, 4, 4, 4]);
    expect(uploads(w).every((u) => u.attempts === 0 && u.status === "running")).toBe(true);
    expect(w.metrics.get("CircuitOpen")).toBeGreaterThan(0);
    expect((await w.ledger.getHealth()).consecutiveSystemFailures).toBe(9);

    // Glue is back: one run of all four, processed; the breaker closes
    const run = runs(w).find((r) => r.state === "running");
    await finishRun(w, run?.runKey ?? "", run?.glueRunId ?? "");
    expect(uploads(w).map((u) => u.status)).toEqual(["processed", "processed", "processed", "processed"]);
    expect((await w.ledger.getHealth()).consecutiveSystemFailures).toBe(0);
  });

  it.each([
    ["ERROR", "Internal service error"],
    ["TIMEOUT", "Job run timed out"],
    ["FAILED", "Failed to provision workers: insufficient capacity"],
  ])("a run that ended %s (%s) with no per-file stats is a system failure", async (state, message) => {
    const w = makeWorld();
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    const [run] = runs(w);
    await recordRunEnd(w.deps, w.config, { glueRunId: run?.glueRunId ?? "", state, message });
    expect(uploads(w)).toMatchObject([{ status: "pending", attempts: 0, retryGroupSize: null }]);
    expect(w.metrics.get("RunSystemFailures")).toBe(1);
  });

  it.each([
    ["failed", "InternalServiceException: Internal service error", true],
    ["failed", "Failed to provision workers", true],
    ["failed", "Rate exceeded", true],
    ["timeout", null, true],
    ["stopped", null, true],
    // the files may be to blame: halving still isolates them
    ["failed", "Container killed by YARN for exceeding memory limits", false],
    ["failed", "executor lost", false],
    ["failed", null, false],
  ] as const)("isSystemFailure(%s, %s) = %s (no stats)", (state, message, want) => {
    expect(isSystemFailure(state, message, null)).toBe(want);
  });

  it("a StartJobRun refused during an outage backs off instead of starting again at once", async () => {
    const w = makeWorld();
    w.glue.startFaults.push({ error: sdkError("ThrottlingException", 400), started: false });
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    expect(await startNextRun(w.deps, w.config.runs)).toEqual({ started: false, reason: "backing-off" });
    w.clock.advance(w.config.runs.systemRetryBaseSeconds * 1000);
    expect(await startNextRun(w.deps, w.config.runs)).toMatchObject({ started: true, files: 1 });
  });
});

describe("7. an upload's identity never comes from the event's time", () => {
  it("a duplicate event arriving after the object was deleted adds no phantom failed record", async () => {
    const w = makeWorld();
    const { version, message } = w.upload("input/a.csv");
    const r = await handleUploadBatch(w.deps, w.config, [message]);
    const run = r.run?.started ? r.run : null;
    await finishRun(w, run?.runKey ?? "", run?.glueRunId ?? "");
    w.objects.delete(BUCKET, "input/a.csv");
    // EventBridge's time is when the event was emitted: after S3's (second-resolution) Last-Modified, here the next second
    const event = { ...objectCreatedEvent(version), time: "2026-04-01T10:00:01.200Z" };

    const again = await handleUploadBatch(w.deps, w.config, [{ messageId: "dup", body: JSON.stringify(event) }]);

    expect(again.recorded).toBe(0);
    expect(uploads(w)).toMatchObject([{ status: "processed" }]);
  });

  it("two deliveries of one deleted version's event record one failed upload", async () => {
    const w = makeWorld();
    const { version } = w.upload("input/gone.csv");
    w.objects.delete(BUCKET, "input/gone.csv");
    const at = (time: string) => ({
      messageId: time,
      body: JSON.stringify({ ...objectCreatedEvent(version), time }),
    });
    await handleUploadBatch(w.deps, w.config, [at("2026-04-01T10:00:00.400Z")]);
    await handleUploadBatch(w.deps, w.config, [at("2026-04-01T10:00:01.900Z")]);
    expect(uploads(w)).toMatchObject([{ status: "failed", error: expect.stringMatching(/deleted/) }]);
  });
});

describe("8. a run's counts are the sum over its uploads", () => {
  it("a recorder that crashed mid-settle, then the redelivered event: the run says 10 processed", async () => {
    const w = makeWorld();
    const r = await handleUploadBatch(
      w.deps,
      w.config,
      Array.from({ length: 10 }, (_, i) => w.upload(`input/f${i}.csv`).message),
    );
    const run = r.run?.started ? r.run : null;
    await w.writeStats(run?.runKey ?? "");
    w.glue.finish(run?.glueRunId ?? "", "SUCCEEDED");
    const ended = { glueRunId: run?.glueRunId ?? "", state: "SUCCEEDED", message: null };
    let settles = 0;
    const crash = crashingAfter(w.ledger, (method) => method === "settleUpload" && ++settles === 4);
    void recordRunEnd({ ...w.deps, ledger: crash.proxy }, w.config, ended);
    await crash.died;

    await recordRunEnd(w.deps, w.config, ended);

    expect(uploads(w).filter((u) => u.status === "processed")).toHaveLength(10);
    expect(w.ledger.runs.get(run?.runKey ?? "")).toMatchObject({
      state: "succeeded",
      filesProcessed: 10,
      filesFailed: 0,
      rowsRead: 10,
    });
  });

  it("recorder and sweeper settling the same run concurrently agree with the uploads", async () => {
    const w = makeWorld();
    const r = await handleUploadBatch(
      w.deps,
      w.config,
      Array.from({ length: 40 }, (_, i) => w.upload(`input/f${i}.csv`).message),
    );
    const run = r.run?.started ? r.run : null;
    await w.writeStats(run?.runKey ?? "");
    w.glue.finish(run?.glueRunId ?? "", "SUCCEEDED");
    const ended = { glueRunId: run?.glueRunId ?? "", state: "SUCCEEDED", message: null };

    await Promise.all([recordRunEnd(w.deps, w.config, ended), sweep(w.deps, w.config)]);

    const processed = uploads(w).filter((u: UploadRecord) => u.status === "processed" && u.runKey === run?.runKey);
    expect(processed).toHaveLength(40);
    expect(w.ledger.runs.get(run?.runKey ?? "")).toMatchObject({ filesProcessed: 40, rowsProcessed: 40 });
  });
});

describe("11. one burst makes one run", () => {
  /** A world whose batches are full at 40 records (the real size is 4,000; the rule does not depend on it). */
  function burstWorld() {
    const w = makeWorld();
    const config = { ...w.config, queue: { ...w.config.queue, batchSize: 40 } };
    let n = 0;
    const batch = (size: number) => Array.from({ length: size }, () => w.upload(`input/f${n++}.csv`).message);
    return { w, config, batch };
  }

  it("full batches hold the start; the burst's last (not full) batch starts ONE run of all of it", async () => {
    const { w, config, batch } = burstWorld();
    const [first, second] = [batch(40), batch(40)];
    const held = await Promise.all([
      handleUploadBatch(w.deps, config, first),
      handleUploadBatch(w.deps, config, second),
    ]);
    expect(held.map((r) => r.run?.started)).toEqual([false, false]);
    expect(held.flatMap((r) => r.failedMessageIds)).toEqual([]);
    expect(w.glue.runs.size).toBe(0);
    expect(w.ledger.slot.holder).toBeNull();

    w.clock.advance(60_000); // the last batch comes when its batching window ends
    const last = await handleUploadBatch(w.deps, config, batch(20));

    expect(last.run).toMatchObject({ started: true, files: 100 });
    expect(w.glue.runs.size).toBe(1);
  });

  it("a full batch starts at once when the burst is older than the hold; the sweeper starts a burst with no tail", async () => {
    const { w, config, batch } = burstWorld();
    await handleUploadBatch(w.deps, config, batch(40));
    expect(await sweep(w.deps, config)).toMatchObject({ next: { started: true, files: 40 } });

    const again = burstWorld();
    await handleUploadBatch(again.w.deps, again.config, again.batch(40));
    again.w.clock.advance((again.config.runs.burstHoldSeconds + 1) * 1000);
    const late = await handleUploadBatch(again.w.deps, again.config, again.batch(40));
    expect(late.run).toMatchObject({ started: true, files: 80 });
  });

  it("a burst whose last batch was full: the held batch's message comes back when the hold ends and starts ONE run", async () => {
    const { w, config, batch } = burstWorld();
    // the first batch holds one message that is not an upload (ignored): never a message to send back
    const first = [{ messageId: "not-an-upload", body: JSON.stringify({ Event: "s3:TestEvent" }) }, ...batch(39)];
    const second = batch(40);
    const held = await handleUploadBatch(w.deps, config, first);
    w.clock.advance(30_000);
    const heldAgain = await handleUploadBatch(w.deps, config, second);

    // Each held batch names its pending messages and when to send one back: when the hold ends, 90 s after the
    // oldest upload was recorded (never sooner: a batch that is not full starts at once).
    expect(held.heldBurst).toEqual({ messageIds: first.slice(1).map((m) => m.messageId), seconds: 90 });
    expect(heldAgain.heldBurst?.seconds).toBe(60);
    expect(held.failedMessageIds).toEqual([]);
    expect(w.glue.runs.size).toBe(0);

    // No other batch comes: the message sent back (ChangeMessageVisibility, reported failed) is delivered again then.
    w.clock.advance(60_000);
    const woken = await handleUploadBatch(w.deps, config, first.slice(1, 2));

    expect(woken.run).toMatchObject({ started: true, files: 79 });
    expect(woken.heldBurst).toBeNull();
    expect(w.glue.runs.size).toBe(1);
  });

  it("a batch held while another run holds the slot names nothing to send back (that run's end starts it)", async () => {
    const { w, config, batch } = burstWorld();
    await w.ledger.takeSlot("another-run", w.clock.now().toISOString());

    const held = await handleUploadBatch(w.deps, config, batch(40));

    expect(held.run).toEqual({ started: false, reason: "slot-held" });
    expect(held.heldBurst).toBeNull();
  });

  it("a batch that is not full never holds (a single upload starts at once)", async () => {
    const { w, config, batch } = burstWorld();
    expect((await handleUploadBatch(w.deps, config, batch(1))).run).toMatchObject({ started: true, files: 1 });
  });
});

describe("11. batch and manifest sizes", () => {
  it("one Lambda batch fits Lambda's 6 MB payload; one manifest holds a 10,000-file burst", () => {
    for (const stage of ["dev", "prod"]) {
      const c = pipelineConfig(stage);
      expect(c.queue.batchSize).toBe(4_000);
      expect(c.runs.maxFilesPerRun).toBe(10_000);
    }
  });
});
