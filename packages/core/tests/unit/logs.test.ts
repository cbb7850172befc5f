/**
 * What an operator reads in the logs (CloudWatch Logs Insights over the structured lines): which line each step of
 * intake, run start and completion writes, at which level, with which fields. Expected values are literal: the
 * world's fakes number etags, run keys and Glue run ids from 1, and its clock starts at 2026-04-01T10:00:00Z.
 */
import { describe, expect, it } from "vitest";
import { recordRunEnd } from "../../src/runs/completion.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { sweep } from "../../src/runs/sweeper.js";
import { GlueServiceError } from "../../src/testing/fakes.js";
import { toUpload } from "../../src/upload/identity.js";
import { runRecord } from "../helpers/records.js";
import { makeWorld } from "../helpers/world.js";

const RUN_1 = "20260401T100000Z-00000001";
const ID_A1 = "data-bucket/input/a.csv@20260401T100000Z-etag00000001";
const ID_B2 = "data-bucket/input/b.csv@20260401T100000Z-etag00000002";

describe("logs: intake, run start, completion", () => {
  it("a run of two files, one rejected by the job: recorded, started, the failure, the run's outcome", async () => {
    const w = makeWorld();
    const r = await handleUploadBatch(w.deps, w.config, [
      w.upload("input/a.csv").message,
      w.upload("input/b.csv").message,
      { messageId: "junk", body: "nope" },
    ]);
    await w.writeStats(RUN_1, { "input/b.csv": "input/b.csv: missing required column(s): amount" });
    w.glue.finish("jr_000001", "SUCCEEDED");
    await recordRunEnd(w.deps, w.config, { glueRunId: "jr_000001", state: "SUCCEEDED", message: null });

    expect(r.run).toEqual({ started: true, runKey: RUN_1, glueRunId: "jr_000001", files: 2 });
    expect(w.log.lines).toEqual([
      { level: "info", message: "message ignored", fields: { messageId: "junk", reason: "body is not JSON" } },
      { level: "info", message: "upload recorded", fields: { key: "input/a.csv", uploadId: ID_A1 } },
      { level: "info", message: "upload recorded", fields: { key: "input/b.csv", uploadId: ID_B2 } },
      {
        level: "info",
        message: "run started",
        fields: { runKey: RUN_1, glueRunId: "jr_000001", files: 2, keys: ["input/a.csv", "input/b.csv"] },
      },
      {
        level: "error",
        message: "upload failed",
        fields: {
          key: "input/b.csv",
          uploadId: ID_B2,
          runKey: RUN_1,
          error: "input/b.csv: missing required column(s): amount",
        },
      },
      {
        level: "info",
        message: "run recorded",
        fields: {
          runKey: RUN_1,
          glueRunId: "jr_000001",
          state: "succeeded",
          processed: 1,
          failed: 1,
          systemFailure: false,
        },
      },
    ]);
  });

  it("a run start lists at most the first 20 keys of its run", async () => {
    const w = makeWorld();
    const keys = Array.from({ length: 25 }, (_, i) => `input/f${String(i).padStart(2, "0")}.csv`);
    await handleUploadBatch(
      w.deps,
      w.config,
      keys.map((k) => w.upload(k).message),
    );

    const started = w.log.lines.find((l) => l.message === "run started");
    expect(started?.fields).toMatchObject({ runKey: RUN_1, glueRunId: "jr_000001", files: 25 });
    const logged = started?.fields?.keys as string[];
    expect(logged).toHaveLength(20);
    expect(new Set(logged).size).toBe(20);
    for (const k of logged) expect(keys).toContain(k);
  });

  it("a failed HeadObject and a failed ledger write are logged as errors naming the key", async () => {
    const w = makeWorld();
    const a = w.upload("input/a.csv").message;
    const b = w.upload("input/b.csv").message;
    const head = w.objects.head.bind(w.objects);
    w.objects.head = async (bucket, key) => {
      if (key === "input/a.csv") throw new Error("SlowDown");
      return head(bucket, key);
    };
    w.ledger.failNext = { method: "recordUpload", error: new Error("ProvisionedThroughputExceeded") };

    const r = await handleUploadBatch(w.deps, w.config, [a, b]);

    expect(r.failedMessageIds).toEqual([a.messageId, b.messageId]);
    expect(w.log.lines).toEqual([
      { level: "error", message: "HeadObject failed", fields: { key: "input/a.csv", error: "Error: SlowDown" } },
      {
        level: "error",
        message: "could not record upload",
        fields: { key: "input/b.csv", messageId: b.messageId, error: "Error: ProvisionedThroughputExceeded" },
      },
    ]);
  });

  it("an event for an overwritten version, and an upload over the per-file cap recorded as failed", async () => {
    const w = makeWorld();
    const old = w.upload("input/a.csv", "v1");
    w.upload("input/a.csv", "v2");
    const big = w.upload("input/big.csv", "0123456789");
    const config = { ...w.config, limits: { ...w.config.limits, maxFileBytes: 5 } };

    await handleUploadBatch(w.deps, config, [old.message, big.message]);

    expect(w.log.lines.slice(0, 3)).toEqual([
      {
        level: "info",
        message: "event is for another version of the key; recording the current one",
        fields: { key: "input/a.csv" },
      },
      {
        level: "info",
        message: "upload recorded",
        fields: { key: "input/a.csv", uploadId: "data-bucket/input/a.csv@20260401T100000Z-etag00000002" },
      },
      {
        level: "info",
        message: "upload recorded as failed",
        fields: {
          key: "input/big.csv",
          uploadId: "data-bucket/input/big.csv@20260401T100000Z-etag00000003",
          reason:
            "too large: 10 bytes is over the per-file cap of 5 bytes (limits.maxFileBytes); split the file and upload the parts",
        },
      },
    ]);
  });

  it("Glue refuses the start: the refusal, the backoff it causes, and that the sweeper will start it", async () => {
    const w = makeWorld();
    w.glue.startFaults.push({
      error: new GlueServiceError("ConcurrentRunsExceededException", 400, "busy"),
      started: false,
    });

    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);

    expect(w.log.lines.slice(1)).toEqual([
      {
        level: "error",
        message: "StartJobRun failed",
        fields: { runKey: RUN_1, started: "no", error: "ConcurrentRunsExceededException: busy" },
      },
      {
        level: "warn",
        message: "system failure; the run is retried whole after a backoff",
        fields: {
          runKey: RUN_1,
          failures: 1,
          retryInSeconds: 60,
          why: "StartJobRun refused: ConcurrentRunsExceededException: busy",
        },
      },
      {
        level: "error",
        message: "could not start a run; the sweeper will",
        fields: {
          runKey: RUN_1,
          error: `StartRunError: run ${RUN_1}: StartJobRun failed (not started): ConcurrentRunsExceededException: busy`,
        },
      },
    ]);
  });

  it("a claim that fails before StartJobRun: the start is undone and the batch goes back to SQS", async () => {
    const w = makeWorld();
    w.ledger.failNext = { method: "claimUpload", error: new Error("Throttled") };

    const r = await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);

    expect(r.failedMessageIds).toEqual(["m-1"]);
    expect(w.log.lines.slice(1)).toEqual([
      {
        level: "error",
        message: "run start failed before StartJobRun; undoing it",
        fields: { runKey: RUN_1, error: "Error: Throttled" },
      },
      {
        level: "error",
        message: "could not start a run; returning the batch's uploads to SQS",
        fields: { error: "Error: Throttled" },
      },
    ]);
  });

  it("a state change for an unknown run; unreadable stats of a run that failed for a system reason", async () => {
    const w = makeWorld();
    await recordRunEnd(w.deps, w.config, { glueRunId: "jr_x", state: "SUCCEEDED", message: null });
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    await w.objects.putJson("data-bucket", (await w.manifestOf(RUN_1)).statsKey, { nope: 1 });
    w.glue.finish("jr_000001", "FAILED");
    await recordRunEnd(w.deps, w.config, {
      glueRunId: "jr_000001",
      state: "FAILED",
      message: "Internal service error",
    });

    expect(w.log.lines.filter((l) => l.level !== "info" || l.message === "run recorded")).toEqual([
      {
        level: "warn",
        message: "state change for a run the ledger does not know; ignored",
        fields: { glueRunId: "jr_x" },
      },
      {
        level: "warn",
        message: "run stats unreadable",
        fields: {
          runKey: RUN_1,
          error: `FormatError: s3://data-bucket/stats/runs/${RUN_1}.json: stats format is undefined, want csv-ingest-stats/1`,
        },
      },
      {
        level: "warn",
        message: "system failure; the run is retried whole after a backoff",
        fields: {
          runKey: RUN_1,
          failures: 1,
          retryInSeconds: 60,
          why: "Glue run jr_000001 FAILED: Internal service error",
        },
      },
      {
        level: "info",
        message: "run recorded",
        fields: {
          runKey: RUN_1,
          glueRunId: "jr_000001",
          state: "failed",
          processed: 0,
          failed: 0,
          systemFailure: true,
        },
      },
    ]);
  });
});

describe("logs: the sweeper", () => {
  it("a run end whose event was lost: the run's outcome, what the sweeper did, and its summary", async () => {
    const w = makeWorld();
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    await w.writeStats(RUN_1);
    w.glue.finish("jr_000001", "SUCCEEDED");
    w.log.lines.length = 0;

    await sweep(w.deps, w.config);

    expect(w.log.lines).toEqual([
      {
        level: "info",
        message: "run recorded",
        fields: {
          runKey: RUN_1,
          glueRunId: "jr_000001",
          state: "succeeded",
          processed: 1,
          failed: 0,
          systemFailure: false,
        },
      },
      {
        level: "info",
        message: "sweeper recorded a run end",
        fields: { runKey: RUN_1, glueRunId: "jr_000001", state: "SUCCEEDED" },
      },
      { level: "warn", message: "sweeper repaired", fields: { repairs: ["recorded-lost-end"] } },
    ]);
  });

  it("an upload an ended run left running: how it was settled, then the run that picks it up", async () => {
    const w = makeWorld();
    const u = toUpload(w.upload("input/a.csv").version);
    const at = w.clock.now().toISOString();
    await w.ledger.recordUpload(u, at);
    const old = "20260401T090000Z-00000001";
    await w.ledger.createRun(runRecord(old, at, { state: "start_failed", bytes: 1, endedAt: at }));
    await w.ledger.claimUpload(u.uploadId, old, at);

    await sweep(w.deps, w.config);

    expect(w.log.lines).toEqual([
      {
        level: "warn",
        message: "upload left running by a closed run settled",
        fields: {
          key: "input/a.csv",
          uploadId: ID_A1,
          runKey: old,
          status: "pending",
          error: `left running: run ${old} ended (start_failed) without settling it`,
        },
      },
      {
        level: "info",
        message: "run started",
        fields: { runKey: RUN_1, glueRunId: "jr_000001", files: 1, keys: ["input/a.csv"] },
      },
      {
        level: "warn",
        message: "sweeper repaired",
        fields: { repairs: ["settled-orphaned-upload", "started-pending"] },
      },
    ]);
  });
});
