import { describe, expect, it } from "vitest";
import type { RunRecord } from "../../src/ledger/types.js";
import { buildManifest } from "../../src/manifest/format.js";
import { recordRunEnd } from "../../src/runs/completion.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { sweep } from "../../src/runs/sweeper.js";
import { GlueServiceError } from "../../src/testing/fakes.js";
import { toUpload } from "../../src/upload/identity.js";
import { runRecord } from "../helpers/records.js";
import { BUCKET, makeWorld } from "../helpers/world.js";

describe("sweeper", () => {
  it("records a run whose state-change event was lost", async () => {
    const w = makeWorld();
    const r = await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    const run = r.run?.started ? r.run : null;
    await w.writeStats(run?.runKey ?? "");
    w.glue.finish(run?.glueRunId ?? "", "SUCCEEDED"); // ...and no event is delivered

    const report = await sweep(w.deps, w.config);

    expect(report.repairs).toContain("recorded-lost-end");
    expect([...w.ledger.uploads.values()][0]?.status).toBe("processed");
    expect(w.ledger.slot.holder).toBeNull();
  });

  it("adopts a run that started although StartJobRun's answer was lost and Glue did not list it at once", async () => {
    const w = makeWorld();
    w.glue.startFaults.push({ error: new GlueServiceError("InternalServiceException", 500, "timeout"), started: true });
    const recent = w.glue.recentRuns.bind(w.glue);
    w.glue.recentRuns = async () => [];
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    w.glue.recentRuns = recent;
    w.clock.advance((w.config.runs.startTimeoutSeconds + 1) * 1000);

    const report = await sweep(w.deps, w.config);

    expect(report.repairs).toEqual(["adopted-lost-start"]);
    expect([...w.ledger.runs.values()][0]?.state).toBe("running");
    expect(w.glue.runs.size).toBe(1);
  });

  it("undoes a start that never happened and starts the uploads again", async () => {
    const w = makeWorld();
    w.glue.startFaults.push({
      error: new GlueServiceError("InternalServiceException", 500, "timeout"),
      started: false,
    });
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    w.clock.advance((w.config.runs.startTimeoutSeconds + 1) * 1000);

    const report = await sweep(w.deps, w.config);

    expect(report.repairs).toEqual(["undid-failed-start", "started-pending"]);
    expect(w.glue.runs.size).toBe(1);
    expect([...w.ledger.uploads.values()][0]?.status).toBe("running");
  });

  it("does not touch a start younger than the start timeout", async () => {
    const w = makeWorld();
    w.glue.startFaults.push({
      error: new GlueServiceError("InternalServiceException", 500, "timeout"),
      started: false,
    });
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    const report = await sweep(w.deps, w.config);
    expect(report.repairs).toEqual([]);
    expect(w.ledger.slot.holder).not.toBeNull();
  });

  it("frees a slot held by no run (crash between taking it and recording the run)", async () => {
    const w = makeWorld();
    await w.ledger.takeSlot("ghost", w.clock.now().toISOString());
    w.clock.advance((w.config.runs.startTimeoutSeconds + 1) * 1000);
    expect((await sweep(w.deps, w.config)).repairs).toEqual(["freed-stale-slot"]);
    expect(w.ledger.slot.holder).toBeNull();
  });

  it("starts pending uploads nobody started (e.g. the wake-up was lost)", async () => {
    const w = makeWorld();
    const { version } = w.upload("input/a.csv");
    const { toUpload } = await import("../../src/upload/identity.js");
    await w.ledger.recordUpload(toUpload(version), w.clock.now().toISOString());

    const report = await sweep(w.deps, w.config);

    expect(report.repairs).toEqual(["started-pending"]);
    expect(w.glue.runs.size).toBe(1);
  });
});

describe("sweeper: uploads left running outside the slot's run", () => {
  /** A one-file run that has ended (`state`) at its creation time. */
  function endedRun(runKey: string, createdAt: string, state: RunRecord["state"] = "succeeded"): RunRecord {
    return runRecord(runKey, createdAt, { state, bytes: 1, endedAt: createdAt });
  }

  it("fails as superseded an older version a crash left claimed in a run that has since ended", async () => {
    const w = makeWorld();
    const { busy, v1 } = await w.twoVersionsBehindABusyRun();
    const oldId = toUpload(v1.version).uploadId;
    // The old two-write supersede, cut by a crash: the older version is claimed into the run, the settle never comes.
    w.ledger.failPendingUpload = async (uploadId, runKey, _error, now) =>
      w.ledger.claimUpload(uploadId, runKey ?? "", now);
    await w.writeStats(busy.runKey);
    w.glue.finish(busy.glueRunId, "SUCCEEDED");
    const r = await recordRunEnd(w.deps, w.config, { glueRunId: busy.glueRunId, state: "SUCCEEDED", message: null });
    const second = r.next?.started ? r.next : null;
    await w.writeStats(second?.runKey ?? "");
    w.glue.finish(second?.glueRunId ?? "", "SUCCEEDED");
    await recordRunEnd(w.deps, w.config, { glueRunId: second?.glueRunId ?? "", state: "SUCCEEDED", message: null });
    expect(w.ledger.runs.get(second?.runKey ?? "")?.state).toBe("succeeded");
    expect(w.ledger.uploads.get(oldId)).toMatchObject({ status: "running", runKey: second?.runKey });

    const report = await sweep(w.deps, w.config);

    expect(report.repairs).toEqual(["settled-orphaned-upload"]);
    const old = w.ledger.uploads.get(oldId);
    expect(old?.status).toBe("failed");
    expect(old?.error).toMatch(/^superseded: input\/a.csv was uploaded again/);
    expect(old?.error).toContain(`run ${second?.runKey} ended (succeeded)`);
    expect(w.metrics.get("FilesFailed")).toBe(1);
    expect((await sweep(w.deps, w.config)).repairs).toEqual([]);
  });

  it("returns to pending, with one more attempt, an upload an ended run left running, then fails it after maxAttempts", async () => {
    const w = makeWorld({ maxAttempts: 2 });
    const u = toUpload(w.upload("input/a.csv").version);
    const at = w.clock.now().toISOString();
    await w.ledger.recordUpload(u, at);
    await w.ledger.createRun(endedRun("20260401T090000Z-00000001", at, "start_failed"));
    await w.ledger.claimUpload(u.uploadId, "20260401T090000Z-00000001", at);

    const first = await sweep(w.deps, w.config);

    expect(first.repairs).toEqual(["settled-orphaned-upload", "started-pending"]);
    const again = w.ledger.uploads.get(u.uploadId);
    expect(again).toMatchObject({ status: "running", attempts: 1 });
    expect(again?.error).toBe("left running: run 20260401T090000Z-00000001 ended (start_failed) without settling it");
    expect(again?.runKey).toBe(first.next?.started ? first.next.runKey : "none");

    // The same thing again (the run it went to ends without settling it): the attempt budget is spent.
    const second = again?.runKey ?? "";
    await w.ledger.updateRun(second, ["running"], { state: "failed", endedAt: at });
    await w.ledger.releaseSlot(second);
    const last = await sweep(w.deps, w.config);
    expect(last.repairs).toEqual(["settled-orphaned-upload"]);
    expect(w.ledger.uploads.get(u.uploadId)).toMatchObject({
      status: "failed",
      attempts: 2,
      error: `left running: run ${second} ended (failed) without settling it (after 2 attempts)`,
    });
  });

  it("settles an upload whose run is not in the ledger only after the start timeout", async () => {
    const w = makeWorld();
    const u = toUpload(w.upload("input/a.csv").version);
    await w.ledger.recordUpload(u, w.clock.now().toISOString());
    await w.ledger.claimUpload(u.uploadId, "20260401T090000Z-0000dead", w.clock.now().toISOString());

    expect((await sweep(w.deps, w.config)).repairs).toEqual([]);
    expect(w.ledger.uploads.get(u.uploadId)?.status).toBe("running");

    w.clock.advance((w.config.runs.startTimeoutSeconds + 1) * 1000);
    expect((await sweep(w.deps, w.config)).repairs).toEqual(["settled-orphaned-upload", "started-pending"]);
    expect(w.ledger.uploads.get(u.uploadId)?.error).toBe(
      "left running: run 20260401T090000Z-0000dead is not in the ledger",
    );
  });

  it("leaves alone the slot's run and a run Glue is still running; closes the latter once Glue has ended it", async () => {
    const w = makeWorld();
    const r = await handleUploadBatch(w.deps, w.config, [w.upload("input/slot.csv").message]);
    expect(r.run?.started).toBe(true);
    // A run that lost the slot (its start was slower than the start timeout) but did start in Glue.
    const detachedKey = "20260401T095000Z-00000001";
    const detached = toUpload(w.upload("input/detached.csv").version);
    const at = w.clock.now();
    await w.ledger.recordUpload(detached, at.toISOString());
    await w.ledger.createRun({
      ...runRecord(detachedKey, at.toISOString(), { state: "running" }),
      glueRunId: "jr_d",
      endedAt: null,
    });
    await w.objects.putJson(
      BUCKET,
      `manifests/${detachedKey}.json`,
      buildManifest({ runKey: detachedKey, bucket: BUCKET, createdAt: at, uploads: [detached] }),
    );
    await w.ledger.claimUpload(detached.uploadId, detachedKey, at.toISOString());
    await w.ledger.linkGlueRun("jr_d", detachedKey);
    const glueRun = { id: "jr_d", arguments: { "--run_key": detachedKey }, errorMessage: null, startedOn: at };
    w.glue.runs.set("jr_d", { ...glueRun, state: "RUNNING" });
    w.clock.advance((w.config.runs.startTimeoutSeconds + 1) * 1000);

    expect((await sweep(w.deps, w.config)).repairs).toEqual([]);
    expect([...w.ledger.uploads.values()].map((u) => u.status)).toEqual(["running", "running"]);

    w.glue.runs.set("jr_d", { ...glueRun, state: "FAILED", errorMessage: "boom" });
    expect((await sweep(w.deps, w.config)).repairs).toEqual(["recorded-lost-end"]);
    expect(w.ledger.runs.get(detachedKey)?.state).toBe("failed");
    expect(w.ledger.uploads.get(detached.uploadId)).toMatchObject({ status: "pending", attempts: 1 });
    expect(w.ledger.slot.holder).toBe(r.run?.started ? r.run.runKey : "none");
  });
});
