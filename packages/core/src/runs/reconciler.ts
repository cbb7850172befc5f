/**
 * The reconciler (scheduled): finds uploads under `input/` that the ledger lacks — their S3 event was lost (or
 * EventBridge gave up delivering it) — and records them, so a lost event delays a file, never loses it.
 *
 * Each invocation lists at most `maxKeysPerInvocation` keys, in S3's order, from where the last one stopped (a ledger
 * item), and wraps around to the start of `input/` when a pass ends. Per key listed: one ledger read; per key the
 * ledger lacks: one HeadObject (the listing has no version id, and S3 — not the listing — says which version is
 * current) and the batcher's own idempotent `recordUpload`, so a duplicate or a race with a late event changes
 * nothing. When it recorded something it starts a run through the same path intake uses.
 */
import { INPUT_PREFIX, isInputKey, type PipelineConfig } from "../config/pipeline.js";
import { IngestError, messageOf } from "../errors.js";
import type { Deps, ListedObject, ObjectLister, ReconcilerPosition, ReconcilerPositionStore } from "../ledger/ports.js";
import type { UploadRecord } from "../ledger/types.js";
import { normalizeEtag, toUpload } from "../upload/identity.js";
import { mapLimit, type StartOutcome, startNextRun } from "./start.js";

/** ListObjectsV2 answers at most this many keys per request. */
export const LIST_PAGE_SIZE = 1000;
/** Ledger reads / HeadObjects in flight per invocation. */
const IO_CONCURRENCY = 32;

export interface ReconcilerSources {
  readonly lister: ObjectLister;
  readonly positions: ReconcilerPositionStore;
}

export interface ReconcileReport {
  /** Keys listed this invocation (any key under input/, .csv or not). */
  readonly listed: number;
  /** Input keys old enough to check against the ledger. */
  readonly checked: number;
  /** Input keys too recent to check (left to their event). */
  readonly tooRecent: number;
  /** Uploads recorded because the ledger lacked them. */
  readonly recorded: number;
  /** Keys whose check or record failed (retried on the next pass; the invocation then fails so it alarms). */
  readonly failed: number;
  /** Where this invocation started and where the next one starts (null: the start of input/). */
  readonly from: string | null;
  readonly next: string | null;
  /** True when this invocation reached the end of input/ (the next starts a new pass). */
  readonly passEnded: boolean;
  readonly run: StartOutcome | null;
}

/** Some keys could not be checked or recorded; the position moved past them, the next pass retries them. */
export class ReconcileError extends IngestError {
  override name = "ReconcileError";
  constructor(
    readonly report: ReconcileReport,
    readonly failedKeys: readonly string[],
  ) {
    super(
      `reconciler: ${failedKeys.length} key(s) could not be checked or recorded (first: ${failedKeys[0] ?? "none"})`,
    );
  }
}

export async function reconcile(
  deps: Deps,
  config: PipelineConfig,
  sources: ReconcilerSources,
): Promise<ReconcileReport> {
  const settings = config.reconciler;
  if (settings.inventory !== null) {
    throw new IngestError(
      "reconciler: reading an S3 Inventory report is not implemented; set reconciler.inventory to null to list",
    );
  }
  const { log, metrics } = deps;
  const now = deps.clock.now();
  const nowIso = now.toISOString();
  const newestCheckedMs = now.getTime() - settings.graceSeconds * 1000;
  const saved = await sources.positions.getReconcilerPosition();
  const from = saved?.afterKey ?? null;
  let position: ReconcilerPosition = {
    afterKey: from,
    savedAt: nowIso,
    passStartedAt: saved !== null && saved.afterKey !== null ? saved.passStartedAt : nowIso,
    lastPassEndedAt: saved?.lastPassEndedAt ?? null,
  };

  let listed = 0;
  let checked = 0;
  let tooRecent = 0;
  let passEnded = false;
  // What this invocation recorded: handed to the run start, which then needs no (eventually consistent) index read.
  const known: UploadRecord[] = [];
  const failedKeys: string[] = [];
  while (listed < settings.maxKeysPerInvocation) {
    const want = Math.min(LIST_PAGE_SIZE, settings.maxKeysPerInvocation - listed);
    const page = await sources.lister.listAfter(deps.bucket, INPUT_PREFIX, position.afterKey, want);
    listed += page.objects.length;
    const due: ListedObject[] = [];
    for (const o of page.objects) {
      if (!isInputKey(o.key)) continue;
      if (Date.parse(o.lastModified) > newestCheckedMs) tooRecent++;
      else due.push(o);
    }
    checked += due.length;
    await mapLimit(due, IO_CONCURRENCY, async (o) => {
      try {
        const created = await recordIfMissing(deps, o, nowIso);
        if (created) known.push(created);
      } catch (error) {
        failedKeys.push(o.key);
        log.error("reconciler could not check or record a key", { key: o.key, error: messageOf(error) });
      }
    });
    const last = page.objects.at(-1);
    if (!page.truncated || last === undefined) {
      passEnded = true;
      position = { afterKey: null, savedAt: nowIso, passStartedAt: nowIso, lastPassEndedAt: nowIso };
    } else {
      position = { ...position, afterKey: last.key, savedAt: nowIso };
    }
    // Saved page by page: an invocation cut short by its timeout resumes here, not at its own start.
    await sources.positions.saveReconcilerPosition(position);
    if (passEnded) break;
  }

  const recorded = known.length;
  if (recorded > 0) metrics.add("UploadsReconciled", recorded);
  let run: StartOutcome | null = null;
  let startError: { error: unknown } | null = null;
  if (recorded > 0) {
    // A failed start loses nothing: the uploads are pending in the ledger and the sweeper starts them.
    try {
      run = await startNextRun(deps, config.runs, { known });
    } catch (error) {
      log.error("reconciler could not start a run; the sweeper will", { error: messageOf(error) });
      startError = { error };
    }
  }
  const report: ReconcileReport = {
    listed,
    checked,
    tooRecent,
    recorded,
    failed: failedKeys.length,
    from,
    next: position.afterKey,
    passEnded,
    run,
  };
  if (recorded > 0) log.warn("reconciler recorded uploads whose events never arrived", { ...report });
  if (failedKeys.length > 0) throw new ReconcileError(report, failedKeys);
  if (startError) throw startError.error;
  return report;
}

/** Whether the ledger already has the listed version of a key (same ETag, same Last-Modified second). */
export function ledgerHasVersion(records: readonly UploadRecord[], o: ListedObject): boolean {
  const etag = normalizeEtag(o.etag);
  const second = Math.floor(Date.parse(o.lastModified) / 1000);
  return records.some((r) => r.etag === etag && Math.floor(Date.parse(r.lastModified) / 1000) === second);
}

/** Records the key's current version when the ledger lacks the listed one; the record when this call created it. */
async function recordIfMissing(deps: Deps, o: ListedObject, nowIso: string): Promise<UploadRecord | null> {
  if (ledgerHasVersion(await deps.ledger.uploadsOfKey(deps.bucket, o.key), o)) return null;
  // The listing's version may already be overwritten or deleted: S3's current answer is what gets recorded.
  const head = await deps.objects.head(deps.bucket, o.key);
  if (head === null) return null; // deleted since the listing: nothing left to process
  const upload = toUpload(head);
  const { created, record } = await deps.ledger.recordUpload(upload, nowIso);
  if (!created) return null;
  deps.log.info("reconciler recorded an upload", { key: upload.key, uploadId: upload.uploadId });
  return record;
}
