import { describe, expect, it } from "vitest";
import type { PipelineConfig } from "../../src/config/pipeline.js";
import type { ListedObject, ObjectLister } from "../../src/ledger/ports.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { LIST_PAGE_SIZE, ledgerHasVersion, ReconcileError, reconcile } from "../../src/runs/reconciler.js";
import { BUCKET, makeWorld } from "../helpers/world.js";

/** A world whose reconciler settings are the given ones (the rest: the test stage's). */
function world(settings: Partial<PipelineConfig["reconciler"]> = {}) {
  const w = makeWorld();
  const config: PipelineConfig = { ...w.config, reconciler: { ...w.config.reconciler, ...settings } };
  const sources = { lister: w.objects, positions: w.ledger };
  let heads = 0;
  const head = w.objects.head.bind(w.objects);
  w.objects.head = (bucket, key) => {
    heads++;
    return head(bucket, key);
  };
  return { ...w, config, sources, heads: () => heads, run: () => reconcile(w.deps, config, sources) };
}

/** PutObject with no event delivered (the event was lost). */
function lost(w: ReturnType<typeof world>, key: string, body = "id\n1\n") {
  return w.objects.put(BUCKET, key, body);
}

const MINUTE = 60_000;

describe("reconciler: a lost event delays a file, never loses it", () => {
  it("records an upload whose event never came and starts a run with it", async () => {
    const w = world();
    const v = lost(w, "input/a.csv");
    w.clock.advance(2 * MINUTE);

    const report = await w.run();

    expect(report).toMatchObject({ listed: 1, checked: 1, tooRecent: 0, recorded: 1, failed: 0, passEnded: true });
    const [record] = [...w.ledger.uploads.values()];
    expect(record).toMatchObject({
      key: "input/a.csv",
      etag: v.etag,
      status: "running",
      receivedAt: "2026-04-01T10:02:00.000Z",
    });
    expect(report.run).toMatchObject({ started: true, files: 1 });
    const runKey = report.run?.started ? report.run.runKey : "";
    expect((await w.manifestOf(runKey)).uploads.map((u) => u.key)).toEqual(["input/a.csv"]);
    expect(w.metrics.get("UploadsReconciled")).toBe(1);
  });

  it("starts the run with what it recorded even when the pending index does not list it yet", async () => {
    const w = world();
    lost(w, "input/a.csv");
    w.clock.advance(2 * MINUTE);
    w.ledger.listPending = async () => []; // the index lags behind the table

    const report = await w.run();

    expect(report.run).toMatchObject({ started: true, files: 1 });
    expect([...w.ledger.uploads.values()]).toMatchObject([{ key: "input/a.csv", status: "running" }]);
  });

  it("leaves alone what the ledger has: no HeadObject, no write, no run", async () => {
    const w = world();
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message, w.upload("input/b.csv").message]);
    const headsBefore = w.heads();
    const before = structuredClone([...w.ledger.uploads.values()]);
    w.clock.advance(10 * MINUTE);

    const report = await w.run();

    expect(report).toMatchObject({ listed: 2, checked: 2, recorded: 0, run: null });
    expect(w.heads()).toBe(headsBefore);
    expect([...w.ledger.uploads.values()]).toEqual(before);
    expect(w.glue.runs.size).toBe(1);
    expect(w.metrics.totals.has("UploadsReconciled")).toBe(false);
    expect(w.log.lines.filter((l) => l.message.startsWith("reconciler"))).toEqual([]);
  });

  it("logs each upload it recorded, and once what the pass found", async () => {
    const w = world();
    lost(w, "input/a.csv");
    await handleUploadBatch(w.deps, w.config, [w.upload("input/b.csv").message]);
    w.clock.advance(2 * MINUTE);

    const report = await w.run();

    const lines = w.log.lines.filter((l) => l.message.startsWith("reconciler"));
    expect(lines).toEqual([
      {
        level: "info",
        message: "reconciler recorded an upload",
        fields: { key: "input/a.csv", uploadId: "data-bucket/input/a.csv@20260401T100000Z-etag00000001" },
      },
      { level: "warn", message: "reconciler recorded uploads whose events never arrived", fields: { ...report } },
    ]);
  });

  it("leaves an object younger than the grace period to its event, and takes it on the next pass", async () => {
    const w = world({ graceSeconds: 120 });
    lost(w, "input/a.csv");
    w.clock.advance(120_000); // exactly the grace period: old enough

    lost(w, "input/b.csv");
    w.clock.advance(1_000); // b is 1 s old
    const first = await w.run();

    expect(first).toMatchObject({ checked: 1, tooRecent: 1, recorded: 1 });
    expect([...w.ledger.uploads.values()].map((u) => u.key)).toEqual(["input/a.csv"]);

    w.clock.advance(119_000); // b is 120 s old
    const second = await w.run();
    expect(second).toMatchObject({ checked: 2, tooRecent: 0, recorded: 1 });
    expect([...w.ledger.uploads.values()].map((u) => u.key).sort()).toEqual(["input/a.csv", "input/b.csv"]);
  });

  it("ignores keys under input/ that are not uploads, and never lists outside input/", async () => {
    const w = world();
    lost(w, "input/notes.txt");
    lost(w, "input/readme");
    lost(w, "manifests/x.csv");
    lost(w, "processed/a.csv");
    lost(w, "input/sub/ok.csv");
    w.clock.advance(5 * MINUTE);

    const report = await w.run();

    expect(report).toMatchObject({ listed: 3, checked: 1, recorded: 1 });
    expect([...w.ledger.uploads.values()].map((u) => u.key)).toEqual(["input/sub/ok.csv"]);
  });

  it("changes nothing when the late event arrives after the reconciler recorded the upload", async () => {
    const w = world();
    const { version, message } = w.upload("input/a.csv");
    w.clock.advance(2 * MINUTE);
    await w.run();
    const before = structuredClone([...w.ledger.uploads.values()]);

    const late = await handleUploadBatch(w.deps, w.config, [message, w.message(version)]);

    expect(late).toMatchObject({ recorded: 0, duplicates: 2, failedMessageIds: [] });
    expect([...w.ledger.uploads.values()]).toEqual(before);
    expect(w.glue.runs.size).toBe(1);
  });

  it("changes nothing when the event was recorded between its listing and its check", async () => {
    const w = world();
    const { message } = w.upload("input/a.csv");
    w.clock.advance(2 * MINUTE);
    // The batcher records the upload while the reconciler's listing is in flight.
    const lister: ObjectLister = {
      listAfter: async (...args) => {
        const page = await w.objects.listAfter(...args);
        await handleUploadBatch(w.deps, w.config, [message]);
        return page;
      },
    };

    const report = await reconcile(w.deps, w.config, { lister, positions: w.ledger });

    expect(report).toMatchObject({ checked: 1, recorded: 0, run: null });
    expect(w.ledger.uploads.size).toBe(1);
    expect(w.glue.runs.size).toBe(1);
  });

  it("records the current version of a key overwritten without an event", async () => {
    const w = world();
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv", "v1").message]);
    w.clock.advance(MINUTE);
    const v2 = lost(w, "input/a.csv", "version two");
    w.clock.advance(2 * MINUTE);

    const report = await w.run();

    expect(report.recorded).toBe(1);
    const versions = await w.ledger.uploadsOfKey(BUCKET, "input/a.csv");
    expect(versions.map((u) => u.etag).sort()).toEqual(["etag00000001", v2.etag]);
    expect(versions.find((u) => u.etag === v2.etag)).toMatchObject({ status: "pending", size: 11 });
    // The slot is held by v1's run: v2 waits for its end, which was asked to look.
    expect(report.run).toEqual({ started: false, reason: "slot-held" });
    expect(w.ledger.slot.wakeup).toBe(true);
  });

  it("records what S3 says now, not the listing: an object deleted since is skipped", async () => {
    const w = world();
    lost(w, "input/gone.csv");
    lost(w, "input/kept.csv");
    w.clock.advance(2 * MINUTE);
    const lister: ObjectLister = {
      listAfter: async (...args) => {
        const page = await w.objects.listAfter(...args);
        w.objects.delete(BUCKET, "input/gone.csv");
        return page;
      },
    };

    const report = await reconcile(w.deps, w.config, { lister, positions: w.ledger });

    expect(report).toMatchObject({ listed: 2, checked: 2, recorded: 1 });
    expect([...w.ledger.uploads.values()].map((u) => u.key)).toEqual(["input/kept.csv"]);
  });

  it("refuses to run with an inventory report configured (not implemented) instead of silently listing", async () => {
    const w = world({ inventory: { bucket: "inventory", prefix: "reports/" } });
    lost(w, "input/a.csv");
    w.clock.advance(2 * MINUTE);

    await expect(w.run()).rejects.toThrow(
      "reconciler: reading an S3 Inventory report is not implemented; set reconciler.inventory to null to list",
    );
    expect(w.objects.listCalls).toBe(0);
    expect(w.ledger.uploads.size).toBe(0);
  });
});

describe("reconciler: bounded cost, incremental position", () => {
  it("lists at most maxKeysPerInvocation keys, resumes after the last one, and wraps around", async () => {
    const w = world({ maxKeysPerInvocation: 3 });
    for (const k of ["a", "b", "c", "d", "e", "f", "g"]) lost(w, `input/${k}.csv`);
    w.clock.advance(2 * MINUTE);

    const first = await w.run();
    expect(first).toMatchObject({ listed: 3, recorded: 3, from: null, next: "input/c.csv", passEnded: false });
    expect(w.ledger.reconcilerPosition).toEqual({
      afterKey: "input/c.csv",
      savedAt: "2026-04-01T10:02:00.000Z",
      passStartedAt: "2026-04-01T10:02:00.000Z",
      lastPassEndedAt: null,
    });

    w.clock.advance(MINUTE);
    const second = await w.run();
    expect(second).toMatchObject({ listed: 3, recorded: 3, from: "input/c.csv", next: "input/f.csv" });
    expect(w.ledger.reconcilerPosition).toEqual({
      afterKey: "input/f.csv",
      savedAt: "2026-04-01T10:03:00.000Z",
      passStartedAt: "2026-04-01T10:02:00.000Z",
      lastPassEndedAt: null,
    });

    w.clock.advance(MINUTE);
    const third = await w.run();
    expect(third).toMatchObject({ listed: 1, recorded: 1, from: "input/f.csv", next: null, passEnded: true });
    expect(w.ledger.reconcilerPosition).toEqual({
      afterKey: null,
      savedAt: "2026-04-01T10:04:00.000Z",
      passStartedAt: "2026-04-01T10:04:00.000Z",
      lastPassEndedAt: "2026-04-01T10:04:00.000Z",
    });

    w.clock.advance(MINUTE);
    const fourth = await w.run();
    expect(fourth).toMatchObject({ listed: 3, recorded: 0, from: null, next: "input/c.csv", passEnded: false });
    expect(w.ledger.reconcilerPosition).toEqual({
      afterKey: "input/c.csv",
      savedAt: "2026-04-01T10:05:00.000Z",
      passStartedAt: "2026-04-01T10:05:00.000Z",
      lastPassEndedAt: "2026-04-01T10:04:00.000Z",
    });
    expect(w.ledger.uploads.size).toBe(7);
  });

  it("reads pages of at most 1,000 keys and saves its position after each", async () => {
    const w = world({ maxKeysPerInvocation: 2_500 });
    for (let i = 0; i < 2_600; i++) lost(w, `input/${String(i).padStart(5, "0")}.csv`);
    w.clock.advance(2 * MINUTE);
    const sizes: number[] = [];
    const saved: (string | null)[] = [];
    const lister: ObjectLister = {
      listAfter: (bucket, prefix, after, max) => {
        sizes.push(max);
        return w.objects.listAfter(bucket, prefix, after, max);
      },
    };
    const positions = {
      getReconcilerPosition: () => w.ledger.getReconcilerPosition(),
      saveReconcilerPosition: async (p: Parameters<typeof w.ledger.saveReconcilerPosition>[0]) => {
        saved.push(p.afterKey);
        await w.ledger.saveReconcilerPosition(p);
      },
    };

    const report = await reconcile(w.deps, w.config, { lister, positions });

    expect(LIST_PAGE_SIZE).toBe(1000);
    expect(sizes).toEqual([1000, 1000, 500]);
    expect(saved).toEqual(["input/00999.csv", "input/01999.csv", "input/02499.csv"]);
    expect(report).toMatchObject({ listed: 2500, recorded: 2500, next: "input/02499.csv", passEnded: false });
  });

  it("ends the pass on a short last page without asking for another", async () => {
    const w = world({ maxKeysPerInvocation: 10 });
    for (const k of ["a", "b"]) lost(w, `input/${k}.csv`);
    w.clock.advance(2 * MINUTE);

    const report = await w.run();

    expect(w.objects.listCalls).toBe(1);
    expect(report).toMatchObject({ listed: 2, next: null, passEnded: true });
  });

  it("ends the pass on a page that says more but lists nothing (never loops on an empty page)", async () => {
    const w = world();
    const lister: ObjectLister = { listAfter: async () => ({ objects: [], truncated: true }) };

    const report = await reconcile(w.deps, w.config, { lister, positions: w.ledger });

    expect(report).toMatchObject({ listed: 0, next: null, passEnded: true });
  });

  it("ends the pass on an empty input/ (one request, position saved as a finished pass)", async () => {
    const w = world();

    const report = await w.run();

    expect(report).toMatchObject({ listed: 0, checked: 0, recorded: 0, next: null, passEnded: true, run: null });
    expect(w.objects.listCalls).toBe(1);
    expect(w.ledger.reconcilerPosition).toEqual({
      afterKey: null,
      savedAt: "2026-04-01T10:00:00.000Z",
      passStartedAt: "2026-04-01T10:00:00.000Z",
      lastPassEndedAt: "2026-04-01T10:00:00.000Z",
    });
  });

  it("moves past a key it could not record, records the rest, fails the invocation, and retries next pass", async () => {
    const w = world();
    for (const k of ["a", "b", "c"]) lost(w, `input/${k}.csv`);
    w.clock.advance(2 * MINUTE);
    w.ledger.failNext = { method: "recordUpload", error: new Error("ProvisionedThroughputExceededException") };

    const error = await w.run().then(
      () => null,
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(ReconcileError);
    const failure = error as ReconcileError;
    expect(failure.name).toBe("ReconcileError");
    expect(failure.failedKeys).toEqual(["input/a.csv"]);
    expect(failure.message).toBe("reconciler: 1 key(s) could not be checked or recorded (first: input/a.csv)");
    expect(failure.report).toMatchObject({ checked: 3, recorded: 2, failed: 1, passEnded: true });
    expect(failure.report.run).toMatchObject({ started: true, files: 2 });
    expect(w.log.lines).toContainEqual({
      level: "error",
      message: "reconciler could not check or record a key",
      fields: { key: "input/a.csv", error: "Error: ProvisionedThroughputExceededException" },
    });

    w.clock.advance(MINUTE);
    const retry = await w.run();
    expect(retry).toMatchObject({ recorded: 1, failed: 0 });
    expect([...w.ledger.uploads.values()].map((u) => u.key).sort()).toEqual([
      "input/a.csv",
      "input/b.csv",
      "input/c.csv",
    ]);
  });

  it("fails the invocation when the run start fails, with the upload safe in the ledger for the sweeper", async () => {
    const w = world();
    lost(w, "input/a.csv");
    w.clock.advance(2 * MINUTE);
    w.ledger.failNext = { method: "takeSlot", error: new Error("slot table unavailable") };

    await expect(w.run()).rejects.toThrow("slot table unavailable");

    expect([...w.ledger.uploads.values()]).toMatchObject([{ key: "input/a.csv", status: "pending" }]);
    expect(w.ledger.reconcilerPosition?.afterKey).toBeNull();
  });
});

describe("ledgerHasVersion", () => {
  const record = { etag: "abc", lastModified: "2026-04-01T10:00:00.000Z" };
  const listed = (etag: string, lastModified: string): ListedObject => ({
    key: "input/a.csv",
    etag,
    lastModified,
    size: 1,
  });
  const records = [record] as unknown as Parameters<typeof ledgerHasVersion>[0];

  it("matches the same ETag (quoted as S3 lists it) in the same second", () => {
    expect(ledgerHasVersion(records, listed('"abc"', "2026-04-01T10:00:00.000Z"))).toBe(true);
    expect(ledgerHasVersion(records, listed('"abc"', "2026-04-01T10:00:00.999Z"))).toBe(true);
  });

  it("does not match another ETag or another second", () => {
    expect(ledgerHasVersion(records, listed('"abd"', "2026-04-01T10:00:00.000Z"))).toBe(false);
    expect(ledgerHasVersion(records, listed('"abc"', "2026-04-01T10:00:01.000Z"))).toBe(false);
    expect(ledgerHasVersion(records, listed('"abc"', "2026-04-01T09:59:59.999Z"))).toBe(false);
    expect(ledgerHasVersion([], listed('"abc"', "2026-04-01T10:00:00.000Z"))).toBe(false);
  });
});
