/**
 * The pipeline config module: the single source of the input pattern, the batch and queue numbers, the Glue
 * settings and the output layout. `infra/` and the local twin both import it; nothing restates these values.
 *
 * Stages: `prod` gets the long batching window and the bigger workers; every other stage (dev, test, the twin)
 * gets a short window so a demo or a test sees its run quickly. `pipelineConfig(stage)` is the only way in.
 */

export const INPUT_PREFIX = "input/";
export const INPUT_SUFFIX = ".csv";
export const PROCESSED_PREFIX = "processed/";
// The Glue job's outputs, one top-level prefix per kind (each its own Data Catalog table; glue/CONTRACT.md).
export const REJECTED_PREFIX = "rejected/";
/** Run summaries (`<runKey>.json`), what the recorder reads. */
export const STATS_PREFIX = "stats/runs/";
/** Per-file stats as JSON Lines, partitioned by ingest date (the file_stats table). */
export const FILE_STATS_PREFIX = "stats/files/";
/** The processed rows as Parquet, partitioned by ingest date (the processed_rows table). */
export const PARQUET_PREFIX = "parquet/";
/** The partition column of the Parquet and file-stats tables: the UTC date the run's manifest was written. */
export const INGEST_DATE_PARTITION = "ingest_date";
/** Every prefix the Glue job writes under. */
export const JOB_OUTPUT_PREFIXES = [
  PROCESSED_PREFIX,
  PARQUET_PREFIX,
  REJECTED_PREFIX,
  STATS_PREFIX,
  FILE_STATS_PREFIX,
] as const;
export const MANIFEST_PREFIX = "manifests/";

/** The Glue job's script arguments (names without the leading `--`). The job reads exactly these. */
export const GLUE_ARGUMENTS = {
  /** `s3://bucket/manifests/<runKey>.json`: the only way the job learns what to read. */
  manifestUri: "manifest_uri",
  /** The ledger's run key (our id, known before StartJobRun returns Glue's JobRunId). */
  runKey: "run_key",
  /** Where manifest keys are read from: `s3://<bucket>/` on AWS (a job default argument); a staging folder in the twin. */
  dataRoot: "data_root",
  /** Where output keys are written: `s3://<bucket>/` on AWS; a staging folder in the twin. */
  outputRoot: "output_root",
} as const;

/** Glue 5.0 = Spark 3.5.4, Python 3.11, Java 17; `glue/requirements-dev.txt` pins pyspark to the same Spark. */
export const GLUE_VERSION = "5.0";

export interface QueueSettings {
  /**
   * Records handed to one batching Lambda invocation. The SQS mapping allows 10,000, but Lambda's 6 MB invocation
   * payload holds about 4,000 S3-event records (~1.5 KB each as SQS delivers them); past that Lambda cuts the batch.
   */
  readonly batchSize: number;
  /** How long Lambda gathers records before invoking (at most 300 s; required > 0 when batchSize > 10). */
  readonly batchingWindowSeconds: number;
  /** Lambda's SQS mapping cannot go below 2; the run slot (not this number) keeps runs single. */
  readonly maximumConcurrency: number;
  /** The batching Lambda's own timeout. */
  readonly consumerTimeoutSeconds: number;
  /** AWS asks for at least 6x the consumer timeout (+ batching window). */
  readonly visibilityTimeoutSeconds: number;
  /** Receives before a message goes to the DLQ. */
  readonly maxReceiveCount: number;
  /** How long a message may wait in the DLQ before it is gone (14 days is SQS's maximum). */
  readonly dlqRetentionSeconds: number;
}

export interface GlueSettings {
  readonly version: typeof GLUE_VERSION;
  readonly workerType: "G.1X" | "G.2X";
  readonly numberOfWorkers: number;
  /** Glue's own guard; the ledger's run slot is what keeps one run active, this is the backstop. */
  readonly maxConcurrentRuns: number;
  readonly timeoutMinutes: number;
  /**
   * Job bookmarks stay OFF: the ledger decides which uploads a run reads (the manifest). Bookmarks judge files by
   * last-modified only and would skip a late or redriven upload that the manifest names explicitly.
   */
  readonly jobBookmarks: "job-bookmark-disable";
}

export interface RunSettings {
  /**
   * A manifest holds at most this many uploads; the rest stay pending for the next run. 10,000 lets a 10,000-file
   * burst be ONE run. What bounds it: the start claims every upload (one conditional write each, 32 in flight:
   * ~3 s for 10,000) inside the batching Lambda's timeout, and the manifest (~0.5-3 KB per entry) is read by the
   * job's driver; the byte cap below bounds the run's work.
   */
  readonly maxFilesPerRun: number;
  /** ...and at most this many bytes of input (sum of object sizes). */
  readonly maxBytesPerRun: number;
  /** Failed attempts of an upload in a run of its own before it is reported failed. */
  readonly maxAttempts: number;
  /**
   * A launched start (past its fence) held this long since its fence without a Glue run id is repaired by the
   * sweeper, which asks Glue (adopt or undo); runs and uploads left open without the slot are closed after it too.
   * Starts happen inside one handler invocation, so anything older than the longest handler timeout (plus a margin,
   * for Glue's run listing to catch up) is stale. Unlaunched starts: `revokeUnlaunchedAfterSeconds`.
   */
  readonly startTimeoutSeconds: number;
  /**
   * A slot held this long by a start that has not passed its launch fence (no Glue run can exist) is revoked by
   * whoever finds it — the next batch, the recorder, the reconciler, the sweeper (runs/start.ts, revokeStaleStart).
   * Longer than the batcher's and the recorder's timeouts, so such a starter is dead; a slower one that is still alive
   * (a sweeper or reconciler start, 120 s timeout; the CLI) is revoked safely — its fence then fails and it never
   * calls Glue. Glue is never asked here, so no listing lag bounds it from below (launched starts keep
   * startTimeoutSeconds, counted from the fence).
   */
  readonly revokeUnlaunchedAfterSeconds: number;
  /**
   * The settle window: after taking the run slot, the holder re-reads the pending uploads every `settleMs` until the
   * list stops growing (at most `maxSettleRounds` times), so a burst split across concurrent invocations (Lambda runs
   * two batches at once) joins one run instead of two.
   */
  readonly settleMs: number;
  readonly maxSettleRounds: number;
  /** How often the sweeper runs. */
  readonly sweepIntervalMinutes: number;
  /**
   * Runs that fail for reasons that are not their files' (Glue internal errors, capacity, outages, timeouts without
   * per-file stats) are retried whole, after a backoff of base * 2^(n-1) seconds (n = consecutive such failures),
   * at most max; no attempt is charged to their files.
   */
  readonly systemRetryBaseSeconds: number;
  readonly systemRetryMaxSeconds: number;
  /** After this many consecutive system failures the breaker is open: a probe every systemRetryMaxSeconds + alarm. */
  readonly breakerThreshold: number;
  /**
   * Burst hold: a batch that arrives FULL (queue.batchSize records) means more of the burst is still queued or in
   * Lambda's batching buffers, so its run is not started while the oldest pending upload is younger than this; the
   * burst's last (not full) batch starts one run of all of it. A run end, the sweeper and any batch that is not full
   * start at once; past this age a full batch starts too. A held batch also sends one of its messages back to come
   * back when the hold ends (functions/batcher.ts), so a burst whose last batch was full (a multiple of the batch
   * size) starts then — Lambda may gather that message for up to one batching window — not at the sweeper's next
   * pass. Bounds the wait: this + one batching window; when no message could be sent back (SQS refused it, none on
   * its first receive, the invocation crashed), the sweeper's interval.
   */
  readonly burstHoldSeconds: number;
  /**
   * Fill hold (null: off, in every stage; a stage option for pipelines that trade latency for cost). Glue bills each
   * run's startup (a minute or more) on all its workers, and a fast steady stream chains small runs back to back,
   * paying it once per run end. So a run of fewer than `minFiles` fresh uploads is not started while (a) the rate they
   * came at (count / the oldest's age) would fill it to `minFiles` before the oldest is `maxWaitSeconds` old, and
   * (b) they are a stream that still flows (recorded over at least a second, the newest in the last `quietSeconds`:
   * the batching window + 15 s). A slow stream, one batch, a burst that has ended, a run the caps already cut, a failed
   * run's retries are never held (runs/start.ts fillingUp). Whoever looks next starts it once the hold ends — the next
   * batch, a run's end, or the sweeper — so a held upload waits at most maxWaitSeconds + one sweep interval. Measured
   * with `BENCH_FILL` (docs/notes/cost.md, session 14).
   */
  readonly fillHold: {
    readonly minFiles: number;
    readonly maxWaitSeconds: number;
    readonly quietSeconds: number;
  } | null;
  /** The Glue capacity each run asks for, chosen from its manifest (runs/capacity.ts). */
  readonly capacity: CapacitySettings;
}

export interface PipelineConfig {
  readonly stage: string;
  readonly isProd: boolean;
  readonly queue: QueueSettings;
  readonly glue: GlueSettings;
  readonly runs: RunSettings;
  /** The recorder's trigger: small batches, no window — a run's end is recorded as soon as its event arrives. */
  readonly recorder: {
    readonly timeoutSeconds: number;
    readonly visibilityTimeoutSeconds: number;
    readonly batchSize: number;
    readonly batchingWindowSeconds: number;
    readonly maximumConcurrency: number;
  };
  readonly sweeper: { readonly timeoutSeconds: number };
  readonly limits: UploadLimits;
  readonly reconciler: ReconcilerSettings;
  readonly alarms: AlarmSettings;
}

export interface AlarmSettings {
  /**
   * The ingest queue's oldest message may be this old before it alarms: two visibility timeouts plus the batching
   * window, i.e. a message that has already failed twice (a healthy one is consumed within the window) — or whose
   * invocation crashed about four times (crash leases of 90 and 180 s come first, queue/lease.ts).
   */
  readonly ingestOldestMessageSeconds: number;
}

/**
 * EventBridge's delivery of both rules' events to their queues: retried for up to this long / this many times
 * (EventBridge's maximums), then sent to the rule target's own DLQ instead of being dropped.
 */
export const EVENT_DELIVERY = { maximumRetryAttempts: 185, maximumEventAgeSeconds: 24 * 60 * 60 } as const;

/**
 * The reconciler (scheduled): lists `input/` from a saved position and records the uploads the ledger lacks (a lost
 * S3 event delays a file, never loses it). Each invocation's cost is bounded by `maxKeysPerInvocation`.
 */
export interface ReconcilerSettings {
  /** How often the reconciler runs. */
  readonly intervalMinutes: number;
  /** Keys listed per invocation at most (ListObjectsV2 pages of up to 1,000): one ledger read per key listed. */
  readonly maxKeysPerInvocation: number;
  /**
   * Objects modified less than this long ago are left to their own event (which normally records them within the
   * batching window); the next pass over their key looks again. Recording one early would be harmless, only wasted.
   */
  readonly graceSeconds: number;
  /** The reconciler Lambda's timeout. */
  readonly timeoutSeconds: number;
  /**
   * Read the latest S3 Inventory report here instead of listing (big buckets), or null to list. Not implemented
   * yet: the reconciler refuses to run with it set rather than silently listing (see docs/notes/reconciler.md).
   */
  readonly inventory: { readonly bucket: string; readonly prefix: string } | null;
}

function queueSettings(batchingWindowSeconds: number, consumerTimeoutSeconds: number): QueueSettings {
  return {
    batchSize: 4_000,
    batchingWindowSeconds,
    maximumConcurrency: 2,
    consumerTimeoutSeconds,
    visibilityTimeoutSeconds: 6 * consumerTimeoutSeconds + batchingWindowSeconds,
    maxReceiveCount: 5,
    dlqRetentionSeconds: 14 * 24 * 60 * 60,
  };
}

/** The stage name the local twin runs as. */
export const TWIN_STAGE = "local";

export function pipelineConfig(stage: string): PipelineConfig {
  const isProd = stage === "prod";
  return withAlarms({
    stage,
    isProd,
    // prod: wait up to 60 s to gather a burst into one invocation; elsewhere 2 s so demos and tests are quick.
    // Every stage, the twin included, gives the batching Lambda 60 s (visibility 362 s): the twin mirrors AWS's
    // timings; its tests that need a quick redelivery shorten the visibility explicitly.
    queue: queueSettings(isProd ? 60 : 2, 60),
    glue: {
      version: GLUE_VERSION,
      workerType: "G.1X",
      numberOfWorkers: isProd ? 10 : 2,
      maxConcurrentRuns: 1,
      timeoutMinutes: isProd ? 120 : 30,
      jobBookmarks: "job-bookmark-disable",
    },
    runs: {
      maxFilesPerRun: 10_000,
      maxBytesPerRun: 50 * 1024 ** 3,
      maxAttempts: 3,
      startTimeoutSeconds: 3 * 60,
      revokeUnlaunchedAfterSeconds: 75,
      settleMs: 1_000,
      maxSettleRounds: 5,
      sweepIntervalMinutes: 5,
      systemRetryBaseSeconds: 60,
      systemRetryMaxSeconds: 30 * 60,
      breakerThreshold: 5,
      burstHoldSeconds: 90,
      // A stage option (like Flex): measured, not on by default — see the field's doc and docs/notes/cost.md.
      fillHold: null,
      capacity: capacitySettings(isProd),
    },
    recorder: {
      timeoutSeconds: 60,
      visibilityTimeoutSeconds: 6 * 60,
      batchSize: 10,
      batchingWindowSeconds: 0,
      maximumConcurrency: 2,
    },
    sweeper: { timeoutSeconds: 120 },
    limits: uploadLimits(),
    reconciler: {
      intervalMinutes: 15,
      maxKeysPerInvocation: 10_000,
      // prod: the 60 s window plus a redelivery or two; elsewhere the events are fast and tests want a short wait.
      graceSeconds: isProd ? 15 * 60 : 60,
      timeoutSeconds: 120,
      inventory: null,
    },
  });
}

/** The alarm thresholds follow from the queue settings. */
function withAlarms(c: Omit<PipelineConfig, "alarms">): PipelineConfig {
  const { visibilityTimeoutSeconds, batchingWindowSeconds } = c.queue;
  return { ...c, alarms: { ingestOldestMessageSeconds: 2 * visibilityTimeoutSeconds + batchingWindowSeconds } };
}

// ── Capacity per run ────────────────────────────────────────────────────────────────────────────────────────────
// Glue bills DPU-seconds (1-minute minimum per run): a run of one 2 KB file needs no 10-worker cluster, a run of
// 10,000 files wants more than 10. Each run asks StartJobRun for the capacity of the first tier its manifest fits.

export type GlueWorkerType = "G.1X" | "G.2X";
/** FLEX runs on spare capacity at a lower DPU rate; its start may be delayed: for stages that accept queueing. */
export type GlueExecutionClass = "STANDARD" | "FLEX";
/** DPUs per worker (what Glue bills). */
export const GLUE_WORKER_DPUS: Readonly<Record<GlueWorkerType, number>> = { "G.1X": 1, "G.2X": 2 };

/** What one run asks StartJobRun for (WorkerType, NumberOfWorkers, Timeout, ExecutionClass). */
export interface RunCapacity {
  readonly workerType: GlueWorkerType;
  readonly numberOfWorkers: number;
  readonly timeoutMinutes: number;
  readonly executionClass: GlueExecutionClass;
}

/** A run of at most `maxFiles` files AND at most `maxBytes` bytes of input gets this capacity. */
export interface CapacityTier {
  readonly maxFiles: number;
  readonly maxBytes: number;
  readonly workerType: GlueWorkerType;
  /** Workers for a run that takes every pending upload: only uploads made during it wait for it to end. */
  readonly numberOfWorkers: number;
  /**
   * Workers for a run that leaves uploads waiting behind it (the manifest caps cut its selection): they wait its
   * whole duration, so its speed is their latency. Absent: `numberOfWorkers` either way.
   */
  readonly backlogWorkers?: number;
  readonly timeoutMinutes: number;
}

export interface CapacitySettings {
  /** Ascending; the first tier the run fits is chosen, a run past the last gets the last. */
  readonly tiers: readonly CapacityTier[];
  /** No run asks for more workers than this (a cost guard per stage), whatever its tier says. */
  readonly maxWorkers: number;
  readonly executionClass: GlueExecutionClass;
}

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/**
 * Worker counts chosen with the cost simulation (`pnpm run bench:capacity`, docs/notes/cost.md): Glue bills every
 * run's 1–3 minutes of startup and fixed work on all its workers, and a small upload's own work is about 0.2
 * worker-seconds (its S3 round trips; rows run at about 50 MiB/s per G.1X worker), one worker being Spark's driver.
 * So a run takes the FEWEST workers that keep its duration from growing run after run: 2 (one executor) for up to
 * 1,000 files, 3 for up to 2,500 (a steady stream of ~5 uploads/s settles between the two), and a big run 6 — near
 * the fewest DPU-seconds for 10,000 files — unless the caps left uploads waiting behind it: they wait its whole
 * duration, so it gets 12 (backlogWorkers; session 15: on the 1M-upload day 2.04–2.12× less Glue than fixed capacity
 * over seven seeds, its p99 better than fixed's on five of them, not on seeds 99 and 11). Timeouts leave ≥ 10× the
 * expected run time so a slow healthy run is never failed for time.
 */
function capacitySettings(isProd: boolean): CapacitySettings {
  return {
    tiers: [
      { maxFiles: 1_000, maxBytes: 256 * MiB, workerType: "G.1X", numberOfWorkers: 2, timeoutMinutes: 60 },
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
    maxWorkers: isProd ? 12 : 2,
    executionClass: "STANDARD",
  };
}

/**
 * The EventBridge pattern for "an upload under input/ ending in .csv, in any case". EventBridge ORs the entries of
 * an array, so `[{prefix}, {suffix}]` would match prefix OR suffix; `wildcard` matches both at once but is
 * case-sensitive, and `equals-ignore-case` does not combine with it. So: one wildcard per casing of the suffix
 * (`input/*.csv`, `input/*.csV`, … `input/*.CSV`: 8 entries, ORed), which is exactly `isInputKey`.
 */
export function objectCreatedPattern(bucketName: string) {
  return {
    source: ["aws.s3"],
    "detail-type": ["Object Created"],
    detail: {
      bucket: { name: [bucketName] },
      object: { key: suffixCasings(INPUT_SUFFIX).map((suffix) => ({ wildcard: `${INPUT_PREFIX}*${suffix}` })) },
    },
  };
}

/** Every upper/lower-case spelling of `suffix` (`.csv` → 8), lower-case first. */
function suffixCasings(suffix: string): string[] {
  let casings = [""];
  for (const ch of suffix) {
    const variants = ch.toLowerCase() === ch.toUpperCase() ? [ch] : [ch.toLowerCase(), ch.toUpperCase()];
    casings = casings.flatMap((head) => variants.map((v) => head + v));
  }
  return casings;
}

/** The EventBridge pattern for the end of one of this job's runs. */
export function glueRunEndedPattern(jobName: string) {
  return {
    source: ["aws.glue"],
    "detail-type": ["Glue Job State Change"],
    detail: {
      jobName: [jobName],
      state: [...GLUE_TERMINAL_STATES],
    },
  };
}

export const GLUE_TERMINAL_STATES = ["SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR"] as const;
export type GlueTerminalState = (typeof GLUE_TERMINAL_STATES)[number];

/**
 * True when `key` is an upload this pipeline processes (same rule as the pattern, for code paths that see keys):
 * under input/, ending in `.csv` in any case (`.CSV`, `.Csv`, …).
 */
export function isInputKey(key: string): boolean {
  return (
    key.startsWith(INPUT_PREFIX) &&
    key.toLowerCase().endsWith(INPUT_SUFFIX) &&
    key.length >= INPUT_PREFIX.length + INPUT_SUFFIX.length
  );
}

/**
 * The ledger table's keys, shared by infra (the DynamoDB table) and the twin (which creates the same table).
 * Items: UPLOAD#<bucket>/<key> + <versionTag> (one per upload), RUN + <runKey>, SLOT + SLOT (the run slot),
 * GLUERUN + <glue JobRunId> (points at a runKey). Pending uploads carry the sparse `pending` index keys.
 */
export const LEDGER_TABLE = {
  hashKey: "pk",
  rangeKey: "sk",
  pendingIndex: { name: "pending", hashKey: "gsi1pk", rangeKey: "gsi1sk" },
  /**
   * Pending and running uploads are spread over this many index partitions (PENDING#0..15, RUNNING#0..15, by a hash
   * of the upload id): one partition per status took every write of a burst (~1,000 writes/s per partition).
   */
  indexShards: 16,
} as const;

/** Powertools names: the handlers' logger/metrics and the alarms on those metrics use the same ones. */
export const OBSERVABILITY = { service: "csv-ingest", metricsNamespace: "CsvIngest" } as const;

/**
 * Memory of every handler Lambda (batcher, recorder, sweeper, reconciler). Lambda gives CPU in proportion to memory,
 * one full vCPU at 1,769 MB; SST's default, 1,024 MB, is ~0.58 of one. The handlers' worst invocations are CPU-bound
 * on the SDK's per-request work (a batch of 4,000 uploads, then a run start of maxFilesPerRun conditional claims; a
 * run end settling maxFilesPerRun uploads, then the next start: `pnpm run bench:batcher`), and Node runs that work on
 * one thread, so one full vCPU is the most that helps. Lambda is well under 1% of the pipeline's cost
 * (`pnpm run bench:coalescing`); the timeouts are not.
 */
export const HANDLER_MEMORY_MB = 1769;

/** Environment variables the handlers read (set by infra on AWS, by the twin locally). */
export const HANDLER_ENV = {
  stage: "PIPELINE_STAGE",
  dataBucket: "DATA_BUCKET",
  ledgerTable: "LEDGER_TABLE",
  glueJobName: "GLUE_JOB_NAME",
  /** The control bucket: manifests (and the job's code), which uploaders cannot write. Absent: the data bucket. */
  controlBucket: "CONTROL_BUCKET",
  /** Optional override of `limits.maxFileBytes` (the twin's tests set a small cap). */
  maxFileBytes: "PIPELINE_MAX_FILE_BYTES",
  /** The queue a consumer (batcher, recorder) reads: its crash lease changes its messages' visibility there. */
  sourceQueueUrl: "SOURCE_QUEUE_URL",
} as const;

// ---- Untrusted uploads (issue 12): per-file cap, storage hygiene ----

export interface UploadLimits {
  /**
   * An upload over this many bytes is failed at intake with the reason (never put in a run): a file Glue cannot
   * finish would hold the only run slot for up to maxAttempts × the job timeout while every other upload waits.
   */
  readonly maxFileBytes: number;
}

/** 5 GiB: S3's largest single PUT, and well within one run's 50 GiB. Every stage; the twin's tests override it. */
export const DEFAULT_MAX_FILE_BYTES = 5 * 1024 ** 3;

function uploadLimits(): UploadLimits {
  return { maxFileBytes: DEFAULT_MAX_FILE_BYTES };
}

/** Lifecycle rules of both buckets (infra/storage.ts), asserted by the infra tests. */
export const STORAGE_LIFECYCLE = {
  /** Multipart uploads never completed (a crashed uploader, a Spark task killed mid-write) are aborted after this. */
  abortIncompleteMultipartDays: 1,
  /** An overwritten or deleted version (versioned buckets: prod) is kept this long, then expires. */
  noncurrentVersionDays: 30,
} as const;
