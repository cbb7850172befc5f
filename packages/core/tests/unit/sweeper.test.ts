import { describe, expect, it } from "vitest";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { sweep } from "../../src/runs/sweeper.js";
import { GlueServiceError } from "../../src/testing/fakes.js";
import { makeWorld } from "../helpers/world.js";

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

  it("adopts a run that started although StartJobRun's answer was lost", async () => {
    const w = makeWorld();
    w.glue.startFaults.push({ error: new GlueServiceError("InternalServiceException", 500, "timeout"), started: true });
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
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
