import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { SQSRecord } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { workspaceRoot } from "../../src/paths.js";
import { acknowledged, cutBatch, toSqsRecord } from "../../src/poller.js";

const rec = (id: string) => ({ messageId: id }) as SQSRecord;

describe("acknowledged (Lambda's partial batch response rules)", () => {
  const batch = [rec("a"), rec("b"), rec("c")];

  it("deletes everything when nothing is reported failed", () => {
    expect(acknowledged(batch, undefined)).toEqual(batch);
    expect(acknowledged(batch, { batchItemFailures: [] })).toEqual(batch);
  });

  it("keeps the reported failures", () => {
    expect(acknowledged(batch, { batchItemFailures: [{ itemIdentifier: "b" }] })?.map((r) => r.messageId)).toEqual([
      "a",
      "c",
    ]);
  });

  it("fails the whole batch for an empty or unknown identifier", () => {
    expect(acknowledged(batch, { batchItemFailures: [{ itemIdentifier: "" }] })).toBeNull();
    expect(acknowledged(batch, { batchItemFailures: [{ itemIdentifier: "zzz" }] })).toBeNull();
  });

  it("a batchItemFailures that is not a list fails the whole batch (an invalid response); null is a full success", () => {
    expect(acknowledged(batch, { batchItemFailures: 5 })).toBeNull();
    expect(acknowledged(batch, { batchItemFailures: "b" })).toBeNull();
    expect(acknowledged(batch, { batchItemFailures: { itemIdentifier: "b" } })).toBeNull();
    expect(acknowledged(batch, { batchItemFailures: null })).toEqual(batch);
    expect(acknowledged(batch, null)).toEqual(batch);
  });
});

describe("cutBatch (Lambda's 6 MB invocation payload)", () => {
  // A real S3 "Object Created" event as AWS delivers it, as the body of each message.
  const event = readFileSync(join(workspaceRoot(), "packages/core/tests/events/s3-object-created.aws.json"), "utf8");
  const body = JSON.stringify(JSON.parse(event));
  const records = Array.from({ length: 10_000 }, (_, i) =>
    toSqsRecord(
      {
        MessageId: `0f6c3e2a-8d51-4a1b-9c7e-${String(i).padStart(12, "0")}`,
        ReceiptHandle: `AQEB${"x".repeat(300)}${i}`,
        Body: body,
        MD5OfBody: "0123456789abcdef0123456789abcdef",
        Attributes: {
          ApproximateReceiveCount: "1",
          SentTimestamp: "1764495600000",
          SenderId: "AIDAIENQZJOLO23YVJ4VO",
          ApproximateFirstReceiveTimestamp: "1764495600001",
        },
      },
      "arn:aws:sqs:us-east-1:123456789012:csv-ingest-prod-ingest",
    ),
  );
  const payloadBytes = (n: number) => Buffer.byteLength(JSON.stringify({ Records: records.slice(0, n) }));

  it("counts each record as it is in the payload (~2.3x its body), not its body alone: 10,000 S3 events do not fit", () => {
    const { count, bytes } = cutBatch(records, 10_000);
    expect(payloadBytes(1) / Buffer.byteLength(body)).toBeGreaterThan(2);
    expect(count).toBeLessThan(10_000);
    expect(bytes).toBe(payloadBytes(count));
    expect(payloadBytes(count)).toBeLessThanOrEqual(6 * 1024 * 1024);
    expect(payloadBytes(count + 1)).toBeGreaterThan(6 * 1024 * 1024);
  });

  it("cuts at the batch size first, and always takes at least one record", () => {
    expect(cutBatch(records, 7).count).toBe(7);
    expect(cutBatch(records.slice(0, 1), 10, 10).count).toBe(1);
    expect(cutBatch([], 10).count).toBe(0);
  });
});

describe("toSqsRecord", () => {
  it("builds the record Lambda delivers, with the queue's ARN and real receive attributes", () => {
    const r = toSqsRecord(
      {
        MessageId: "m1",
        ReceiptHandle: "rh",
        Body: "{}",
        MD5OfBody: "md5",
        Attributes: {
          ApproximateReceiveCount: "3",
          SentTimestamp: "1",
          SenderId: "s",
          ApproximateFirstReceiveTimestamp: "2",
        },
      },
      "arn:aws:sqs:us-east-1:123456789012:q",
    );
    expect(r).toMatchObject({
      messageId: "m1",
      receiptHandle: "rh",
      body: "{}",
      eventSource: "aws:sqs",
      eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:q",
      awsRegion: "us-east-1",
      attributes: { ApproximateReceiveCount: "3" },
    });
  });
});
