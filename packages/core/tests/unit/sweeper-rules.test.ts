/**
 * The sweeper's rules one by one (sweeper.ts): the start timeout's boundary, a slot held by a closed run, the start
 * after repairs, orphaned uploads of deleted objects and of runs that never started. Literal expectations.
 */
import { describe, expect, it } from "vitest";
import type { RunRecord } from "../../src/ledger/types.js";
import { buildManifest } from "../../src/manifest/format.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { sweep } from "../../src/runs/sweeper.js";
import { GlueServiceError } from "../../src/testing/fakes.js";
import { toUpload } from "../../src/upload/identity.js";
import { runRecord } from "../helpers/records.js";
import { BUCKET, makeWorld } from "../helpers/world.js";

const RUN_1 = "20260401T100000Z-00000001";
const T0 = "2026-04-01T10:00:00.000Z";
/** The test stage's start timeout (180 s), written out. */
const TIMEOUT_MS = 180_000;
type World = ReturnType<typeof makeWorld>;

/** `key` recorded and claimed into `runKey` (a run item with `run` fields, unless null) as a crash left it. */
async function leftRunning(w: World, key: string, runKey: string, run: Partial<RunRecord> | null) {
  const u = toUpload(w.upload(key).version);
  const at = w.clock.now().toISOString();
  await w.ledger.recordUpload(u, at);
  if (run) await w.ledger.createRun(runRecord(runKey, at, run));
  await w.ledger.claimUpload(u.uploadId, runKey, at);
  return u;
}

describe("sweeper: the slot", () => {
  it("a slot held by an unlaunched start with no run is freed only once older than the revocation age (75 s)", async () => {
    const w = makeWorld();
    await w.ledger.takeSlot("ghost", T0);

    w.clock.advance(75_000);
    expect((await sweep(w.deps, w.config)).repairs).toEqual([]);
    expect(w.ledger.slot.holder).toBe("ghost");

    w.clock.advance(1);
    expect((await sweep(w.deps, w.config)).repairs).toEqual(["freed-stale-slot"]);
    expect(w.ledger.slot.holder).toBeNull();
  });

  it("a slot held by a run that has ended is freed at once", async () => {
    const w = makeWorld();
    await w.ledger.createRun(runRecord("ended", T0, { state: "succeeded", endedAt: T0 }));
    await w.ledger.takeSlot("ended", T0);

    const report = await sweep(w.deps, w.config);

    expect(report.repairs).toEqual(["freed-stale-slot"]);
    expect(w.ledger.slot.holder).toBeNull();
    expect(w.metrics.get("SweeperRepairs")).toBe(1);
  });

  it("a start younger than the timeout is not asked about in Glue; nothing repaired, no metric", async () => {
    const w = makeWorld();
    w.glue.startFaults.push({ error: new GlueServiceError("InternalServiceException", 500, "lost"), started: false });
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    let gets = 0;
    w.glue.getRun = async (id) => {
      gets++;
      if (!id) throw new Error("ValidationException: a run id is required");
      return null;
    };

    expect((await sweep(w.deps, w.config)).repairs).toEqual([]);
    expect(gets).toBe(0);
    expect(w.metrics.totals.has("SweeperRepairs")).toBe(false);
  });

  it("a start that never happened is undone with the reason, then started again", async () => {
    const w = makeWorld();
    w.glue.startFaults.push({ error: new GlueServiceError("InternalServiceException", 500, "lost"), started: false });
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    w.clock.advance(TIMEOUT_MS + 1);

    await sweep(w.deps, w.config);

    expect(w.ledger.runs.get(RUN_1)).toMatchObject({
      state: "start_failed",
      error: "the run never started (start lost)",
    });
    expect(w.metrics.get("SweeperRepairs")).toBe(2);
  });
});

describe("sweeper: starting after repairs", () => {
  /** The slot's run R1 ended in Glue without its event; an upload a closed run R0 left running is also there. */
  async function lostEndAndOrphan(w: World) {
    await handleUploadBatch(w.deps, w.config, [w.upload("input/r1.csv").message]);
    await w.writeStats(RUN_1);
    w.glue.finish("jr_000001", "SUCCEEDED");
    return leftRunning(w, "input/orphan.csv", "20260401T090000Z-0000000f", {
      state: "failed",
      endedAt: T0,
    });
  }

  it("the run end starts nothing (nothing pending); the orphan it then requeues is started", async () => {
    const w = makeWorld();
    const orphan = await lostEndAndOrphan(w);

    const report = await sweep(w.deps, w.config);

    expect(report.repairs).toEqual(["recorded-lost-end", "settled-orphaned-upload", "started-pending"]);
    expect(report.next).toMatchObject({ started: true, files: 1 });
    expect(w.ledger.uploads.get(orphan.uploadId)).toMatchObject({ status: "running", attempts: 1 });
  });

  it("the run end already started the next run: the requeued orphan waits for it, no second start", async () => {
    const w = makeWorld();
    await lostEndAndOrphan(w);
    const pending = toUpload(w.upload("input/pending.csv").version);
    await w.ledger.recordUpload(pending, T0);

    const report = await sweep(w.deps, w.config);

    expect(report.repairs).toEqual(["recorded-lost-end", "settled-orphaned-upload"]);
    expect(report.next).toEqual({
      started: true,
      runKey: "20260401T100000Z-00000002",
      glueRunId: "jr_000002",
      files: 1,
    });
    expect(w.ledger.slot.holder).toBe("20260401T100000Z-00000002");
  });
});

describe("sweeper: uploads left running outside the slot's run", () => {
  it("an upload whose object was deleted is failed as deleted, naming the run", async () => {
    const w = makeWorld();
    const u = await leftRunning(w, "input/a.csv", "r0", { state: "failed", endedAt: T0 });
    w.objects.delete(BUCKET, "input/a.csv");

    await sweep(w.deps, w.config);

    expect(w.ledger.uploads.get(u.uploadId)).toMatchObject({
      status: "failed",
      attempts: 0,
      error:
        "the object was deleted before it could be processed (left running: run r0 ended (failed) without settling it)",
    });
    expect(w.metrics.get("FilesFailed")).toBe(1);
  });

  it("every upload of one closed run is settled, not only the last one listed", async () => {
    const w = makeWorld();
    const a = await leftRunning(w, "input/a.csv", "r0", { state: "failed", endedAt: T0 });
    const b = await leftRunning(w, "input/b.csv", "r0", null);

    const report = await sweep(w.deps, w.config);

    expect(report.repairs).toEqual(["settled-orphaned-upload", "settled-orphaned-upload", "started-pending"]);
    expect(report.next).toMatchObject({ started: true, files: 2 });
    for (const u of [a, b]) expect(w.ledger.uploads.get(u.uploadId)).toMatchObject({ status: "running", attempts: 1 });
    expect(w.metrics.totals.has("FilesFailed")).toBe(false);
  });

  it("an upload of a run not in the ledger waits exactly the start timeout", async () => {
    const w = makeWorld();
    const u = await leftRunning(w, "input/a.csv", "r-missing", null);

    w.clock.advance(TIMEOUT_MS);
    expect((await sweep(w.deps, w.config)).repairs).toEqual([]);
    expect(w.ledger.uploads.get(u.uploadId)?.status).toBe("running");

    w.clock.advance(1);
    expect((await sweep(w.deps, w.config)).repairs).toEqual(["settled-orphaned-upload", "started-pending"]);
  });

  it("an open run that lost the slot is asked about in Glue only once it is older than the start timeout", async () => {
    const w = makeWorld();
    const u = await leftRunning(w, "input/a.csv", "detached", { state: "running", glueRunId: "jr_d" });
    await w.ledger.linkGlueRun("jr_d", "detached");
    await w.objects.putJson(
      BUCKET,
      "manifests/detached.json",
      buildManifest({ runKey: "detached", bucket: BUCKET, createdAt: new Date(T0), uploads: [u] }),
    );
    w.glue.runs.set("jr_d", {
      id: "jr_d",
      state: "FAILED",
      arguments: { "--run_key": "detached" },
      errorMessage: "boom",
      startedOn: new Date(T0),
    });

    w.clock.advance(TIMEOUT_MS);
    expect((await sweep(w.deps, w.config)).repairs).toEqual([]);

    w.clock.advance(1);
    expect((await sweep(w.deps, w.config)).repairs).toEqual(["recorded-lost-end"]);
    expect(w.ledger.runs.get("detached")?.state).toBe("failed");
    expect(w.ledger.uploads.get(u.uploadId)).toMatchObject({ status: "running", attempts: 1 });
  });

  it("an open run that lost the slot and never got a Glue run is undone, its upload started again", async () => {
    const w = makeWorld();
    const u = await leftRunning(w, "input/a.csv", "lost-start", { state: "starting" });
    await w.objects.putJson(
      BUCKET,
      "manifests/lost-start.json",
      buildManifest({ runKey: "lost-start", bucket: BUCKET, createdAt: new Date(T0), uploads: [u] }),
    );
    w.clock.advance(TIMEOUT_MS + 1);

    const report = await sweep(w.deps, w.config);

    expect(report.repairs).toEqual(["undid-failed-start", "started-pending"]);
    expect(w.ledger.runs.get("lost-start")).toMatchObject({ state: "start_failed" });
    expect(w.ledger.uploads.get(u.uploadId)).toMatchObject({ status: "running", attempts: 0 });
  });
});
