import { describe, expect, it } from "vitest";
import {
  type CapacitySettings,
  type CapacityTier,
  pipelineConfig,
  type RunSettings,
} from "../../src/config/pipeline.js";
import { CapacityError, runCapacity } from "../../src/runs/capacity.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { startNextRun } from "../../src/runs/start.js";
import { toUpload } from "../../src/upload/identity.js";
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

  it("a run that leaves uploads waiting behind it gets its tier's backlog workers; one that takes all, its workers", () => {
    const queued: CapacitySettings = {
      ...table,
      tiers: [
        { maxFiles: 10, maxBytes: 100, workerType: "G.1X", numberOfWorkers: 2, timeoutMinutes: 10 },
        {
          maxFiles: 1_000,
          maxBytes: 10_000,
          workerType: "G.1X",
          numberOfWorkers: 3,
          backlogWorkers: 7,
          timeoutMinutes: 40,
        },
      ],
    };
    expect(runCapacity({ files: 500, bytes: 1, backlog: true }, queued).numberOfWorkers).toBe(7);
    expect(runCapacity({ files: 500, bytes: 1, backlog: false }, queued).numberOfWorkers).toBe(3);
    expect(runCapacity({ files: 500, bytes: 1 }, queued).numberOfWorkers).toBe(3); // absent: nothing waits
    // a tier without backlog workers asks the same either way
    expect(runCapacity({ files: 5, bytes: 1, backlog: true }, queued).numberOfWorkers).toBe(2);
    // the stage's cap and Glue's minimum still apply
    expect(runCapacity({ files: 500, bytes: 1, backlog: true }, { ...queued, maxWorkers: 5 }).numberOfWorkers).toBe(5);
    const tiny = { ...queued, tiers: [{ ...(queued.tiers[1] as CapacityTier), backlogWorkers: 1 }] };
    expect(runCapacity({ files: 500, bytes: 1, backlog: true }, tiny).numberOfWorkers).toBe(2);
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

  it("pins prod's table: up to 1,000 files 2 workers, a steady stream's bigger run 3, a 10,000-file run 6, or 12 with uploads waiting", () => {
    expect(runCapacity({ files: 1, bytes: 2_000 }, prod)).toMatchObject({ numberOfWorkers: 2, timeoutMinutes: 60 });
    expect(runCapacity({ files: 1_000, bytes: 256 * MiB }, prod)).toMatchObject({ numberOfWorkers: 2 });
    expect(runCapacity({ files: 1_000, bytes: 256 * MiB + 1 }, prod)).toMatchObject({ numberOfWorkers: 3 });
    expect(runCapacity({ files: 1_001, bytes: 1 }, prod)).toMatchObject({ numberOfWorkers: 3, timeoutMinutes: 60 });
    expect(runCapacity({ files: 2_500, bytes: 10 * GiB }, prod)).toMatchObject({ numberOfWorkers: 3 });
    expect(runCapacity({ files: 2_501, bytes: 1 }, prod)).toMatchObject({ numberOfWorkers: 6, timeoutMinutes: 120 });
    expect(runCapacity({ files: 1, bytes: 10 * GiB + 1 }, prod)).toMatchObject({ numberOfWorkers: 6 });
    expect(runCapacity({ files: 10_000, bytes: 1 }, prod)).toMatchObject({ numberOfWorkers: 6, timeoutMinutes: 120 });
    expect(runCapacity({ files: 10_000, bytes: 1, backlog: true }, prod)).toMatchObject({
      numberOfWorkers: 12,
      timeoutMinutes: 120,
    });
    // the smaller tiers ask the same with uploads waiting (no backlogWorkers): a byte-cut run of 500 files
    expect(runCapacity({ files: 500, bytes: 1, backlog: true }, prod)).toMatchObject({ numberOfWorkers: 2 });
    expect(runCapacity({ files: 1, bytes: 40 * GiB }, prod)).toMatchObject({
      numberOfWorkers: 6,
      timeoutMinutes: 120,
    });
  });

  it("pins prod's table as written", () => {
    expect(prod).toEqual({
      tiers: [
        { maxFiles: 1_000, maxBytes: 256 * MiB, workerType: "G.1X", numberOfWorkers: 2, timeoutMinutes: 60 },
        { maxFiles: 2_500, maxBytes: 10 * GiB, workerType: "G.1X", numberOfWorkers: 3, timeoutMinutes: 60 },
        {
          maxFiles: 10_000,
          maxBytes: 50 * GiB,
          workerType: "G.1X",
          numberOfWorkers: 6,
          backlogWorkers: 12,
          timeoutMinutes: 120,
        },
      ],
      maxWorkers: 12,
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
    // 2,501 uploads: past the first two tiers (1,000 and 2,500 files, 60 min), so the choice is not the default one
    const messages = Array.from({ length: 2_501 }, (_, i) => w.upload(`input/f${i}.csv`).message);

    await handleUploadBatch(w.deps, w.config, messages);

    const [run] = [...w.glue.runs.keys()];
    expect(w.glue.capacities.get(run ?? "")).toEqual({
      workerType: "G.1X",
      numberOfWorkers: 2, // test stage: tier 3 says 6, the stage's cap says 2
      timeoutMinutes: 120,
      executionClass: "STANDARD",
    });
  });
});

describe("a run's capacity knows whether uploads wait behind it", () => {
  /** Every tier: 2 workers when the run takes everything pending, 9 when the caps leave uploads waiting. */
  const queued: CapacitySettings = {
    tiers: [
      {
        maxFiles: 1_000,
        maxBytes: 10 * GiB,
        workerType: "G.1X",
        numberOfWorkers: 2,
        backlogWorkers: 9,
        timeoutMinutes: 30,
      },
    ],
    maxWorkers: 16,
    executionClass: "STANDARD",
  };

  async function record(w: ReturnType<typeof makeWorld>, n: number) {
    for (let i = 0; i < n; i++) {
      const { version } = w.upload(`input/q${i}.csv`);
      await w.ledger.recordUpload(toUpload(version), w.clock.now().toISOString());
    }
  }

  const workersOfRuns = (w: ReturnType<typeof makeWorld>) =>
    [...w.glue.runs.keys()].map((k) => w.glue.capacities.get(k)?.numberOfWorkers);

  it.each([
    // pending, files per run → files in the first run, its workers
    [6, 5, 5, 9], // the file cap leaves 1 waiting
    [5, 5, 5, 2], // exactly the cap and nothing behind: the read one past the cap says so
    [4, 5, 4, 2],
  ])("%i pending, %i files per run → a run of %i on %i workers", async (pending, cap, files, workers) => {
    const w = makeWorld();
    await record(w, pending);
    const runs: RunSettings = { ...w.config.runs, maxFilesPerRun: cap, capacity: queued };
    expect(await startNextRun(w.deps, runs)).toMatchObject({ started: true, files });
    expect(workersOfRuns(w)).toEqual([workers]);
  });

  it("a selection the byte cap cut leaves uploads waiting: backlog workers", async () => {
    const w = makeWorld();
    await record(w, 2);
    const runs: RunSettings = { ...w.config.runs, maxBytesPerRun: 1, capacity: queued };
    expect(await startNextRun(w.deps, runs)).toMatchObject({ started: true, files: 1 });
    expect(workersOfRuns(w)).toEqual([9]);
  });

  it.each([
    [3, 9], // a failed run's retry group (2) taken alone: the fresh upload waits behind it
    [2, 2], // the retry group is everything pending
  ])("a retry group of 2 with %i pending → %i workers", async (pending, workers) => {
    const w = makeWorld();
    await record(w, pending);
    // the two oldest come back from a failed run of 4: retried in groups of at most 2 (bisection)
    for (const u of [...w.ledger.uploads.values()].slice(0, 2)) {
      const earlier = new Date(Date.parse(u.receivedAt) - 60_000).toISOString(); // oldest first: the head retries
      w.ledger.uploads.set(u.uploadId, { ...u, receivedAt: earlier, attempts: 1, retryGroupSize: 2 });
    }
    const runs: RunSettings = { ...w.config.runs, capacity: queued };
    expect(await startNextRun(w.deps, runs)).toMatchObject({ started: true, files: 2 });
    expect(workersOfRuns(w)).toEqual([workers]);
  });

  it("through the batch handler: a batch past the cap starts a run on backlog workers", async () => {
    const w = makeWorld({ maxFilesPerRun: 5 });
    const config = { ...w.config, runs: { ...w.config.runs, capacity: queued } };
    const messages = Array.from({ length: 7 }, (_, i) => w.upload(`input/h${i}.csv`).message);
    expect((await handleUploadBatch(w.deps, config, messages)).run).toMatchObject({ started: true, files: 5 });
    expect(workersOfRuns(w)).toEqual([9]);
  });
});
