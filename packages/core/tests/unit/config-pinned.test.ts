/**
 * The configuration pinned with literal values (issue 10: "pin the README's config table with literal
 * expectations"). Every number and name the stages, the infra and the README rely on is written out here, never read
 * back from the config module: a change to the config fails this test until it is made here too, on purpose.
 */
import { describe, expect, it } from "vitest";
import * as config from "../../src/config/pipeline.js";

const GiB = 1024 ** 3;

/** What dev and the twin share (they differ only in their stage name). */
const nonProd = {
  isProd: false,
  queue: {
    batchSize: 4_000,
    batchingWindowSeconds: 2,
    maximumConcurrency: 2,
    consumerTimeoutSeconds: 60,
    visibilityTimeoutSeconds: 362,
    maxReceiveCount: 5,
    dlqRetentionSeconds: 1_209_600,
  },
  glue: {
    version: "5.0",
    workerType: "G.1X",
    numberOfWorkers: 2,
    maxConcurrentRuns: 1,
    timeoutMinutes: 30,
    jobBookmarks: "job-bookmark-disable",
  },
  runs: {
    maxFilesPerRun: 10_000,
    maxBytesPerRun: 50 * GiB,
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
    fillHold: null,
    capacity: {
      tiers: [
        { maxFiles: 1_000, maxBytes: 256 * 1024 ** 2, workerType: "G.1X", numberOfWorkers: 2, timeoutMinutes: 60 },
        { maxFiles: 2_500, maxBytes: 10 * GiB, workerType: "G.1X", numberOfWorkers: 3, timeoutMinutes: 60 },
        {
          maxFiles: 10_000,
          maxBytes: 50 * GiB,
          workerType: "G.1X",
          numberOfWorkers: 6,
          backlogWorkers: 12,
          timeoutMinutes: 120,
        },
      ],
      maxWorkers: 2,
      executionClass: "STANDARD",
    },
  },
  recorder: {
    timeoutSeconds: 60,
    visibilityTimeoutSeconds: 360,
    batchSize: 10,
    batchingWindowSeconds: 0,
    maximumConcurrency: 2,
  },
  sweeper: { timeoutSeconds: 120 },
  limits: { maxFileBytes: 5 * GiB },
  reconciler: {
    intervalMinutes: 15,
    maxKeysPerInvocation: 10_000,
    graceSeconds: 60,
    timeoutSeconds: 120,
    inventory: null,
  },
  alarms: { ingestOldestMessageSeconds: 726 },
};

describe("pipelineConfig, pinned", () => {
  it("dev", () => {
    expect(config.pipelineConfig("dev")).toEqual({ stage: "dev", ...nonProd });
  });

  it("the twin (same as dev)", () => {
    expect(config.pipelineConfig("local")).toEqual({ stage: "local", ...nonProd });
  });

  it("prod: the long batching window, 10 workers, a 2 h job, 6 workers for the biggest tier or 12 with uploads waiting (12 at most), 15 min grace", () => {
    expect(config.pipelineConfig("prod")).toEqual({
      ...nonProd,
      stage: "prod",
      isProd: true,
      queue: { ...nonProd.queue, batchingWindowSeconds: 60, visibilityTimeoutSeconds: 420 },
      glue: { ...nonProd.glue, numberOfWorkers: 10, timeoutMinutes: 120 },
      runs: { ...nonProd.runs, capacity: { ...nonProd.runs.capacity, maxWorkers: 12 } },
      reconciler: { ...nonProd.reconciler, graceSeconds: 900 },
      alarms: { ingestOldestMessageSeconds: 900 },
    });
  });
});

describe("the names and constants, pinned", () => {
  it("prefixes, arguments, table keys, environment, lifecycle", () => {
    expect({
      DEFAULT_MAX_FILE_BYTES: config.DEFAULT_MAX_FILE_BYTES,
      EVENT_DELIVERY: config.EVENT_DELIVERY,
      FILE_STATS_PREFIX: config.FILE_STATS_PREFIX,
      GLUE_ARGUMENTS: config.GLUE_ARGUMENTS,
      GLUE_TERMINAL_STATES: config.GLUE_TERMINAL_STATES,
      GLUE_VERSION: config.GLUE_VERSION,
      GLUE_WORKER_DPUS: config.GLUE_WORKER_DPUS,
      HANDLER_ENV: config.HANDLER_ENV,
      INGEST_DATE_PARTITION: config.INGEST_DATE_PARTITION,
      INPUT_PREFIX: config.INPUT_PREFIX,
      INPUT_SUFFIX: config.INPUT_SUFFIX,
      JOB_OUTPUT_PREFIXES: config.JOB_OUTPUT_PREFIXES,
      LEDGER_TABLE: config.LEDGER_TABLE,
      MANIFEST_PREFIX: config.MANIFEST_PREFIX,
      OBSERVABILITY: config.OBSERVABILITY,
      PARQUET_PREFIX: config.PARQUET_PREFIX,
      PROCESSED_PREFIX: config.PROCESSED_PREFIX,
      REJECTED_PREFIX: config.REJECTED_PREFIX,
      STATS_PREFIX: config.STATS_PREFIX,
      STORAGE_LIFECYCLE: config.STORAGE_LIFECYCLE,
      TWIN_STAGE: config.TWIN_STAGE,
    }).toEqual({
      DEFAULT_MAX_FILE_BYTES: 5_368_709_120,
      EVENT_DELIVERY: { maximumRetryAttempts: 185, maximumEventAgeSeconds: 86_400 },
      FILE_STATS_PREFIX: "stats/files/",
      GLUE_ARGUMENTS: {
        manifestUri: "manifest_uri",
        runKey: "run_key",
        dataRoot: "data_root",
        outputRoot: "output_root",
      },
      GLUE_TERMINAL_STATES: ["SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR"],
      GLUE_VERSION: "5.0",
      GLUE_WORKER_DPUS: { "G.1X": 1, "G.2X": 2 },
      HANDLER_ENV: {
        stage: "PIPELINE_STAGE",
        dataBucket: "DATA_BUCKET",
        ledgerTable: "LEDGER_TABLE",
        glueJobName: "GLUE_JOB_NAME",
        controlBucket: "CONTROL_BUCKET",
        maxFileBytes: "PIPELINE_MAX_FILE_BYTES",
        sourceQueueUrl: "SOURCE_QUEUE_URL",
      },
      INGEST_DATE_PARTITION: "ingest_date",
      INPUT_PREFIX: "input/",
      INPUT_SUFFIX: ".csv",
      JOB_OUTPUT_PREFIXES: ["processed/", "parquet/", "rejected/", "stats/runs/", "stats/files/"],
      LEDGER_TABLE: {
        hashKey: "pk",
        rangeKey: "sk",
        pendingIndex: { name: "pending", hashKey: "gsi1pk", rangeKey: "gsi1sk" },
        indexShards: 16,
      },
      MANIFEST_PREFIX: "manifests/",
      OBSERVABILITY: { service: "csv-ingest", metricsNamespace: "CsvIngest" },
      PARQUET_PREFIX: "parquet/",
      PROCESSED_PREFIX: "processed/",
      REJECTED_PREFIX: "rejected/",
      STATS_PREFIX: "stats/runs/",
      STORAGE_LIFECYCLE: { abortIncompleteMultipartDays: 1, noncurrentVersionDays: 30 },
      TWIN_STAGE: "local",
    });
  });

  it("the EventBridge patterns: input/*.csv in every casing of the suffix; this job's terminal states", () => {
    expect(config.objectCreatedPattern("b")).toEqual({
      source: ["aws.s3"],
      "detail-type": ["Object Created"],
      detail: {
        bucket: { name: ["b"] },
        object: {
          key: ["csv", "csV", "cSv", "cSV", "Csv", "CsV", "CSv", "CSV"].map((s) => ({ wildcard: `input/*.${s}` })),
        },
      },
    });
    expect(config.glueRunEndedPattern("j")).toEqual({
      source: ["aws.glue"],
      "detail-type": ["Glue Job State Change"],
      detail: { jobName: ["j"], state: ["SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR"] },
    });
  });

  it("the shortest input key is input/.csv", () => {
    expect(config.isInputKey("input/.csv")).toBe(true);
    expect(config.isInputKey("input/csv")).toBe(false);
  });
});
