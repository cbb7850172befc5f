/** The event-source-mapping poller against moto's SQS, with fake handlers. */
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { SQSEvent } from "aws-lambda";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { clientConfig } from "../../src/aws.js";
import { type MotoServer, startMoto } from "../../src/moto.js";
import { QueuePoller, type SqsHandler } from "../../src/poller.js";
import { eventually, sleep, testPaths } from "../helpers/twin.js";

let moto: MotoServer;
let sqs: SQSClient;
let n = 0;

async function queue(visibility: number, maxReceiveCount = 3) {
  n++;
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `dlq-${n}` }));
  const dlqArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] }))
  ).Attributes?.QueueArn;
  const q = await sqs.send(
    new CreateQueueCommand({
      QueueName: `q-${n}`,
      Attributes: {
        VisibilityTimeout: String(visibility),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }),
      },
    }),
  );
  const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: q.QueueUrl, AttributeNames: ["QueueArn"] })))
    .Attributes?.QueueArn;
  return { url: q.QueueUrl ?? "", arn: arn ?? "", dlqUrl: dlq.QueueUrl ?? "" };
}

async function send(url: string, bodies: string[]) {
  for (let i = 0; i < bodies.length; i += 10) {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: bodies.slice(i, i + 10).map((b, j) => ({ Id: String(j), MessageBody: b })),
      }),
    );
  }
}

async function depth(url: string) {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  return Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible);
}

const pollers: QueuePoller[] = [];
function poller(
  q: { url: string; arn: string },
  handler: SqsHandler,
  o: Partial<{ batchSize: number; window: number; concurrency: number; timeout: number }> = {},
) {
  const p = new QueuePoller({
    name: "test",
    sqs,
    queueUrl: q.url,
    queueArn: q.arn,
    batchSize: o.batchSize ?? 10_000,
    batchingWindowSeconds: o.window ?? 1,
    concurrency: o.concurrency ?? 1,
    timeoutSeconds: o.timeout ?? 5,
    handler,
  });
  pollers.push(p);
  p.start();
  return p;
}

beforeAll(async () => {
  moto = await startMoto({
    motoServer: testPaths("poller").motoServer,
    logFile: `${testPaths("poller").twinDir}/moto.log`,
  });
  sqs = new SQSClient(clientConfig(moto.endpoint));
});
afterEach(async () => {
  await Promise.all(pollers.splice(0).map((p) => p.stop()));
});
afterAll(async () => {
  sqs?.destroy();
  await moto?.stop();
});

describe("QueuePoller", () => {
  it("gathers a burst of more than 10 messages into one invocation within the batching window", async () => {
    const q = await queue(30);
    const events: SQSEvent[] = [];
    await send(
      q.url,
      Array.from({ length: 35 }, (_, i) => `m${i}`),
    );
    poller(
      q,
      async (e) => {
        events.push(e);
      },
      { window: 2 },
    );
    await eventually("all deleted", async () => (await depth(q.url)) === 0, 20_000);
    expect(events).toHaveLength(1);
    expect(events[0]?.Records).toHaveLength(35);
  });

  it("cuts batches at the batch size", async () => {
    const q = await queue(30);
    const sizes: number[] = [];
    await send(
      q.url,
      Array.from({ length: 12 }, (_, i) => `m${i}`),
    );
    poller(
      q,
      async (e) => {
        sizes.push(e.Records.length);
      },
      { window: 1, batchSize: 5 },
    );
    await eventually("all deleted", async () => (await depth(q.url)) === 0, 20_000);
    expect(sizes.every((s) => s <= 5)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(12);
  });

  it("deletes only acknowledged messages; a reported failure comes back after the visibility timeout, then goes to the DLQ", async () => {
    const q = await queue(1, 3);
    const seen: { body: string; count: string }[] = [];
    await send(q.url, ["good", "bad"]);
    poller(
      q,
      async (e) => {
        for (const r of e.Records) seen.push({ body: r.body, count: r.attributes.ApproximateReceiveCount });
        return {
          batchItemFailures: e.Records.filter((r) => r.body === "bad").map((r) => ({ itemIdentifier: r.messageId })),
        };
      },
      { window: 0 },
    );
    await eventually("bad in the DLQ", async () => (await depth(q.dlqUrl)) === 1, 30_000);
    expect(seen.filter((s) => s.body === "good")).toHaveLength(1);
    expect(seen.filter((s) => s.body === "bad").map((s) => s.count)).toEqual(["1", "2", "3"]);
    expect(await depth(q.url)).toBe(0);
  });

  it("deletes nothing when the handler throws, or runs past its timeout, or names an unknown id", async () => {
    for (const bad of [
      async () => {
        throw new Error("crash");
      },
      async () => {
        await sleep(2_500);
      },
      async () => ({ batchItemFailures: [{ itemIdentifier: "not-in-batch" }] }),
    ] as SqsHandler[]) {
      const q = await queue(2, 10);
      await send(q.url, ["a", "b"]);
      let calls = 0;
      const p = poller(
        q,
        async (e, c) => {
          calls++;
          if (calls === 1) return bad(e, c);
        },
        { window: 0, timeout: 1 },
      );
      await eventually("redelivered and acknowledged", async () => (await depth(q.url)) === 0, 20_000);
      expect(calls).toBeGreaterThanOrEqual(2);
      expect(p.stats.batchFailures).toBe(1);
    }
  });

  it("runs two invocations at once with concurrency 2", async () => {
    const q = await queue(30);
    let active = 0;
    let maxActive = 0;
    poller(
      q,
      async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await sleep(1_500);
        active--;
      },
      { window: 0, batchSize: 1, concurrency: 2 },
    );
    await send(q.url, ["a", "b", "c", "d"]);
    await eventually("all deleted", async () => (await depth(q.url)) === 0, 20_000);
    expect(maxActive).toBe(2);
  });
});

describe("poller against a failing DeleteMessageBatch", () => {
  it("logs and counts a DeleteMessageBatch error and keeps consuming (the consumer loop does not end)", async () => {
    let sent = 0;
    const warnings: string[] = [];
    // Hands out one message per receive (two in all); every DeleteMessageBatch fails.
    const fake = {
      send: async (cmd: { constructor: { name: string } }) => {
        if (cmd.constructor.name === "ReceiveMessageCommand") {
          if (sent >= 2) {
            await sleep(50);
            return { Messages: [] };
          }
          sent++;
          return { Messages: [{ MessageId: `m${sent}`, ReceiptHandle: `rh${sent}`, Body: "{}" }] };
        }
        if (cmd.constructor.name === "DeleteMessageBatchCommand") throw new Error("InternalError: injected");
        throw new Error(`unexpected ${cmd.constructor.name}`);
      },
    } as unknown as SQSClient;
    const seen: string[] = [];
    const p = new QueuePoller({
      name: "flaky-delete",
      sqs: fake,
      queueUrl: "http://q",
      queueArn: "arn:aws:sqs:us-east-1:123456789012:q",
      batchSize: 1,
      batchingWindowSeconds: 0,
      concurrency: 1,
      timeoutSeconds: 5,
      handler: async (e: SQSEvent) => {
        for (const r of e.Records) seen.push(r.messageId);
        return { batchItemFailures: [] };
      },
      log: { info: () => undefined, warn: (m) => warnings.push(m) },
    });
    p.start();
    try {
      await eventually("both messages delivered", () => seen.length === 2, 10_000, 20);
      expect(seen).toEqual(["m1", "m2"]);
      expect(p.stats).toMatchObject({ invocations: 2, recordsDeleted: 0, deleteFailures: 2 });
      expect(warnings.filter((w) => w.includes("DeleteMessageBatch of 1 failed"))).toHaveLength(2);
    } finally {
      await p.stop();
    }
  });
});

describe("poller restarts (the fault layer's consumerRestart)", () => {
  it("kills and restarts its consumers after an invocation; later messages are still delivered", async () => {
    const q = await queue(30);
    const seen: string[] = [];
    const p = new QueuePoller({
      name: "restarting",
      sqs,
      queueUrl: q.url,
      queueArn: q.arn,
      batchSize: 10,
      batchingWindowSeconds: 0,
      concurrency: 1,
      timeoutSeconds: 5,
      handler: async (e: SQSEvent) => {
        for (const r of e.Records) seen.push(r.body);
        return { batchItemFailures: [] };
      },
      afterInvoke: (me) => {
        if (me.stats.restarts === 0) void me.restart();
      },
    });
    pollers.push(p);
    p.start();
    await send(q.url, ["a"]);
    await eventually("a", () => seen.includes("a"), 10_000, 50);
    await eventually("the restart", () => p.stats.restarts === 1, 10_000, 50);
    await send(q.url, ["b"]);
    await eventually("b after the restart", () => seen.includes("b"), 10_000, 50);
    await p.stop();
    await send(q.url, ["c"]);
    await sleep(1_500);
    expect(seen).toEqual(["a", "b"]); // stopped for good: no restart brings it back
  });
});
