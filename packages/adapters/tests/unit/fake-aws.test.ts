/** The fake AWS of the coalescing simulation, through the real adapters: what it models, each on purpose. */
import { GetJobRunCommand } from "@aws-sdk/client-glue";
import { GLUE_ARGUMENTS, LEDGER_TABLE, toUpload } from "@ingest/core";
import { describe, expect, it } from "vitest";
import { DynamoLedger } from "../../src/dynamo-ledger.js";
import { GlueJobs } from "../../src/glue-jobs.js";
import { S3Objects } from "../../src/s3-objects.js";
import { FakeAws } from "../helpers/fake-aws.js";

function world(random: () => number = () => 0.5) {
  let ms = Date.parse("2026-04-01T10:00:00.400Z");
  const fake = new FakeAws({
    now: () => ms,
    random,
    tableName: "ledger",
    schema: { hashKey: LEDGER_TABLE.hashKey, rangeKey: LEDGER_TABLE.rangeKey, indexes: [LEDGER_TABLE.pendingIndex] },
    job: { name: "job", maxConcurrentRuns: 1, workerType: "G.1X", numberOfWorkers: 10, timeoutMinutes: 120 },
  });
  const c = fake.clients({ instantRetries: true });
  return {
    fake,
    clients: c,
    advance: (d: number) => {
      ms += d;
    },
    ledger: new DynamoLedger({ client: c.dynamodb, tableName: "ledger" }),
    objects: new S3Objects(c.s3),
    glue: new GlueJobs(c.glue, "job", { sleep: async () => {}, now: () => new Date(ms) }),
  };
}

describe("fake S3 through S3Objects", () => {
  it("answers HeadObject with the MD5 ETag, a random version id and Last-Modified to the second", async () => {
    const w = world();
    expect(await w.objects.head("b", "input/a.csv")).toBeNull();
    const v = w.fake.putUpload("b", "input/a.csv", "id\n1\n");
    const head = await w.objects.head("b", "input/a.csv");
    expect(head).toEqual({
      bucket: "b",
      key: "input/a.csv",
      etag: '"bc9280dfc1d4e67233f138f5bbbf0951"',
      versionId: v.versionId,
      lastModified: "2026-04-01T10:00:00.000Z",
      size: 5,
    });
    expect(v.versionId).toMatch(/^[0-9A-Za-z._]{32}$/);
  });

  it("gives a multipart upload the Last-Modified of its initiation, earlier than a later simple PUT", async () => {
    const w = world();
    w.fake.putUpload("b", "input/a.csv", "one");
    w.advance(5_000);
    const mp = w.fake.putUpload("b", "input/a.csv", "two", {
      multipartPartCount: 2,
      initiatedMs: Date.parse("2026-04-01T09:59:00Z"),
    });
    const head = await w.objects.head("b", "input/a.csv");
    expect(head?.lastModified).toBe("2026-04-01T09:59:00.000Z");
    expect(head?.etag).toMatch(/^"[0-9a-f]{32}-2"$/);
    expect(head?.versionId).toBe(mp.versionId);
  });

  it("stores what putJson writes and getText reads it back; a missing key is null", async () => {
    const w = world();
    await w.objects.putJson("b", "manifests/r.json", { a: 1 });
    expect(JSON.parse((await w.objects.getText("b", "manifests/r.json")) ?? "")).toEqual({ a: 1 });
    expect(await w.objects.getText("b", "manifests/none.json")).toBeNull();
    expect(w.fake.usage).toMatchObject({ s3PutList: 1, s3Get: 2 });
  });
});

describe("fake DynamoDB: the pending index lags", () => {
  it("lists a recorded upload only once the index has caught up", async () => {
    const w = world();
    w.fake.faults = { ...w.fake.faults, dynamodb: { lostAnswer: 0, throttle: 0, gsiLagMs: [2_000, 2_000] } };
    const u = toUpload({
      bucket: "b",
      key: "input/a.csv",
      versionId: "v",
      etag: '"e"',
      lastModified: "2026-04-01T09:59:00.000Z",
      size: 1,
    });
    await w.ledger.recordUpload(u, "2026-04-01T10:00:00.000Z");
    expect(await w.ledger.listPending(10)).toEqual([]);
    expect((await w.ledger.getUpload(u.uploadId))?.status).toBe("pending"); // the table itself is consistent
    w.advance(2_000);
    expect((await w.ledger.listPending(10)).map((r) => r.uploadId)).toEqual([u.uploadId]);
  });
});

describe("fake Glue through GlueJobs", () => {
  it("starts a run with its arguments and capacity, refuses a second while it runs", async () => {
    const w = world();
    const id = await w.glue.startRun(
      { [`--${GLUE_ARGUMENTS.runKey}`]: "r1" },
      { workerType: "G.1X", numberOfWorkers: 3, timeoutMinutes: 45, executionClass: "STANDARD" },
    );
    expect(await w.glue.getRun(id)).toMatchObject({ state: "RUNNING", arguments: { "--run_key": "r1" } });
    const raw = await w.clients.glue.send(new GetJobRunCommand({ JobName: "job", RunId: id }));
    expect(raw.JobRun).toMatchObject({ NumberOfWorkers: 3, Timeout: 45 });
    await expect(w.glue.startRun({ "--run_key": "r2" })).rejects.toMatchObject({
      name: "StartRunError",
      started: "no",
      cause: { name: "ConcurrentRunsExceededException" },
    });
  });

  it("answers every call with a 500 during an outage, applying nothing", async () => {
    const w = world();
    w.fake.glueOutage = { fromMs: 0, toMs: Number.MAX_SAFE_INTEGER };
    await expect(w.glue.startRun({ "--run_key": "r1" })).rejects.toMatchObject({
      name: "StartRunError",
      started: "unknown",
      cause: { $metadata: { httpStatusCode: 500 } },
    });
    expect(w.fake.glueRuns.size).toBe(0);
  });
});

describe("fake S3: ListObjectsV2", () => {
  it("lists keys under a prefix in UTF-8 byte order after StartAfter, a page at a time", async () => {
    const w = world();
    for (const k of ["input/b.csv", "input/a.csv", "input/é.csv", "input/z.csv", "other/x.csv"]) {
      w.fake.putUpload("b", k, k);
    }
    const { ListObjectsV2Command } = await import("@aws-sdk/client-s3");
    const first = await w.clients.s3.send(new ListObjectsV2Command({ Bucket: "b", Prefix: "input/", MaxKeys: 2 }));
    expect(first.Contents?.map((o) => o.Key)).toEqual(["input/a.csv", "input/b.csv"]);
    expect(first.IsTruncated).toBe(true);
    const rest = await w.clients.s3.send(
      new ListObjectsV2Command({ Bucket: "b", Prefix: "input/", StartAfter: "input/b.csv" }),
    );
    // "é" is two UTF-8 bytes starting 0xC3: after "z" (0x7A)
    expect(rest.Contents?.map((o) => o.Key)).toEqual(["input/z.csv", "input/é.csv"]);
    expect(rest.IsTruncated).toBe(false);
  });
});
