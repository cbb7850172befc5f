/**
 * Completion: a Glue run ended ("Glue Job State Change", or the sweeper noticed). Settle its uploads from the run's
 * stats, close the run, free the slot, start the next run if uploads are pending. Idempotent: every write is
 * conditional on the state it moves from, so a second delivery of the same event changes nothing.
 */
import type { PipelineConfig } from "../config/pipeline.js";
import { messageOf } from "../errors.js";
import { settledRecord } from "../ledger/memory.js";
import type { Deps, Settlement } from "../ledger/ports.js";
import type { RunRecord, RunState, UploadRecord } from "../ledger/types.js";
import { type FileStats, FormatError, parseRunStats, type RunStats, statsKey } from "../manifest/format.js";
import { cleanUsage, type GlueUsage, glueRunCost } from "./glue-cost.js";
import { settlerToken } from "./keys.js";
import { mapLimit, noteSystemFailure, readManifest, type StartOutcome, startNextRun } from "./start.js";

export interface RunEnded {
  readonly glueRunId: string;
  readonly state: string;
  readonly message: string | null;
  /** Glue's figures for the run when the caller has just read them (the sweeper's GetJobRun); else they are asked. */
  readonly usage?: GlueUsage | null;
}

export type ParsedRunEnded =
  | { readonly kind: "run-ended"; readonly ended: RunEnded }
  | { readonly kind: "ignored"; readonly reason: string };

const STATE_OF_GLUE: Readonly<Record<string, RunState>> = {
  SUCCEEDED: "succeeded",
  FAILED: "failed",
  ERROR: "failed",
  TIMEOUT: "timeout",
  STOPPED: "stopped",
};

export function isTerminalGlueState(state: string): boolean {
  return state in STATE_OF_GLUE;
}

/** Reads a recorder-queue message: an EventBridge "Glue Job State Change" for this job. */
export function parseRunEnded(body: string, jobName: string): ParsedRunEnded {
  let doc: { source?: unknown; "detail-type"?: unknown; detail?: Record<string, unknown> };
  try {
    doc = JSON.parse(body);
  } catch {
    return { kind: "ignored", reason: "body is not JSON" };
  }
  if (doc?.source !== "aws.glue" || doc["detail-type"] !== "Glue Job State Change") {
    return { kind: "ignored", reason: `not a Glue Job State Change (${String(doc?.["detail-type"])})` };
  }
  const d = doc.detail ?? {};
  if (d.jobName !== jobName) return { kind: "ignored", reason: `job ${String(d.jobName)} is not ${jobName}` };
  if (typeof d.jobRunId !== "string" || typeof d.state !== "string") {
    return { kind: "ignored", reason: "event has no jobRunId or state" };
  }
  if (!isTerminalGlueState(d.state)) return { kind: "ignored", reason: `state ${d.state} is not terminal` };
  return {
    kind: "run-ended",
    ended: { glueRunId: d.jobRunId, state: d.state, message: typeof d.message === "string" ? d.message : null },
  };
}

export interface CompletionResult {
  readonly runKey: string | null;
  /** false when the run had already been recorded (a repeated event) or is not ours. */
  readonly applied: boolean;
  readonly next: StartOutcome | null;
}

export async function recordRunEnd(deps: Deps, config: PipelineConfig, ended: RunEnded): Promise<CompletionResult> {
  const { ledger, log } = deps;
  const found = await findRunKey(deps, ended);
  const runKey = found.runKey;
  const run = runKey ? await ledger.getRun(runKey) : null;
  if (!runKey || !run) {
    log.warn("state change for a run the ledger does not know; ignored", { glueRunId: ended.glueRunId });
    return { runKey, applied: false, next: null };
  }
  const applied = await settleRun(deps, config, run, found.ended);
  const { wakeup } = await ledger.releaseSlot(runKey);
  const next = await startNextRun(deps, config.runs, { woken: wakeup });
  return { runKey, applied, next };
}

/**
 * The run key of Glue run `ended.glueRunId`. When the ledger has no link (the start's answer was lost: crash or
 * timeout after StartJobRun), the key is in the run's arguments, read with GetJobRun; that answer also carries the
 * run's figures, so `ended` comes back with them (when it shows the run ended) and the close does not ask again.
 */
async function findRunKey(deps: Deps, ended: RunEnded): Promise<{ runKey: string | null; ended: RunEnded }> {
  const linked = await deps.ledger.runKeyOfGlueRun(ended.glueRunId);
  if (linked) return { runKey: linked, ended };
  const run = await deps.glue.getRun(ended.glueRunId);
  const runKey = run?.arguments["--run_key"] ?? null;
  if (runKey) await deps.ledger.linkGlueRun(ended.glueRunId, runKey);
  const figures =
    run && isTerminalGlueState(run.state) && ended.usage === undefined ? { usage: run.usage ?? null } : {};
  return { runKey, ended: { ...ended, ...figures } };
}

/**
 * Glue messages that say the run failed for reasons that are not its files': internal errors, capacity, throttling,
 * outages, timeouts. A run ending so without per-file stats is retried whole (no attempt charged, no bisection).
 */
const SYSTEM_FAILURE =
  /internal ?(service|server)? ?(error|exception|failure)|InternalServiceException|capacity|throttl|rate exceeded|service ?unavailable|ResourceNumberLimitExceeded|ConcurrentRunsExceeded|failed to provision|could not (acquire|allocate)|insufficient (capacity|resources)|timed? ?out/i;

/** Whether a run that did not succeed failed for reasons that cannot be blamed on its files. */
export function isSystemFailure(state: RunState, message: string | null, stats: RunStats | null): boolean {
  if (state === "succeeded" || stats !== null) return false;
  if (state === "timeout" || state === "stopped") return true;
  return SYSTEM_FAILURE.test(message ?? "");
}

async function settleRun(deps: Deps, config: PipelineConfig, run: RunRecord, ended: RunEnded): Promise<boolean> {
  const { ledger, log, metrics } = deps;
  if (run.state !== "starting" && run.state !== "running") return false;
  const now = deps.clock.now().toISOString();
  const state = STATE_OF_GLUE[ended.state] ?? "failed";
  const runError =
    state === "succeeded" ? null : `Glue run ${ended.glueRunId} ${ended.state}: ${ended.message ?? "no message"}`;
  // Glue's figures for the run's cost: asked now, awaited only for the close, so the read overlaps the settles and a
  // slow answer delays nothing before them (glueUsage never rejects).
  const glueFigures =
    ended.usage !== undefined ? Promise.resolve(cleanUsage(ended.usage)) : glueUsage(deps, ended.glueRunId);
  const [manifest, stats] = await Promise.all([readManifest(deps, run), readStats(deps, run.runKey)]);
  const statsOf = new Map<string, FileStats>((stats?.files ?? []).map((f) => [f.uploadId, f]));
  const uploads = manifest?.uploads ?? [];
  const system = ended.state === "ERROR" || isSystemFailure(state, ended.message, stats);

  // Settle every upload of the manifest that is still running in this run, then read each one's outcome back: the
  // run's counts are derived from its uploads, so a crashed settler, a redelivered event or a concurrent sweeper
  // all write the same counts (whoever settled which upload).
  const outcomes = await mapLimit(uploads, 32, async (entry): Promise<Outcome | null> => {
    const fileStats = statsOf.get(entry.uploadId);
    if (state === "succeeded" && fileStats?.status === "processed") {
      // A processed file's settlement does not depend on its record: settle first (one conditional write per upload
      // on the recorder's hot path, which settles up to maxFilesPerRun of them inside its timeout) and read the
      // record only when the write is refused.
      const settlement = processedSettlement(fileStats);
      if (await ledger.settleUpload(entry.uploadId, run.runKey, settlement, now)) {
        return { runKey: run.runKey, status: "processed", ...rowsOf(settlement) };
      }
    }
    for (let round = 0; round < 3; round++) {
      const record = await ledger.getUpload(entry.uploadId);
      if (record?.status !== "running" || record.runKey !== run.runKey) return record;
      const settlement = settlementOf(record, fileStats, state, runError, uploads.length, config, system);
      if (await ledger.settleUpload(entry.uploadId, run.runKey, settlement, now, record)) {
        if (settlement.status === "failed") {
          log.error("upload failed", {
            key: record.key,
            uploadId: record.uploadId,
            runKey: run.runKey,
            error: settlement.error,
          });
        }
        return settledRecord(record, settlement, now);
      }
    }
    return ledger.getUpload(entry.uploadId);
  });
  const ours = outcomes.filter((u): u is Outcome => u !== null && u.runKey === run.runKey);
  const processed = ours.filter((u) => u.status === "processed");
  const failed = ours.filter((u) => u.status === "failed").length;
  const sum = (f: (u: Outcome) => number | null) => processed.reduce((n, u) => n + (f(u) ?? 0), 0);

  // The breaker counts this run's outcome once (before the run is closed, so a crash here is redone on redelivery).
  if (system) await noteSystemFailure(deps, config.runs, run.runKey, runError ?? "");
  else if ((await ledger.getHealth()).consecutiveSystemFailures > 0) {
    await ledger.recordRunHealth(run.runKey, "healthy", now);
    log.info("circuit breaker closed: a run ended without a system failure", { runKey: run.runKey });
  }

  const glue = await glueFigures;
  const changed = await ledger.updateRun(run.runKey, ["starting", "running"], {
    state,
    glueRunId: run.glueRunId ?? ended.glueRunId,
    endedAt: now,
    error: runError ?? (manifest ? null : "manifest missing"),
    rowsRead: stats ? sum((u) => u.rowsRead) : null,
    rowsProcessed: stats ? sum((u) => u.rowsProcessed) : null,
    rowsRejected: stats ? sum((u) => u.rowsRejected) : null,
    filesProcessed: processed.length,
    filesFailed: failed,
    closedBy: settlerToken(),
    glue,
  });
  if (changed) {
    if (state !== "succeeded") metrics.add("RunsFailed", 1);
    metrics.add("FilesProcessed", processed.length);
    const cost = glue ? glueRunCost(glue) : null;
    if (cost) metrics.add("GlueDpuSeconds", cost.dpuSeconds);
    if (failed > 0) metrics.add("FilesFailed", failed);
    log.info("run recorded", {
      runKey: run.runKey,
      glueRunId: ended.glueRunId,
      state,
      processed: processed.length,
      failed,
      systemFailure: system,
    });
  }
  return changed;
}

/**
 * What Glue reports for the ended run (capacity, execution time), for the ledger's cost figures. Best effort, never
 * rejects: a failed or lost GetJobRun (after the SDK's retries; the adapter abandons it after 5 s) records null, and
 * so does an answer that still shows the run going (a read behind the state change): its time would be a part of the
 * run's. Only the run's close awaits it; the uploads are settled meanwhile.
 */
export async function glueUsage(deps: Deps, glueRunId: string): Promise<GlueUsage | null> {
  if (!glueRunId) return null;
  try {
    const run = await deps.glue.getRun(glueRunId);
    return run && isTerminalGlueState(run.state) ? cleanUsage(run.usage) : null;
  } catch (error) {
    deps.log.warn("could not read the run's capacity and time from Glue; the sweeper asks again for a day", {
      glueRunId,
      error: messageOf(error),
    });
    return null;
  }
}

/** What the run's counts need of one upload's outcome (a settled record has it; so does a settlement just written). */
type Outcome = Pick<UploadRecord, "runKey" | "status" | "rowsRead" | "rowsProcessed" | "rowsRejected">;

/** A processed file's settlement from its stats (a field the stats lack is null: stats are the job's output, read). */
function processedSettlement(fileStats: FileStats): Settlement & { status: "processed" } {
  return {
    status: "processed",
    output: fileStats.output ?? null,
    rejectedOutput: fileStats.rejectedOutput ?? null,
    rowsRead: fileStats.rowsRead ?? null,
    rowsProcessed: fileStats.rowsProcessed ?? null,
    rowsRejected: fileStats.rowsRejected ?? null,
  };
}

function rowsOf(s: Settlement & { status: "processed" }): Pick<Outcome, "rowsRead" | "rowsProcessed" | "rowsRejected"> {
  return { rowsRead: s.rowsRead, rowsProcessed: s.rowsProcessed, rowsRejected: s.rowsRejected };
}

/**
 * How a run leaves one upload. A file the job itself rejected (per-file error in the stats) is failed at once: the
 * same bytes would fail again. A run that failed for reasons that are not its files' (`systemFailure`) gives its
 * files back unchanged: no attempt charged, no split. Otherwise blame lands on a file only when it was alone in the
 * run; a failed run's files are retried in halves (see selection.ts).
 */
export function settlementOf(
  record: UploadRecord,
  fileStats: FileStats | undefined,
  state: RunState,
  runError: string | null,
  runSize: number,
  config: PipelineConfig,
  systemFailure = false,
): Settlement {
  if (fileStats?.status === "failed") {
    return {
      status: "failed",
      error: fileStats.error ?? "the Glue job could not process the file",
      attempts: record.attempts + 1,
    };
  }
  if (state === "succeeded" && fileStats?.status === "processed") return processedSettlement(fileStats);
  const error = runError ?? "the run succeeded but its stats do not mention this file";
  if (systemFailure) {
    return { status: "pending", error, attempts: record.attempts, retryGroupSize: record.retryGroupSize };
  }
  if (runSize > 1)
    return { status: "pending", error, attempts: record.attempts, retryGroupSize: Math.ceil(runSize / 2) };
  const attempts = record.attempts + 1;
  if (attempts >= config.runs.maxAttempts)
    return { status: "failed", error: `${error} (after ${attempts} attempts)`, attempts };
  return { status: "pending", error, attempts, retryGroupSize: 1 };
}

/** The run's stats; null when missing or malformed (S3 errors propagate so the event is retried). */
async function readStats(deps: Deps, runKey: string): Promise<RunStats | null> {
  const key = statsKey(runKey);
  const text = await deps.objects.getText(deps.bucket, key);
  if (text === null) return null;
  try {
    return parseRunStats(text, `s3://${deps.bucket}/${key}`);
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
    deps.log.warn("run stats unreadable", { runKey, error: messageOf(error) });
    return null;
  }
}
