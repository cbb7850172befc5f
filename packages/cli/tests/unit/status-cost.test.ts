/**
 * `ingest status`'s Glue cost: each run's workers and list-price cost from the figures Glue reported at its end, and
 * the total under the runs table. Expected dollars worked out by hand ($0.44 per DPU-hour, 1-minute minimum).
 */
import type { GlueUsage, RunRecord } from "@ingest/core";
import { describe, expect, it } from "vitest";
import { dollars, glueCostLine, renderStatus, runsTable, type Snapshot, workers } from "../../src/status.js";

const figures = (u: Partial<GlueUsage> = {}): GlueUsage => ({
  workerType: "G.1X",
  numberOfWorkers: 6,
  executionClass: "STANDARD",
  executionSeconds: 312,
  dpuSeconds: null,
  ...u,
});

const run = (runKey: string, glue: GlueUsage | null | undefined, filesProcessed: number | null) =>
  ({
    runKey,
    state: "succeeded",
    glueRunId: `jr_${runKey}`,
    fileCount: filesProcessed ?? 0,
    filesProcessed,
    filesFailed: 0,
    rowsProcessed: 10,
    rowsRejected: 0,
    createdAt: "2026-12-02T00:00:00.000Z",
    startedAt: "2026-12-02T00:00:00.000Z",
    endedAt: "2026-12-02T00:05:12.000Z",
    error: null,
    ...(glue !== undefined ? { glue } : {}),
  }) as RunRecord;

describe("status: Glue cost per run", () => {
  it("shows each run's workers and its cost at list price; '-' when Glue's figures are missing", () => {
    const text = runsTable([
      run("r1", figures(), 100),
      run("r2", figures({ numberOfWorkers: 2, executionSeconds: 10, executionClass: "FLEX" }), 1),
      run("r3", null, 5),
      run("r4", undefined, 5),
    ]);
    const lines = text.split("\n");
    expect(lines[0]).toMatch(/WORKERS\s+GLUE \$/);
    // 6 × G.1X × 312 s = 1,872 DPU-s = $0.2288
    expect(lines[1]).toMatch(/6 × G\.1X\s+\$0\.2288/);
    // Flex, 2 × G.1X, 10 s billed as 60 s: 120 DPU-s at $0.29 per DPU-h = $0.0097 (0.009666…)
    expect(lines[2]).toMatch(/2 × G\.1X, flex\s+\$0\.0097/);
    expect(lines[3]).toMatch(/^r3 .* -\s+-$/);
    expect(lines[4]).toMatch(/^r4 .* -\s+-$/);
  });

  it("totals the ended runs it can price and says which ended runs it could not, and why", () => {
    // $0.2288 + 2 × G.1X for 10 s billed 60 s at $0.44 ($0.014666…) = $0.243466… over 101 files = $2.41 per 1,000
    const line = glueCostLine([
      run("r1", figures(), 100),
      run("r2", figures({ numberOfWorkers: 2, executionSeconds: 10 }), 1),
      run("r3", null, 5),
      run("r4", figures({ workerType: "R.2X" }), 5),
      // not ended on Glue: owed no cost, not "not counted"
      { ...run("r5", undefined, null), state: "running" } as RunRecord,
      { ...run("r6", undefined, null), state: "start_failed" } as RunRecord,
      { ...run("r7", undefined, null), state: "abandoned" } as RunRecord,
    ]);
    expect(line).toBe(
      "Glue at list price (us-east-1, prices of 2026-11-30): $0.2435 for 2 ended run(s), $2.41 per 1,000 files processed · not counted: 1 without Glue's figures, 1 with no price recorded for their worker type",
    );
    expect(glueCostLine([run("r3", null, 5)])).toBeNull();
    expect(
      glueCostLine([run("r1", figures(), 0), { ...run("r5", undefined, null), state: "running" } as RunRecord]),
    ).toBe("Glue at list price (us-east-1, prices of 2026-11-30): $0.2288 for 1 ended run(s)");
  });

  it("puts the line under the runs table of `ingest status`", () => {
    const snapshot: Snapshot = {
      at: "",
      slot: { holder: null, takenAt: null, wakeup: false, launched: false, launchedAt: null },
      runs: [run("r1", figures(), 100)],
      uploads: [],
      ingestQueue: { waiting: 0, inFlight: 0 },
      dlq: { ingest: 0, recorder: 0 },
    };
    const lines = renderStatus(snapshot, { kind: "twin", stage: "local", bucket: "b" }).split("\n");
    const header = lines.findIndex((l) => l.startsWith("RUN "));
    expect(lines[header + 1]).toMatch(/^r1 /);
    expect(lines[header + 2]).toBe(
      "Glue at list price (us-east-1, prices of 2026-11-30): $0.2288 for 1 ended run(s), $2.29 per 1,000 files processed",
    );
  });

  it("formats workers and dollars plainly", () => {
    expect(workers(null)).toBe("-");
    expect(workers(figures({ numberOfWorkers: null }))).toBe("-");
    expect(workers({ workerType: "G.1X" } as GlueUsage)).toBe("-");
    expect(workers(figures({ workerType: "G.2X", numberOfWorkers: 12 }))).toBe("12 × G.2X");
    expect(dollars(null)).toBe("-");
    expect(dollars(Number.NaN)).toBe("-");
    expect(dollars(0.01466)).toBe("$0.0147");
    expect(dollars(47.944)).toBe("$47.94");
  });
});
