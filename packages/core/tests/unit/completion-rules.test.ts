/**
 * Completion's rules one by one (completion.ts): reading the state-change event, finding the run, what counts as a
 * system failure, how each upload is settled, the run's counts and metrics. Literal expectations.
 */
import { describe, expect, it } from "vitest";
import { type PipelineConfig, pipelineConfig } from "../../src/config/pipeline.js";
import type { UploadRecord } from "../../src/ledger/types.js";
import type { FileStats } from "../../src/manifest/format.js";
import { isSystemFailure, parseRunEnded, recordRunEnd, settlementOf } from "../../src/runs/completion.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { GlueServiceError } from "../../src/testing/fakes.js";
import { BUCKET, glueStateChange, makeWorld } from "../helpers/world.js";

const RUN_1 = "20260401T100000Z-00000001";
const T0 = "2026-04-01T10:00:00.000Z";
type World = ReturnType<typeof makeWorld>;

async function startRun(w: World, keys: string[]) {
  const r = await handleUploadBatch(
    w.deps,
    w.config,
    keys.map((k) => w.upload(k).message),
  );
  if (!r.run?.started) throw new Error("no run started");
  return r.run;
}

/** Stats for every file of RUN_1's manifest, each with the given counts and status. */
async function writeCountedStats(w: World, files: Record<string, Partial<FileStats>>) {
  const manifest = await w.manifestOf(RUN_1);
  await w.objects.putJson(BUCKET, manifest.statsKey, {
    format: "csv-ingest-stats/1",
    runKey: RUN_1,
    processingDate: T0,
    totals: {},
    files: manifest.uploads.map((u) => ({
      uploadId: u.uploadId,
      key: u.key,
      status: "processed",
      error: null,
      rowsRead: 0,
      rowsProcessed: 0,
      rowsRejected: 0,
      output: `s3://${BUCKET}/out/${u.key}`,
      rejectedOutput: null,
      ...files[u.key],
    })),
  });
}

describe("parseRunEnded", () => {
  const event = (patch: Record<string, unknown> = {}, detail: Record<string, unknown> = {}) =>
    JSON.stringify({
      ...glueStateChange("csv-ingest-job", "jr_1", "FAILED", "boom"),
      ...patch,
      detail: { ...glueStateChange("csv-ingest-job", "jr_1", "FAILED", "boom").detail, ...detail },
    });

  it.each([
    ["broken JSON", "{nope", "body is not JSON"],
    ["JSON null", "null", "not a Glue Job State Change (undefined)"],
    ["another source", event({ source: "aws.s3" }), "not a Glue Job State Change (Glue Job State Change)"],
    [
      "another detail-type",
      event({ "detail-type": "Glue Job Run Status" }),
      "not a Glue Job State Change (Glue Job Run Status)",
    ],
    ["another job", event({}, { jobName: "other-job" }), "job other-job is not csv-ingest-job"],
    ["no run id", event({}, { jobRunId: undefined }), "event has no jobRunId or state"],
    ["no state", event({}, { state: 7 }), "event has no jobRunId or state"],
    ["a state that is not terminal", event({}, { state: "RUNNING" }), "state RUNNING is not terminal"],
  ])("ignores %s, saying why", (_, body, reason) => {
    expect(parseRunEnded(body, "csv-ingest-job")).toEqual({ kind: "ignored", reason });
  });

  it("keeps a string message, drops anything else", () => {
    expect(parseRunEnded(event(), "csv-ingest-job")).toEqual({
      kind: "run-ended",
      ended: { glueRunId: "jr_1", state: "FAILED", message: "boom" },
    });
    expect(parseRunEnded(event({}, { message: 42 }), "csv-ingest-job")).toEqual({
      kind: "run-ended",
      ended: { glueRunId: "jr_1", state: "FAILED", message: null },
    });
  });
});

describe("isSystemFailure", () => {
  const stats = { format: "csv-ingest-stats/1", runKey: "r", processingDate: T0, totals: {}, files: [] } as never;
  it.each([
    ["succeeded", "timed out", null, false],
    ["failed", "insufficient capacity", stats, false],
    ["failed", "Internal service error", null, true],
    ["failed", "executor lost", null, false],
    ["failed", null, null, false],
    ["timeout", null, null, true],
    ["stopped", null, null, true],
  ] as const)("%s / %s / stats %s → %s", (state, message, s, want) => {
    expect(isSystemFailure(state, message, s)).toBe(want);
  });
});

describe("settlementOf", () => {
  const config: PipelineConfig = pipelineConfig("test");
  const record = { attempts: 1, retryGroupSize: 4 } as UploadRecord;
  const processed = {
    uploadId: "u",
    status: "processed",
    error: null,
    output: "s3://b/out",
    rejectedOutput: "s3://b/rej",
    rowsRead: 3,
    rowsProcessed: 2,
    rowsRejected: 1,
  } as FileStats;

  it("a file the job rejected: failed at once, one more attempt, the job's reason or a default", () => {
    expect(
      settlementOf(record, { ...processed, status: "failed", error: "bad header" }, "succeeded", null, 3, config),
    ).toEqual({
      status: "failed",
      error: "bad header",
      attempts: 2,
    });
    expect(settlementOf(record, { ...processed, status: "failed", error: null }, "failed", "x", 3, config)).toEqual({
      status: "failed",
      error: "the Glue job could not process the file",
      attempts: 2,
    });
  });

  it("processed only when the run succeeded and the stats say so", () => {
    expect(settlementOf(record, processed, "succeeded", null, 3, config)).toEqual({
      status: "processed",
      output: "s3://b/out",
      rejectedOutput: "s3://b/rej",
      rowsRead: 3,
      rowsProcessed: 2,
      rowsRejected: 1,
    });
    expect(settlementOf(record, processed, "failed", "Glue run jr FAILED: x", 3, config)).toEqual({
      status: "pending",
      error: "Glue run jr FAILED: x",
      attempts: 1,
      retryGroupSize: 2,
    });
  });

  it("a succeeded run whose stats do not mention the file: retried alone, charged", () => {
    expect(settlementOf(record, undefined, "succeeded", null, 1, config)).toEqual({
      status: "pending",
      error: "the run succeeded but its stats do not mention this file",
      attempts: 2,
      retryGroupSize: 1,
    });
  });

  it("a system failure gives the file back unchanged (by default it is not one)", () => {
    expect(settlementOf(record, undefined, "failed", "down", 3, config, true)).toEqual({
      status: "pending",
      error: "down",
      attempts: 1,
      retryGroupSize: 4,
    });
    expect(settlementOf(record, undefined, "failed", "down", 3, config)).toMatchObject({ retryGroupSize: 2 });
  });
});

describe("recordRunEnd", () => {
  it("a run Glue linked but the ledger has no run item for: ignored", async () => {
    const w = makeWorld();
    await w.ledger.linkGlueRun("jr_x", "ghost");
    expect(await recordRunEnd(w.deps, w.config, { glueRunId: "jr_x", state: "SUCCEEDED", message: null })).toEqual({
      runKey: "ghost",
      applied: false,
      next: null,
    });
  });

  it("the ledger's link is enough, even when Glue no longer lists the run", async () => {
    const w = makeWorld();
    await startRun(w, ["input/a.csv"]);
    await w.writeStats(RUN_1);
    w.glue.finish("jr_000001", "SUCCEEDED");
    w.glue.runs.clear();

    const r = await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "SUCCEEDED", message: null });

    expect(r).toMatchObject({ runKey: RUN_1, applied: true });
  });

  it("found through Glue's arguments: the link is written for next time; an unknown run links nothing", async () => {
    const w = makeWorld();
    await startRun(w, ["input/a.csv"]);
    w.ledger.glueRuns.clear();
    w.glue.finish("jr_000001", "SUCCEEDED");
    await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "SUCCEEDED", message: null });
    expect(w.ledger.glueRuns.get("jr_000001")).toBe(RUN_1);

    await recordRunEnd(w.deps, w.config, { glueRunId: "jr_nobody", state: "SUCCEEDED", message: null });
    expect(w.ledger.glueRuns.has("jr_nobody")).toBe(false);
  });

  it("settles a run still 'starting' (its start's answer was lost) when its end arrives", async () => {
    const w = makeWorld();
    const a = w.upload("input/a.csv");
    w.glue.startFaults.push({ error: new GlueServiceError("InternalServiceException", 500, "lost"), started: true });
    w.glue.recentRuns = async () => [];
    await handleUploadBatch(w.deps, w.config, [a.message]);
    expect(w.ledger.runs.get(RUN_1)?.state).toBe("starting");
    await w.writeStats(RUN_1);

    const r = await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "SUCCEEDED", message: null });

    expect(r.applied).toBe(true);
    expect(w.ledger.runs.get(RUN_1)).toMatchObject({ state: "succeeded", glueRunId: "jr_000001" });
  });

  it("an unknown Glue state closes the run as failed, with Glue's words", async () => {
    const w = makeWorld();
    await startRun(w, ["input/a.csv"]);
    w.glue.finish("jr_000001", "STOPPED");
    await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "EXPIRED", message: null });
    expect(w.ledger.runs.get(RUN_1)).toMatchObject({
      state: "failed",
      error: "Glue run jr_000001 EXPIRED: no message",
    });
  });

  it("a run whose manifest is gone: closed, 'manifest missing', nothing settled", async () => {
    const w = makeWorld();
    await startRun(w, ["input/a.csv"]);
    w.objects.delete(BUCKET, `manifests/${RUN_1}.json`);
    await w.writeStats(RUN_1).catch(() => undefined);

    const r = await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "SUCCEEDED", message: null });

    expect(r.applied).toBe(true);
    expect(w.ledger.runs.get(RUN_1)).toMatchObject({
      state: "succeeded",
      error: "manifest missing",
      filesProcessed: 0,
      filesFailed: 0,
    });
  });

  it("ERROR is a system failure even when the job wrote stats", async () => {
    const w = makeWorld();
    await startRun(w, ["input/a.csv"]);
    await w.writeStats(RUN_1);

    await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "ERROR", message: "executor lost" });

    expect([...w.ledger.uploads.values()]).toMatchObject([{ status: "pending", attempts: 0, retryGroupSize: null }]);
    expect(w.metrics.get("RunSystemFailures")).toBe(1);
  });

  it("a failed run's own error is kept; its row counts are the sums over its processed files", async () => {
    const w = makeWorld();
    await startRun(w, ["input/a.csv", "input/b.csv", "input/c.csv"]);
    await writeCountedStats(w, {
      "input/a.csv": { rowsRead: 10, rowsProcessed: 7, rowsRejected: 3 },
      "input/b.csv": { rowsRead: 5, rowsProcessed: 4, rowsRejected: 1 },
      "input/c.csv": { status: "failed", error: "bad", rowsRead: 100, rowsProcessed: 0, rowsRejected: 100 },
    });

    w.glue.finish("jr_000001", "SUCCEEDED");
    await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "SUCCEEDED", message: null });

    expect(w.ledger.runs.get(RUN_1)).toMatchObject({
      state: "succeeded",
      error: null,
      rowsRead: 15,
      rowsProcessed: 11,
      rowsRejected: 4,
      filesProcessed: 2,
      filesFailed: 1,
    });
    expect(Object.fromEntries(w.metrics.totals)).toMatchObject({ FilesProcessed: 2, FilesFailed: 1 });
    expect(w.metrics.totals.has("RunsFailed")).toBe(false);

    const f = makeWorld();
    await startRun(f, ["input/a.csv"]);
    f.glue.finish("jr_000001", "FAILED");
    const settle = f.ledger.settleUpload.bind(f.ledger);
    const handed: unknown[] = [];
    f.ledger.settleUpload = async (...args) => {
      handed.push(args[4]);
      return settle(...args);
    };
    await recordRunEnd(f.deps, f.config, { glueRunId: "jr_000001", state: "FAILED", message: "executor lost" });
    // a settlement that needed the record (back to pending) is handed the record it was made from
    expect(handed).toEqual([expect.objectContaining({ key: "input/a.csv", status: "running", runKey: RUN_1 })]);
    expect(f.ledger.runs.get(RUN_1)).toMatchObject({
      state: "failed",
      error: "Glue run jr_000001 FAILED: executor lost",
      rowsRead: null,
      filesProcessed: 0,
    });
    expect(f.metrics.get("RunsFailed")).toBe(1);
    expect(f.metrics.totals.has("FilesFailed")).toBe(false);
  });

  // The recorder and the sweeper both read the run while it was running. The later close fails its condition and
  // reads the run back: a second later its values differ; at the same moment they are exactly its own patch, and
  // only the settler's token (closedBy) tells the two settlers apart.
  it.each([
    ["a second later", 1_000],
    ["at the same moment, with the same counts", 0],
  ])(
    "a settler that read the run just before another closed it (%s) changes nothing and counts nothing",
    async (_, laterMs) => {
      const w = makeWorld();
      await startRun(w, ["input/a.csv", "input/b.csv"]);
      await w.writeStats(RUN_1);
      w.glue.finish("jr_000001", "SUCCEEDED");
      const ended = { glueRunId: "jr_000001", state: "SUCCEEDED", message: null };
      const running = w.ledger.runs.get(RUN_1);
      const first = await recordRunEnd(w.deps, w.config, ended);
      w.clock.advance(laterMs);
      const get = w.ledger.getRun.bind(w.ledger);
      w.ledger.getRun = async (runKey) => (runKey === RUN_1 ? (running ?? null) : get(runKey));

      const late = await recordRunEnd(w.deps, w.config, ended);

      expect([first.applied, late.applied]).toEqual([true, false]);
      expect(w.ledger.runs.get(RUN_1)).toMatchObject({ state: "succeeded", endedAt: T0, filesProcessed: 2 });
      expect(w.metrics.get("FilesProcessed")).toBe(2);
      expect(w.log.lines.filter((l) => l.message === "run recorded")).toHaveLength(1);
    },
  );

  it("a close whose write applied but whose answer was lost (the SDK retried it) still counts as applied", async () => {
    const w = makeWorld();
    await startRun(w, ["input/a.csv"]);
    await w.writeStats(RUN_1);
    w.glue.finish("jr_000001", "SUCCEEDED");
    const update = w.ledger.updateRun.bind(w.ledger);
    // the first attempt applies; the retry of the very same request meets its own write and reads it back
    w.ledger.updateRun = async (runKey, from, patch) => {
      await update(runKey, from, patch);
      return update(runKey, from, patch);
    };

    const result = await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "SUCCEEDED", message: null });

    expect(result.applied).toBe(true);
    expect(w.metrics.get("FilesProcessed")).toBe(1);
  });

  it("a redelivered end writes no upload again", async () => {
    const w = makeWorld();
    await startRun(w, ["input/a.csv"]);
    await w.writeStats(RUN_1);
    await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "SUCCEEDED", message: null });
    await w.ledger.updateRun(RUN_1, ["succeeded"], { state: "running" }); // as if the first settler crashed here
    const before = structuredClone([...w.ledger.uploads.values()]);
    w.clock.advance(5_000);
    let applied = 0;
    const settle = w.ledger.settleUpload.bind(w.ledger);
    w.ledger.settleUpload = async (...args) => {
      const wrote = await settle(...args);
      if (wrote) applied++;
      return wrote;
    };

    const r = await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "SUCCEEDED", message: null });

    // the settle is tried (it does not read first) and refused: the upload is settled already, by an earlier end
    expect(applied).toBe(0);
    expect([...w.ledger.uploads.values()]).toEqual(before);
    expect(r.applied).toBe(true);
    expect(w.ledger.runs.get(RUN_1)).toMatchObject({ filesProcessed: 1, filesFailed: 0 });
  });

  it("stats with a count the ledger cannot store are unreadable: the run closes, its file goes back to be retried", async () => {
    const w = makeWorld();
    await startRun(w, ["input/a.csv"]);
    const manifest = await w.manifestOf(RUN_1);
    const [entry] = manifest.uploads;
    await w.objects.putJson(w.deps.bucket, manifest.statsKey, {
      format: "csv-ingest-stats/1",
      runKey: RUN_1,
      files: [
        { uploadId: entry?.uploadId, key: "input/a.csv", status: "processed", rowsRead: 1e21, output: "s3://x/" },
      ],
    });
    w.glue.finish("jr_000001", "SUCCEEDED");

    await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "SUCCEEDED", message: null });

    expect(w.log.lines.some((l) => l.message === "run stats unreadable")).toBe(true);
    expect(w.ledger.runs.get(RUN_1)).toMatchObject({ state: "succeeded", filesProcessed: 0, rowsRead: null });
    expect(w.ledger.uploads.get(entry?.uploadId ?? "")).toMatchObject({
      error: expect.stringMatching(/stats do not mention/),
    });
    expect(w.ledger.slot.holder).not.toBe(RUN_1);
  });

  it("a succeeded run's processed uploads are settled without reading them first (one ledger write each)", async () => {
    const w = makeWorld();
    await startRun(w, ["input/a.csv", "input/b.csv", "input/c.csv"]);
    await w.writeStats(RUN_1);
    const reads: string[] = [];
    const get = w.ledger.getUpload.bind(w.ledger);
    w.ledger.getUpload = async (id) => {
      reads.push(id);
      return get(id);
    };

    await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "SUCCEEDED", message: null });

    expect(reads).toEqual([]);
    expect([...w.ledger.uploads.values()].map((u) => u.status)).toEqual(["processed", "processed", "processed"]);
    expect(w.ledger.runs.get(RUN_1)).toMatchObject({ state: "succeeded", filesProcessed: 3, filesFailed: 0 });
  });

  it("a settle write that keeps losing is tried once blind and 3 times after a read, then the upload is read back", async () => {
    const w = makeWorld();
    await startRun(w, ["input/a.csv"]);
    await w.writeStats(RUN_1);
    let settles = 0;
    w.ledger.settleUpload = async () => {
      settles++;
      return false;
    };

    await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "SUCCEEDED", message: null });

    expect(settles).toBe(4);
    expect(w.ledger.runs.get(RUN_1)).toMatchObject({ state: "succeeded", filesProcessed: 0 });
  });

  it("a run without stats logs nothing about unreadable stats; an S3 error reading them is thrown", async () => {
    const w = makeWorld();
    await startRun(w, ["input/a.csv"]);
    w.glue.finish("jr_000001", "FAILED");
    await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "FAILED", message: "executor lost" });
    expect(w.log.lines.filter((l) => l.message === "run stats unreadable")).toEqual([]);

    const s = makeWorld();
    await startRun(s, ["input/a.csv"]);
    const get = s.objects.getText.bind(s.objects);
    s.objects.getText = async (bucket, key) => {
      if (key.startsWith("stats/")) throw new Error("AccessDenied");
      return get(bucket, key);
    };
    await expect(
      recordRunEnd(s.deps, s.config, { glueRunId: "jr_000001", state: "SUCCEEDED", message: null }),
    ).rejects.toThrow("AccessDenied");
  });

  it("a redelivered end of a failed run counts none of its files that later runs took and processed", async () => {
    const w = makeWorld();
    await startRun(w, ["input/a.csv", "input/b.csv"]);
    w.glue.finish("jr_000001", "FAILED");
    const failed = { glueRunId: "jr_000001", state: "FAILED", message: "executor lost" };
    const first = await recordRunEnd(w.deps, w.config, failed);
    // As if that settler crashed before closing the run: the run is still open when its end is delivered again.
    await w.ledger.updateRun(RUN_1, ["failed"], { state: "running" });
    let next = first.next?.started ? first.next : null;
    while (next) {
      await w.writeStats(next.runKey);
      w.glue.finish(next.glueRunId, "SUCCEEDED");
      const r = await recordRunEnd(w.deps, w.config, { glueRunId: next.glueRunId, state: "SUCCEEDED", message: null });
      next = r.next?.started ? r.next : null;
    }
    expect([...w.ledger.uploads.values()].map((u) => u.status)).toEqual(["processed", "processed"]);

    await recordRunEnd(w.deps, w.config, failed);

    expect(w.ledger.runs.get(RUN_1)).toMatchObject({ state: "failed", filesProcessed: 0, filesFailed: 0 });
  });

  it("the first run that ends without a system failure closes the breaker, and says so", async () => {
    const w = makeWorld();
    w.ledger.health = { consecutiveSystemFailures: 2, lastRunKey: "r0", lastFailureAt: "2026-04-01T09:00:00.000Z" };
    await startRun(w, ["input/a.csv"]);
    await w.writeStats(RUN_1);
    w.glue.finish("jr_000001", "SUCCEEDED");

    await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "SUCCEEDED", message: null });

    expect(w.ledger.health).toEqual({
      consecutiveSystemFailures: 0,
      lastRunKey: RUN_1,
      lastFailureAt: "2026-04-01T09:00:00.000Z",
    });
    expect(w.log.lines).toContainEqual({
      level: "info",
      message: "circuit breaker closed: a run ended without a system failure",
      fields: { runKey: RUN_1 },
    });
  });
});
