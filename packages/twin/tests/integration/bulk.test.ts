/**
 * The twin's bulk PutObject and GetObject (src/glue/bulk.ts) on the twin's own moto server (moto_server.py) through
 * the fault layer's proxy, driven as the local Glue service drives them: each object lands as an SDK PutObject would
 * leave it (bytes, ETag, CRC32, content type, a version, the same "Object Created" event) and is read as GetObject
 * reads it (by version; NoSuchKey / NoSuchVersion), the call record has one `glue-service s3:PutObject` /
 * `s3:GetObjectVersion` per object and attempt, each object gets its own faults, and no other principal may use them.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from "@aws-sdk/client-eventbridge";
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketNotificationConfigurationCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientConfig } from "../../src/aws.js";
import { FaultDice, faultConfig } from "../../src/faults/config.js";
import { accessKeyOf, credentialsOf } from "../../src/faults/principals.js";
import { FaultProxy } from "../../src/faults/proxy.js";
import { CallRecorder, callRecordPath, parseCallRecord } from "../../src/faults/record.js";
import { type BulkObject, bulkGetClient, bulkPutClient } from "../../src/glue/bulk.js";
import { PUBLISH_RETRY, publishInBulk, stageInBulk } from "../../src/glue/spark.js";
import { type MotoServer, startMoto } from "../../src/moto.js";
import { eventually, testPaths } from "../helpers/twin.js";

const paths = testPaths("bulk");
const BUCKET = "bulk-put-data";

async function layer(moto: MotoServer, name: string, rates: Record<string, number> = {}) {
  const dice = new FaultDice(faultConfig({ rates }, 11));
  const record = new CallRecorder(callRecordPath(join(paths.twinDir, name)));
  const proxy = new FaultProxy({ aws: moto.endpoint, glue: "", dice, record });
  const endpoint = await proxy.start();
  return {
    dice,
    endpoint,
    async lines() {
      await proxy.stop();
      await record.close();
      return parseCallRecord(readFileSync(record.file, "utf8"));
    },
  };
}

describe("the twin's bulk PutObject", () => {
  let moto: MotoServer;
  let s3: S3Client;
  let sqs: SQSClient;
  let queueUrl: string;

  beforeAll(async () => {
    moto = await startMoto({
      motoServer: paths.venvPython,
      script: paths.twinMotoServer,
      logFile: join(paths.twinDir, "moto.log"),
    });
    s3 = new S3Client({ ...clientConfig(moto.endpoint), forcePathStyle: true });
    sqs = new SQSClient(clientConfig(moto.endpoint));
    const events = new EventBridgeClient(clientConfig(moto.endpoint));
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: "Enabled" } }));
    await s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: BUCKET,
        NotificationConfiguration: { EventBridgeConfiguration: {} },
      }),
    );
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: "bulk-put-events" }))).QueueUrl ?? "";
    const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] })))
      .Attributes?.QueueArn;
    await events.send(
      new PutRuleCommand({ Name: "bulk-put-all-s3", EventPattern: JSON.stringify({ source: ["aws.s3"] }) }),
    );
    await events.send(new PutTargetsCommand({ Rule: "bulk-put-all-s3", Targets: [{ Id: "q", Arn: arn }] }));
    events.destroy();
  });
  afterAll(async () => {
    s3?.destroy();
    sqs?.destroy();
    await moto?.stop();
  });

  async function drainEvents(count: number) {
    const got: { "detail-type": string; detail: Record<string, unknown> & { object: Record<string, unknown> } }[] = [];
    await eventually(`${count} events`, async () => {
      const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
      for (const m of r.Messages ?? []) got.push(JSON.parse(m.Body ?? "{}"));
      return got.length >= count;
    });
    return got;
  }

  it("leaves each object as an SDK PutObject does: bytes, ETag, CRC32, content type, a version, the same event", async () => {
    const l = await layer(moto, "same");
    const csv = Buffer.from("id,amount\n1,2.5\n");
    const json = Buffer.from('{"format":"stats/1"}\n');
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: "processed/sdk/part-00000.csv", Body: csv, ContentType: "text/csv" }),
    );
    const put = bulkPutClient(l.endpoint, accessKeyOf("glue-service"));
    const results = await put(BUCKET, [
      { key: "processed/bulk/part-00000.csv", contentType: "text/csv", body: csv },
      { key: "stats/bulk.json", contentType: "application/json", body: json },
    ]);
    const md5 = (b: Buffer) => `"${createHash("md5").update(b).digest("hex")}"`;
    expect(results).toEqual([
      { key: "processed/bulk/part-00000.csv", outcome: "ok", etag: md5(csv) },
      { key: "stats/bulk.json", outcome: "ok", etag: md5(json) },
    ]);
    const head = async (Key: string) => {
      const { $metadata, LastModified, VersionId, ...rest } = await s3.send(
        new HeadObjectCommand({ Bucket: BUCKET, Key, ChecksumMode: "ENABLED" }),
      );
      expect(VersionId).toMatch(/^[0-9a-f-]{36}$/);
      return rest;
    };
    const sdk = await head("processed/sdk/part-00000.csv");
    expect(sdk).toMatchObject({ ETag: md5(csv), ContentType: "text/csv", ContentLength: csv.length });
    expect(await head("processed/bulk/part-00000.csv")).toEqual(sdk);
    expect(await head("stats/bulk.json")).toMatchObject({ ETag: md5(json), ContentType: "application/json" });
    const body = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "processed/bulk/part-00000.csv" }));
    expect(Buffer.from((await body.Body?.transformToByteArray()) ?? [])).toEqual(csv);

    // the same "Object Created" event (reason PutObject), one per object, no "Object Tags Added"
    const events = await drainEvents(3);
    expect(events.map((e) => e["detail-type"])).toEqual(["Object Created", "Object Created", "Object Created"]);
    const byKey = new Map(events.map((e) => [e.detail.object.key, e.detail]));
    const [viaSdk, viaBulk] = ["processed/sdk/part-00000.csv", "processed/bulk/part-00000.csv"].map((k) => {
      const d = byKey.get(k);
      return { reason: d?.reason, etag: d?.object.etag, size: d?.object.size, versioned: !!d?.object["version-id"] };
    });
    expect(viaSdk).toEqual({
      reason: "PutObject",
      etag: md5(csv).replaceAll('"', ""),
      size: csv.length,
      versioned: true,
    });
    expect(viaBulk).toEqual(viaSdk);
    expect(byKey.get("stats/bulk.json")?.reason).toBe("PutObject");

    const lines = await l.lines();
    expect(lines.map((x) => `${x.principal} ${x.action} ${x.resources.join(",")} ${x.outcome}`)).toEqual([
      `glue-service s3:PutObject arn:aws:s3:::${BUCKET}/processed/bulk/part-00000.csv ok`,
      `glue-service s3:PutObject arn:aws:s3:::${BUCKET}/stats/bulk.json ok`,
    ]);
  });

  it("gives each object its own faults; the executor's retries land every object once, byte-identical", async () => {
    const l = await layer(moto, "faults", { throttle: 0.2, serverError: 0.1, lostAnswer: 0.2 });
    const objects: BulkObject[] = Array.from({ length: 60 }, (_, i) => ({
      key: `processed/faults/f${i}/part-00000.csv`,
      contentType: "text/csv",
      body: Buffer.from(`id\n${i}\n`),
    }));
    const put = bulkPutClient(l.endpoint, accessKeyOf("glue-service"));
    await publishInBulk(put, BUCKET, objects, { ...PUBLISH_RETRY, sleep: async () => undefined });
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "processed/faults/" }));
    expect(listed.Contents?.map((c) => c.Key).sort()).toEqual(objects.map((o) => o.key).sort());
    for (const i of [0, 17, 59]) {
      const r = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: objects[i]?.key }));
      expect(await r.Body?.transformToString()).toBe(`id\n${i}\n`);
    }
    const lines = await l.lines();
    expect(new Set(lines.map((x) => `${x.principal} ${x.action}`))).toEqual(new Set(["glue-service s3:PutObject"]));
    const outcomes = new Map<string, string[]>();
    for (const x of lines)
      outcomes.set(x.resources[0] ?? "", [...(outcomes.get(x.resources[0] ?? "") ?? []), x.outcome]);
    // every object: its attempts in order, each a fault until the last, which is ok
    expect(outcomes.size).toBe(60);
    for (const [arn, seen] of outcomes) {
      expect(arn.startsWith(`arn:aws:s3:::${BUCKET}/processed/faults/f`)).toBe(true);
      expect(seen.at(-1)).toBe("ok");
      expect(seen.slice(0, -1).every((o) => o.startsWith("fault:"))).toBe(true);
    }
    const counts = l.dice.counts;
    expect(counts.throttle ?? 0).toBeGreaterThan(0);
    expect(counts.lostAnswer ?? 0).toBeGreaterThan(0);
    expect(lines.filter((x) => x.outcome === "fault:throttle")).toHaveLength(counts.throttle ?? 0);
    expect(lines.filter((x) => x.outcome === "fault:lostAnswer")).toHaveLength(counts.lostAnswer ?? 0);
    expect(lines.filter((x) => x.outcome === "fault:serverError")).toHaveLength(counts.serverError ?? 0);
  });

  it("is the local Glue service's own: another principal is refused and nothing is written", async () => {
    const l = await layer(moto, "refused");
    const put = bulkPutClient(l.endpoint, credentialsOf("batcher").accessKeyId);
    await expect(
      put(BUCKET, [{ key: "processed/refused.csv", contentType: "text/csv", body: Buffer.from("x") }]),
    ).rejects.toMatchObject({ name: "AccessDenied", $metadata: { httpStatusCode: 403 } });
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "processed/refused" }));
    expect(listed.KeyCount).toBe(0);
    const missing = bulkPutClient(l.endpoint, accessKeyOf("glue-service"));
    await expect(
      missing("no-such-bucket-here", [{ key: "k", contentType: "text/csv", body: Buffer.from("x") }]),
    ).rejects.toMatchObject({ name: "NoSuchBucket", $metadata: { httpStatusCode: 404 } });
    expect((await l.lines()).map((x) => x.outcome)).toEqual(["error:NoSuchBucket"]);
  });

  it("reads each object as GetObject does, by version id; a missing one answers NoSuchKey / NoSuchVersion", async () => {
    const v1 = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "input/get/a.csv", Body: "id\n1\n" }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "input/get/a.csv", Body: "id\n2\n" }));
    const l = await layer(moto, "get", { throttle: 0.3, lostAnswer: 0.3 });
    const get = bulkGetClient(l.endpoint, accessKeyOf("glue-service"));
    const wanted = [
      { key: "input/get/a.csv", versionId: v1.VersionId },
      { key: "input/get/a.csv" },
      { key: "input/get/none.csv" },
    ];
    const staged = await stageInBulk(get, BUCKET, wanted, { ...PUBLISH_RETRY, sleep: async () => undefined });
    expect(wanted.map((w) => staged.get(w)?.toString("utf8") ?? null)).toEqual(["id\n1\n", "id\n2\n", null]);
    const plain = await layer(moto, "get-plain");
    const once = bulkGetClient(plain.endpoint, accessKeyOf("glue-service"));
    expect(await once(BUCKET, [{ key: "input/get/none.csv", versionId: v1.VersionId }])).toEqual([
      { key: "input/get/none.csv", outcome: "error:NoSuchVersion" },
    ]);
    expect((await plain.lines()).map((x) => `${x.action} ${x.outcome}`)).toEqual([
      "s3:GetObjectVersion error:NoSuchVersion",
    ]);
    const lines = await l.lines();
    const arn = (k: string) => `arn:aws:s3:::${BUCKET}/${k}`;
    const last = (action: string, k: string) =>
      lines.filter((x) => x.action === action && x.resources[0] === arn(k)).map((x) => x.outcome);
    expect(new Set(lines.map((x) => x.principal))).toEqual(new Set(["glue-service"]));
    expect(last("s3:GetObjectVersion", "input/get/a.csv").at(-1)).toBe("ok");
    expect(last("s3:GetObject", "input/get/a.csv").at(-1)).toBe("ok");
    expect(last("s3:GetObject", "input/get/none.csv").at(-1)).toBe("error:NoSuchKey");
    expect(lines.some((x) => x.outcome === "fault:throttle")).toBe(true);
    expect(lines.some((x) => x.outcome === "fault:lostAnswer")).toBe(true);
  });
});
