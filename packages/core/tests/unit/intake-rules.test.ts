/**
 * Intake's rules one by one (intake.ts): metrics of a batch, duplicates of pending and failed uploads, which event of
 * a key counts, the identity of an upload deleted before intake. Literal expectations.
 */
import { describe, expect, it } from "vitest";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { BUCKET, makeWorld, objectCreatedEvent } from "../helpers/world.js";

const T0 = "2026-04-01T10:00:00.000Z";
type World = ReturnType<typeof makeWorld>;

/** The message of an Object Created event for a version S3 no longer has (fields as given). */
function goneMessage(
  id: string,
  object: { etag?: string; "version-id"?: string; sequencer?: string; size?: number },
  time: unknown = "2026-04-01T09:59:58Z",
) {
  const base = objectCreatedEvent({
    bucket: BUCKET,
    key: "input/gone.csv",
    versionId: null,
    etag: "x",
    lastModified: T0,
    size: 1,
  });
  return {
    messageId: id,
    body: JSON.stringify({ ...base, time, detail: { ...base.detail, object: { key: "input/gone.csv", ...object } } }),
  };
}

function records(w: World) {
  return [...w.ledger.uploads.values()];
}

describe("intake: metrics of a batch", () => {
  it("counts received uploads, ignored messages and duplicates; emits no zero datapoints", async () => {
    const w = makeWorld();
    const a = w.upload("input/a.csv");
    const r = await handleUploadBatch(w.deps, w.config, [
      a.message,
      w.message(a.version),
      w.upload("input/b.csv").message,
      { messageId: "junk", body: "{}" },
    ]);

    expect(r).toMatchObject({ recorded: 2, duplicates: 1, ignored: 1, failedMessageIds: [] });
    expect(Object.fromEntries(w.metrics.totals)).toEqual({
      EventsIgnored: 1,
      UploadsReceived: 2,
      DuplicatesDropped: 1,
      RunsStarted: 1,
      FilesPerRun: 2,
    });

    const clean = makeWorld();
    await handleUploadBatch(clean.deps, clean.config, [clean.upload("input/a.csv").message]);
    expect([...clean.metrics.totals.keys()]).toEqual(["UploadsReceived", "RunsStarted", "FilesPerRun"]);
  });

  it("a batch of ignored messages starts nothing", async () => {
    const w = makeWorld();
    const r = await handleUploadBatch(w.deps, w.config, [{ messageId: "junk", body: "{}" }]);
    expect(r).toEqual({ failedMessageIds: [], recorded: 0, duplicates: 0, ignored: 1, run: null, heldBurst: null });
  });
});

describe("intake: duplicates", () => {
  it("a duplicate of an upload still pending starts it (its first batch found the slot held), even before the index shows it", async () => {
    const w = makeWorld();
    await w.ledger.takeSlot("busy", T0);
    const a = w.upload("input/a.csv");
    await handleUploadBatch(w.deps, w.config, [a.message]);
    await w.ledger.releaseSlot("busy");
    w.ledger.listPending = async () => [];

    const r = await handleUploadBatch(w.deps, w.config, [w.message(a.version)]);

    expect(r).toMatchObject({ recorded: 0, duplicates: 1, run: { started: true, files: 1 } });
  });

  it("a duplicate of an upload recorded as failed is dropped and starts nothing", async () => {
    const w = makeWorld();
    const config = { ...w.config, limits: { ...w.config.limits, maxFileBytes: 1 } };
    const big = w.upload("input/big.csv", "too big");
    await handleUploadBatch(w.deps, config, [big.message]);

    const r = await handleUploadBatch(w.deps, config, [w.message(big.version)]);

    expect(r).toEqual({ failedMessageIds: [], recorded: 0, duplicates: 1, ignored: 0, run: null, heldBurst: null });
  });

  it("a late event of a deleted key whose version the ledger has is a duplicate: by version id, else by etag", async () => {
    const w = makeWorld();
    const at = T0;
    for (const [versionId, etag] of [
      ["v1", "e1"],
      [null, "e2"],
    ] as const) {
      await w.ledger.recordUpload(
        {
          bucket: BUCKET,
          key: "input/gone.csv",
          versionId,
          etag,
          lastModified: at,
          size: 1,
          versionTag: `t-${etag}`,
          uploadId: `${BUCKET}/input/gone.csv@t-${etag}`,
        },
        at,
      );
    }

    const r = await handleUploadBatch(w.deps, w.config, [
      goneMessage("m1", { etag: "other", "version-id": "v1" }),
      goneMessage("m2", { etag: '"e2"' }),
    ]);

    expect(r).toMatchObject({ recorded: 0, duplicates: 2, failedMessageIds: [] });
    expect(records(w)).toHaveLength(2);
  });

  it("a late event of a deleted key for a version id the ledger lacks is recorded as deleted", async () => {
    const w = makeWorld();
    await w.ledger.recordUpload(
      {
        bucket: BUCKET,
        key: "input/gone.csv",
        versionId: "v1",
        etag: "e1",
        lastModified: T0,
        size: 1,
        versionTag: "t-v1",
        uploadId: `${BUCKET}/input/gone.csv@t-v1`,
      },
      T0,
    );

    const r = await handleUploadBatch(w.deps, w.config, [goneMessage("m1", { etag: "e1", "version-id": "v7" })]);

    expect(r).toMatchObject({ recorded: 1, duplicates: 0 });
    expect(records(w).map((u) => u.versionTag)).toEqual(["t-v1", "deleted-0-v7"]);
  });

  it("a late event of a deleted key with no etag, or another etag, matches nothing the ledger has: recorded as deleted", async () => {
    const w = makeWorld();
    await w.ledger.recordUpload(
      {
        bucket: BUCKET,
        key: "input/gone.csv",
        versionId: null,
        etag: "unknown",
        lastModified: T0,
        size: 1,
        versionTag: "t",
        uploadId: `${BUCKET}/input/gone.csv@t`,
      },
      T0,
    );

    const r = await handleUploadBatch(w.deps, w.config, [goneMessage("m1", { sequencer: "0A" })]);
    const other = await handleUploadBatch(w.deps, w.config, [goneMessage("m2", { etag: "e5", sequencer: "0B" })]);

    expect(r.recorded).toBe(1);
    expect(other.recorded).toBe(1);
    expect(records(w).map((u) => u.versionTag)).toEqual(["t", "deleted-0A-unknown", "deleted-0B-e5"]);
  });
});

describe("intake: one ledger write per distinct upload", () => {
  it("two messages of one upload in a batch: recorded once, the second a duplicate", async () => {
    const w = makeWorld();
    const a = w.upload("input/a.csv");
    let writes = 0;
    const record = w.ledger.recordUpload.bind(w.ledger);
    w.ledger.recordUpload = async (...args) => {
      writes++;
      return record(...args);
    };

    const r = await handleUploadBatch(w.deps, w.config, [a.message, w.message(a.version)]);

    expect(writes).toBe(1);
    expect(r).toMatchObject({ recorded: 1, duplicates: 1 });
  });

  it("a batch of only an upload recorded as failed starts nothing; beside a fresh one, the run claims only the fresh one", async () => {
    const w = makeWorld();
    const config = { ...w.config, limits: { ...w.config.limits, maxFileBytes: 5 } };
    const big = w.upload("input/big.csv", "0123456789");
    expect((await handleUploadBatch(w.deps, config, [big.message])).run).toBeNull();

    const r = await handleUploadBatch(w.deps, config, [w.message(big.version), w.upload("input/a.csv", "a").message]);

    expect(r.run).toMatchObject({ started: true, files: 1 });
    expect(w.log.lines.filter((l) => l.message.startsWith("some pending uploads were already taken"))).toEqual([]);

    const both = makeWorld();
    const fresh = await handleUploadBatch(both.deps, config, [
      both.upload("input/big.csv", "0123456789").message,
      both.upload("input/a.csv", "a").message,
    ]);
    expect(fresh.run).toMatchObject({ started: true, files: 1 });
    expect(both.log.lines.filter((l) => l.message.startsWith("some pending uploads were already taken"))).toEqual([]);
  });
});

describe("intake: an upload deleted before intake", () => {
  it("is identified by S3's sequencer and version id (or etag), never by the event's time", async () => {
    const w = makeWorld();
    await handleUploadBatch(w.deps, w.config, [
      goneMessage("m1", { etag: '"e1"', "version-id": "v9", sequencer: "00AB", size: 12 }),
    ]);

    expect(records(w)).toEqual([
      expect.objectContaining({
        uploadId: `${BUCKET}/input/gone.csv@deleted-00AB-v9`,
        versionTag: "deleted-00AB-v9",
        versionId: "v9",
        etag: "e1",
        size: 12,
        lastModified: "2026-04-01T09:59:58.000Z",
        status: "failed",
        error: "the object was deleted before it could be processed",
      }),
    ]);
  });

  it("without version id, sequencer, etag, size or a readable time: etag 'unknown', sequencer 0, size 0, epoch", async () => {
    const w = makeWorld();
    await handleUploadBatch(w.deps, w.config, [goneMessage("m1", {}, "yesterday")]);

    expect(records(w)).toEqual([
      expect.objectContaining({
        uploadId: `${BUCKET}/input/gone.csv@deleted-0-unknown`,
        versionId: null,
        etag: "unknown",
        size: 0,
        lastModified: "1970-01-01T00:00:00.000Z",
      }),
    ]);
  });

  it("two events of one deleted key in a batch: the one S3 sequenced last names the record", async () => {
    const w = makeWorld();
    await handleUploadBatch(w.deps, w.config, [
      goneMessage("m1", { etag: "e1", sequencer: "0A" }),
      goneMessage("m2", { etag: "e2", sequencer: "0B" }),
      goneMessage("m3", { etag: "e3", sequencer: "0B" }),
      goneMessage("m4", { etag: "e0", sequencer: "09" }),
    ]);

    expect(records(w).map((u) => u.versionTag)).toEqual(["deleted-0B-e2"]);
  });

  it("events of one key with and without a sequencer do not break the batch", async () => {
    const w = makeWorld();
    const r = await handleUploadBatch(w.deps, w.config, [
      goneMessage("m1", { etag: "e1", sequencer: "0A" }),
      goneMessage("m2", { etag: "e2" }),
      goneMessage("m3", { etag: "e3" }),
    ]);

    expect(r.failedMessageIds).toEqual([]);
    expect(records(w).map((u) => u.versionTag)).toEqual(["deleted-0A-e1"]);
  });
});

describe("intake: the event's etag against S3's", () => {
  it("S3's quoted etag of the same version is not 'another version'; an event without etag says nothing", async () => {
    const w = makeWorld();
    const a = w.upload("input/a.csv");
    const head = w.objects.head.bind(w.objects);
    w.objects.head = async (bucket, key) => {
      const v = await head(bucket, key);
      return v && { ...v, etag: `"${v.etag}"` };
    };
    const noEtag = JSON.parse(w.message(a.version).body);
    delete noEtag.detail.object.etag;

    await handleUploadBatch(w.deps, w.config, [a.message, { messageId: "m-x", body: JSON.stringify(noEtag) }]);

    expect(w.log.lines.filter((l) => l.message.startsWith("event is for another version"))).toEqual([]);
  });
});
