/**
 * The read-back tests of the idempotent ledger writes (memory.ts, shared with DynamoLedger): after a failed condition
 * a write reports success only when the item is exactly what THIS write makes. Each case changes one field.
 */
import { describe, expect, it } from "vitest";
import {
  MemoryLedger,
  matchesFailedPending,
  matchesPatch,
  matchesRequeued,
  matchesSettlement,
  sameRun,
} from "../../src/ledger/memory.js";
import type { LedgerStore } from "../../src/ledger/ports.js";
import type { UploadRecord } from "../../src/ledger/types.js";
import { runRecord } from "../helpers/records.js";

const NOW = "2026-04-01T10:00:00.000Z";
const base = {
  status: "processed",
  runKey: "r1",
  lastRunKey: "r1",
  output: "s3://b/out",
  error: null,
  attempts: 1,
  retryGroupSize: null,
  updatedAt: NOW,
} as unknown as UploadRecord;
const rec = (patch: Partial<UploadRecord>) => ({ ...base, ...patch }) as UploadRecord;

describe("matchesSettlement", () => {
  const processed = {
    status: "processed",
    output: "s3://b/out",
    rejectedOutput: null,
    rowsRead: 1,
    rowsProcessed: 1,
    rowsRejected: 0,
  } as const;
  const failed = { status: "failed", error: "bad", attempts: 2 } as const;
  const pending = { status: "pending", error: "down", attempts: 1, retryGroupSize: 2 } as const;
  const pendingRec = rec({ status: "pending", runKey: null, error: "down", attempts: 1, retryGroupSize: 2 });
  const failedRec = rec({ status: "failed", error: "bad", attempts: 2 });

  it.each([
    ["processed, as written", rec({}), processed, true],
    ["processed by another run", rec({ runKey: "r2" }), processed, false],
    ["processed with another output", rec({ output: "s3://b/other" }), processed, false],
    ["at another time", rec({ updatedAt: "2026-04-01T10:00:01.000Z" }), processed, false],
    ["in another status", rec({ status: "failed" }), processed, false],
    ["failed, as written", failedRec, failed, true],
    ["failed by another run", { ...failedRec, runKey: "r2" }, failed, false],
    ["failed with another error", { ...failedRec, error: "other" }, failed, false],
    ["failed after other attempts", { ...failedRec, attempts: 3 }, failed, false],
    ["pending, as written", pendingRec, pending, true],
    ["pending but still in a run", { ...pendingRec, runKey: "r1" }, pending, false],
    ["pending, left by another run", { ...pendingRec, lastRunKey: "r2" }, pending, false],
    ["pending with another error", { ...pendingRec, error: "x" }, pending, false],
    ["pending after other attempts", { ...pendingRec, attempts: 2 }, pending, false],
    ["pending in another retry group", { ...pendingRec, retryGroupSize: 1 }, pending, false],
  ] as const)("%s → %s", (_, r, s, want) => {
    expect(matchesSettlement(r as UploadRecord, "r1", s, NOW)).toBe(want);
  });
});

describe("matchesFailedPending and matchesRequeued", () => {
  const failed = rec({ status: "failed", runKey: "r1", error: "superseded", updatedAt: NOW });
  it.each([
    ["as written", failed, true],
    ["still pending", { ...failed, status: "pending" }, false],
    ["by another run", { ...failed, runKey: "r2" }, false],
    ["with another reason", { ...failed, error: "other" }, false],
    ["at another time", { ...failed, updatedAt: "2026-04-01T10:00:01.000Z" }, false],
  ] as const)("failed pending %s → %s", (_, r, want) => {
    expect(matchesFailedPending(r as UploadRecord, "r1", "superseded", NOW)).toBe(want);
  });

  const requeued = rec({ status: "pending", attempts: 0, runKey: null, error: "was failed", updatedAt: NOW });
  it.each([
    ["as written", requeued, true],
    ["not pending", { ...requeued, status: "failed" }, false],
    ["with attempts spent", { ...requeued, attempts: 1 }, false],
    ["in a run", { ...requeued, runKey: "r1" }, false],
    ["a fresh upload (no error)", { ...requeued, error: null }, false],
    ["at another time", { ...requeued, updatedAt: "2026-04-01T10:00:01.000Z" }, false],
  ] as const)("requeued %s → %s", (_, r, want) => {
    expect(matchesRequeued(r as UploadRecord, NOW)).toBe(want);
  });
});

describe("matchesPatch and sameRun", () => {
  const run = runRecord("r1", NOW, { state: "running", glueRunId: "jr_1" });
  it("a patch matches when every field it sets has that value", () => {
    expect(matchesPatch(run, { state: "running", glueRunId: "jr_1" })).toBe(true);
    expect(matchesPatch(run, { state: "running", glueRunId: "jr_2" })).toBe(false);
    expect(matchesPatch(run, { endedAt: null })).toBe(true);
  });
  it("two runs are the same only when each matches the other", () => {
    expect(sameRun(run, { ...run })).toBe(true);
    expect(sameRun(run, { ...run, bytes: 11 })).toBe(false);
    expect(sameRun({ ...run, error: "x" }, run)).toBe(false);
  });
});

describe("MemoryLedger fault injection", () => {
  const calls: [keyof LedgerStore, (l: MemoryLedger) => Promise<unknown>][] = [
    ["getUpload", (l) => l.getUpload("b/k@t")],
    ["settleUpload", (l) => l.settleUpload("b/k@t", "r", { status: "failed", error: "e", attempts: 1 }, NOW)],
    ["failPendingUpload", (l) => l.failPendingUpload("b/k@t", "r", "e", NOW)],
    ["listRunning", (l) => l.listRunning(1, null)],
    ["requeueUpload", (l) => l.requeueUpload("b/k@t", NOW)],
    ["listUploads", (l) => l.listUploads()],
    ["uploadsOfKey", (l) => l.uploadsOfKey("b", "k")],
    ["createRun", (l) => l.createRun(runRecord("r", NOW))],
    ["getRun", (l) => l.getRun("r")],
    ["updateRun", (l) => l.updateRun("r", ["starting"], { state: "running" })],
    ["linkGlueRun", (l) => l.linkGlueRun("jr", "r")],
    ["runKeyOfGlueRun", (l) => l.runKeyOfGlueRun("jr")],
    ["listRuns", (l) => l.listRuns(1)],
    ["releaseSlot", (l) => l.releaseSlot("r")],
    ["requestWakeup", (l) => l.requestWakeup()],
    ["getSlot", (l) => l.getSlot()],
    ["getHealth", (l) => l.getHealth()],
    ["recordRunHealth", (l) => l.recordRunHealth("r", "healthy", NOW)],
  ];
  it.each(calls)("failNext on %s makes that call throw, once", async (method, call) => {
    const l = new MemoryLedger();
    l.failNext = { method, error: new Error(`${method} down`) };
    await expect(call(l)).rejects.toThrow(`${method} down`);
    await expect(call(l)).resolves.not.toThrow();
  });

  it("an unknown upload cannot be settled or requeued", async () => {
    const l = new MemoryLedger();
    expect(await l.settleUpload("b/k@t", "r", { status: "failed", error: "e", attempts: 1 }, NOW)).toBe(false);
    expect(await l.requeueUpload("b/k@t", NOW)).toBe(false);
    expect(await l.uploadsOfKey("b", "k")).toEqual([]);
  });

  it("lists runs newest first, up to a limit; a run cannot be created again with other contents", async () => {
    const l = new MemoryLedger();
    for (const k of ["20260401T090000Z-1", "20260401T110000Z-3", "20260401T100000Z-2"])
      await l.createRun(runRecord(k, NOW));
    expect((await l.listRuns(2)).map((r) => r.runKey)).toEqual(["20260401T110000Z-3", "20260401T100000Z-2"]);
    await expect(l.createRun(runRecord("20260401T090000Z-1", NOW, { bytes: 99 }))).rejects.toThrow(
      "run 20260401T090000Z-1 exists",
    );
  });
});
