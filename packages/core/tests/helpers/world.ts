import { type PipelineConfig, pipelineConfig } from "../../src/config/pipeline.js";
import { MemoryLedger } from "../../src/ledger/memory.js";
import type { Deps } from "../../src/ledger/ports.js";
import { parseManifest } from "../../src/manifest/format.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import {
  CountingMetrics,
  ManualClock,
  MemoryGlue,
  MemoryLog,
  MemoryObjects,
  sequentialRunKeys,
} from "../../src/testing/fakes.js";
import type { ObjectVersion } from "../../src/upload/identity.js";

export const BUCKET = "data-bucket";

/** A whole pipeline's worth of in-memory adapters around the real domain logic. */
export function makeWorld(overrides: { maxFilesPerRun?: number; maxAttempts?: number } = {}) {
  const clock = new ManualClock();
  const ledger = new MemoryLedger();
  const objects = new MemoryObjects(clock);
  const glue = new MemoryGlue(clock);
  const metrics = new CountingMetrics();
  const log = new MemoryLog();
  const base = pipelineConfig("test");
  const config: PipelineConfig = {
    ...base,
    runs: {
      ...base.runs,
      ...(overrides.maxFilesPerRun ? { maxFilesPerRun: overrides.maxFilesPerRun } : {}),
      ...(overrides.maxAttempts ? { maxAttempts: overrides.maxAttempts } : {}),
    },
  };
  const deps: Deps = { ledger, objects, glue, clock, log, metrics, newRunKey: sequentialRunKeys(), bucket: BUCKET };
  let messageSeq = 0;

  /** PutObject + the message S3 → EventBridge → SQS would deliver for it. */
  function upload(key: string, body = `id,name\n1,${key}\n`) {
    const version = objects.put(BUCKET, key, body);
    return { version, message: message(version) };
  }

  function message(v: ObjectVersion, shape: "aws" | "moto" = "aws") {
    return { messageId: `m-${++messageSeq}`, body: JSON.stringify(objectCreatedEvent(v, shape)) };
  }

  async function manifestOf(runKey: string) {
    const text = await objects.getText(BUCKET, `manifests/${runKey}.json`);
    if (text === null) throw new Error(`no manifest for ${runKey}`);
    return parseManifest(text, runKey);
  }

  /** The Glue job's part: writes stats saying every file of the run was processed. */
  async function writeStats(runKey: string, failedKeys: Record<string, string> = {}) {
    const manifest = await manifestOf(runKey);
    await objects.putJson(BUCKET, manifest.statsKey, {
      format: "csv-ingest-stats/1",
      runKey,
      processingDate: clock.now().toISOString(),
      totals: {
        files: manifest.uploads.length,
        filesProcessed: 0,
        filesFailed: 0,
        rowsRead: 0,
        rowsProcessed: 0,
        rowsRejected: 0,
        duplicatesRemoved: 0,
        qualityIssues: {},
      },
      files: manifest.uploads.map((u) => {
        const error = failedKeys[u.key];
        return {
          uploadId: u.uploadId,
          key: u.key,
          status: error ? "failed" : "processed",
          error: error ?? null,
          rowsRead: 1,
          rowsProcessed: error ? 0 : 1,
          rowsRejected: 0,
          duplicatesRemoved: 0,
          qualityIssues: {},
          output: error ? null : `s3://${BUCKET}/${u.outputPrefix}`,
          rejectedOutput: error ? null : `s3://${BUCKET}/${u.rejectedPrefix}`,
        };
      }),
    });
  }

  /** A run holds the slot (input/busy.csv) while v1 then v2 of input/a.csv arrive, a second apart. */
  async function twoVersionsBehindABusyRun() {
    await handleUploadBatch(deps, config, [upload("input/busy.csv").message]);
    clock.advance(1_000);
    const v1 = upload("input/a.csv", "v1");
    await handleUploadBatch(deps, config, [v1.message]);
    clock.advance(1_000);
    const v2 = upload("input/a.csv", "v2");
    await handleUploadBatch(deps, config, [v2.message]);
    const [busy] = [...ledger.runs.values()];
    if (!busy?.glueRunId) throw new Error("no busy run holds the slot");
    return { busy: { ...busy, glueRunId: busy.glueRunId }, v1, v2 };
  }

  return {
    deps,
    config,
    clock,
    ledger,
    objects,
    glue,
    metrics,
    log,
    upload,
    message,
    manifestOf,
    writeStats,
    twoVersionsBehindABusyRun,
  };
}

export function objectCreatedEvent(v: ObjectVersion, shape: "aws" | "moto" = "aws") {
  return {
    version: "0",
    id: shape === "moto" ? "17793124-05d4-b198-2fde-7ededc63b103" : `evt-${v.key}-${v.etag}`,
    "detail-type": "Object Created",
    source: "aws.s3",
    account: "123456789012",
    time: shape === "moto" ? Date.parse(v.lastModified) / 1000 : v.lastModified,
    region: "us-east-1",
    resources: [`arn:aws:s3:::${v.bucket}`],
    detail: {
      version: "0",
      bucket: { name: v.bucket },
      object: {
        key: v.key,
        size: v.size,
        ...(shape === "moto" ? { eTag: v.etag } : { etag: v.etag }),
        ...(v.versionId ? { "version-id": v.versionId } : {}),
        sequencer: "617f08299329d189",
      },
      "request-id": "N4N7GDK58NMKJ12R",
      requester: "123456789012",
      "source-ip-address": "1.2.3.4",
      reason: "PutObject",
    },
  };
}

export function glueStateChange(jobName: string, jobRunId: string, state: string, message = "") {
  return {
    version: "0",
    id: "e1",
    "detail-type": "Glue Job State Change",
    source: "aws.glue",
    account: "123456789012",
    time: "2026-04-01T10:00:00Z",
    region: "us-east-1",
    resources: [],
    detail: { jobName, severity: state === "SUCCEEDED" ? "INFO" : "ERROR", state, jobRunId, message },
  };
}
