/**
 * The reconciler on the real adapters (S3Objects' ListObjectsV2 + HeadObject, DynamoLedger's position item and
 * recordUpload) against moto; Glue is the in-memory fake (the reconciler only starts a run through startNextRun).
 */
import { PutObjectCommand } from "@aws-sdk/client-s3";
import {
  type Deps,
  type ObjectLister,
  type PipelineConfig,
  pipelineConfig,
  type ReconcilerPosition,
  reconcile,
  toUpload,
} from "@ingest/core";
import {
  CountingMetrics,
  ManualClock,
  MemoryGlue,
  MemoryLog,
  MemoryObjects,
  sequentialRunKeys,
} from "@ingest/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoLedger } from "../../src/dynamo-ledger.js";
import { S3Objects } from "../../src/s3-objects.js";
import { clients, createBucket, createLedgerTable, type Moto, startMoto } from "./moto.js";

let moto: Moto;
beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});

async function setup(maxKeysPerInvocation: number) {
  const { s3, ddb } = clients(moto.endpoint);
  const bucket = await createBucket(s3);
  const ledger = new DynamoLedger({ client: ddb, tableName: await createLedgerTable(ddb) });
  const objects = new S3Objects(s3);
  // Two minutes after now: every object put below is past the test stage's 60 s grace period.
  const clock = new ManualClock(Date.now() + 120_000);
  const deps: Deps = {
    ledger,
    objects,
    glue: new MemoryGlue(clock),
    clock,
    log: new MemoryLog(),
    metrics: new CountingMetrics(),
    newRunKey: sequentialRunKeys(),
    bucket,
  };
  const base = pipelineConfig("test");
  const config: PipelineConfig = { ...base, reconciler: { ...base.reconciler, maxKeysPerInvocation } };
  const put = (key: string, body = "id\n1\n") =>
    s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  return { s3, bucket, ledger, objects, deps, config, clock, put };
}

describe("reconciler on moto", () => {
  it("records every upload the ledger lacks, across invocations, with the identity HeadObject gives", async () => {
    const t = await setup(2);
    const keys = ["input/a.csv", "input/b b+c%20.csv", "input/sub/c.csv", "input/é.csv", "input/z.csv"];
    for (const key of keys) await t.put(key);
    await t.put("input/notes.txt");
    await t.put("manifests/m.csv");
    // input/a.csv came through its event.
    const known = await t.objects.head(t.bucket, "input/a.csv");
    if (!known) throw new Error("no head for input/a.csv");
    await t.ledger.recordUpload(toUpload(known), "2026-04-01T10:00:00.000Z");

    const reports = [];
    for (let i = 0; i < 4; i++) {
      const report = await reconcile(t.deps, t.config, { lister: t.objects, positions: t.ledger });
      reports.push(report);
      if (report.passEnded) break;
    }

    expect(reports.map((r) => [r.listed, r.recorded, r.next])).toEqual([
      [2, 1, "input/b b+c%20.csv"],
      [2, 1, "input/sub/c.csv"],
      [2, 2, null],
    ]);
    const uploads = await t.ledger.listUploads();
    expect(uploads.map((u) => u.key).sort()).toEqual([...keys].sort());
    for (const key of keys) {
      const head = await t.objects.head(t.bucket, key);
      if (!head) throw new Error(`no head for ${key}`);
      expect(uploads.find((u) => u.key === key)?.uploadId).toBe(toUpload(head).uploadId);
    }
    // The first invocation started a run (a.csv, pending since its event, and b); the next ones found the slot
    // held and asked its end to look again.
    expect(reports[0]?.run).toMatchObject({ started: true, files: 2 });
    expect(reports[1]?.run).toEqual({ started: false, reason: "slot-held" });
    expect((await t.ledger.getSlot()).wakeup).toBe(true);

    const again = await reconcile(t.deps, t.config, { lister: t.objects, positions: t.ledger });
    expect(again).toMatchObject({ listed: 2, recorded: 0, from: null });
  });

  it("keeps its position in one ledger item, keys of any length and null included", async () => {
    const t = await setup(10);
    expect(await t.ledger.getReconcilerPosition()).toBeNull();
    const long: ReconcilerPosition = {
      afterKey: `input/${"é".repeat(505)}.csv`, // 1,020 bytes of UTF-8
      savedAt: "2026-04-01T10:00:00.000Z",
      passStartedAt: "2026-04-01T09:00:00.000Z",
      lastPassEndedAt: null,
    };
    await t.ledger.saveReconcilerPosition(long);
    expect(await t.ledger.getReconcilerPosition()).toEqual(long);

    const ended: ReconcilerPosition = {
      afterKey: null,
      savedAt: "2026-04-01T11:00:00.000Z",
      passStartedAt: "2026-04-01T11:00:00.000Z",
      lastPassEndedAt: "2026-04-01T11:00:00.000Z",
    };
    await t.ledger.saveReconcilerPosition(ended);
    expect(await t.ledger.getReconcilerPosition()).toEqual(ended);
    // Not an upload: listings of uploads never see it.
    expect(await t.ledger.listUploads()).toEqual([]);
  });

  it("lists in S3's order (UTF-8 bytes) from StartAfter, page by page, as the in-memory fake does", async () => {
    const t = await setup(10);
    const fake = new MemoryObjects(t.clock);
    // U+FFFD sorts before an emoji in UTF-8 bytes but after it in UTF-16 code units.
    const keys = ["input/z.csv", "input/\u{1F600}.csv", "input/\uFFFD.csv", "input/a.csv", "input/é.csv"];
    for (const key of keys) {
      await t.put(key);
      fake.put(t.bucket, key, "x");
    }
    await t.put("inputs/other.csv");

    const pages = async (lister: ObjectLister) => {
      const out: { keys: string[]; truncated: boolean }[] = [];
      let after: string | null = null;
      for (;;) {
        const page: Awaited<ReturnType<ObjectLister["listAfter"]>> = await lister.listAfter(
          t.bucket,
          "input/",
          after,
          2,
        );
        out.push({ keys: page.objects.map((o) => o.key), truncated: page.truncated });
        if (!page.truncated) return out;
        after = page.objects.at(-1)?.key ?? null;
      }
    };

    const expected = [
      { keys: ["input/a.csv", "input/z.csv"], truncated: true },
      { keys: ["input/é.csv", "input/\uFFFD.csv"], truncated: true },
      { keys: ["input/\u{1F600}.csv"], truncated: false },
    ];
    expect(await pages(t.objects)).toEqual(expected);
    expect(await pages(fake)).toEqual(expected);

    const [first] = (await t.objects.listAfter(t.bucket, "input/", null, 1)).objects;
    expect(first).toMatchObject({ key: "input/a.csv", size: 5 });
    expect(first?.etag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(Number.isNaN(Date.parse(first?.lastModified ?? ""))).toBe(false);
  });
});
