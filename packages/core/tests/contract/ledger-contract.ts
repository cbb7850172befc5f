/**
 * The ledger contract: what intake, start, completion and the sweeper rely on. Runs against MemoryLedger (unit) and
 * DynamoLedger on the emulator (integration), so the in-memory ledger cannot drift from the real one.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { LedgerStore } from "../../src/ledger/ports.js";
import type { RunRecord } from "../../src/ledger/types.js";
import { toUpload, type Upload } from "../../src/upload/identity.js";
import { runRecord } from "../helpers/records.js";

const NOW = "2026-04-01T10:00:00.000Z";

function upload(key: string, lastModified = "2026-04-01T09:59:00Z", etag = "e1") {
  return toUpload({ bucket: "data-bucket", key, versionId: null, etag, lastModified, size: 10 });
}

function run(runKey: string): RunRecord {
  return runRecord(runKey, NOW);
}

export function ledgerContract(name: string, makeLedger: () => Promise<LedgerStore>) {
  describe(`ledger contract: ${name}`, () => {
    let ledger: LedgerStore;
    beforeEach(async () => {
      ledger = await makeLedger();
    });

    it("records an upload once; a second record returns the existing item", async () => {
      const u = upload("input/a b é.csv");
      const first = await ledger.recordUpload(u, NOW);
      const second = await ledger.recordUpload(u, "2026-04-01T11:00:00.000Z");
      expect(first.created).toBe(true);
      expect(second.created).toBe(false);
      expect(second.record.receivedAt).toBe(NOW);
      expect(second.record.status).toBe("pending");
    });

    it("records a failed upload with its reason, and does not list it as pending", async () => {
      await ledger.recordUpload(upload("input/gone.csv"), NOW, "deleted");
      expect((await ledger.getUpload(upload("input/gone.csv").uploadId))?.error).toBe("deleted");
      expect(await ledger.listPending(10)).toEqual([]);
    });

    it("lists pending uploads oldest first, up to a limit", async () => {
      await ledger.recordUpload(upload("input/b.csv"), "2026-04-01T10:00:02.000Z");
      await ledger.recordUpload(upload("input/a.csv"), "2026-04-01T10:00:01.000Z");
      await ledger.recordUpload(upload("input/c.csv"), "2026-04-01T10:00:03.000Z");
      expect((await ledger.listPending(2)).map((u) => u.key)).toEqual(["input/a.csv", "input/b.csv"]);
    });

    it("claims a pending upload once, and settles it only from its own run", async () => {
      const u = upload("input/a.csv");
      await ledger.recordUpload(u, NOW);
      expect(await ledger.claimUpload(u.uploadId, "r1", NOW)).toBe(true);
      expect(await ledger.claimUpload(u.uploadId, "r2", NOW)).toBe(false);
      expect(await ledger.listPending(10)).toEqual([]);
      const processed = {
        status: "processed",
        output: "s3://x/",
        rejectedOutput: null,
        rowsRead: 3,
        rowsProcessed: 3,
        rowsRejected: 0,
      } as const;
      expect(await ledger.settleUpload(u.uploadId, "r2", processed, NOW)).toBe(false);
      expect(await ledger.settleUpload(u.uploadId, "r1", processed, NOW)).toBe(true);
      // settled already: another settlement, or the same one later, is refused
      expect(await ledger.settleUpload(u.uploadId, "r1", { ...processed, output: "s3://y/" }, NOW)).toBe(false);
      expect(await ledger.settleUpload(u.uploadId, "r1", processed, "2026-04-01T10:00:09.000Z")).toBe(false);
      expect(await ledger.getUpload(u.uploadId)).toMatchObject({
        status: "processed",
        output: "s3://x/",
        runs: 1,
        rowsRead: 3,
      });
    });

    it("puts a settled-back upload in the pending list again with its retry group", async () => {
      const u = upload("input/a.csv");
      await ledger.recordUpload(u, NOW);
      await ledger.claimUpload(u.uploadId, "r1", NOW);
      await ledger.settleUpload(
        u.uploadId,
        "r1",
        { status: "pending", error: "boom", attempts: 1, retryGroupSize: 1 },
        NOW,
      );
      const [p] = await ledger.listPending(10);
      expect(p).toMatchObject({
        uploadId: u.uploadId,
        status: "pending",
        attempts: 1,
        retryGroupSize: 1,
        runKey: null,
      });
    });

    it("settles back to pending from the record its caller read, and from the table when that copy is stale", async () => {
      const back = { status: "pending", error: "boom", attempts: 0, retryGroupSize: 1 } as const;
      const [a, b] = [upload("input/a.csv"), upload("input/b.csv")];
      await ledger.recordUpload(a, NOW);
      await ledger.claimUpload(a.uploadId, "r1", NOW);
      const readA = await ledger.getUpload(a.uploadId);
      expect(await ledger.settleUpload(a.uploadId, "r1", back, NOW, readA ?? undefined)).toBe(true);
      // a copy read while b was still pending: the store goes by the item, which is running in r1
      await ledger.recordUpload(b, NOW);
      const stale = await ledger.getUpload(b.uploadId);
      await ledger.claimUpload(b.uploadId, "r1", NOW);
      expect(await ledger.settleUpload(b.uploadId, "r1", back, NOW, stale ?? undefined)).toBe(true);
      // a copy from an earlier run (r0) of an upload now running in r2: the item, not the copy, is what is settled
      const c = upload("input/c.csv");
      await ledger.recordUpload(c, NOW);
      await ledger.claimUpload(c.uploadId, "r0", NOW);
      const earlier = await ledger.getUpload(c.uploadId);
      await ledger.settleUpload(c.uploadId, "r0", back, NOW, earlier ?? undefined);
      await ledger.claimUpload(c.uploadId, "r2", NOW);
      expect(await ledger.settleUpload(c.uploadId, "r2", back, NOW, earlier ?? undefined)).toBe(true);
      expect(await ledger.getUpload(c.uploadId)).toMatchObject({ status: "pending", lastRunKey: "r2", runs: 2 });
      const pending = (await ledger.listPending(10))
        .filter((u) => u.key !== "input/c.csv")
        .map((u) => [u.key, u.status, u.runKey, u.lastRunKey]);
      expect(pending.sort()).toEqual([
        ["input/a.csv", "pending", null, "r1"],
        ["input/b.csv", "pending", null, "r1"],
      ]);
    });

    it("requeues only failed uploads, with a fresh attempt budget", async () => {
      const u = upload("input/a.csv");
      await ledger.recordUpload(u, NOW);
      expect(await ledger.requeueUpload(u.uploadId, NOW)).toBe(false);
      await ledger.claimUpload(u.uploadId, "r1", NOW);
      await ledger.settleUpload(u.uploadId, "r1", { status: "failed", error: "bad", attempts: 3 }, NOW);
      expect(await ledger.requeueUpload(u.uploadId, NOW)).toBe(true);
      expect((await ledger.listPending(10))[0]).toMatchObject({ status: "pending", attempts: 0 });
    });

    it("fails a pending upload in one step, with its reason and deciding run, only while it is pending", async () => {
      const u = upload("input/a.csv");
      const later = "2026-04-01T10:00:05.000Z";
      expect(await ledger.failPendingUpload(u.uploadId, "r1", "superseded: x", later)).toBe(false); // not recorded
      await ledger.recordUpload(u, NOW);
      expect(await ledger.failPendingUpload(u.uploadId, "r1", "superseded: x", later)).toBe(true);
      expect(await ledger.failPendingUpload(u.uploadId, "r2", "again", later)).toBe(false);
      expect(await ledger.getUpload(u.uploadId)).toMatchObject({
        status: "failed",
        error: "superseded: x",
        runKey: "r1",
        runs: 0,
        attempts: 0,
        updatedAt: later,
        receivedAt: NOW,
      });
      expect(await ledger.listPending(10)).toEqual([]);
      expect(await ledger.listRunning(10, null)).toEqual([]);
      expect(await ledger.claimUpload(u.uploadId, "r1", NOW)).toBe(false);
      // a failed upload can be redriven like any other
      expect(await ledger.requeueUpload(u.uploadId, NOW)).toBe(true);
      expect((await ledger.listPending(10)).map((p) => p.uploadId)).toEqual([u.uploadId]);
    });

    it("does not fail an upload that is running or settled", async () => {
      const u = upload("input/a.csv");
      await ledger.recordUpload(u, NOW);
      await ledger.claimUpload(u.uploadId, "r1", NOW);
      expect(await ledger.failPendingUpload(u.uploadId, "r1", "superseded: x", NOW)).toBe(false);
      expect(await ledger.getUpload(u.uploadId)).toMatchObject({ status: "running", runKey: "r1", error: null });
      await ledger.settleUpload(u.uploadId, "r1", { status: "failed", error: "bad", attempts: 1 }, NOW);
      expect(await ledger.failPendingUpload(u.uploadId, "r2", "superseded: x", NOW)).toBe(false);
      expect(await ledger.getUpload(u.uploadId)).toMatchObject({ status: "failed", runKey: "r1", error: "bad" });
    });

    it("lists running uploads outside one run, oldest run first, up to a limit", async () => {
      const [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map((k) => upload(`input/${k}.csv`));
      for (const u of [a, b, c, d, e]) await ledger.recordUpload(u as Upload, NOW);
      const r1 = "20260401T100000Z-1";
      const r10 = "20260401T100000Z-10"; // r1 is a prefix of it
      const r2 = "20260401T110000Z-2";
      await ledger.claimUpload(c?.uploadId ?? "", r2, NOW);
      await ledger.claimUpload(a?.uploadId ?? "", r1, NOW);
      await ledger.claimUpload(b?.uploadId ?? "", r10, NOW);
      await ledger.claimUpload(d?.uploadId ?? "", r1, NOW);
      // e stays pending; a settled one is no longer running
      await ledger.settleUpload(d?.uploadId ?? "", r1, { status: "failed", error: "bad", attempts: 1 }, NOW);
      const keys = (us: readonly { key: string; runKey: string | null }[]) => us.map((u) => `${u.runKey} ${u.key}`);

      expect(keys(await ledger.listRunning(10, null))).toEqual([
        `${r1} input/a.csv`,
        `${r10} input/b.csv`,
        `${r2} input/c.csv`,
      ]);
      expect(keys(await ledger.listRunning(10, r1))).toEqual([`${r10} input/b.csv`, `${r2} input/c.csv`]);
      expect(keys(await ledger.listRunning(10, r10))).toEqual([`${r1} input/a.csv`, `${r2} input/c.csv`]);
      expect(keys(await ledger.listRunning(10, r2))).toEqual([`${r1} input/a.csv`, `${r10} input/b.csv`]);
      expect(keys(await ledger.listRunning(1, null))).toEqual([`${r1} input/a.csv`]);
      expect((await ledger.listRunning(10, null))[0]).toMatchObject({
        uploadId: a?.uploadId,
        status: "running",
        runs: 1,
      });

      // back to pending: out of the running list, into the pending one
      await ledger.settleUpload(
        a?.uploadId ?? "",
        r1,
        { status: "pending", error: "x", attempts: 1, retryGroupSize: null },
        NOW,
      );
      expect(keys(await ledger.listRunning(10, r2))).toEqual([`${r10} input/b.csv`]);
      expect((await ledger.listPending(10)).map((u) => u.key).sort()).toEqual(["input/a.csv", "input/e.csv"]);
    });

    it("lists every version of one key", async () => {
      await ledger.recordUpload(upload("input/a.csv", "2026-04-01T09:00:00Z"), NOW);
      await ledger.recordUpload(upload("input/a.csv", "2026-04-01T09:00:01Z"), NOW);
      await ledger.recordUpload(upload("input/ab.csv"), NOW);
      expect(await ledger.uploadsOfKey("data-bucket", "input/a.csv")).toHaveLength(2);
      expect(await ledger.listUploads()).toHaveLength(3);
    });

    it("gives the slot to one holder at a time, even when asked concurrently", async () => {
      const results = await Promise.all(["r1", "r2", "r3", "r4"].map((k) => ledger.takeSlot(k, NOW)));
      expect(results.filter(Boolean)).toHaveLength(1);
      const holder = (await ledger.getSlot()).holder;
      expect(["r1", "r2", "r3", "r4"]).toContain(holder);
    });

    it("releases the slot only for its holder and reports a wake-up request", async () => {
      expect(await ledger.requestWakeup()).toBeNull();
      await ledger.takeSlot("r1", NOW);
      expect(await ledger.requestWakeup()).toEqual({
        holder: "r1",
        takenAt: NOW,
        wakeup: true,
        launched: false,
        launchedAt: null,
      });
      expect(await ledger.releaseSlot("r2")).toEqual({ released: false, wakeup: false });
      expect(await ledger.releaseSlot("r1")).toEqual({ released: true, wakeup: true });
      expect(await ledger.getSlot()).toEqual({
        holder: null,
        takenAt: null,
        wakeup: false,
        launched: false,
        launchedAt: null,
      });
      expect(await ledger.takeSlot("r2", NOW)).toBe(true);
      expect(await ledger.releaseSlot("r2")).toEqual({ released: true, wakeup: false });
    });

    it("the launch fence: only the holder passes it; a launched slot cannot be revoked, an unlaunched one can", async () => {
      const FENCE_AT = "2026-04-01T10:02:00.000Z";
      expect(await ledger.markLaunched("r1", FENCE_AT)).toBe(false); // nobody holds the slot
      await ledger.takeSlot("r1", NOW);
      expect(await ledger.markLaunched("r2", FENCE_AT)).toBe(false);
      expect(await ledger.getSlot()).toMatchObject({ launched: false, launchedAt: null });
      expect(await ledger.markLaunched("r1", FENCE_AT)).toBe(true);
      const launched = { holder: "r1", takenAt: NOW, wakeup: false, launched: true, launchedAt: FENCE_AT };
      expect(await ledger.getSlot()).toEqual(launched);
      // repeated (the SDK's retry after a lost answer, later): still true, the first fence time kept
      expect(await ledger.markLaunched("r1", "2026-04-01T10:03:00.000Z")).toBe(true);
      expect(await ledger.getSlot()).toEqual(launched);
      expect(await ledger.requestWakeup()).toEqual({ ...launched, wakeup: true });
      // A repairer's revocation is refused once the holder launched; its owner's own release is not.
      expect(await ledger.releaseSlot("r1", { unlessLaunched: true })).toEqual({ released: false, wakeup: false });
      expect((await ledger.getSlot()).holder).toBe("r1");
      expect(await ledger.releaseSlot("r1")).toEqual({ released: true, wakeup: true });
      // The next holder starts unlaunched; revoked before its fence, its fence then fails for good.
      expect(await ledger.takeSlot("r2", NOW)).toBe(true);
      expect(await ledger.getSlot()).toMatchObject({ holder: "r2", launched: false, launchedAt: null });
      expect(await ledger.releaseSlot("r2", { unlessLaunched: true })).toEqual({ released: true, wakeup: false });
      expect(await ledger.markLaunched("r2", FENCE_AT)).toBe(false);
      expect(await ledger.takeSlot("r3", NOW)).toBe(true);
      expect(await ledger.markLaunched("r2", FENCE_AT)).toBe(false);
      expect(await ledger.getSlot()).toMatchObject({ holder: "r3", launched: false, launchedAt: null });
    });

    it("moves a run only from the states it names", async () => {
      await ledger.createRun(run("20260401T100000Z-1"));
      await expect(ledger.createRun({ ...run("20260401T100000Z-1"), fileCount: 7 })).rejects.toThrow();
      expect(await ledger.updateRun("20260401T100000Z-1", ["starting"], { state: "running", glueRunId: "jr_1" })).toBe(
        true,
      );
      expect(await ledger.updateRun("20260401T100000Z-1", ["starting"], { state: "start_failed" })).toBe(false);
      expect(await ledger.updateRun("nope", ["starting"], { state: "running" })).toBe(false);
      expect(await ledger.getRun("20260401T100000Z-1")).toMatchObject({ state: "running", glueRunId: "jr_1" });
    });

    describe("every conditional write is idempotent: repeated (the SDK's retry after a lost answer), it reports success", () => {
      const LATER = "2026-04-01T10:00:05.000Z";

      it("recordUpload, claimUpload, settleUpload", async () => {
        const u = upload("input/a.csv");
        await ledger.recordUpload(u, NOW);
        expect(await ledger.claimUpload(u.uploadId, "r1", NOW)).toBe(true);
        expect(await ledger.claimUpload(u.uploadId, "r1", NOW)).toBe(true);
        expect(await ledger.claimUpload(u.uploadId, "r2", NOW)).toBe(false);
        expect(await ledger.getUpload(u.uploadId)).toMatchObject({ status: "running", runKey: "r1", runs: 1 });
        const back = { status: "pending", error: "run failed", attempts: 0, retryGroupSize: 2 } as const;
        expect(await ledger.settleUpload(u.uploadId, "r1", back, LATER)).toBe(true);
        expect(await ledger.settleUpload(u.uploadId, "r1", back, LATER)).toBe(true);
        expect(await ledger.settleUpload(u.uploadId, "r2", back, LATER)).toBe(false);
        const failed = { status: "failed", error: "bad", attempts: 1 } as const;
        await ledger.claimUpload(u.uploadId, "r3", LATER);
        expect(await ledger.settleUpload(u.uploadId, "r3", failed, LATER)).toBe(true);
        expect(await ledger.settleUpload(u.uploadId, "r3", failed, LATER)).toBe(true);
        expect(await ledger.getUpload(u.uploadId)).toMatchObject({ status: "failed", runKey: "r3", runs: 2 });
      });

      it("failPendingUpload and requeueUpload", async () => {
        const u = upload("input/a.csv");
        await ledger.recordUpload(u, NOW);
        expect(await ledger.failPendingUpload(u.uploadId, "r1", "superseded: x", LATER)).toBe(true);
        expect(await ledger.failPendingUpload(u.uploadId, "r1", "superseded: x", LATER)).toBe(true);
        expect(await ledger.failPendingUpload(u.uploadId, "r2", "superseded: x", LATER)).toBe(false);
        expect(await ledger.requeueUpload(u.uploadId, LATER)).toBe(true);
        expect(await ledger.requeueUpload(u.uploadId, LATER)).toBe(true);
        expect(await ledger.requeueUpload(u.uploadId, "2026-04-01T10:00:09.000Z")).toBe(false);
      });

      it("createRun and updateRun", async () => {
        const r = run("20260401T100000Z-1");
        await ledger.createRun(r);
        await ledger.createRun(r);
        const patch = { state: "running", glueRunId: "jr_1", startedAt: LATER } as const;
        expect(await ledger.updateRun(r.runKey, ["starting"], patch)).toBe(true);
        expect(await ledger.updateRun(r.runKey, ["starting"], patch)).toBe(true);
        expect(await ledger.updateRun(r.runKey, ["starting"], { ...patch, glueRunId: "jr_2" })).toBe(false);
        expect(await ledger.getRun(r.runKey)).toMatchObject(patch);
      });

      it("fillRunGlue: only a closed run whose close recorded no figures (glue null); the first writer wins", async () => {
        const figures = {
          workerType: "G.1X",
          numberOfWorkers: 2,
          executionClass: "STANDARD",
          executionSeconds: 200,
          dpuSeconds: null,
        };
        const other = { ...figures, executionSeconds: 999 };
        const closed = run("20260401T100000Z-1");
        await ledger.createRun(closed);
        await ledger.updateRun(closed.runKey, ["starting"], { state: "succeeded", endedAt: LATER, glue: null });
        expect(await ledger.fillRunGlue(closed.runKey, figures)).toBe(true);
        expect(await ledger.fillRunGlue(closed.runKey, figures)).toBe(true); // a retry whose answer was lost
        expect(await ledger.fillRunGlue(closed.runKey, other)).toBe(false); // a second writer
        expect((await ledger.getRun(closed.runKey))?.glue).toEqual(figures);
        expect((await ledger.getRun(closed.runKey))?.state).toBe("succeeded");

        const open = run("20260401T100000Z-2");
        await ledger.createRun(open);
        await ledger.updateRun(open.runKey, ["starting"], { state: "running", glue: null });
        expect(await ledger.fillRunGlue(open.runKey, figures)).toBe(false);
        expect((await ledger.getRun(open.runKey))?.glue).toBeNull();

        const before = run("20260401T100000Z-3"); // closed before figures were recorded: no glue at all
        await ledger.createRun(before);
        await ledger.updateRun(before.runKey, ["starting"], { state: "failed", endedAt: LATER });
        expect(await ledger.fillRunGlue(before.runKey, figures)).toBe(false);
        expect((await ledger.getRun(before.runKey))?.glue).toBeUndefined();

        expect(await ledger.fillRunGlue("20260401T100000Z-none", figures)).toBe(false);
      });

      it("takeSlot and releaseSlot (a retried release reports the wake-up the release saw)", async () => {
        expect(await ledger.takeSlot("r1", NOW)).toBe(true);
        expect(await ledger.takeSlot("r1", NOW)).toBe(true);
        expect(await ledger.takeSlot("r2", NOW)).toBe(false);
        expect(await ledger.requestWakeup()).toMatchObject({ holder: "r1", wakeup: true });
        expect(await ledger.markLaunched("r1", NOW)).toBe(true);
        expect(await ledger.markLaunched("r1", NOW)).toBe(true);
        expect(await ledger.releaseSlot("r1")).toEqual({ released: true, wakeup: true });
        expect(await ledger.releaseSlot("r1")).toEqual({ released: true, wakeup: true });
        expect(await ledger.releaseSlot("r2")).toEqual({ released: false, wakeup: false });
        expect(await ledger.takeSlot("r2", NOW)).toBe(true);
        expect(await ledger.releaseSlot("r2")).toEqual({ released: true, wakeup: false });
        expect(await ledger.releaseSlot("r1")).toEqual({ released: false, wakeup: false });
      });

      it("recordRunHealth counts each run's outcome once", async () => {
        expect(await ledger.getHealth()).toEqual({
          consecutiveSystemFailures: 0,
          lastRunKey: null,
          lastFailureAt: null,
        });
        await ledger.recordRunHealth("r1", "system-failure", NOW);
        await ledger.recordRunHealth("r1", "system-failure", NOW);
        expect(await ledger.recordRunHealth("r2", "system-failure", LATER)).toEqual({
          consecutiveSystemFailures: 2,
          lastRunKey: "r2",
          lastFailureAt: LATER,
        });
        await ledger.recordRunHealth("r3", "healthy", LATER);
        expect((await ledger.recordRunHealth("r3", "healthy", LATER)).consecutiveSystemFailures).toBe(0);
        expect((await ledger.recordRunHealth("r3", "system-failure", LATER)).consecutiveSystemFailures).toBe(0);
      });
    });

    it("records and lists a key of 1,024 UTF-8 bytes (S3's longest)", async () => {
      const key = `input/${"é".repeat((1024 - "input/".length - ".csv".length) / 2)}.csv`;
      expect(Buffer.byteLength(key)).toBe(1024);
      const u = upload(key);
      await ledger.recordUpload(u, NOW);
      expect((await ledger.listPending(10)).map((p) => p.key)).toEqual([key]);
      expect(await ledger.claimUpload(u.uploadId, "20260401T100000Z-00000001", NOW)).toBe(true);
      expect((await ledger.listRunning(10, null)).map((p) => p.key)).toEqual([key]);
      expect((await ledger.uploadsOfKey("data-bucket", key)).map((p) => p.uploadId)).toEqual([u.uploadId]);
    });

    it("lists runs newest first and finds a run by its Glue run id", async () => {
      await ledger.createRun(run("20260401T100000Z-1"));
      await ledger.createRun(run("20260401T110000Z-2"));
      await ledger.linkGlueRun("jr_2", "20260401T110000Z-2");
      expect((await ledger.listRuns(10)).map((r) => r.runKey)).toEqual(["20260401T110000Z-2", "20260401T100000Z-1"]);
      expect(await ledger.runKeyOfGlueRun("jr_2")).toBe("20260401T110000Z-2");
      expect(await ledger.runKeyOfGlueRun("jr_x")).toBeNull();
    });
  });
}
