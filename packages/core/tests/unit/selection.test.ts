/**
 * Which pending uploads go into the next run (selection.ts), the run key's shape (keys.ts) and the error a bad run
 * size raises (capacity.ts). Literal expectations.
 */
import { describe, expect, it } from "vitest";
import type { UploadRecord } from "../../src/ledger/types.js";
import { CapacityError, runCapacity } from "../../src/runs/capacity.js";
import { newRunKey } from "../../src/runs/keys.js";
import { selectRunUploads } from "../../src/runs/selection.js";

function pending(id: string, size: number, retryGroupSize: number | null = null): UploadRecord {
  return { uploadId: id, size, retryGroupSize } as UploadRecord;
}
const ids = (us: UploadRecord[]) => us.map((u) => u.uploadId);

describe("selectRunUploads", () => {
  const caps = { maxFilesPerRun: 10, maxBytesPerRun: 10 };

  it("nothing pending: nothing chosen", () => {
    expect(selectRunUploads([], caps)).toEqual([]);
  });

  it("fresh uploads, oldest first, up to the byte cap (a run may fill it exactly)", () => {
    expect(ids(selectRunUploads([pending("a", 4), pending("b", 6), pending("c", 1)], caps))).toEqual(["a", "b"]);
    expect(ids(selectRunUploads([pending("a", 4), pending("b", 7), pending("c", 1)], caps))).toEqual(["a"]);
  });

  it("a first file over the byte cap runs alone, never not at all", () => {
    expect(ids(selectRunUploads([pending("big", 11), pending("b", 1)], caps))).toEqual(["big"]);
  });

  it("up to the file cap", () => {
    const many = Array.from({ length: 5 }, (_, i) => pending(`f${i}`, 1));
    expect(ids(selectRunUploads(many, { maxFilesPerRun: 3, maxBytesPerRun: 100 }))).toEqual(["f0", "f1", "f2"]);
  });

  it("retries of a failed run go apart from fresh uploads, at most the head's group size", () => {
    const queue = [pending("r1", 1, 2), pending("fresh", 1), pending("r2", 1, 2), pending("r3", 1, 2)];
    expect(ids(selectRunUploads(queue, caps))).toEqual(["r1", "r2"]);
    expect(ids(selectRunUploads([pending("fresh", 1), pending("r1", 1, 2), pending("f2", 1)], caps))).toEqual([
      "fresh",
      "f2",
    ]);
  });
});

describe("newRunKey", () => {
  it("is the start time to the second, then 8 random hex digits; two keys of one second differ", () => {
    const at = new Date("2026-04-01T10:00:00.123Z");
    const a = newRunKey(at);
    expect(a).toMatch(/^20260401T100000Z-[0-9a-f]{8}$/);
    expect(newRunKey(at)).not.toBe(a);
  });
});

describe("CapacityError", () => {
  it("names itself", () => {
    const table = { tiers: [], maxWorkers: 10, executionClass: "STANDARD" } as never;
    expect(() => runCapacity({ files: 0, bytes: 0 }, table)).toThrow(
      expect.objectContaining({
        name: "CapacityError",
        message: "capacity: a run needs at least one file, got files=0",
      }),
    );
    expect(() => runCapacity({ files: 1, bytes: 0 }, table)).toThrow(CapacityError);
  });
});
