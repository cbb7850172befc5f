import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DescribeRuleCommand, EventBridgeClient, ListTargetsByRuleCommand } from "@aws-sdk/client-eventbridge";
import { CreateJobCommand, GetDatabaseCommand, GetTablesCommand, GlueClient } from "@aws-sdk/client-glue";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { glueRunEndedPattern, LEDGER_TABLE, objectCreatedPattern, pipelineConfig, TWIN_STAGE } from "@ingest/core";
import type { SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientConfig } from "../../src/aws.js";
import { TWIN_NAMES } from "../../src/constants.js";
import type { Twin } from "../../src/twin.js";
import { eventually, sleep, startTestTwin } from "../helpers/twin.js";

const config = pipelineConfig(TWIN_STAGE);

describe("twin provisioning on moto", () => {
  let twin: Twin;
  const batches: SQSEvent[] = [];
  let s3: S3Client;

  beforeAll(async () => {
    twin = await startTestTwin("provision", {
      handlers: {
        batcher: async (e) => {
          batches.push(e);
          return { batchItemFailures: [] };
        },
        recorder: async () => ({ batchItemFailures: [] }),
        sweeper: async () => ({}),
      },
      executor: async () => ({ ok: true }),
      sweepIntervalMs: 0,
    });
    s3 = new S3Client({ ...clientConfig(twin.endpoints.aws), forcePathStyle: true });
  });
  afterAll(async () => {
    s3?.destroy();
    await twin?.stop();
  });

  it("creates the rules with the config module's pattern objects, targeting the queues", async () => {
    const events = new EventBridgeClient(clientConfig(twin.endpoints.aws));
    const created = await events.send(new DescribeRuleCommand({ Name: TWIN_NAMES.objectCreatedRule }));
    expect(JSON.parse(created.EventPattern ?? "")).toEqual(objectCreatedPattern(TWIN_NAMES.bucket));
    const ended = await events.send(new DescribeRuleCommand({ Name: TWIN_NAMES.glueRunEndedRule }));
    expect(JSON.parse(ended.EventPattern ?? "")).toEqual(glueRunEndedPattern(TWIN_NAMES.glueJob));
    const t1 = await events.send(new ListTargetsByRuleCommand({ Rule: TWIN_NAMES.objectCreatedRule }));
    expect(t1.Targets?.map((t) => t.Arn)).toEqual([twin.queues.ingest.arn]);
    const t2 = await events.send(new ListTargetsByRuleCommand({ Rule: TWIN_NAMES.glueRunEndedRule }));
    expect(t2.Targets?.map((t) => t.Arn)).toEqual([twin.queues.recorder.arn]);
    events.destroy();
  });

  it("versions the data bucket, as prod's", async () => {
    const v = await s3.send(new GetBucketVersioningCommand({ Bucket: TWIN_NAMES.bucket }));
    expect(v.Status).toBe("Enabled");
  });

  it("gives the ingest queue the config's visibility timeout and redrive", async () => {
    const sqs = new SQSClient(clientConfig(twin.endpoints.aws));
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: twin.queues.ingest.url, AttributeNames: ["All"] }),
    );
    expect(Number(Attributes?.VisibilityTimeout)).toBe(config.queue.visibilityTimeoutSeconds);
    expect(JSON.parse(Attributes?.RedrivePolicy ?? "{}")).toEqual({
      deadLetterTargetArn: twin.queues.ingestDlq.arn,
      maxReceiveCount: config.queue.maxReceiveCount,
    });
    sqs.destroy();
  });

  it("creates the ledger table with the shared keys and the pending index", async () => {
    const dynamo = new DynamoDBClient(clientConfig(twin.endpoints.aws));
    const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: TWIN_NAMES.ledgerTable }));
    expect(Table?.KeySchema).toEqual([
      { AttributeName: LEDGER_TABLE.hashKey, KeyType: "HASH" },
      { AttributeName: LEDGER_TABLE.rangeKey, KeyType: "RANGE" },
    ]);
    expect(Table?.GlobalSecondaryIndexes?.[0]?.IndexName).toBe(LEDGER_TABLE.pendingIndex.name);
    dynamo.destroy();
  });

  it("creates the Data Catalog database and tables over the data bucket; the local Glue service answers them", async () => {
    const bucket = "s3://csv-ingest-local-data/";
    const viaService = new GlueClient(clientConfig(twin.endpoints.glue));
    const viaEmulator = new GlueClient(clientConfig(twin.endpoints.aws));
    const db = await viaService.send(new GetDatabaseCommand({ Name: "csv_ingest_local" }));
    expect(db.Database?.Name).toBe("csv_ingest_local");
    const { TableList } = await viaService.send(new GetTablesCommand({ DatabaseName: "csv_ingest_local" }));
    const summary = (TableList ?? [])
      .map((t) => [t.Name, t.StorageDescriptor?.Location, t.PartitionKeys?.map((k) => k.Name).join(",") ?? ""])
      .sort();
    expect(summary).toEqual([
      ["file_stats", `${bucket}stats/files/`, "ingest_date"],
      ["processed_csv", `${bucket}processed/`, ""],
      ["processed_rows", `${bucket}parquet/`, "ingest_date"],
      ["rejected_rows", `${bucket}rejected/`, ""],
    ]);
    const rows = TableList?.find((t) => t.Name === "processed_rows");
    expect(rows?.StorageDescriptor?.Columns?.map((c) => c.Type)).toEqual([
      "string",
      "string",
      "string",
      "boolean",
      "date",
      "decimal(24,9)",
      "string",
      "string",
      "decimal(38,9)",
      "string",
      "timestamp",
      "string",
      "bigint",
    ]);
    expect(rows?.Parameters?.["storage.location.template"]).toBe(`${bucket}parquet/ingest_date=\${ingest_date}/`);
    // the same catalog whichever endpoint a client is given
    const direct = await viaEmulator.send(new GetTablesCommand({ DatabaseName: "csv_ingest_local" }));
    expect(direct.TableList?.map((t) => t.Name).sort()).toEqual(summary.map(([name]) => name));
    // only the Data Catalog is passed on: other Glue calls the service does not implement are still refused
    await expect(
      viaService.send(new CreateJobCommand({ Name: "other", Role: "r", Command: { Name: "glueetl" } })),
    ).rejects.toMatchObject({ name: "UnknownOperationException" });
    viaService.destroy();
    viaEmulator.destroy();
  });

  // moto's GetBucketNotificationConfiguration leaves out EventBridgeConfiguration, so the bucket's notification
  // setting is proven by its effect: an upload reaches the ingest queue through the rule.
  it("delivers an upload under input/*.csv to the batching handler as a real SQS event; nothing else", async () => {
    await s3.send(new PutObjectCommand({ Bucket: TWIN_NAMES.bucket, Key: "other/x.csv", Body: "a\n1\n" }));
    await s3.send(new PutObjectCommand({ Bucket: TWIN_NAMES.bucket, Key: "input/x.txt", Body: "a\n1\n" }));
    await s3.send(new PutObjectCommand({ Bucket: TWIN_NAMES.bucket, Key: "input/sub dir/é 1.csv", Body: "a\n1\n" }));
    const record = await eventually("a batch", () => batches[0]?.Records[0]);
    await sleep(config.queue.batchingWindowSeconds * 1000 + 1500);
    expect(batches.flatMap((b) => b.Records)).toHaveLength(1);
    expect(record.eventSource).toBe("aws:sqs");
    expect(record.eventSourceARN).toBe(twin.queues.ingest.arn);
    expect(record.attributes.ApproximateReceiveCount).toBe("1");
    expect(record.receiptHandle).not.toBe("");
    const body = JSON.parse(record.body);
    expect(body.source).toBe("aws.s3");
    expect(body["detail-type"]).toBe("Object Created");
    expect(body.detail.object.key).toBe("input/sub dir/é 1.csv");
    expect(body.detail.reason).toBe("PutObject");
  });

  it("emits one Object Created event per multipart upload (reason CompleteMultipartUpload), as AWS does", async () => {
    const Bucket = TWIN_NAMES.bucket;
    const Key = "input/multipart.csv";
    const seen = () =>
      batches
        .flatMap((b) => b.Records)
        .map((r) => JSON.parse(r.body))
        .filter((e) => e.detail.object.key === Key);
    const mp = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
    const part = await s3.send(
      new UploadPartCommand({ Bucket, Key, UploadId: mp.UploadId, PartNumber: 1, Body: "a\n1\n" }),
    );
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key,
        UploadId: mp.UploadId,
        MultipartUpload: { Parts: [{ ETag: part.ETag, PartNumber: 1 }] },
      }),
    );
    await eventually("the event", () => seen().length > 0);
    await sleep(config.queue.batchingWindowSeconds * 1000 + 1500);
    const events = seen();
    expect(events.map((e) => e.detail.reason)).toEqual(["CompleteMultipartUpload"]);
    expect(events[0].detail.object.etag).toMatch(/-1$/);
  });
});
