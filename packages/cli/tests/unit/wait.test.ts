/**
 * `ingest wait` against a late S3 event (issue 11, gap 3): on AWS an upload's event can reach the queue seconds —
 * sometimes a minute — after the PUT, so for a while S3 holds the object while the queue and the ledger look idle.
 * The target is a fake (S3 listing, queue depths, ledger) driven by a fake clock.
 */
import { ListObjectVersionsCommand } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import type { UploadRecord } from "@ingest/core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { WaitTimeoutError } from "../../src/errors.js";
import { currentInputs, type Snapshot, unsettledInputs, waitUntilIdle } from "../../src/status.js";
import type { Target } from "../../src/target.js";

const T0 = Date.parse("2026-11-30T12:00:00Z");

const record = (key: string, versionId: string | null, etag: string, status: UploadRecord["status"]) =>
  ({ key, versionId, etag, status, versionTag: "t", runKey: "r1" }) as UploadRecord;

interface World {
  /** S3: the versions under input/ (newest first per key), as ListObjectVersions answers them. */
  versions: { Key: string; VersionId: string; ETag: string; IsLatest: boolean }[];
  /** The ledger's upload records as of a time (ms since T0). */
  uploadsAt: (ms: number) => UploadRecord[];
}

function fakeTarget(world: World, pageSize = 1000): Target {
  const s3 = {
    send: async (c: unknown) => {
      if (!(c instanceof ListObjectVersionsCommand)) throw new Error(`unexpected ${String(c)}`);
      const from = c.input.KeyMarker ? Number(c.input.KeyMarker) : 0;
      const page = world.versions.slice(from, from + pageSize);
      const more = from + pageSize < world.versions.length;
      return { Versions: page, IsTruncated: more, NextKeyMarker: String(from + pageSize), NextVersionIdMarker: "x" };
    },
  };
  const sqs = {
    send: async (c: unknown) => {
      if (!(c instanceof GetQueueAttributesCommand)) throw new Error(`unexpected ${String(c)}`);
      // the late event is not in the queue yet: the queue is empty the whole time it is late
      return { Attributes: { ApproximateNumberOfMessages: "0", ApproximateNumberOfMessagesNotVisible: "0" } };
    },
  };
  const ledger = {
    getSlot: async () => ({ holder: null, takenAt: null, wakeup: false }),
    listRuns: async () => [],
    listUploads: async () => world.uploadsAt(Date.now() - T0),
  };
  return {
    bucket: "b",
    ingestQueueUrl: "q",
    ingestDlqUrl: "d",
    recorderDlqUrl: "rd",
    s3,
    sqs,
    ledger,
  } as unknown as Target;
}

/** Runs `wait` on the fake clock; returns when it settled (ms since T0) and how. */
async function runWait(target: Target, timeoutSeconds: number) {
  let outcome: { at: number; snapshot?: Snapshot; error?: unknown } | null = null;
  waitUntilIdle(target, { timeoutSeconds, progress: false }).then(
    (snapshot) => {
      outcome = { at: Date.now() - T0, snapshot };
    },
    (error: unknown) => {
      outcome = { at: Date.now() - T0, error };
    },
  );
  for (let i = 0; i < 10 * timeoutSeconds && outcome === null; i++) await vi.advanceTimersByTimeAsync(250);
  if (outcome === null) throw new Error("wait neither returned nor timed out");
  return outcome as { at: number; snapshot?: Snapshot; error?: unknown };
}

describe("ingest wait with late S3 events", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("does not return before a late upload is recorded and processed", async () => {
    // uploaded at T0; its event reaches the pipeline at +30 s (pending), the run settles it at +45 s
    const world: World = {
      versions: [{ Key: "input/late.csv", VersionId: "v1", ETag: '"e1"', IsLatest: true }],
      uploadsAt: (ms) =>
        ms < 30_000 ? [] : [record("input/late.csv", "v1", "e1", ms < 45_000 ? "pending" : "processed")],
    };
    const r = await runWait(fakeTarget(world), 120);
    expect(r.error).toBeUndefined();
    expect(r.at).toBeGreaterThanOrEqual(45_000);
    expect(r.snapshot?.uploads.map((u) => [u.key, u.status])).toEqual([["input/late.csv", "processed"]]);
  });

  it("times out naming the current version still missing from the ledger", async () => {
    // an older version is processed; the current one's event never arrives
    const world: World = {
      versions: [
        { Key: "input/a.csv", VersionId: "v2", ETag: '"e2"', IsLatest: true },
        { Key: "input/a.csv", VersionId: "v1", ETag: '"e1"', IsLatest: false },
      ],
      uploadsAt: () => [record("input/a.csv", "v1", "e1", "processed")],
    };
    const r = await runWait(fakeTarget(world), 20);
    expect(r.error).toBeInstanceOf(WaitTimeoutError);
    expect((r.error as Error).message).toBe(
      "still busy after 20 s (1 upload(s) in s3://b/input/ not processed or failed in the ledger yet: input/a.csv (version v2))",
    );
  });

  it("owes nothing for deleted keys, non-input keys or old versions; matches an unversioned bucket by ETag", async () => {
    const versions = [
      { Key: "input/gone.csv", VersionId: "v1", ETag: '"e1"', IsLatest: false }, // its latest is a delete marker
      { Key: "input/notes.txt", VersionId: "v1", ETag: '"e1"', IsLatest: true },
      { Key: "input/u.csv", VersionId: "null", ETag: '"eu"', IsLatest: true },
      { Key: "input/f.csv", VersionId: "v9", ETag: '"ef"', IsLatest: true },
    ];
    const target = fakeTarget({ versions, uploadsAt: () => [] }, 2);
    const current = await currentInputs(target);
    expect(current).toEqual([
      { key: "input/u.csv", versionId: null, etag: "eu" },
      { key: "input/f.csv", versionId: "v9", etag: "ef" },
    ]);
    const uploads = [record("input/u.csv", null, '"eu"', "failed"), record("input/f.csv", "v8", "ef", "processed")];
    // f.csv's processed record is of another version (v8): v9 is still owed
    expect(unsettledInputs(current, uploads)).toEqual([{ key: "input/f.csv", versionId: "v9", etag: "ef" }]);
    expect(unsettledInputs(current, [...uploads, record("input/f.csv", "v9", "ef", "pending")])).toHaveLength(1);
  });
});
