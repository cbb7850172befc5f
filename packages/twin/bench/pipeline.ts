/**
 * Benchmark of the pipeline on the twin (real handlers, real Glue job on local Spark):
 *  1. upload → processed latency of one file (median of several, each its own run);
 *  2. a burst of N files uploaded at once: Glue runs started, time until all are processed, files lost;
 *  3. with `--glue-run N` instead: ONE Glue run of N small uploads (~1 KB each): the objects are put under a prefix
 *     the pipeline does not watch, one manifest names them all, one StartJobRun on the twin's Glue service; prints
 *     the run's wall time (StartJobRun → end), uploads/s and the executor's phases (stage, job.py, publish).
 *
 *   pnpm exec tsx packages/twin/bench/pipeline.ts [--singles 5] [--burst 200] [--json]
 *   pnpm exec tsx packages/twin/bench/pipeline.ts --glue-run 1000 [--json]
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { GlueClient, StartJobRunCommand } from "@aws-sdk/client-glue";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { DynamoLedger } from "@ingest/adapters";
import {
  buildManifest,
  GLUE_ARGUMENTS,
  manifestKey,
  mapLimit,
  parseRunStats,
  toUpload,
  type UploadRecord,
} from "@ingest/core";
import { clientConfig } from "../src/aws.js";
import { projectPaths } from "../src/paths.js";
import { Twin } from "../src/twin.js";

const { values } = parseArgs({
  options: {
    singles: { type: "string", default: "5" },
    burst: { type: "string", default: "200" },
    timeout: { type: "string", default: "1800" },
    json: { type: "boolean", default: false },
    "glue-run": { type: "string" },
  },
});
const singles = Number(values.singles);
const burst = Number(values.burst);
const timeoutMs = Number(values.timeout) * 1000;
const say = (m: string) => {
  if (!values.json) process.stderr.write(`${m}\n`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function csv(seed: number): string {
  const rows = Array.from(
    { length: 20 },
    (_, i) => `${seed * 100 + i},Name ${i},u${i}@example.com,01-04-2025,${i}.25,active`,
  );
  return `id,name,email,date,amount,status\n${rows.join("\n")}\n`;
}

const settled = (u: UploadRecord | undefined) => u?.status === "processed" || u?.status === "failed";

/** One Glue run of `n` small uploads on the twin (see the header): its wall time and phases. */
async function glueRun(twin: Twin, s3: S3Client, n: number, phases: string[]) {
  const bucket = twin.names.bucket;
  const keys = Array.from({ length: n }, (_, i) => `bench-glue-run/f-${String(i).padStart(5, "0")}.csv`);
  const bodies = keys.map((_, i) => csv(i)); // ~1 KB: a header and 20 rows
  const t0 = Date.now();
  const uploads = await mapLimit([...keys.keys()], 16, async (i) => {
    const key = keys[i] as string;
    const body = bodies[i] as string;
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    return toUpload({
      bucket,
      key,
      versionId: put.VersionId ?? null,
      etag: put.ETag ?? "",
      lastModified: new Date().toISOString(),
      size: Buffer.byteLength(body),
    });
  });
  say(`${n} objects put in ${((Date.now() - t0) / 1000).toFixed(1)} s (not part of the run)`);
  const runKey = `BENCH${Date.now()}`;
  const manifest = buildManifest({ runKey, bucket, createdAt: new Date(), uploads });
  const key = manifestKey(runKey);
  await s3.send(new PutObjectCommand({ Bucket: twin.names.controlBucket, Key: key, Body: JSON.stringify(manifest) }));
  const glue = new GlueClient(clientConfig(twin.endpoints.glue));
  const started = Date.now();
  const { JobRunId } = await glue.send(
    new StartJobRunCommand({
      JobName: twin.names.glueJob,
      Arguments: {
        [`--${GLUE_ARGUMENTS.manifestUri}`]: `s3://${twin.names.controlBucket}/${key}`,
        [`--${GLUE_ARGUMENTS.runKey}`]: runKey,
      },
    }),
  );
  glue.destroy();
  const run = () => twin.glue.listRuns().find((r) => r.id === JobRunId);
  while (run()?.completedOn == null) await sleep(200);
  const ended = run();
  const wallMs = (ended?.completedOn?.getTime() ?? Date.now()) - (ended?.startedOn.getTime() ?? started);
  const stats = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifest.statsKey }));
  const totals = parseRunStats(await (stats.Body?.transformToString() ?? ""), manifest.statsKey).totals;
  return {
    uploads: n,
    bytesPerUpload: Math.round(bodies.reduce((a, b) => a + Buffer.byteLength(b), 0) / n),
    state: ended?.state,
    error: ended?.errorMessage ?? null,
    runSeconds: wallMs / 1000,
    uploadsPerSecond: n / (wallMs / 1000),
    filesProcessed: totals.filesProcessed,
    filesFailed: totals.filesFailed,
    phases,
    loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
  };
}

async function main() {
  const base = projectPaths();
  const phases: string[] = [];
  const log = {
    info: (m: string) => {
      if (m.startsWith("glue: run") && m.includes(" staged ")) phases.push(m);
    },
    warn: () => undefined,
  };
  const twin = await Twin.start({
    paths: projectPaths(base.root, join(base.twinDir, "bench")),
    writeState: false,
    log,
  });
  const s3 = new S3Client({ ...clientConfig(twin.endpoints.aws), forcePathStyle: true });
  const dynamo = new DynamoDBClient(clientConfig(twin.endpoints.aws));
  const ledger = new DynamoLedger({ client: dynamo, tableName: twin.names.ledgerTable });
  const put = (key: string, body: string) =>
    s3.send(new PutObjectCommand({ Bucket: twin.names.bucket, Key: key, Body: body }));

  async function untilSettled(keys: readonly string[], deadline: number): Promise<Map<string, UploadRecord>> {
    const done = new Map<string, UploadRecord>();
    while (Date.now() < deadline && done.size < keys.length) {
      const all = await ledger.listUploads();
      for (const u of all) if (keys.includes(u.key) && settled(u)) done.set(u.key, u);
      if (done.size < keys.length) await sleep(200);
    }
    return done;
  }

  try {
    if (values["glue-run"]) {
      const report = await glueRun(twin, s3, Number(values["glue-run"]), phases);
      if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        process.stdout.write(
          [
            `one Glue run of ${report.uploads} uploads of ~${report.bytesPerUpload} B: ${report.state} in ${report.runSeconds.toFixed(1)} s (StartJobRun → end), ${report.uploadsPerSecond.toFixed(1)} uploads/s; processed ${report.filesProcessed}, failed ${report.filesFailed}`,
            ...report.phases,
            `load average: ${report.loadAverage.join(", ")}`,
            "",
          ].join("\n"),
        );
      }
      if (report.state !== "SUCCEEDED" || report.filesProcessed !== report.uploads) process.exitCode = 1;
      return;
    }
    // 1. single-file latency
    const latencies: number[] = [];
    for (let i = 0; i < singles; i++) {
      const key = `input/bench/single-${i}.csv`;
      const t0 = Date.now();
      await put(key, csv(i));
      const done = await untilSettled([key], t0 + timeoutMs);
      const ms = Date.now() - t0;
      if (done.get(key)?.status !== "processed") throw new Error(`${key} was not processed`);
      latencies.push(ms);
      say(`single file ${i + 1}/${singles}: ${(ms / 1000).toFixed(1)} s`);
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    const mid = (sorted.length - 1) / 2;
    const median = sorted.length ? ((sorted[Math.floor(mid)] ?? 0) + (sorted[Math.ceil(mid)] ?? 0)) / 2 : 0;

    // 2. a burst
    const runsBefore = twin.glue.listRuns().length;
    const keys = Array.from({ length: burst }, (_, i) => `input/bench/burst/f-${String(i).padStart(4, "0")}.csv`);
    const t0 = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < keys.length) {
          const i = next++;
          await put(keys[i] as string, csv(1000 + i));
        }
      }),
    );
    const uploadedMs = Date.now() - t0;
    say(`burst: ${burst} files uploaded in ${(uploadedMs / 1000).toFixed(1)} s; waiting`);
    const done = await untilSettled(keys, t0 + timeoutMs);
    const allMs = Date.now() - t0;
    const processed = [...done.values()].filter((u) => u.status === "processed").length;
    const failed = [...done.values()].filter((u) => u.status === "failed").length;
    const report = {
      singleFile: {
        runs: singles,
        medianSeconds: median / 1000,
        minSeconds: (sorted[0] ?? 0) / 1000,
        maxSeconds: (sorted.at(-1) ?? 0) / 1000,
      },
      burst: {
        files: burst,
        uploadSeconds: uploadedMs / 1000,
        glueRunsStarted: twin.glue.listRuns().length - runsBefore,
        secondsUntilAllProcessed: done.size === burst ? allMs / 1000 : null,
        processed,
        failed,
        lost: burst - done.size,
      },
    };
    if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      process.stdout.write(
        [
          `upload → processed, one file: median ${report.singleFile.medianSeconds.toFixed(1)} s over ${singles} (min ${report.singleFile.minSeconds.toFixed(1)}, max ${report.singleFile.maxSeconds.toFixed(1)})`,
          `burst of ${burst} files: ${report.burst.glueRunsStarted} Glue run(s) started; all processed after ${report.burst.secondsUntilAllProcessed?.toFixed(1) ?? "(not all)"} s; processed ${processed}, failed ${failed}, lost ${report.burst.lost}`,
          "",
        ].join("\n"),
      );
    }
    if (report.burst.lost > 0) process.exitCode = 1;
  } finally {
    s3.destroy();
    dynamo.destroy();
    await twin.stop();
  }
}

await main();
