import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import {
  ConcurrentRunsExceededException,
  GetJobRunCommand,
  GlueClient,
  StartJobRunCommand,
} from "@aws-sdk/client-glue";
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { ChangeMessageVisibilityBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { Context, SQSEvent, SQSRecord } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { handler as batcher } from "../../src/batcher.js";
import { handler as recorder } from "../../src/recorder.js";
import { resetRuntime } from "../../src/runtime.js";

const s3 = mockClient(S3Client);
const ddb = mockClient(DynamoDBDocumentClient);
const glue = mockClient(GlueClient);
const sqs = mockClient(SQSClient);
const savedEnv = { ...process.env };

function sqsRecord(messageId: string, body: unknown): SQSRecord {
  return {
    messageId,
    receiptHandle: `rh-${messageId}`,
    body: JSON.stringify(body),
    attributes: {
      ApproximateReceiveCount: "1",
      SentTimestamp: "0",
      SenderId: "events",
      ApproximateFirstReceiveTimestamp: "0",
    },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:ingest",
    awsRegion: "us-east-1",
  };
}

function objectCreated(key: string) {
  return {
    source: "aws.s3",
    "detail-type": "Object Created",
    time: "2026-04-01T10:00:00Z",
    detail: { bucket: { name: "data-bucket" }, object: { key, size: 5, etag: `etag-${key}` } },
  };
}

/** A Glue Job State Change event as the rule delivers it to the recorder queue. */
function runEnded(detail: Record<string, unknown>) {
  return { source: "aws.glue", "detail-type": "Glue Job State Change", detail };
}

/** The part of GetObject's streaming body the adapter uses. */
function body(text: string) {
  // biome-ignore lint/suspicious/noExplicitAny: a minimal stand-in for the SDK's streaming payload
  return { transformToString: async () => text } as any;
}

beforeEach(() => {
  process.env.PIPELINE_STAGE = "test";
  process.env.DATA_BUCKET = "data-bucket";
  process.env.LEDGER_TABLE = "ledger";
  process.env.GLUE_JOB_NAME = "csv-ingest-job";
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  process.env.POWERTOOLS_LOG_LEVEL = "SILENT";
  resetRuntime();
  vi.useFakeTimers();
  s3.reset();
  ddb.reset();
  glue.reset();
  sqs.reset();
  s3.on(HeadObjectCommand).callsFake((input: { Key: string }) => ({
    ETag: `"etag-${input.Key}"`,
    LastModified: new Date("2026-04-01T10:00:00Z"),
    ContentLength: 5,
  }));
  ddb.on(PutCommand).resolves({});
  ddb.on(UpdateCommand).resolves({});
  ddb.on(GetCommand).resolves({}); // no such item (e.g. no health record yet: no system failure so far)
  // the run slot reads back whoever took it last
  ddb.on(GetCommand, { Key: { pk: "SLOT", sk: "SLOT" } }).callsFake(() => {
    const take = ddb
      .commandCalls(UpdateCommand)
      .filter((c) => c.args[0].input.ConditionExpression === "attribute_not_exists(holder)")
      .at(-1);
    const holder = take?.args[0].input.ExpressionAttributeValues?.[":rk"];
    return { Item: holder ? { pk: "SLOT", sk: "SLOT", holder, wakeup: false } : undefined };
  });
});

afterEach(() => {
  process.env = { ...savedEnv };
  vi.useRealTimers();
});

/** Runs a handler on the fake clock: its waits (the settle window, StartJobRun's backoff) take no real time. */
async function onFakeClock<T>(handling: Promise<T>): Promise<T> {
  let done = false;
  const result = handling.finally(() => {
    done = true;
  });
  while (!done) await vi.advanceTimersByTimeAsync(1_000);
  return result;
}

/** The pending index answers with what PutCommand recorded. */
function pendingFromPuts() {
  ddb.on(QueryCommand).callsFake(() => ({
    Items: ddb
      .commandCalls(PutCommand)
      .map((c) => c.args[0].input.Item as Record<string, unknown>)
      .filter((i) => i.type === "upload" && i.status === "pending"),
  }));
}

describe("batcher handler", () => {
  it("records uploads, writes one manifest and starts ONE Glue run with it", async () => {
    pendingFromPuts();
    glue.on(StartJobRunCommand).resolves({ JobRunId: "jr_1" });
    const event: SQSEvent = {
      Records: [sqsRecord("m1", objectCreated("input/a.csv")), sqsRecord("m2", objectCreated("input/b c.csv"))],
    };

    const response = await onFakeClock(batcher(event));

    expect(response).toEqual({ batchItemFailures: [] });
    expect(
      s3
        .commandCalls(HeadObjectCommand)
        .map((c) => c.args[0].input.Key)
        .sort(),
    ).toEqual(["input/a.csv", "input/b c.csv"]);
    const starts = glue.commandCalls(StartJobRunCommand);
    expect(starts).toHaveLength(1);
    const args = starts[0]?.args[0].input.Arguments ?? {};
    expect(starts[0]?.args[0].input.JobName).toBe("csv-ingest-job");
    expect(args["--manifest_uri"]).toMatch(/^s3:\/\/data-bucket\/manifests\/.+\.json$/);
    const manifestPut = s3.commandCalls(PutObjectCommand).find((c) => c.args[0].input.Key?.startsWith("manifests/"));
    const manifest = JSON.parse(String(manifestPut?.args[0].input.Body));
    expect(manifest.uploads.map((u: { key: string }) => u.key).sort()).toEqual(["input/a.csv", "input/b c.csv"]);
    expect(`s3://data-bucket/${manifestPut?.args[0].input.Key}`).toBe(args["--manifest_uri"]);
    // the upload items are written conditionally: a duplicate event cannot overwrite one
    const uploadPut = ddb.commandCalls(PutCommand).find((c) => c.args[0].input.Item?.type === "upload");
    expect(uploadPut?.args[0].input.ConditionExpression).toBe("attribute_not_exists(pk)");
  });

  it("acknowledges the batch when Glue refuses the start: the start is undone, the uploads stay in the ledger", async () => {
    pendingFromPuts();
    glue
      .on(StartJobRunCommand)
      .rejects(new ConcurrentRunsExceededException({ message: "busy", $metadata: { httpStatusCode: 400 } }));
    const event: SQSEvent = {
      Records: [sqsRecord("m1", objectCreated("input/a.csv")), sqsRecord("m2", objectCreated("input/b.csv"))],
    };

    const response = await onFakeClock(batcher(event));

    expect(response.batchItemFailures).toEqual([]);
    // one try only (a refusal of the first try means nothing started), then the slot was released by its holder
    expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(1);
    const release = ddb
      .commandCalls(UpdateCommand)
      .find((c) => c.args[0].input.UpdateExpression?.includes("REMOVE holder"));
    const take = ddb
      .commandCalls(UpdateCommand)
      .find((c) => c.args[0].input.ConditionExpression === "attribute_not_exists(holder)");
    expect(release?.args[0].input.ExpressionAttributeValues?.[":rk"]).toBe(
      take?.args[0].input.ExpressionAttributeValues?.[":rk"],
    );
  });

  it("acknowledges messages that are not uploads and starts nothing", async () => {
    const event: SQSEvent = {
      Records: [
        sqsRecord("m1", { Service: "Amazon S3", Event: "s3:TestEvent" }),
        sqsRecord("m2", objectCreated("other/a.csv")),
      ],
    };

    const response = await onFakeClock(batcher(event));

    expect(response).toEqual({ batchItemFailures: [] });
    expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(0);
    expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(0);
  });

  it("does not start a run when the slot is held (the slot write is refused)", async () => {
    pendingFromPuts();
    ddb
      .on(UpdateCommand, { ConditionExpression: "attribute_not_exists(holder)" })
      .rejects(new ConditionalCheckFailedException({ message: "held", $metadata: {} }));
    ddb
      .on(GetCommand, { Key: { pk: "SLOT", sk: "SLOT" } })
      .resolves({ Item: { holder: "another-run", wakeup: false } });

    const response = await onFakeClock(batcher({ Records: [sqsRecord("m1", objectCreated("input/a.csv"))] }));

    expect(response).toEqual({ batchItemFailures: [] });
    expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(0);
    const wakeup = ddb
      .commandCalls(UpdateCommand)
      .find((c) => c.args[0].input.UpdateExpression === "SET wakeup = :yes");
    expect(wakeup).toBeDefined();
  });
});

describe("recorder handler", () => {
  it("ignores another job's state change without touching the ledger", async () => {
    const event = runEnded({ jobName: "other", state: "SUCCEEDED", jobRunId: "jr_9" });
    const response = await onFakeClock(recorder({ Records: [sqsRecord("m1", event)] }));
    expect(response).toEqual({ batchItemFailures: [] });
    expect(ddb.calls()).toHaveLength(0);
  });

  it("returns the record when the ledger cannot be read, so SQS retries it", async () => {
    ddb.on(GetCommand).rejects(new Error("ProvisionedThroughputExceededException"));
    const event = runEnded({ jobName: "csv-ingest-job", state: "SUCCEEDED", jobRunId: "jr_1" });
    const response = await onFakeClock(recorder({ Records: [sqsRecord("m1", event)] }));
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: "m1" }] });
  });

  it("settles a succeeded run from its stats and frees the slot", async () => {
    const runKey = "20260401T100000Z-00000001";
    const uploadId = "data-bucket/input/a.csv@20260401T100000Z-e";
    ddb.on(GetCommand, { Key: { pk: "GLUERUN", sk: "jr_1" } }).resolves({ Item: { runKey } });
    ddb
      .on(GetCommand, { Key: { pk: "RUN", sk: runKey } })
      .resolves({ Item: { runKey, state: "running", manifestKey: `manifests/${runKey}.json`, glueRunId: "jr_1" } });
    ddb.on(GetCommand, { Key: { pk: "UPLOAD#data-bucket/input/a.csv", sk: "20260401T100000Z-e" } }).resolves({
      Item: {
        uploadId,
        key: "input/a.csv",
        status: "running",
        runKey,
        attempts: 0,
        runs: 1,
        receivedAt: "2026-04-01T10:00:00.000Z",
      },
    });
    ddb.on(GetCommand, { Key: { pk: "SLOT", sk: "SLOT" } }).resolves({ Item: { holder: runKey, wakeup: false } });
    ddb.on(QueryCommand).resolves({ Items: [] });
    s3.on(GetObjectCommand, { Key: `manifests/${runKey}.json` }).resolves({
      Body: body(
        JSON.stringify({ format: "csv-ingest-manifest/1", runKey, uploads: [{ uploadId, key: "input/a.csv" }] }),
      ),
    });
    s3.on(GetObjectCommand, { Key: `stats/runs/${runKey}.json` }).resolves({
      Body: body(
        JSON.stringify({
          format: "csv-ingest-stats/1",
          runKey,
          totals: { rowsRead: 3, rowsProcessed: 3, rowsRejected: 0 },
          files: [
            {
              uploadId,
              key: "input/a.csv",
              status: "processed",
              error: null,
              rowsRead: 3,
              rowsProcessed: 3,
              rowsRejected: 0,
              output: "s3://data-bucket/processed/a/v=x/",
              rejectedOutput: null,
            },
          ],
        }),
      ),
    });
    glue.on(GetJobRunCommand).rejects(new Error("must not be needed"));
    const event = runEnded({ jobName: "csv-ingest-job", state: "SUCCEEDED", jobRunId: "jr_1", message: "" });

    const response = await onFakeClock(recorder({ Records: [sqsRecord("m1", event)] }));

    expect(response).toEqual({ batchItemFailures: [] });
    const settled = ddb
      .commandCalls(UpdateCommand)
      .map((c) => c.args[0].input)
      .find((i) => i.Key?.pk === `UPLOAD#${uploadId.split("@")[0]}` && i.ConditionExpression?.includes(":running"));
    expect(settled?.UpdateExpression).toContain("REMOVE gsi1pk, gsi1sk");
    expect(settled?.ExpressionAttributeValues).toMatchObject({
      ":status": "processed",
      ":output": "s3://data-bucket/processed/a/v=x/",
      ":rowsRead": 3,
      ":rk": runKey,
    });
    const runUpdate = ddb.commandCalls(UpdateCommand).find((c) => c.args[0].input.Key?.pk === "RUN");
    expect(runUpdate?.args[0].input.ExpressionAttributeValues).toMatchObject({ ":v0": "succeeded" });
    expect(
      ddb.commandCalls(UpdateCommand).some((c) => c.args[0].input.UpdateExpression?.includes("REMOVE holder")),
    ).toBe(true);
    expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(0);
  });
});

describe("crash lease (SOURCE_QUEUE_URL set)", () => {
  const QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/ingest";
  const context = (remainingMs: number) =>
    ({
      functionName: "csv-ingest-test-batcher",
      awsRequestId: "req-1",
      getRemainingTimeInMillis: () => remainingMs,
    }) as unknown as Context;
  const visibilityCalls = () =>
    sqs.commandCalls(ChangeMessageVisibilityBatchCommand).map((c) => ({
      url: c.args[0].input.QueueUrl,
      entries: (c.args[0].input.Entries ?? []).map((e) => [e.ReceiptHandle, e.VisibilityTimeout]),
    }));
  const withCount = (r: SQSRecord, n: string): SQSRecord => ({
    ...r,
    attributes: { ...r.attributes, ApproximateReceiveCount: n },
  });

  beforeEach(() => {
    process.env.SOURCE_QUEUE_URL = QUEUE;
    sqs.on(ChangeMessageVisibilityBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => ({
      Successful: input.Entries.map((e) => ({ Id: e.Id })),
      Failed: [],
    }));
  });

  it("batcher: leases the batch for its remaining time + 30 s (doubled per receive), then gives the failed record the queue's 362 s less the 2 s window", async () => {
    pendingFromPuts();
    glue.on(StartJobRunCommand).resolves({ JobRunId: "jr_1" });
    s3.on(HeadObjectCommand, { Key: "input/b.csv" }).rejects(
      Object.assign(new Error("We encountered an internal error"), {
        name: "InternalError",
        $metadata: { httpStatusCode: 500 },
      }),
    );
    const event: SQSEvent = {
      Records: [
        sqsRecord("m1", objectCreated("input/a.csv")),
        withCount(sqsRecord("m2", objectCreated("input/b.csv")), "2"),
      ],
    };

    const response = await onFakeClock(batcher(event, context(45_000)));

    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: "m2" }] });
    expect(visibilityCalls()).toEqual([
      {
        url: QUEUE,
        entries: [
          ["rh-m1", 75],
          ["rh-m2", 150],
        ],
      },
      { url: QUEUE, entries: [["rh-m2", 360]] },
    ]);
  });

  it("batcher: a batch the handler fails by throwing is given back whole, then the error goes to Lambda", async () => {
    const broken = sqsRecord("m2", objectCreated("input/b.csv"));
    Object.defineProperty(broken, "body", {
      get() {
        throw new Error("unreadable record");
      },
    });
    const event: SQSEvent = { Records: [sqsRecord("m1", objectCreated("input/a.csv")), broken] };
    const thrown = await onFakeClock(
      batcher(event, context(60_000)).then(
        () => null,
        (e: unknown) => e,
      ),
    );
    expect(thrown).toEqual(new Error("unreadable record"));
    expect(visibilityCalls()).toEqual([
      {
        url: QUEUE,
        entries: [
          ["rh-m1", 90],
          ["rh-m2", 90],
        ],
      },
      {
        url: QUEUE,
        entries: [
          ["rh-m1", 360],
          ["rh-m2", 360],
        ],
      },
    ]);
  });

  it("batcher: a lease SQS refuses changes nothing in the answer; the batch is handled as without a lease", async () => {
    pendingFromPuts();
    glue.on(StartJobRunCommand).resolves({ JobRunId: "jr_1" });
    sqs.on(ChangeMessageVisibilityBatchCommand).rejects(Object.assign(new Error("denied"), { name: "AccessDenied" }));
    const response = await onFakeClock(
      batcher({ Records: [sqsRecord("m1", objectCreated("input/a.csv"))] }, context(60_000)),
    );
    expect(response).toEqual({ batchItemFailures: [] });
    expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(1);
  });

  it("recorder: a run end that could not be recorded gets the recorder queue's 360 s back", async () => {
    ddb.on(GetCommand).rejects(new Error("ProvisionedThroughputExceededException"));
    const event = runEnded({ jobName: "csv-ingest-job", state: "SUCCEEDED", jobRunId: "jr_1" });
    const response = await onFakeClock(recorder({ Records: [sqsRecord("r1", event)] }, context(60_000)));
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: "r1" }] });
    expect(visibilityCalls()).toEqual([
      { url: QUEUE, entries: [["rh-r1", 90]] },
      { url: QUEUE, entries: [["rh-r1", 360]] },
    ]);
  });

  it("batcher without a Lambda context (the twin's CLI paths): the lease counts from the configured 60 s timeout", async () => {
    pendingFromPuts();
    glue.on(StartJobRunCommand).resolves({ JobRunId: "jr_1" });
    const response = await onFakeClock(batcher({ Records: [sqsRecord("m1", objectCreated("input/a.csv"))] }));
    expect(response).toEqual({ batchItemFailures: [] });
    expect(visibilityCalls()).toEqual([{ url: QUEUE, entries: [["rh-m1", 90]] }]);
  });

  it("batcher: a FULL batch of a young burst starts nothing and sends one message back to come back when the hold ends", async () => {
    pendingFromPuts();
    glue.on(StartJobRunCommand).resolves({ JobRunId: "jr_1" });
    const records = Array.from({ length: 4_000 }, (_, i) =>
      withCount(sqsRecord(`m${i}`, objectCreated(`input/f${i}.csv`)), i === 0 ? "2" : "1"),
    );

    const response = await onFakeClock(batcher({ Records: records }, context(45_000))); // leases of 75 s

    expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(0);
    // one message, on its first receive (m0 is on its second), reported failed after its visibility became the
    // burst hold's 90 s (the uploads were recorded just now)
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: "m1" }] });
    const calls = visibilityCalls();
    expect(calls).toHaveLength(401); // 400 lease calls of 10, then the one sent back
    expect(calls.at(-1)).toEqual({ url: QUEUE, entries: [["rh-m1", 90]] });
  }, 30_000);

  it("batcher: a held burst whose message SQS would not send back reports nothing failed (the sweeper starts it)", async () => {
    pendingFromPuts();
    const records = Array.from({ length: 4_000 }, (_, i) => sqsRecord(`m${i}`, objectCreated(`input/f${i}.csv`)));
    sqs
      .on(ChangeMessageVisibilityBatchCommand)
      .callsFake((input: { Entries: { Id: string; VisibilityTimeout: number }[] }) => ({
        Successful: input.Entries.filter((e) => e.VisibilityTimeout !== 90).map((e) => ({ Id: e.Id })),
        Failed: input.Entries.filter((e) => e.VisibilityTimeout === 90).map((e) => ({
          Id: e.Id,
          Code: "ReceiptHandleIsInvalid",
          SenderFault: true,
        })),
      }));

    const response = await onFakeClock(batcher({ Records: records }, context(45_000))); // leases of 75 s

    expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(0);
    expect(response).toEqual({ batchItemFailures: [] });
  }, 30_000);

  it("no SOURCE_QUEUE_URL: no SQS call at all", async () => {
    delete process.env.SOURCE_QUEUE_URL;
    resetRuntime();
    pendingFromPuts();
    glue.on(StartJobRunCommand).resolves({ JobRunId: "jr_1" });
    const response = await onFakeClock(
      batcher({ Records: [sqsRecord("m1", objectCreated("input/a.csv"))] }, context(60_000)),
    );
    expect(response).toEqual({ batchItemFailures: [] });
    expect(sqs.calls()).toHaveLength(0);
  });
});
