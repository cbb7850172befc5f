/**
 * End to end on the twin with the real handlers and the real Glue job on local Spark. One twin for the file; the
 * tests run in order and each waits for its own uploads to settle.
 */
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { parseRunStats, pipelineConfig, type RunRecord, statsKey, TWIN_STAGE } from "@ingest/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientConfig } from "../../src/aws.js";
import type { SqsHandler } from "../../src/poller.js";
import type { Twin } from "../../src/twin.js";
import { customersCsv } from "../helpers/csv.js";
import { TwinProbe } from "../helpers/pipeline.js";
import { eventually, sleep, startTestTwin } from "../helpers/twin.js";

const config = pipelineConfig(TWIN_STAGE);

describe("the pipeline on the twin (real handlers, real Glue job)", () => {
  let twin: Twin;
  let probe: TwinProbe;
  /** Every message body the batching handler was given, by object key (a passive tap; the handler is the real one). */
  const delivered = new Map<string, string[]>();

  beforeAll(async () => {
    const tap =
      (h: SqsHandler): SqsHandler =>
      async (event, context) => {
        for (const r of event.Records) {
          const key = (JSON.parse(r.body) as { detail?: { object?: { key?: string } } }).detail?.object?.key ?? "?";
          delivered.set(key, [...(delivered.get(key) ?? []), r.body]);
        }
        return h(event, context);
      };
    twin = await startTestTwin("e2e-pipeline", { wrapBatcher: tap });
    probe = new TwinProbe(twin);
  });
  afterAll(async () => {
    probe?.close();
    await twin?.stop();
  });

  async function runsOf(keys: readonly string[]): Promise<RunRecord[]> {
    const runKeys = new Set<string>();
    for (const k of keys) for (const u of await probe.uploadsOf(k)) if (u.runKey) runKeys.add(u.runKey);
    // the recorder settles a run's uploads before it closes the run item: wait for the runs to have ended
    return eventually("the runs of these uploads to end", async () => {
      const runs = (await probe.ledger.listRuns(1000)).filter((r) => runKeys.has(r.runKey));
      return runs.every((r) => r.state !== "starting" && r.state !== "running") ? runs : undefined;
    });
  }

  it("seed 1: one new file → processed output at the expected path, stats correct", async () => {
    const key = "input/seed/one.csv";
    await probe.put(key, customersCsv([1, 2, 3]));
    const [u] = await probe.settled([key]);
    expect(u?.status).toBe("processed");
    expect(u?.output).toBe(`s3://${twin.names.bucket}/processed/seed/one/v=${u?.versionTag}/`);
    const outKeys = await probe.keysUnder(probe.keyOf(u?.output ?? ""));
    expect(outKeys.some((k) => k.endsWith("/_SUCCESS"))).toBe(true);
    expect(outKeys.some((k) => k.endsWith(".crc"))).toBe(false);
    expect(await probe.processedRows(u?.output ?? "")).toHaveLength(3);
    expect(u?.rowsRead).toBe(3);
    expect(u?.rowsProcessed).toBe(3);
    expect(u?.rowsRejected).toBe(0);

    const [run] = await runsOf([key]);
    expect(run?.state).toBe("succeeded");
    expect(run?.fileCount).toBe(1);
    const stats = parseRunStats(await probe.text(statsKey(run?.runKey ?? "")), "stats");
    expect(stats.totals).toMatchObject({
      files: 1,
      filesProcessed: 1,
      filesFailed: 0,
      rowsRead: 3,
      rowsProcessed: 3,
      rowsRejected: 0,
    });
    expect(stats.files[0]).toMatchObject({ key, status: "processed", output: u?.output });
  });

  it("seed 2: 50 files uploaded at once → exactly one Glue run processes all 50", async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `input/burst/file-${String(i).padStart(2, "0")}.csv`);
    const before = twin.glue.listRuns().length;
    await probe.putAll(keys.map((key, i) => ({ key, body: customersCsv([1000 + i, 2000 + i]) })));
    const uploads = await probe.settled(keys);
    expect(uploads.map((u) => u.status)).toEqual(keys.map(() => "processed"));
    const runs = await runsOf(keys);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ state: "succeeded", fileCount: 50, filesProcessed: 50, rowsProcessed: 100 });
    expect(twin.glue.listRuns().length - before).toBe(1);
    // The recorder read the ended run back from the twin's Glue service (GetJobRun through the real adapter) and
    // recorded what it ran with and for how long: what `ingest status` prices.
    const glueRun = twin.glue.listRuns().find((r) => r.id === runs[0]?.glueRunId);
    const seconds = glueRun?.completedOn
      ? Math.round((glueRun.completedOn.getTime() - glueRun.startedOn.getTime()) / 1000)
      : -1;
    expect(runs[0]?.glue).toEqual({
      workerType: glueRun?.workerType,
      numberOfWorkers: glueRun?.numberOfWorkers,
      executionClass: glueRun?.executionClass,
      executionSeconds: seconds,
      dpuSeconds: null,
    });
    expect(seconds).toBeGreaterThan(0);
    expect(uploads.every((u) => u.runs === 1)).toBe(true);
  });

  it("seed 3: a re-uploaded, modified file → a new run processes only that file; its output shows the change", async () => {
    const key = "input/seed/one.csv";
    const [first] = await probe.settled([key]);
    // S3 keeps last-modified to the second: a new version must be visibly newer.
    await sleep(1100);
    await probe.put(key, customersCsv([1, 2, 3, 4], "Changed"));
    const [second] = await eventually("a second upload of the key", async () => {
      const us = await probe.uploadsOf(key);
      return us.length === 2 ? us.filter((u) => u.uploadId !== first?.uploadId) : undefined;
    });
    const [u] = await probe.settled([key]);
    expect(u?.uploadId).toBe(second?.uploadId);
    expect(u?.status).toBe("processed");
    expect(u?.runKey).not.toBe(first?.runKey);
    const run = (await probe.ledger.getRun(u?.runKey ?? "")) as RunRecord;
    expect(run.fileCount).toBe(1);
    expect(u?.output).not.toBe(first?.output);
    const rows = await probe.processedRows(u?.output ?? "");
    expect(rows).toHaveLength(4);
    expect(rows.every((r) => r.includes("Changed"))).toBe(true);
    // the first version's output is still there, unchanged
    expect(await probe.processedRows(first?.output ?? "")).toHaveLength(3);
  });

  it("a key with spaces and unicode is processed; the same upload's event delivered twice more changes nothing", async () => {
    const key = "input/dir with space/ünïcødé ✓ 2025.csv";
    await probe.put(key, customersCsv([7, 8]));
    const [u] = await probe.settled([key]);
    expect(u?.status).toBe("processed");
    expect(u?.rowsProcessed).toBe(2);
    // letters of any script and spaces stay; other characters are percent-encoded (uploadOutputName)
    expect(u?.output).toContain("processed/dir with space/ünïcødé %E2%9C%93 2025/v=");
    expect(await probe.processedRows(u?.output ?? "")).toHaveLength(2);

    const body = delivered.get(key)?.[0];
    expect(body).toBeDefined();
    const runsBefore = twin.glue.listRuns().length;
    const sqs = new SQSClient(clientConfig(twin.endpoints.aws));
    for (let i = 0; i < 2; i++) {
      await sqs.send(new SendMessageCommand({ QueueUrl: twin.queues.ingest.url, MessageBody: body ?? "" }));
    }
    sqs.destroy();
    await eventually("the duplicates delivered", () => (delivered.get(key)?.length ?? 0) >= 3);
    await probe.quiet();
    await sleep(config.queue.batchingWindowSeconds * 1000 + 1000);
    const after = await probe.uploadsOf(key);
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ status: "processed", runs: 1, runKey: u?.runKey });
    expect(twin.glue.listRuns().length).toBe(runsBefore);
  });

  it("a non-csv key and a csv outside input/ start no run and never reach the ledger", async () => {
    const runsBefore = twin.glue.listRuns().length;
    const deliveredBefore = delivered.size;
    await probe.put("input/notes.txt", "id\n1\n");
    await probe.put("elsewhere/data.csv", customersCsv([1]));
    await probe.put("input/almost.csv.bak", customersCsv([1]));
    await sleep(config.queue.batchingWindowSeconds * 1000 + 3000);
    expect(delivered.size).toBe(deliveredBefore);
    expect(await probe.uploadsOf("input/notes.txt")).toHaveLength(0);
    expect(await probe.uploadsOf("elsewhere/data.csv")).toHaveLength(0);
    expect(twin.glue.listRuns().length).toBe(runsBefore);
  });

  it("a file uploaded while a run is active goes into the next run", async () => {
    const first = "input/active/first.csv";
    const late = "input/active/late.csv";
    await probe.put(first, customersCsv([11]));
    await eventually("the first file's run to be running", async () => {
      const [u] = await probe.uploadsOf(first);
      return u?.status === "running" && twin.glue.listRuns().some((r) => r.state === "RUNNING");
    });
    await probe.put(late, customersCsv([12]));
    const [a, b] = await probe.settled([first, late]);
    expect(a?.status).toBe("processed");
    expect(b?.status).toBe("processed");
    expect(a?.runKey).not.toBe(b?.runKey);
    const runs = await runsOf([first, late]);
    expect(runs.map((r) => r.fileCount)).toEqual([1, 1]);
    // the late run started only after the first had ended (one active run at a time)
    const [lateRun, firstRun] = runs.sort((x, y) => y.createdAt.localeCompare(x.createdAt));
    expect(new Date(lateRun?.startedAt ?? 0).getTime()).toBeGreaterThanOrEqual(
      new Date(firstRun?.endedAt ?? 0).getTime(),
    );
  });
});
