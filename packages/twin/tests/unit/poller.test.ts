import type { SQSRecord } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { acknowledged, toSqsRecord } from "../../src/poller.js";

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
