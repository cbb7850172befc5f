/**
 * The crash lease on the twin (moto's SQS, the fault layer's proxy, the REAL batcher and recorder; a stand-in Glue
 * script, no Spark): the batcher's first invocation leases its batch, then "dies" (the wrapper fails the invocation
 * after the handler's work, so nothing is acknowledged). The batch must come back when the lease ends — about
 * 36 s later (6 s left + the 30 s margin) — not after the queue's 362 s; the call record shows each consumer's
 * ChangeMessageVisibility on its own queue.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Context, SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCallRecord } from "../../src/faults/record.js";
import { workspaceRoot } from "../../src/paths.js";
import type { SqsHandler } from "../../src/poller.js";
import type { Twin } from "../../src/twin.js";
import { TwinProbe } from "../helpers/pipeline.js";
import { eventually, startTestTwin } from "../helpers/twin.js";

const standin = join(workspaceRoot(), "packages", "twin", "tests", "fixtures", "standin_job.py");
const KEY = "input/lease/crashed.csv";

describe("a crashed batcher's batch comes back when its lease ends", () => {
  let twin: Twin;
  let probe: TwinProbe;
  const deliveries: { at: number; receiveCount: string }[] = [];
  let crashed = false;

  beforeAll(async () => {
    const crashOnce =
      (h: SqsHandler): SqsHandler =>
      async (event: SQSEvent, context?: Context) => {
        const mine = event.Records.find((r) => r.body.includes(KEY));
        if (mine) deliveries.push({ at: Date.now(), receiveCount: mine.attributes.ApproximateReceiveCount });
        if (!mine || crashed) return h(event, context);
        crashed = true;
        // 6 s left: the lease is 6 + 30 = 36 s. The handler does all its work (the lease, recording the upload)…
        const short = { ...(context as Context), getRemainingTimeInMillis: () => 6_000 } as Context;
        await h(event, short);
        // …and then the invocation dies before Lambda could delete anything.
        throw new Error("injected crash after the handler's work");
      };
    twin = await startTestTwin("crash-lease", {
      glueScript: standin,
      skipSparkChecks: true,
      sweepIntervalMs: 0,
      reconcileIntervalMs: 0,
      wrapBatcher: crashOnce,
    });
    probe = new TwinProbe(twin);
  });
  afterAll(async () => {
    probe?.close();
    await twin?.stop();
  });

  it("redelivered ~36 s after the crash (receive 2), not after the queue's 362 s; processed once", async () => {
    await probe.put(KEY, "id,v\n1,a\n");
    await eventually("the redelivery", () => deliveries.length >= 2, 90_000, 250);
    const [first, second] = deliveries;
    expect(first?.receiveCount).toBe("1");
    expect(second?.receiveCount).toBe("2");
    const gap = ((second?.at ?? 0) - (first?.at ?? 0)) / 1000;
    // the lease (36 s) plus at most the twin's 2 s window and its polling; far below the 362 s visibility
    expect(gap).toBeGreaterThan(30);
    expect(gap).toBeLessThan(60);

    const [u] = await probe.settled([KEY], 60_000);
    expect(u?.status).toBe("processed");
    expect(u?.runs).toBe(1);

    const calls = parseCallRecord(readFileSync(twin.callRecordFile, "utf8")).filter(
      (l) => l.action === "sqs:ChangeMessageVisibility",
    );
    // each consumer leases on its own queue only (the recorder leased the run's end event too)
    const own: Record<string, string> = { batcher: twin.queues.ingest.arn, recorder: twin.queues.recorder.arn };
    expect(calls.filter((c) => c.principal === "batcher").length).toBeGreaterThan(0);
    for (const c of calls) {
      expect(c.resources).toEqual([own[c.principal]]);
      expect(c.outcome).toBe("ok");
    }
  }, 180_000);
});
