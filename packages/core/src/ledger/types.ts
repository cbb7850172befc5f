/**
 * The ledger: uploads, runs and the run slot. The answer to "was my file processed, and how?".
 * `LedgerStore` is the port; `MemoryLedger` (core, for tests and the benchmark) and `DynamoLedger` (adapters) implement
 * it with the same conditional semantics.
 */
import type { GlueUsage } from "../runs/glue-cost.js";
import type { Upload } from "../upload/identity.js";

export const UPLOAD_STATUSES = ["pending", "running", "processed", "failed"] as const;
export type UploadStatus = (typeof UPLOAD_STATUSES)[number];

export interface UploadRecord extends Upload {
  readonly status: UploadStatus;
  readonly receivedAt: string;
  readonly updatedAt: string;
  /** Failed runs this upload was alone in (only then is a failure blamed on it). */
  readonly attempts: number;
  /** Runs this upload has been part of. */
  readonly runs: number;
  /** After a failed run of n files, its files are retried in runs of at most ceil(n/2) (bisection). */
  readonly retryGroupSize: number | null;
  /** The run holding it (running) or that settled it (processed/failed). */
  readonly runKey: string | null;
  /** The last run that claimed it (kept when it goes back to pending: tells a retried settle it was its own). */
  readonly lastRunKey: string | null;
  readonly output: string | null;
  readonly rejectedOutput: string | null;
  readonly rowsRead: number | null;
  readonly rowsProcessed: number | null;
  readonly rowsRejected: number | null;
  readonly error: string | null;
}

export const RUN_STATES = [
  "starting",
  "running",
  "succeeded",
  "failed",
  "timeout",
  "stopped",
  "start_failed",
  "abandoned",
] as const;
export type RunState = (typeof RUN_STATES)[number];
export const RUN_ACTIVE_STATES: readonly RunState[] = ["starting", "running"];

export interface RunRecord {
  readonly runKey: string;
  readonly state: RunState;
  readonly glueRunId: string | null;
  /** The run's uploads are listed in its manifest (a run item could not hold 5,000 ids). */
  readonly manifestKey: string;
  readonly fileCount: number;
  readonly bytes: number;
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  readonly error: string | null;
  readonly rowsRead: number | null;
  readonly rowsProcessed: number | null;
  readonly rowsRejected: number | null;
  readonly filesProcessed: number | null;
  readonly filesFailed: number | null;
  /**
   * Set by the settler that closed the run, unique to that settler's attempt: the idempotent close's read-back then
   * tells "my write applied and its answer was lost" from "another settler (recorder, sweeper) closed it at the same
   * moment with the same counts", so a run end's metrics are emitted once. Absent on runs closed otherwise.
   */
  readonly closedBy?: string;
  /**
   * What Glue reported for the run when it was settled (GetJobRun: workers, worker type, execution class, execution
   * time): what `ingest status` prices. null when Glue could not be asked or gave no ended run's figures (the read runs
   * beside the settles; only the close waits for it, bounded by the adapter) — the sweeper then asks again for a day
   * (runs/sweeper.ts fillMissingFigures); absent on runs settled before it was recorded.
   */
  readonly glue?: GlueUsage | null;
}

export interface SlotRecord {
  readonly holder: string | null;
  readonly takenAt: string | null;
  /** Set when someone recorded pending uploads while the slot was held: the holder's end must look for them. */
  readonly wakeup: boolean;
  /**
   * The holder passed its launch fence (`markLaunched`): it may have called StartJobRun, so a Glue run may exist. A
   * start that has not is revocable (`releaseSlot` with `unlessLaunched`) by anyone once it is stale: it can then
   * never call Glue. A slot taken by code from before the fence counts as launched.
   */
  readonly launched: boolean;
  /** When the holder passed its fence (its own clock); null when it has not, or when the slot predates the fence. */
  readonly launchedAt: string | null;
}

/**
 * The run health the circuit breaker reads: consecutive runs (or starts) that failed for reasons that cannot be blamed
 * on their files (Glue internal errors, capacity, outages, timeouts without per-file stats). `lastRunKey` makes the
 * update idempotent: a run's outcome is counted once however many settlers report it.
 */
export interface HealthRecord {
  readonly consecutiveSystemFailures: number;
  readonly lastRunKey: string | null;
  readonly lastFailureAt: string | null;
}

/** The run slot nobody holds. */
export const FREE_SLOT: SlotRecord = { holder: null, takenAt: null, wakeup: false, launched: false, launchedAt: null };

export const HEALTHY: HealthRecord = { consecutiveSystemFailures: 0, lastRunKey: null, lastFailureAt: null };
