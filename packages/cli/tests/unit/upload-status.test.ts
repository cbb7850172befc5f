import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RunRecord, UploadRecord } from "@ingest/core";
import { describe, expect, it } from "vitest";
import { duration, table } from "../../src/output.js";
import { busyReason, filterSnapshot, type Snapshot } from "../../src/status.js";
import { ignoredByPipeline, planUploads } from "../../src/upload.js";

describe("planUploads", () => {
  it("puts files under input/ by name and a folder's files by their path inside it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "up-"));
    mkdirSync(join(dir, "f", "sub"), { recursive: true });
    writeFileSync(join(dir, "one.csv"), "a\n");
    writeFileSync(join(dir, "f", "two.csv"), "a\n");
    writeFileSync(join(dir, "f", "sub", "three.txt"), "a\n");
    writeFileSync(join(dir, "f", ".hidden.csv"), "a\n");
    const planned = await planUploads([join(dir, "one.csv"), join(dir, "f")], "batch1");
    expect(planned.map((p) => p.key)).toEqual([
      "input/batch1/one.csv",
      "input/batch1/sub/three.txt",
      "input/batch1/two.csv",
    ]);
    expect(planned.filter(ignoredByPipeline).map((p) => p.key)).toEqual(["input/batch1/sub/three.txt"]);
  });

  it("names a missing path in one line", async () => {
    await expect(planUploads(["/nonexistent/x.csv"])).rejects.toThrow("/nonexistent/x.csv: no such file or folder");
  });
});

const upload = (key: string, status: UploadRecord["status"], runKey: string | null) =>
  ({ key, status, runKey, versionTag: "t" }) as UploadRecord;
const run = (runKey: string) => ({ runKey, glueRunId: `jr_${runKey}` }) as RunRecord;
const snap = (over: Partial<Snapshot> = {}): Snapshot => ({
  at: "",
  slot: { holder: null, takenAt: null, wakeup: false, launched: false, launchedAt: null },
  runs: [run("r1"), run("r2")],
  uploads: [upload("input/a.csv", "processed", "r1"), upload("input/b.csv", "processed", "r2")],
  ingestQueue: { waiting: 0, inFlight: 0 },
  dlq: { ingest: 0, recorder: 0 },
  ...over,
});

describe("status", () => {
  it("filters by file (key or name under input/) and by run (run key or Glue id)", () => {
    expect(filterSnapshot(snap(), { file: "a.csv" }).runs.map((r) => r.runKey)).toEqual(["r1"]);
    expect(filterSnapshot(snap(), { file: "input/b.csv" }).uploads.map((u) => u.key)).toEqual(["input/b.csv"]);
    expect(filterSnapshot(snap(), { run: "jr_r2" }).uploads.map((u) => u.key)).toEqual(["input/b.csv"]);
  });

  it("is busy while events are queued, the slot is held or uploads are unsettled", () => {
    expect(busyReason(snap())).toBeNull();
    expect(busyReason(snap({ ingestQueue: { waiting: 2, inFlight: 1 } }))).toBe("3 event(s) queued");
    expect(
      busyReason(snap({ slot: { holder: "r3", takenAt: "", wakeup: false, launched: false, launchedAt: null } })),
    ).toBe("run r3 active");
    expect(busyReason(snap({ uploads: [upload("input/c.csv", "pending", null)] }))).toBe("1 pending");
  });

  it("renders aligned tables and short durations", () => {
    const t = table(
      [
        { a: "x", n: 1 },
        { a: "longer", n: 22 },
      ],
      [
        { header: "A", value: (r) => r.a },
        { header: "N", value: (r) => String(r.n), align: "right" },
      ],
    );
    expect(t.split("\n")).toEqual(["A        N", "x        1", "longer  22"]);
    expect(duration(1500)).toBe("1.5s");
    expect(duration(125_000)).toBe("2m05s");
    expect(duration(null)).toBe("-");
  });
});
