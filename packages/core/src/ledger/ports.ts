/**
 * Ports: what the domain logic needs from the outside world. `MemoryLedger` and the in-memory fakes implement them
 * for tests and the benchmark; `@ingest/adapters` implements them with the AWS SDK (DynamoDB, S3, Glue).
 */
import type { GlueTerminalState, RunCapacity } from "../config/pipeline.js";
import type { Manifest } from "../manifest/format.js";
import type { GlueUsage } from "../runs/glue-cost.js";
import type { ObjectVersion, Upload } from "../upload/identity.js";
import type { HealthRecord, RunRecord, RunState, SlotRecord, UploadRecord } from "./types.js";

/** How a run left one of its uploads. */
export type Settlement =
  | {
      readonly status: "processed";
      readonly output: string | null;
      readonly rejectedOutput: string | null;
      readonly rowsRead: number | null;
      readonly rowsProcessed: number | null;
      readonly rowsRejected: number | null;
    }
  | { readonly status: "failed"; readonly error: string; readonly attempts: number }
  | {
      readonly status: "pending";
      readonly error: string;
      readonly attempts: number;
      /** null: back with the fresh uploads (the run never happened); n: retried in runs of at most n. */
      readonly retryGroupSize: number | null;
    };

/**
 * Every conditional write is idempotent: when its condition fails, the store reads what is there (DynamoDB:
 * ReturnValuesOnConditionCheckFailure=ALL_OLD) and reports success when it is already the state this very write
 * makes ("already as I wanted, by me" -- e.g. the SDK retried a write whose answer was lost). The contract suite
 * checks this on MemoryLedger and DynamoLedger alike by repeating each write.
 */
export interface LedgerStore {
  /** Records a new upload as pending (or failed, with a reason) unless it is already in the ledger. */
  recordUpload(
    upload: Upload,
    now: string,
    failure?: string,
  ): Promise<{ readonly created: boolean; readonly record: UploadRecord }>;
  getUpload(uploadId: string): Promise<UploadRecord | null>;
  /** Pending uploads, oldest first (retried ones keep their first receipt time, so they come first). */
  listPending(limit: number): Promise<UploadRecord[]>;
  /** pending → running in `runKey`; false when the upload is no longer pending (true when already running in it). */
  claimUpload(uploadId: string, runKey: string, now: string): Promise<boolean>;
  /**
   * running in `runKey` → settlement; false when it is not (already settled, or in another run). `read`: the record
   * the caller has just read, so a store that builds the new item from the old one need not read it again (the
   * write stays conditional on the upload being running in `runKey`).
   */
  settleUpload(
    uploadId: string,
    runKey: string,
    settlement: Settlement,
    now: string,
    read?: UploadRecord,
  ): Promise<boolean>;
  /**
   * pending → failed with `error` in one conditional write, attributed to `runKey` (the run that decided it; the
   * upload is not counted as having been in it). For a version superseded by a newer upload of its key: it never
   * passes through running, so no crash can leave it there. false when it is no longer pending.
   */
  failPendingUpload(uploadId: string, runKey: string | null, error: string, now: string): Promise<boolean>;
  /**
   * Running uploads held by any run but `exceptRunKey` (the slot's run; null: every running upload), in run-key
   * order (oldest runs first), at most `limit`. What the sweeper checks for uploads left running by a run that has
   * closed. An index query, never a table scan; the index may lag, so callers re-read before acting.
   */
  listRunning(limit: number, exceptRunKey: string | null): Promise<UploadRecord[]>;
  /** failed → pending with a fresh attempt budget (redrive); false when it is not failed. */
  requeueUpload(uploadId: string, now: string): Promise<boolean>;
  listUploads(): Promise<UploadRecord[]>;
  /** Every recorded version of one key (all pages), strongly consistent. */
  uploadsOfKey(bucket: string, key: string): Promise<UploadRecord[]>;

  createRun(run: RunRecord): Promise<void>;
  getRun(runKey: string): Promise<RunRecord | null>;
  /** Applies `patch` only while the run is in one of `from`; false otherwise (this is what makes ends idempotent). */
  updateRun(runKey: string, from: readonly RunState[], patch: Partial<Omit<RunRecord, "runKey">>): Promise<boolean>;
  /**
   * Records Glue's figures on a CLOSED run whose `glue` is null (its close could not read them): one conditional write,
   * so of two writers the first wins and nothing else of the run changes. false when the run is missing, still open,
   * already has figures, or has no `glue` at all (closed before figures were recorded); true when it already holds
   * exactly these (a retried write whose answer was lost).
   */
  fillRunGlue(runKey: string, glue: GlueUsage): Promise<boolean>;
  linkGlueRun(glueRunId: string, runKey: string): Promise<void>;
  runKeyOfGlueRun(glueRunId: string): Promise<string | null>;
  /** Newest first. */
  listRuns(limit: number): Promise<RunRecord[]>;

  /** Takes the run slot for `runKey` when nobody holds it. */
  takeSlot(runKey: string, now: string): Promise<boolean>;
  /**
   * The launch fence, a start's last write before StartJobRun: marks the slot launched by its holder `runKey`. false
   * when `runKey` no longer holds the slot (its start was revoked as stale): the start must then not call Glue.
   */
  markLaunched(runKey: string, now: string): Promise<boolean>;
  /**
   * Frees the slot if `runKey` holds it; says whether someone asked for a wake-up meanwhile. `unlessLaunched`: only
   * while the holder has not passed its launch fence (a repairer revoking a stale start that cannot have reached
   * Glue); `released: false` otherwise.
   */
  releaseSlot(
    runKey: string,
    options?: { readonly unlessLaunched?: boolean },
  ): Promise<{ readonly released: boolean; readonly wakeup: boolean }>;
  /**
   * Marks the held slot so its holder looks for pending uploads when it ends. Returns the slot as it is after the
   * mark (who holds it, since when, launched or not); null when the slot is free.
   */
  requestWakeup(): Promise<SlotRecord | null>;
  getSlot(): Promise<SlotRecord>;

  /** The circuit breaker's state (see HealthRecord). */
  getHealth(): Promise<HealthRecord>;
  /**
   * Counts run `runKey`'s outcome once: a system failure adds one to the consecutive count (and stamps `now`), a
   * healthy end resets it. A second report for the same run changes nothing. Returns the state after.
   */
  recordRunHealth(runKey: string, outcome: "system-failure" | "healthy", now: string): Promise<HealthRecord>;
}

export interface ObjectStore {
  /** What S3 says about the current version of a key; null when there is none. */
  head(bucket: string, key: string): Promise<ObjectVersion | null>;
  putJson(bucket: string, key: string, doc: unknown): Promise<void>;
  /** null when the object does not exist. */
  getText(bucket: string, key: string): Promise<string | null>;
}

/** One object of a listing, as ListObjectsV2 reports it (no version id: that takes a HeadObject). */
export interface ListedObject {
  readonly key: string;
  /** As S3 lists it (quotes and all); compare with `normalizeEtag`. */
  readonly etag: string;
  /** ISO-8601. */
  readonly lastModified: string;
  readonly size: number;
}

/** The reconciler's view of a bucket: its keys in S3's order (UTF-8 bytes), a page at a time. */
export interface ObjectLister {
  /** Keys under `prefix` strictly after `startAfter` (null: from the start), at most `maxKeys` (≤ 1,000). */
  listAfter(
    bucket: string,
    prefix: string,
    startAfter: string | null,
    maxKeys: number,
  ): Promise<{ readonly objects: ListedObject[]; readonly truncated: boolean }>;
}

/** Where the reconciler's incremental listing stands (one ledger item). */
export interface ReconcilerPosition {
  /** The last key listed; null: the next invocation starts a new pass at the beginning of `input/`. */
  readonly afterKey: string | null;
  readonly savedAt: string;
  /** When the pass in progress began. */
  readonly passStartedAt: string;
  /** When the last complete pass over `input/` ended (null: none has yet). */
  readonly lastPassEndedAt: string | null;
}

export interface ReconcilerPositionStore {
  getReconcilerPosition(): Promise<ReconcilerPosition | null>;
  saveReconcilerPosition(position: ReconcilerPosition): Promise<void>;
}

export interface GlueJobRun {
  readonly id: string;
  readonly state: string;
  readonly arguments: Readonly<Record<string, string>>;
  readonly errorMessage: string | null;
  readonly startedOn: Date | null;
  /** The capacity and time Glue reports for the run (GetJobRun); meaningful once the run has ended. */
  readonly usage?: GlueUsage | null;
}

export interface GlueRunner {
  /**
   * Starts one run; throws on failure (`startFailureKind` says whether it may have started anyway). Adapters should
   * not let an SDK retry hide an ambiguous first try: GlueJobs retries itself and looks the run up by its run key in
   * between. `capacity` overrides the job's workers, timeout and execution class for this run only (runs/capacity.ts);
   * without it the job definition's capacity applies.
   */
  startRun(args: Readonly<Record<string, string>>, capacity?: RunCapacity): Promise<string>;
  getRun(glueRunId: string): Promise<GlueJobRun | null>;
  /** Recent runs of the job, newest first, back to `since`. */
  recentRuns(since: Date): Promise<GlueJobRun[]>;
  /** Asks Glue to stop a run (BatchStopJobRun); a run that has already ended is left as it is. */
  stopRun(glueRunId: string): Promise<void>;
}

export interface Clock {
  now(): Date;
  /** Waits (briefly; used only for the run start's settle window). */
  sleep(ms: number): Promise<void>;
}

export interface Log {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const METRICS = {
  uploadsReceived: "UploadsReceived",
  duplicatesDropped: "DuplicatesDropped",
  eventsIgnored: "EventsIgnored",
  runsStarted: "RunsStarted",
  filesPerRun: "FilesPerRun",
  runsFailed: "RunsFailed",
  filesProcessed: "FilesProcessed",
  filesFailed: "FilesFailed",
  repairs: "SweeperRepairs",
  /** A run or start failed for a reason that is not its files' (retried whole, no attempt charged). */
  runSystemFailures: "RunSystemFailures",
  /** Emitted (1) on each system failure at or past the breaker threshold: the alarm's signal. */
  circuitOpen: "CircuitOpen",
  /** Uploads the reconciler found under input/ that the ledger lacked (their events were lost or are very late). */
  reconciled: "UploadsReconciled",
  /** A run's billed Glue DPU-seconds, from Glue's own figures (runs/glue-cost.ts), once per run end: spend to graph. */
  glueDpuSeconds: "GlueDpuSeconds",
} as const;
export type MetricName = (typeof METRICS)[keyof typeof METRICS];

export interface Metrics {
  add(name: MetricName, value: number): void;
}

export interface Deps {
  readonly ledger: LedgerStore;
  readonly objects: ObjectStore;
  readonly glue: GlueRunner;
  readonly clock: Clock;
  readonly log: Log;
  readonly metrics: Metrics;
  /** New run keys; sortable by time. Injected so the simulation is deterministic. */
  readonly newRunKey: (now: Date) => string;
  readonly bucket: string;
  /** Where manifests are written and read: the control bucket, which uploaders cannot write (default: `bucket`). */
  readonly controlBucket?: string;
}

export type { GlueTerminalState, Manifest };
