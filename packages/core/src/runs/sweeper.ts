/**
 * The sweeper (scheduled): repairs what lost events and crashes leave behind, through the same code paths as
 * completion and intake.
 *  - the slot's run is running but Glue says it ended (the state-change event was lost) → recordRunEnd
 *  - the slot is held past the start timeout by a start that has not passed its launch fence → revoke it (the
 *    starter, if alive, can then never call Glue) and undo it, without asking Glue (runs/start.ts revokeStaleStart;
 *    every starter does the same when it finds such a slot)
 *  - the slot's run launched but never got a Glue run id and is older than the start timeout → adopt the Glue run
 *    that carries its run key (the start's answer was lost), or undo the start when Glue has none
 *  - the slot is held by a run that has already ended, or by no run at all (crash between steps) → free it
 *  - uploads still running in a run that is not the slot's: a run still open in the ledger gets the same repairs as
 *    the slot's run (never settled behind Glue's back); uploads left running by a run that has ended (or by no run)
 *    are settled: failed as superseded when S3's current version of the key is another, otherwise back to pending with one
 *    more attempt (failed after maxAttempts), so no upload stays "running" forever
 *  - uploads are pending and no run is active → startNextRun
 *  - a recently closed run whose Glue figures (capacity, execution time: its cost) could not be read at its close →
 *    read them again and record them (best effort, never a repair of the protocol, never fails the sweep)
 */
import type { PipelineConfig } from "../config/pipeline.js";
import { messageOf } from "../errors.js";
import type { Deps, Settlement } from "../ledger/ports.js";
import { RUN_ACTIVE_STATES, type RunRecord, type UploadRecord } from "../ledger/types.js";
import { type CompletionResult, glueUsage, isTerminalGlueState, recordRunEnd } from "./completion.js";
import {
  adoptGlueRun,
  findGlueRunOf,
  isVersion,
  mapLimit,
  readManifest,
  revokeStaleStart,
  type StartOutcome,
  startNextRun,
  undoStart,
} from "./start.js";

export type Repair =
  | "recorded-lost-end"
  | "adopted-lost-start"
  | "undid-failed-start"
  | "freed-stale-slot"
  | "settled-orphaned-upload"
  | "started-pending";

export interface SweepReport {
  readonly repairs: Repair[];
  readonly next: StartOutcome | null;
  /** Closed runs whose missing Glue figures this sweep read and recorded (see fillMissingFigures). */
  readonly figuresFilled: number;
}

/** Running uploads outside the slot's run looked at per sweep (normally there are none; the rest waits a sweep). */
export const ORPHAN_SCAN_LIMIT = 1000;

export async function sweep(deps: Deps, config: PipelineConfig): Promise<SweepReport> {
  const { ledger, log } = deps;
  const repairs: Repair[] = [];
  const now = deps.clock.now();
  let ended: CompletionResult | null = null;
  const slot = await ledger.getSlot();
  if (slot.holder) {
    const run = await ledger.getRun(slot.holder);
    const olderThanTimeout = (at: string | null) => pastStartTimeout(at, now, config);
    if (run && !isOpen(run)) {
      await ledger.releaseSlot(run.runKey);
      repairs.push("freed-stale-slot");
    } else if (!slot.launched) {
      // Died before its launch fence (or before its run item): revoked, Glue is not asked (it cannot have the run).
      const revoked = await revokeStaleStart(deps, config.runs, slot, now); // null while younger than the revocation age
      if (revoked) repairs.push(revoked);
      // Not revoked (young, or it passed its fence just now: its StartJobRun is on its way, so Glue is not asked
      // this pass): only a Glue run it already recorded is looked at.
      else if (run) ended = await repairOpenRun(deps, config, run, false, repairs);
    } else if (!run) {
      // Launched without a run item cannot happen (the item is written first); free the slot rather than keep it.
      if (olderThanTimeout(slot.takenAt)) {
        await ledger.releaseSlot(slot.holder);
        repairs.push("freed-stale-slot");
      }
    } else {
      // Launched: the start timeout counts from the fence (from the take when the slot predates the fence).
      ended = await repairOpenRun(deps, config, run, olderThanTimeout(slot.launchedAt ?? slot.takenAt), repairs);
    }
  }
  const requeued = await repairOrphanedUploads(deps, config, now, repairs);
  const recent = await closeStartsLeftOpen(deps, config, now, repairs);
  let next: StartOutcome | null = ended ? ended.next : null;
  if (!ended || (requeued > 0 && !next?.started)) {
    next = await startNextRun(deps, config.runs);
    if (next.started) repairs.push("started-pending");
  }
  if (repairs.length > 0) {
    deps.metrics.add("SweeperRepairs", repairs.length);
    log.warn("sweeper repaired", { repairs });
  }
  const figuresFilled = await fillMissingFigures(deps, config, recent, now);
  return { repairs, next, figuresFilled };
}

/** Closed runs whose missing Glue figures are asked again per sweep (each read bounded by the adapter at 5 s). */
export const FIGURES_FILL_LIMIT = 10;
/** How long after its end a run's missing figures are still asked for (Glue keeps a job's runs for 90 days). */
export const FIGURES_FILL_HOURS = 24;
/**
 * A run is asked for only once it ended this long ago: longer than any closer's invocation (the recorder's 60 s, the
 * sweeper's 120 s) with room for their clocks, so no retry of its close can still be on its way — a close whose
 * answer was lost reads its write back, and must find its own `glue: null` there, not figures filled meanwhile.
 */
export const FIGURES_FILL_AFTER_SECONDS = 300;

/**
 * Runs closed without Glue's figures (`glue: null`: GetJobRun failed, was throttled, timed out or answered behind the
 * state change at the close) get them now, so `ingest status` can price them: among the newest OPEN_START_SCAN_LIMIT
 * runs, those that ended between FIGURES_FILL_AFTER_SECONDS and FIGURES_FILL_HOURS ago, FIGURES_FILL_LIMIT a sweep —
 * a different slice each sweep when more wait, so runs Glue never answers for cannot keep the others out —, after the
 * protocol's repairs and the next start. `fillRunGlue` writes only while the run's `glue` is null, so of two sweepers
 * the first wins. No metric: GlueDpuSeconds counts runs as they close. Never fails the sweep.
 */
async function fillMissingFigures(
  deps: Deps,
  config: PipelineConfig,
  recent: readonly RunRecord[],
  now: Date,
): Promise<number> {
  const newest = now.getTime() - FIGURES_FILL_AFTER_SECONDS * 1000;
  const oldest = now.getTime() - FIGURES_FILL_HOURS * 3_600_000;
  const waiting = recent.filter((r) => {
    const ended = r.endedAt ? Date.parse(r.endedAt) : Number.NaN;
    return !isOpen(r) && r.glue === null && r.glueRunId && ended >= oldest && ended <= newest;
  });
  // The slice turns with the sweep's schedule: sweep n asks for runs [n × limit, (n + 1) × limit) mod how many wait.
  const sweepNumber = Math.floor(now.getTime() / (config.runs.sweepIntervalMinutes * 60_000));
  const from = waiting.length > FIGURES_FILL_LIMIT ? (sweepNumber * FIGURES_FILL_LIMIT) % waiting.length : 0;
  const missing = [...waiting.slice(from), ...waiting.slice(0, from)].slice(0, FIGURES_FILL_LIMIT);
  const filled = await mapLimit(missing, 5, async (run) => {
    try {
      const glue = await glueUsage(deps, run.glueRunId as string);
      return glue !== null && (await deps.ledger.fillRunGlue(run.runKey, glue));
    } catch (error) {
      deps.log.warn("could not record a run's Glue figures; the next sweep tries again", {
        runKey: run.runKey,
        error: messageOf(error),
      });
      return false;
    }
  });
  const count = filled.filter(Boolean).length;
  if (count > 0) deps.log.info("recorded Glue figures missing since their runs closed", { runs: count });
  return count;
}

/** Whether `at` (ISO; null: the epoch) lies more than the start timeout before `now`. */
function pastStartTimeout(at: string | null, now: Date, config: PipelineConfig): boolean {
  return now.getTime() - new Date(at ?? 0).getTime() > config.runs.startTimeoutSeconds * 1000;
}

function isOpen(run: RunRecord): boolean {
  return RUN_ACTIVE_STATES.includes(run.state);
}

/**
 * A run the ledger still has open: find its lost start (when `stale`), then ask Glue whether it ended. Returns the
 * completion when it did (recordRunEnd settled the run's uploads, freed the slot and started the next run).
 */
async function repairOpenRun(
  deps: Deps,
  config: PipelineConfig,
  run: RunRecord,
  stale: boolean,
  repairs: Repair[],
): Promise<CompletionResult | null> {
  const { glue, log } = deps;
  let glueRunId = run.glueRunId;
  if (!glueRunId && stale) {
    const found = await findGlueRunOf(deps, run.runKey, run.createdAt);
    if (found) {
      if (await adoptGlueRun(deps, run.runKey, found)) {
        glueRunId = found.id;
        repairs.push("adopted-lost-start");
      }
    } else if (await undoStart(deps, run.runKey, await readManifest(deps, run), "the run never started (start lost)")) {
      repairs.push("undid-failed-start");
    }
  }
  if (glueRunId) {
    const jr = await glue.getRun(glueRunId);
    if (jr && isTerminalGlueState(jr.state)) {
      const result = await recordRunEnd(deps, config, {
        glueRunId,
        state: jr.state,
        message: jr.errorMessage,
        usage: jr.usage ?? null,
      });
      if (result.applied) repairs.push("recorded-lost-end");
      log.info("sweeper recorded a run end", { runKey: run.runKey, glueRunId, state: jr.state });
      return result;
    }
  }
  return null;
}

/** Recent runs looked at for starts left open without the slot (normally none is). */
export const OPEN_START_SCAN_LIMIT = 100;

/**
 * Runs still "starting" that do not hold the slot and are older than the start timeout: a starter that lost its
 * slot (revoked as stale, or freed while it had no run item yet) and died before its own undo. They never launched
 * (the fence needs the slot), so nothing reads their files; their running uploads are also found by
 * repairOrphanedUploads, but one with none would stay open forever. Closed the way the slot's run is. A backstop: a
 * revoker that finds no run item writes a closed one first, so a stalled starter cannot write its own after.
 */
async function closeStartsLeftOpen(
  deps: Deps,
  config: PipelineConfig,
  now: Date,
  repairs: Repair[],
): Promise<RunRecord[]> {
  const holder = (await deps.ledger.getSlot()).holder;
  const recent = await deps.ledger.listRuns(OPEN_START_SCAN_LIMIT);
  for (const run of recent) {
    if (run.state !== "starting" || run.runKey === holder) continue;
    if (!pastStartTimeout(run.createdAt, now, config)) continue;
    await repairOpenRun(deps, config, run, true, repairs);
  }
  return recent;
}

/**
 * Uploads still "running" in a run other than the slot's. Only the slot's run should have running uploads; others
 * are what a crash between two writes left behind (e.g. before the superseded versions were failed in one write, a
 * claim whose settle never came). Returns how many went back to pending.
 */
async function repairOrphanedUploads(
  deps: Deps,
  config: PipelineConfig,
  now: Date,
  repairs: Repair[],
): Promise<number> {
  const { ledger, log, metrics } = deps;
  const nowIso = now.toISOString();
  // Read again: the slot's repair above may have ended its run and started another.
  const holder = (await ledger.getSlot()).holder;
  const listed = await ledger.listRunning(ORPHAN_SCAN_LIMIT, holder);
  const byRun = new Map<string, UploadRecord[]>();
  for (const u of listed) {
    if (u.runKey === null) continue;
    const group = byRun.get(u.runKey);
    if (group) group.push(u);
    else byRun.set(u.runKey, [u]);
  }
  let requeued = 0;
  for (const [runKey, uploads] of byRun) {
    let run = await ledger.getRun(runKey);
    if (run && isOpen(run)) {
      // Open but not the slot's (a start that was slower than the start timeout and lost its slot): Glue may be
      // reading these files now, so the run is closed the way the slot's run is, never its uploads behind its back.
      if (!pastStartTimeout(run.createdAt, now, config)) continue;
      await repairOpenRun(deps, config, run, true, repairs);
      run = await ledger.getRun(runKey);
      if (!run || isOpen(run)) continue;
    }
    for (const seen of uploads) {
      const u = await ledger.getUpload(seen.uploadId);
      if (u?.status !== "running" || u.runKey !== runKey) continue;
      // A run item is written before any claim, so a missing run is a crash mid-start: wait out the start timeout.
      if (!run && !pastStartTimeout(u.updatedAt, now, config)) continue;
      // S3 says whether it is still the key's current version (never an order of version ids or etags).
      const head = await deps.objects.head(u.bucket, u.key);
      const notCurrent = head === null ? "deleted" : isVersion(u, head) ? null : `etag ${head.etag}`;
      const settlement = orphanSettlement(u, runKey, run, notCurrent, config);
      if (!(await ledger.settleUpload(u.uploadId, runKey, settlement, nowIso, u))) continue;
      repairs.push("settled-orphaned-upload");
      if (settlement.status === "pending") requeued++;
      if (settlement.status === "failed") metrics.add("FilesFailed", 1);
      log.warn("upload left running by a closed run settled", {
        key: u.key,
        uploadId: u.uploadId,
        runKey,
        status: settlement.status,
        error: settlement.status === "processed" ? null : settlement.error,
      });
    }
  }
  return requeued;
}

/**
 * How the sweeper settles an upload its run left running. The run never read it (its end settles every file of its
 * manifest), so it is not blamed like a file of a failed run: an older version whose key was uploaded again is
 * failed as superseded (the job reads a key's current bytes); any other goes back to pending with one more attempt,
 * so a repeated fault still ends in a reported failure after maxAttempts.
 */
export function orphanSettlement(
  record: UploadRecord,
  runKey: string,
  run: RunRecord | null,
  notCurrent: string | null,
  config: PipelineConfig,
): Settlement {
  const where = run ? `run ${runKey} ended (${run.state}) without settling it` : `run ${runKey} is not in the ledger`;
  if (notCurrent === "deleted") {
    return {
      status: "failed",
      error: `the object was deleted before it could be processed (left running: ${where})`,
      attempts: record.attempts,
    };
  }
  if (notCurrent) {
    return {
      status: "failed",
      error: `superseded: ${record.key} was uploaded again (${notCurrent}) before this version was processed (left running: ${where})`,
      attempts: record.attempts,
    };
  }
  const error = `left running: ${where}`;
  const attempts = record.attempts + 1;
  if (attempts >= config.runs.maxAttempts) {
    return { status: "failed", error: `${error} (after ${attempts} attempts)`, attempts };
  }
  return { status: "pending", error, attempts, retryGroupSize: null };
}
