/**
 * The fault layer's proxy on a real moto server, driven by the real SDK clients: which principal, IAM action and
 * resource ARN each call is recorded as; a lost answer is applied all the same; throttling is not; a crashed
 * invocation's later calls never reach the emulator; GSI lag answers an index Query as of a moment ago.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  CreateTableCommand,
  DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { GlueClient, StartJobRunCommand } from "@aws-sdk/client-glue";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientConfig } from "../../src/aws.js";
import { type FaultConfig, FaultDice, faultConfig } from "../../src/faults/config.js";
import { DynamoKeyLimits } from "../../src/faults/dynamo-limits.js";
import { GsiLag, motoGsiBackend } from "../../src/faults/gsi-lag.js";
import { installCrashCutoff, invocationScope } from "../../src/faults/invocations.js";
import { credentialsOf, type Principal } from "../../src/faults/principals.js";
import { FaultProxy } from "../../src/faults/proxy.js";
import { type CallLine, CallRecorder, callRecordPath, parseCallRecord } from "../../src/faults/record.js";
import { LocalGlueService } from "../../src/glue/service.js";
import { type MotoServer, startMoto } from "../../src/moto.js";
import { testPaths } from "../helpers/twin.js";

const ACCOUNT = "123456789012";
const paths = testPaths("fault-proxy");

async function layer(
  name: string,
  moto: MotoServer,
  rates: FaultConfig["rates"] = {},
  extra: Partial<FaultConfig> = {},
) {
  const dice = new FaultDice(faultConfig({ rates, ...extra }, 7));
  const record = new CallRecorder(callRecordPath(join(paths.twinDir, name)));
  let clock = Date.now();
  const gsiLag = new GsiLag(dice, motoGsiBackend(moto.endpoint), () => clock);
  const keyLimits = new DynamoKeyLimits(motoGsiBackend(moto.endpoint));
  const proxy = new FaultProxy({ aws: moto.endpoint, glue: "", dice, record, gsiLag, keyLimits });
  const endpoint = await proxy.start();
  const as = (p: Principal, maxAttempts = 3) => ({
    ...clientConfig(endpoint),
    credentials: credentialsOf(p),
    maxAttempts,
  });
  return {
    dice,
    proxy,
    endpoint,
    as,
    setClock: (t: number) => {
      clock = t;
    },
    async lines(): Promise<CallLine[]> {
      await new Promise((r) => setTimeout(r, 50));
      return parseCallRecord(readFileSync(record.file, "utf8"));
    },
    async stop() {
      await proxy.stop();
      await record.close();
    },
  };
}

describe("fault proxy", () => {
  let moto: MotoServer;
  const direct = () => new S3Client({ ...clientConfig(moto.endpoint), forcePathStyle: true });

  beforeAll(async () => {
    moto = await startMoto({ motoServer: paths.motoServer, logFile: join(paths.twinDir, "moto.log") });
  });
  afterAll(async () => {
    await moto?.stop();
  });

  it("records every call as principal + IAM action + resource ARNs + outcome, per service", async () => {
    const l = await layer("record", moto);
    const s3 = new S3Client({ ...l.as("batcher"), forcePathStyle: true });
    const ddb = new DynamoDBClient(l.as("recorder"));
    const sqs = new SQSClient(l.as("sweeper"));
    const events = new EventBridgeClient(l.as("glue-service"));
    const glueService = new LocalGlueService({
      jobs: [
        {
          name: "job1",
          maxConcurrentRuns: 1,
          timeoutMinutes: 1,
          glueVersion: "5.0",
          workerType: "G.1X",
          numberOfWorkers: 2,
        },
      ],
      executor: async () => ({ ok: true }),
      publish: async () => undefined,
    });
    l.proxy.glueEndpoint = await glueService.start();
    const glue = new GlueClient(l.as("batcher"));
    try {
      const B = "rec-bucket";
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      await s3.send(new PutBucketVersioningCommand({ Bucket: B, VersioningConfiguration: { Status: "Enabled" } }));
      const put = await s3.send(new PutObjectCommand({ Bucket: B, Key: "input/a b/ü.csv", Body: "x\n1\n" }));
      await s3.send(new GetObjectCommand({ Bucket: B, Key: "input/a b/ü.csv" }));
      await s3.send(new GetObjectCommand({ Bucket: B, Key: "input/a b/ü.csv", VersionId: put.VersionId }));
      await s3.send(new HeadObjectCommand({ Bucket: B, Key: "input/a b/ü.csv" }));
      await expect(s3.send(new GetObjectCommand({ Bucket: B, Key: "missing.csv" }))).rejects.toThrow();
      await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: "input/" }));
      const mp = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: "input/big.csv" }));
      const part = await s3.send(
        new UploadPartCommand({
          Bucket: B,
          Key: "input/big.csv",
          UploadId: mp.UploadId,
          PartNumber: 1,
          Body: "a\n1\n",
        }),
      );
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: B,
          Key: "input/big.csv",
          UploadId: mp.UploadId,
          MultipartUpload: { Parts: [{ ETag: part.ETag, PartNumber: 1 }] },
        }),
      );
      const mp2 = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: "input/gone.csv" }));
      await s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key: "input/gone.csv", UploadId: mp2.UploadId }));
      await s3.send(new CopyObjectCommand({ Bucket: B, Key: "processed/c.csv", CopySource: `${B}/input/big.csv` }));
      await s3.send(new DeleteObjectsCommand({ Bucket: B, Delete: { Objects: [{ Key: "processed/c.csv" }] } }));

      await ddb.send(
        new CreateTableCommand({
          TableName: "T",
          BillingMode: "PAY_PER_REQUEST",
          AttributeDefinitions: [
            { AttributeName: "pk", AttributeType: "S" },
            { AttributeName: "g", AttributeType: "S" },
          ],
          KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
          GlobalSecondaryIndexes: [
            {
              IndexName: "I",
              KeySchema: [{ AttributeName: "g", KeyType: "HASH" }],
              Projection: { ProjectionType: "ALL" },
            },
          ],
        }),
      );
      await ddb.send(new PutItemCommand({ TableName: "T", Item: { pk: { S: "a" }, g: { S: "x" } } }));
      await expect(
        ddb.send(
          new PutItemCommand({
            TableName: "T",
            Item: { pk: { S: "a" } },
            ConditionExpression: "attribute_not_exists(pk)",
          }),
        ),
      ).rejects.toThrow();
      await ddb.send(
        new QueryCommand({
          TableName: "T",
          IndexName: "I",
          KeyConditionExpression: "g = :g",
          ExpressionAttributeValues: { ":g": { S: "x" } },
        }),
      );
      await ddb.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Put: { TableName: "T", Item: { pk: { S: "b" } } } },
            {
              Update: {
                TableName: "T",
                Key: { pk: { S: "a" } },
                UpdateExpression: "SET v = :v",
                ExpressionAttributeValues: { ":v": { S: "1" } },
              },
            },
          ],
        }),
      );

      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "q1" }));
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "m" }));
      const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl,
          Entries: (got.Messages ?? []).map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
        }),
      );
      await events.send(new PutEventsCommand({ Entries: [{ Source: "s", DetailType: "d", Detail: "{}" }] }));
      await glue.send(new StartJobRunCommand({ JobName: "job1" }));
      await glueService.idle();

      const lines = await l.lines();
      const seen = lines.map((x) => `${x.principal} ${x.action} ${x.resources.join(",")} ${x.outcome}`);
      const obj = (k: string) => `arn:aws:s3:::${B}/${k}`;
      expect(seen).toEqual([
        `batcher s3:CreateBucket arn:aws:s3:::${B} ok`,
        `batcher s3:PutBucketVersioning arn:aws:s3:::${B} ok`,
        `batcher s3:PutObject ${obj("input/a b/ü.csv")} ok`,
        `batcher s3:GetObject ${obj("input/a b/ü.csv")} ok`,
        `batcher s3:GetObjectVersion ${obj("input/a b/ü.csv")} ok`,
        `batcher s3:GetObject ${obj("input/a b/ü.csv")} ok`,
        `batcher s3:GetObject ${obj("missing.csv")} error:NoSuchKey`,
        `batcher s3:ListBucket arn:aws:s3:::${B} ok`,
        `batcher s3:PutObject ${obj("input/big.csv")} ok`,
        `batcher s3:PutObject ${obj("input/big.csv")} ok`,
        `batcher s3:PutObject ${obj("input/big.csv")} ok`,
        `batcher s3:PutObject ${obj("input/gone.csv")} ok`,
        `batcher s3:AbortMultipartUpload ${obj("input/gone.csv")} ok`,
        `batcher s3:GetObject ${obj("input/big.csv")} ok`,
        `batcher s3:PutObject ${obj("processed/c.csv")} ok`,
        `batcher s3:DeleteObject ${obj("processed/c.csv")} ok`,
        `recorder dynamodb:CreateTable arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/T ok`,
        `recorder dynamodb:PutItem arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/T ok`,
        `recorder dynamodb:PutItem arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/T error:ConditionalCheckFailedException`,
        `recorder dynamodb:Query arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/T/index/I ok`,
        `recorder dynamodb:PutItem arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/T ok`,
        `recorder dynamodb:UpdateItem arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/T ok`,
        `sweeper sqs:CreateQueue arn:aws:sqs:us-east-1:${ACCOUNT}:q1 ok`,
        `sweeper sqs:SendMessage arn:aws:sqs:us-east-1:${ACCOUNT}:q1 ok`,
        `sweeper sqs:ReceiveMessage arn:aws:sqs:us-east-1:${ACCOUNT}:q1 ok`,
        `sweeper sqs:DeleteMessage arn:aws:sqs:us-east-1:${ACCOUNT}:q1 ok`,
        `glue-service events:PutEvents arn:aws:events:us-east-1:${ACCOUNT}:event-bus/default ok`,
        `batcher glue:StartJobRun arn:aws:glue:us-east-1:${ACCOUNT}:job/job1 ok`,
      ]);
      expect(lines.every((x) => !Number.isNaN(Date.parse(x.t)))).toBe(true);
      expect(new Set(lines.map((x) => x.service))).toEqual(new Set(["s3", "dynamodb", "sqs", "events", "glue"]));
    } finally {
      for (const c of [s3, ddb, sqs, events, glue]) c.destroy();
      await glueService.stop();
      await l.stop();
    }
  });

  it("a lost answer is applied (the object is there) though the client saw the connection reset", async () => {
    const setup = direct();
    await setup.send(new CreateBucketCommand({ Bucket: "lost" }));
    const l = await layer("lost", moto, { lostAnswer: 1 });
    const s3 = new S3Client({ ...l.as("glue-job", 1), forcePathStyle: true });
    try {
      await expect(s3.send(new PutObjectCommand({ Bucket: "lost", Key: "a.csv", Body: "x" }))).rejects.toThrow(
        /socket hang up|ECONNRESET/,
      );
      const got = await setup.send(new GetObjectCommand({ Bucket: "lost", Key: "a.csv" }));
      expect(await got.Body?.transformToString()).toBe("x");
      expect((await l.lines()).map((x) => `${x.principal} ${x.action} ${x.outcome}`)).toEqual([
        "glue-job s3:PutObject fault:lostAnswer",
      ]);
      expect(l.dice.counts).toEqual({ lostAnswer: 1 });
    } finally {
      s3.destroy();
      setup.destroy();
      await l.stop();
    }
  });

  it("throttling and 5xx answer before the request is applied, in the protocol's error shape", async () => {
    const setup = direct();
    await setup.send(new CreateBucketCommand({ Bucket: "throttled" }));
    const t = await layer("throttle", moto, { throttle: 1 });
    const e = await layer("5xx", moto, { serverError: 1 });
    const s3 = new S3Client({ ...t.as("batcher", 1), forcePathStyle: true });
    const ddb = new DynamoDBClient(t.as("batcher", 1));
    const s3e = new S3Client({ ...e.as("batcher", 1), forcePathStyle: true });
    try {
      await expect(
        s3.send(new PutObjectCommand({ Bucket: "throttled", Key: "a.csv", Body: "x" })),
      ).rejects.toMatchObject({
        name: "SlowDown",
        $metadata: { httpStatusCode: 503 },
      });
      await expect(
        ddb.send(
          new QueryCommand({
            TableName: "T",
            KeyConditionExpression: "pk = :p",
            ExpressionAttributeValues: { ":p": { S: "a" } },
          }),
        ),
      ).rejects.toMatchObject({
        name: "ThrottlingException",
      });
      await expect(
        s3e.send(new PutObjectCommand({ Bucket: "throttled", Key: "b.csv", Body: "x" })),
      ).rejects.toMatchObject({
        name: "InternalError",
        $metadata: { httpStatusCode: 500 },
      });
      const listed = await setup.send(new ListObjectsV2Command({ Bucket: "throttled" }));
      expect(listed.KeyCount ?? 0).toBe(0);
      expect((await t.lines()).map((x) => x.outcome)).toEqual(["fault:throttle", "fault:throttle"]);
      expect((await e.lines()).map((x) => x.outcome)).toEqual(["fault:serverError"]);
    } finally {
      for (const c of [s3, ddb, s3e, setup]) c.destroy();
      await t.stop();
      await e.stop();
    }
  });

  it("a crashed invocation's later calls never reach the emulator", async () => {
    installCrashCutoff();
    const setup = direct();
    await setup.send(new CreateBucketCommand({ Bucket: "crash" }));
    const l = await layer("crash", moto);
    const s3 = new S3Client({ ...l.as("batcher", 1), forcePathStyle: true });
    try {
      const inv = { principal: "batcher", crashed: false };
      await invocationScope.run(inv, async () => {
        await s3.send(new PutObjectCommand({ Bucket: "crash", Key: "before.csv", Body: "x" }));
        inv.crashed = true;
        await expect(s3.send(new PutObjectCommand({ Bucket: "crash", Key: "after.csv", Body: "x" }))).rejects.toThrow(
          /injected crash/,
        );
      });
      const keys = (await setup.send(new ListObjectsV2Command({ Bucket: "crash" }))).Contents?.map((c) => c.Key);
      expect(keys).toEqual(["before.csv"]);
      expect((await l.lines()).map((x) => x.resources[0])).toEqual(["arn:aws:s3:::crash/before.csv"]);
    } finally {
      s3.destroy();
      setup.destroy();
      await l.stop();
    }
  });

  it("GSI lag: an index Query misses what was written in the last gsiLagMs and still sees what just left the index", async () => {
    const l = await layer("gsi", moto, { gsiLag: 1 }, { gsiLagMs: 1_000 });
    const ddb = new DynamoDBClient(l.as("batcher"));
    const q = async () =>
      (
        await ddb.send(
          new QueryCommand({
            TableName: "L",
            IndexName: "pending",
            KeyConditionExpression: "gsi1pk = :p AND begins_with(gsi1sk, :s)",
            ExpressionAttributeValues: { ":p": { S: "PENDING" }, ":s": { S: "k" } },
          }),
        )
      ).Items?.map((i) => i.pk?.S);
    try {
      await ddb.send(
        new CreateTableCommand({
          TableName: "L",
          BillingMode: "PAY_PER_REQUEST",
          AttributeDefinitions: ["pk", "gsi1pk", "gsi1sk"].map((n) => ({
            AttributeName: n,
            AttributeType: "S" as const,
          })),
          KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
          GlobalSecondaryIndexes: [
            {
              IndexName: "pending",
              KeySchema: [
                { AttributeName: "gsi1pk", KeyType: "HASH" },
                { AttributeName: "gsi1sk", KeyType: "RANGE" },
              ],
              Projection: { ProjectionType: "ALL" },
            },
          ],
        }),
      );
      const t0 = Date.now();
      l.setClock(t0);
      await ddb.send(
        new PutItemCommand({ TableName: "L", Item: { pk: { S: "a" }, gsi1pk: { S: "PENDING" }, gsi1sk: { S: "k1" } } }),
      );
      l.setClock(t0 + 500);
      expect(await q()).toEqual([]); // written 500 ms ago: not in the index yet
      l.setClock(t0 + 1_500);
      expect(await q()).toEqual(["a"]);
      await ddb.send(
        new UpdateItemCommand({ TableName: "L", Key: { pk: { S: "a" } }, UpdateExpression: "REMOVE gsi1pk, gsi1sk" }),
      );
      await ddb.send(
        new PutItemCommand({ TableName: "L", Item: { pk: { S: "b" }, gsi1pk: { S: "PENDING" }, gsi1sk: { S: "k0" } } }),
      );
      l.setClock(t0 + 1_600);
      expect(await q()).toEqual(["a"]); // a left the index 100 ms ago: still seen; b is not seen yet
      l.setClock(t0 + 2_600);
      expect(await q()).toEqual(["b"]);

      // moto takes an index sort key over 1,024 bytes on UpdateItem; AWS (and so the twin) answers ValidationException
      const setSk = (v: string) =>
        ddb.send(
          new UpdateItemCommand({
            TableName: "L",
            Key: { pk: { S: "b" } },
            UpdateExpression: "SET #s = :s, #o = :o",
            ExpressionAttributeNames: { "#s": "gsi1sk", "#o": "payload" },
            ExpressionAttributeValues: { ":s": { S: v }, ":o": { S: "x".repeat(5000) } },
          }),
        );
      await expect(setSk("é".repeat(513))).rejects.toMatchObject({ name: "ValidationException" });
      await expect(setSk("k".repeat(1024))).resolves.toBeDefined();
    } finally {
      ddb.destroy();
      await l.stop();
    }
  });
});
