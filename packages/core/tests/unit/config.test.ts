import { describe, expect, it } from "vitest";
import { isInputKey, objectCreatedPattern, pipelineConfig, TWIN_STAGE } from "../../src/config/pipeline.js";

describe("pipeline config", () => {
  it("pins the defaults every stage relies on", () => {
    const c = pipelineConfig("dev");
    expect(c.queue).toMatchObject({
      batchSize: 4_000,
      batchingWindowSeconds: 2,
      maximumConcurrency: 2,
      maxReceiveCount: 5,
    });
    expect(c.glue).toMatchObject({
      version: "5.0",
      workerType: "G.1X",
      maxConcurrentRuns: 1,
      jobBookmarks: "job-bookmark-disable",
    });
    expect(c.runs).toMatchObject({
      maxFilesPerRun: 10_000,
      maxBytesPerRun: 50 * 1024 ** 3,
      maxAttempts: 3,
      startTimeoutSeconds: 180,
      revokeUnlaunchedAfterSeconds: 75,
      settleMs: 1_000,
      maxSettleRounds: 5,
      sweepIntervalMinutes: 5,
      systemRetryBaseSeconds: 60,
      systemRetryMaxSeconds: 1_800,
      breakerThreshold: 5,
      burstHoldSeconds: 90,
    });
  });

  it("gives prod the long batching window and retains its data", () => {
    const prod = pipelineConfig("prod");
    expect(prod.isProd).toBe(true);
    expect(prod.queue.batchingWindowSeconds).toBe(60);
    expect(pipelineConfig("dev").isProd).toBe(false);
  });

  it.each(["dev", "prod", TWIN_STAGE])(
    "keeps the visibility timeout at least 6x the consumer timeout (%s)",
    (stage) => {
      const { queue } = pipelineConfig(stage);
      expect(queue.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(6 * queue.consumerTimeoutSeconds);
      expect(queue.batchSize).toBeLessThanOrEqual(10_000);
      expect(queue.batchingWindowSeconds).toBeLessThanOrEqual(300);
      expect(queue.maximumConcurrency).toBeGreaterThanOrEqual(2);
    },
  );

  it.each(["dev", "prod", TWIN_STAGE])(
    "revokes an unlaunched start only once the batcher and the recorder would have timed out, never later than the start timeout (%s)",
    (stage) => {
      const c = pipelineConfig(stage);
      const consumers = Math.max(c.queue.consumerTimeoutSeconds, c.recorder.timeoutSeconds);
      expect(c.runs.revokeUnlaunchedAfterSeconds).toBeGreaterThan(consumers);
      expect(c.runs.revokeUnlaunchedAfterSeconds).toBeLessThanOrEqual(c.runs.startTimeoutSeconds);
    },
  );

  it.each(["dev", "prod", TWIN_STAGE])(
    "treats a start as stale only after every handler would have timed out (%s)",
    (stage) => {
      const c = pipelineConfig(stage);
      const longest = Math.max(c.queue.consumerTimeoutSeconds, c.recorder.timeoutSeconds, c.sweeper.timeoutSeconds);
      expect(c.runs.startTimeoutSeconds).toBeGreaterThan(longest);
    },
  );

  it.each(["dev", "prod", TWIN_STAGE])("gives the batching Lambda 60 s and the queue 362 s or more (%s)", (stage) => {
    const { queue } = pipelineConfig(stage);
    expect(queue.consumerTimeoutSeconds).toBe(60);
    expect(queue.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(362);
  });

  it("matches prefix AND suffix in each wildcard (an array of two filters would OR them), for every casing", () => {
    const key = objectCreatedPattern("b").detail.object.key;
    expect(key[0]).toEqual({ wildcard: "input/*.csv" });
    expect(key.every((entry) => /^input\/\*\.[cC][sS][vV]$/.test(entry.wildcard))).toBe(true);
  });

  it.each([
    ["input/a.csv", true],
    ["input/sub/dir/a b.csv", true],
    ["input/a.txt", false],
    ["other/a.csv", false],
    ["input/a.csv.gz", false],
    ["inputs/a.csv", false],
  ])("isInputKey(%s) = %s", (key, expected) => {
    expect(isInputKey(key)).toBe(expected);
  });
});
