/** The reconciler handler's wiring: the bucket and table from the environment, S3 listing → ledger → run start. */
import { GlueClient, StartJobRunCommand } from "@aws-sdk/client-glue";
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { handler } from "../../src/reconciler.js";
import { resetRuntime } from "../../src/runtime.js";

const s3 = mockClient(S3Client);
const ddb = mockClient(DynamoDBDocumentClient);
const glue = mockClient(GlueClient);
const savedEnv = { ...process.env };

beforeEach(() => {
  process.env.PIPELINE_STAGE = "test";
  process.env.DATA_BUCKET = "data-bucket";
  process.env.LEDGER_TABLE = "ledger";
  process.env.GLUE_JOB_NAME = "csv-ingest-job";
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  process.env.POWERTOOLS_LOG_LEVEL = "SILENT";
  resetRuntime();
  s3.reset();
  ddb.reset();
  glue.reset();
});

afterEach(() => {
  process.env = { ...savedEnv };
});

describe("reconciler handler", () => {
  it("lists the data bucket's input/ and records into the ledger table what it lacks", async () => {
    const lastModified = new Date("2026-04-01T10:00:00Z");
    s3.on(ListObjectsV2Command).resolves({
      Contents: [{ Key: "input/a.csv", ETag: '"e1"', LastModified: lastModified, Size: 5 }],
      IsTruncated: false,
    });
    s3.on(HeadObjectCommand).resolves({ ETag: '"e1"', LastModified: lastModified, ContentLength: 5 });
    s3.on(PutObjectCommand).resolves({});
    ddb.on(GetCommand).resolves({}); // no saved position, no slot
    ddb.on(QueryCommand).resolves({ Items: [] }); // the ledger lacks input/a.csv; nothing pending in the index
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    glue.on(StartJobRunCommand).resolves({ JobRunId: "jr_1" });

    const report = await handler();

    expect(s3.commandCalls(ListObjectsV2Command)[0]?.args[0].input).toEqual({
      Bucket: "data-bucket",
      Prefix: "input/",
      MaxKeys: 1000,
    });
    const puts = ddb.commandCalls(PutCommand).map((c) => c.args[0].input);
    expect(puts.find((p) => p.Item?.type === "upload")).toMatchObject({
      TableName: "ledger",
      Item: { key: "input/a.csv", bucket: "data-bucket", status: "pending", etag: "e1" },
    });
    expect(puts.find((p) => p.Item?.type === "reconciler")).toMatchObject({
      TableName: "ledger",
      Item: { afterKey: null },
    });
    expect(report).toMatchObject({ listed: 1, checked: 1, recorded: 1, passEnded: true });
  });
});
