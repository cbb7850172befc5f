/**
 * The twin with the real handlers and a stand-in Glue script (no Spark): proves the wiring (S3 → rule → queue →
 * batcher → Glue service → state change → recorder → ledger) quickly. The real job runs in tests/e2e.
 */
import { join } from "node:path";
import { statsKey } from "@ingest/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workspaceRoot } from "../../src/paths.js";
import type { Twin } from "../../src/twin.js";
import { TwinProbe } from "../helpers/pipeline.js";
import { eventually, startTestTwin } from "../helpers/twin.js";

const standin = join(workspaceRoot(), "packages", "twin", "tests", "fixtures", "standin_job.py");

describe("twin pipeline with a stand-in job", () => {
  let twin: Twin;
  let probe: TwinProbe;
  beforeAll(async () => {
    twin = await startTestTwin("pipeline-standin", { glueScript: standin, skipSparkChecks: true, sweepIntervalMs: 0 });
    probe = new TwinProbe(twin);
  });
  afterAll(async () => {
    probe?.close();
    await twin?.stop();
  });

  it("processes a burst of files in one run and copies the output back to the bucket", async () => {
    const since = await probe.markRuns();
    const keys = Array.from({ length: 5 }, (_, i) => `input/standin/f${i}.csv`);
    await probe.putAll(keys.map((key, i) => ({ key, body: `id,v\n${i},a\n${i},b\n` })));
    const uploads = await probe.settled(keys, 60_000);
    expect(uploads.map((u) => u.status)).toEqual(keys.map(() => "processed"));
    const runs = await probe.endedRunsSince(since);
    expect(runs).toHaveLength(1);
    expect(runs[0]?.state).toBe("succeeded");
    const u = uploads[0];
    expect(u?.rowsRead).toBe(2);
    const prefix = (u?.output ?? "").replace(`s3://${twin.names.bucket}/`, "");
    expect(await probe.text(`${prefix}part-00000.csv`)).toBe("id,v\n0,a\n0,b\n");
  });

  it("a run that FAILED after writing its stats leaves them in S3, and its file fails at once with its own reason", async () => {
    const since = await probe.markRuns();
    const key = "input/standin/rejected.csv";
    await probe.put(key, "reject\n1,a\n");
    const [upload] = await probe.settled([key], 60_000);
    expect(upload?.status).toBe("failed");
    expect(upload?.error).toContain("header row is 'reject', not a CSV header");
    const runs = await probe.endedRunsSince(since);
    expect(runs.map((r) => r.state)).toEqual(["failed"]); // one run, not maxAttempts
    const stats = JSON.parse(await probe.text(statsKey(runs[0]?.runKey ?? ""))) as {
      totals: { filesFailed: number };
    };
    expect(stats.totals.filesFailed).toBe(1);
    // what the alarms watch: the recorder's metrics, as CloudWatch would get them (published as its invocation ends)
    await eventually("the recorder's metrics", () => twin.metrics.sum("RunsFailed") === 1, 10_000, 50);
    expect(twin.metrics.sum("FilesFailed")).toBe(1);
  });
});
