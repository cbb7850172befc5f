/**
 * Faults end to end: a batching handler that crashes mid-batch, and a file that makes its Glue run fail.
 * Fault injection is test-only and documented in packages/twin/README.md: `wrapBatcher` (the crash) and
 * `glueFailKeys` (= TWIN_GLUE_FAIL_KEYS: a run whose manifest names such a key ends FAILED before Spark starts).
 * The crashed batch comes back after the ingest queue's visibility timeout, as on AWS; this file shortens that timeout
 * to 32 s (the config's is 362 s, the same on every stage) to keep CI quick.
 */
import { GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { pipelineConfig, type RunRecord, TWIN_STAGE } from "@ingest/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientConfig } from "../../src/aws.js";
import type { SqsHandler } from "../../src/poller.js";
import type { Twin } from "../../src/twin.js";
import { customersCsv } from "../helpers/csv.js";
import { TwinProbe } from "../helpers/pipeline.js";
import { eventually, startTestTwin } from "../helpers/twin.js";

const config = pipelineConfig(TWIN_STAGE);
const VISIBILITY_SECONDS = 32;

describe("faults on the twin", () => {
  let twin: Twin;
  let probe: TwinProbe;
  const crash = { remaining: 0, crashed: 0 };

  beforeAll(async () => {
    // Crash after the real handler has done the first half of the batch: its effects stay, nothing is acknowledged.
    const crashing =
      (h: SqsHandler): SqsHandler =>
      async (event, context) => {
        if (crash.remaining <= 0) return h(event, context);
        crash.remaining--;
        await h({ Records: event.Records.slice(0, Math.ceil(event.Records.length / 2)) }, context);
        crash.crashed++;
        throw new Error("injected crash mid-batch");
      };
    twin = await startTestTwin("e2e-faults", {
      wrapBatcher: crashing,
      glueFailKeys: ["poison"],
      queueVisibilityTimeoutSeconds: VISIBILITY_SECONDS,
    });
    probe = new TwinProbe(twin);
  });
  afterAll(async () => {
    probe?.close();
    await twin?.stop();
  });

  async function dlqDepth(): Promise<number> {
    const sqs = new SQSClient(clientConfig(twin.endpoints.aws));
    const { Attributes: a } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: twin.queues.ingestDlq.url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    sqs.destroy();
    return Number(a?.ApproximateNumberOfMessages) + Number(a?.ApproximateNumberOfMessagesNotVisible);
  }

  it("a handler crash mid-batch loses nothing: the batch comes back after the visibility timeout, each upload is processed once", async () => {
    crash.remaining = 1;
    const keys = Array.from({ length: 6 }, (_, i) => `input/crash/c${i}.csv`);
    await probe.putAll(keys.map((key, i) => ({ key, body: customersCsv([500 + i]) })));
    await eventually("the crash", () => crash.crashed === 1, 30_000);
    const uploads = await probe.settled(keys, VISIBILITY_SECONDS * 1000 + 180_000);
    expect(uploads.map((u) => u.status)).toEqual(keys.map(() => "processed"));
    for (const k of keys) expect(await probe.uploadsOf(k)).toHaveLength(1);
    expect(uploads.every((u) => u.runs === 1)).toBe(true);
    expect(twin.ingestPoller.stats.batchFailures).toBeGreaterThanOrEqual(1);
    expect(await dlqDepth()).toBe(0);
  });

  it("a file that makes its run fail is retried, then reported failed with the run's error; other files are unaffected", async () => {
    const poison = "input/fail/poison.csv";
    const goods = ["input/fail/good-a.csv", "input/fail/good-b.csv", "input/fail/good-c.csv"];
    const since = await probe.markRuns();
    await probe.putAll([poison, ...goods].map((key, i) => ({ key, body: customersCsv([600 + i]) })));
    // once a run has failed, a fresh upload must go through untouched by the retries
    await eventually(
      "a failed run",
      async () => (await probe.runsSince(since)).some((r) => r.state === "failed"),
      60_000,
    );
    const later = "input/fail/later.csv";
    await probe.put(later, customersCsv([700]));

    const settled = await probe.settled([poison, ...goods, later], 300_000);
    const [p, ...others] = settled;
    expect(p?.status).toBe("failed");
    expect(p?.attempts).toBe(config.runs.maxAttempts);
    expect(p?.error).toContain("injected fault");
    expect(others.map((u) => u.status)).toEqual([...goods, later].map(() => "processed"));
    const laterUpload = others.at(-1);
    expect(laterUpload?.runs).toBe(1);
    expect(laterUpload?.attempts).toBe(0);

    const runs = await probe.endedRunsSince(since);
    const failed = runs.filter((r) => r.state === "failed");
    // every failed run had the poison file in it; the runs that succeeded did not
    const runsOfPoison = new Set<string>();
    for (const r of runs) {
      const manifest = JSON.parse(await probe.manifestText(r.manifestKey)) as { uploads: { key: string }[] };
      if (manifest.uploads.some((u) => u.key === poison)) runsOfPoison.add(r.runKey);
    }
    expect(failed.every((r: RunRecord) => runsOfPoison.has(r.runKey))).toBe(true);
    expect(runs.filter((r) => r.state === "succeeded").every((r) => !runsOfPoison.has(r.runKey))).toBe(true);
    expect(failed.length).toBeGreaterThanOrEqual(config.runs.maxAttempts);
  });
});
