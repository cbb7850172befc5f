/**
 * S3-event faults on a twin (fake handlers, no Spark): with the relay on, the "Object Created" rule targets the relay
 * queue and each event reaches the ingest queue as the dice say — here every event twice, each up to 1.5 s late.
 * The pattern is the same; the call record names the batcher's own calls (the relay is AWS's delivery, not recorded).
 */
import { readFileSync } from "node:fs";
import { EventBridgeClient, ListTargetsByRuleCommand } from "@aws-sdk/client-eventbridge";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type { SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientConfig } from "../../src/aws.js";
import { TWIN_NAMES } from "../../src/constants.js";
import { parseCallRecord } from "../../src/faults/record.js";
import type { Twin } from "../../src/twin.js";
import { eventually, sleep, startTestTwin } from "../helpers/twin.js";

describe("S3 events through the fault layer's relay", () => {
  let twin: Twin;
  const batches: SQSEvent[] = [];
  let s3: S3Client;

  beforeAll(async () => {
    twin = await startTestTwin("s3-event-faults", {
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
      faults: { seed: 3, rates: { s3EventDuplicate: 1, s3EventDelay: 1 }, s3EventDelayMs: 1_500 },
    });
    s3 = new S3Client({ ...clientConfig(twin.endpoints.aws), forcePathStyle: true });
  });
  afterAll(async () => {
    s3?.destroy();
    await twin?.stop();
  });

  it("points the rule at the relay queue; each upload's event reaches the batcher twice", async () => {
    const events = new EventBridgeClient(clientConfig(twin.endpoints.aws));
    const t = await events.send(new ListTargetsByRuleCommand({ Rule: TWIN_NAMES.objectCreatedRule }));
    events.destroy();
    expect(t.Targets?.map((x) => x.Arn)).toEqual([twin.queues.s3Events?.arn]);

    const keys = ["input/relay/a.csv", "input/relay/b.csv"];
    for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket: TWIN_NAMES.bucket, Key, Body: "a\n1\n" }));
    const delivered = () =>
      batches.flatMap((b) => b.Records).map((r) => JSON.parse(r.body).detail.object.key as string);
    await eventually("four deliveries", () => delivered().length >= 4, 20_000);
    await sleep(2_500);
    expect(delivered().sort()).toEqual([...keys, ...keys].sort());
    expect(twin.faults.counts).toMatchObject({ s3EventDuplicate: 2, s3EventDelay: 4 });

    const lines = parseCallRecord(readFileSync(twin.callRecordFile, "utf8"));
    const principals = new Set(lines.map((l) => l.principal));
    expect([...principals].sort()).toEqual(["batcher", "recorder"]); // the pollers; nothing from the relay
    expect(lines.some((l) => l.action === "sqs:ReceiveMessage" && l.resources[0] === twin.queues.ingest.arn)).toBe(
      true,
    );
  });
});
