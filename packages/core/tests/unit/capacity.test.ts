import { describe, expect, it } from "vitest";
import { type CapacitySettings, pipelineConfig } from "../../src/config/pipeline.js";
import { CapacityError, runCapacity } from "../../src/runs/capacity.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { makeWorld } from "../helpers/world.js";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const prod = pipelineConfig("prod").runs.capacity;

/** A small table of its own, so the boundaries below do not move when the config's numbers are tuned. */
const table: CapacitySettings = {
  tiers: [
    { maxFiles: 10, maxBytes: 100, workerType: "G.1X", numberOfWorkers: 2, timeoutMinutes: 10 },
    { maxFiles: 100, maxBytes: 1_000, workerType: "G.1X", numberOfWorkers: 5, timeoutMinutes: 20 },
    { maxFiles: 1_000, maxBytes: 10_000, workerType: "G.2X", numberOfWorkers: 12, timeoutMinutes: 40 },
  ],
  maxWorkers: 8,
  executionClass: "STANDARD",
};

describe("capacity per run", () => {
  it.each([
    [1, 0, "G.1X", 2, 10],
    [10, 100, "G.1X", 2, 10], // both limits are inclusive
    [11, 100, "G.1X", 5, 20], // one file over
    [10, 101, "G.1X", 5, 20], // one byte over
    [100, 1_000, "G.1X", 5, 20],
    [101, 1, "G.2X", 8, 40], // tier says 12, the cap says 8
    [5_000, 1, "G.2X", 8, 40], // past every tier: the last one (capped)
    [1, 50_000, "G.2X", 8, 40],
  ])("%i files / %i bytes → %s × %i, %i min", (files, bytes, workerType, numberOfWorkers, timeoutMinutes) => {
    expect(runCapacity({ files, bytes }, table)).toEqual({
      workerType,
      numberOfWorkers,
      timeoutMinutes,
      executionClass: "STANDARD",
    });
  });

  it("never asks for fewer than 2 workers (a driver and one executor), even under a smaller cap", () => {
    expect(runCapacity({ files: 1, bytes: 1 }, { ...table, maxWorkers: 1 }).numberOfWorkers).toBe(2);
  });

  it("passes the stage's execution class through (Flex)", () => {
    expect(runCapacity({ files: 1, bytes: 1 }, { ...table, executionClass: "FLEX" }).executionClass).toBe("FLEX");
  });

  it.each([
    [{ files: 0, bytes: 0 }, /at least one file, got files=0/],
    [{ files: 1.5, bytes: 0 }, /files=1.5/],
    [{ files: 1, bytes: -1 }, /bytes must be ≥ 0, got bytes=-1/],
    [{ files: 1, bytes: Number.NaN }, /bytes=NaN/],
  ])("refuses a run size that cannot be a manifest (%o)", (size, message) => {
    expect(() => runCapacity(size, table)).toThrow(CapacityError);
    expect(() => runCapacity(size, table)).toThrow(message);
  });

  it("refuses an empty table", () => {
    expect(() => runCapacity({ files: 1, bytes: 1 }, { ...table, tiers: [] })).toThrow(/has no tier/);
  });

  it("pins prod's table: one small file gets 2 workers, a steady stream's run 3, a 10,000-file burst 12", () => {
    expect(runCapacity({ files: 1, bytes: 2_000 }, prod)).toMatchObject({ numberOfWorkers: 2, timeoutMinutes: 30 });
    expect(runCapacity({ files: 50, bytes: 256 * MiB }, prod)).toMatchObject({ numberOfWorkers: 2 });
    expect(runCapacity({ files: 50, bytes: 256 * MiB + 1 }, prod)).toMatchObject({ numberOfWorkers: 3 });
    expect(runCapacity({ files: 51, bytes: 1 }, prod)).toMatchObject({ numberOfWorkers: 3, timeoutMinutes: 60 });
    expect(runCapacity({ files: 2_500, bytes: 10 * GiB }, prod)).toMatchObject({ numberOfWorkers: 3 });
    expect(runCapacity({ files: 2_501, bytes: 1 }, prod)).toMatchObject({ numberOfWorkers: 12, timeoutMinutes: 120 });
    expect(runCapacity({ files: 1, bytes: 10 * GiB + 1 }, prod)).toMatchObject({ numberOfWorkers: 12 });
    expect(runCapacity({ files: 10_000, bytes: 1 }, prod)).toMatchObject({ numberOfWorkers: 12, timeoutMinutes: 120 });
    expect(runCapacity({ files: 1, bytes: 40 * GiB }, prod)).toMatchObject({
      numberOfWorkers: 12,
      timeoutMinutes: 120,
    });
  });

  it("pins prod's table as written", () => {
    expect(prod).toEqual({
      tiers: [
        { maxFiles: 50, maxBytes: 256 * MiB, workerType: "G.1X", numberOfWorkers: 2, timeoutMinutes: 30 },
        { maxFiles: 2_500, maxBytes: 10 * GiB, workerType: "G.1X", numberOfWorkers: 3, timeoutMinutes: 60 },
        { maxFiles: 10_000, maxBytes: 50 * GiB, workerType: "G.1X", numberOfWorkers: 12, timeoutMinutes: 120 },
      ],
      maxWorkers: 16,
      executionClass: "STANDARD",
    });
  });

  it("caps every other stage at 2 workers", () => {
    const dev = pipelineConfig("dev").runs.capacity;
    expect(runCapacity({ files: 10_000, bytes: 40 * GiB }, dev)).toMatchObject({
      workerType: "G.1X",
      numberOfWorkers: 2,
      timeoutMinutes: 120,
    });
  });
});

describe("run start asks Glue for the run's capacity", () => {
  it("sends the capacity chosen from the claimed uploads (count and bytes) to StartJobRun", async () => {
    const w = makeWorld();
    // 60 uploads: past the test stage's first tier (50 files), so the choice is not the default one
    const messages = Array.from({ length: 60 }, (_, i) => w.upload(`input/f${i}.csv`).message);

    await handleUploadBatch(w.deps, w.config, messages);

    const [run] = [...w.glue.runs.keys()];
    expect(w.glue.capacities.get(run ?? "")).toEqual({
      workerType: "G.1X",
      numberOfWorkers: 2, // test stage: tier 2 says 3, the stage's cap says 2
      timeoutMinutes: 60,
      executionClass: "STANDARD",
    });
  });
});
