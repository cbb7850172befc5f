/**
 * Starting a run: take the run slot, write the manifest of pending uploads, claim them, StartJobRun once.
 * Used by intake (after recording uploads), by completion (after a run ends) and by the sweeper. Never waits on Glue.
 */
import { GLUE_ARGUMENTS, type RunSettings } from "../config/pipeline.js";
import { messageOf, StartRunError, startFailureKind } from "../errors.js";
import type { Deps } from "../ledger/ports.js";
import type { RunRecord, UploadRecord } from "../ledger/types.js";
import { buildManifest, type Manifest, manifestKey, parseManifest } from "../manifest/format.js";
import { selectRunUploads } from "./selection.js";

export type StartOutcome =
  | { readonly started: true; readonly runKey: string; readonly glueRunId: string; readonly files: number }
  | { readonly started: false; readonly reason: "slot-held" | "nothing-pending" };

/** Wake-ups are retried this many times before leaving the rest to the sweeper (guards against a hot loop). */
const MAX_ROUNDS = 3;

export async function startNextRun(deps: Deps, runs: RunSettings): Promise<StartOutcome> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const now = deps.clock.now();
    const runKey = deps.newRunKey(now);
    if (!(await deps.ledger.takeSlot(runKey, now.toISOString()))) {
      // Someone holds the slot: make sure its end looks for our pending uploads. If it was released just now,
      // go round and try to take it ourselves.
      if (await deps.ledger.requestWakeup()) return { started: false, reason: "slot-held" };
      continue;
    }
    const pending = await settledPending(deps, runs);
    const chosen = selectRunUploads(pending, runs);
    if (chosen.length === 0) {
      const { wakeup } = await deps.ledger.releaseSlot(runKey);
      if (wakeup) continue;
      return { started: false, reason: "nothing-pending" };
    }
    const outcome = await startClaimedRun(deps, runKey, now, chosen);
    if (outcome) return outcome;
  }
  return { started: false, reason: "nothing-pending" };
}

/** The pending uploads once the list stops growing (see RunSettings.settleMs), or as soon as a run is full. */
async function settledPending(deps: Deps, runs: RunSettings): Promise<UploadRecord[]> {
  let pending = await deps.ledger.listPending(runs.maxFilesPerRun);
  for (
    let round = 0;
    round < runs.maxSettleRounds && pending.length > 0 && pending.length < runs.maxFilesPerRun;
    round++
  ) {
    await deps.clock.sleep(runs.settleMs);
    const again = await deps.ledger.listPending(runs.maxFilesPerRun);
    if (again.length === pending.length) break;
    pending = again;
  }
  return pending;
}

/** With the slot held by `runKey`: manifest, claims, StartJobRun. Returns null when no upload could be claimed. */
async function startClaimedRun(
  deps: Deps,
  runKey: string,
  now: Date,
  candidates: readonly UploadRecord[],
): Promise<StartOutcome | null> {
  const { ledger, objects, glue, log, metrics } = deps;
  const key = manifestKey(runKey);
  const nowIso = now.toISOString();
  // The run item comes first so the sweeper can always find what a crashed start left behind.
  await ledger.createRun(newRunRecord(runKey, key, candidates, nowIso));
  // Two versions of one key pending together: only the newest is read (the job reads a key's current bytes);
  // the older ones are reported failed as superseded rather than processed with bytes that are not theirs.
  const { newest, superseded } = newestPerKey(candidates);
  let manifest = buildManifest({ runKey, bucket: deps.bucket, createdAt: now, uploads: newest });
  let taken: UploadRecord[];
  try {
    await objects.putJson(manifestBucket(deps), key, manifest);
    const results = await mapLimit(newest, 32, (u) => ledger.claimUpload(u.uploadId, runKey, nowIso));
    taken = newest.filter((_, i) => results[i]);
    if (taken.length !== newest.length) {
      // Only the slot holder claims, so the pending index lagged; the manifest must list exactly the run.
      log.warn("some pending uploads were already taken; rewriting the manifest", {
        runKey,
        skipped: newest.length - taken.length,
      });
      if (taken.length > 0) {
        manifest = buildManifest({ runKey, bucket: deps.bucket, createdAt: now, uploads: taken });
        await objects.putJson(manifestBucket(deps), key, manifest);
      }
    }
    if (taken.length !== candidates.length) {
      await ledger.updateRun(runKey, ["starting"], { fileCount: taken.length, bytes: sumBytes(taken) });
    }
    // One conditional write each (pending → failed), never claim-then-settle: a crash between two writes would leave
    // the old version "running" in a run that never reads it.
    await mapLimit(superseded, 32, async ({ old, by }) => {
      const error = `superseded: ${by.key} was uploaded again (${by.versionTag}) before this version was processed`;
      if (!(await ledger.failPendingUpload(old.uploadId, runKey, error, nowIso))) return;
      log.info("upload superseded", { key: old.key, uploadId: old.uploadId, by: by.uploadId });
    });
  } catch (error) {
    // Nothing was started: give the claims back now rather than leave them to the sweeper.
    log.error("run start failed before StartJobRun; undoing it", { runKey, error: messageOf(error) });
    await undoStart(deps, runKey, manifest, `run start failed: ${messageOf(error)}`).catch((undoError: unknown) =>
      log.error("could not undo the start; the sweeper will", { runKey, error: messageOf(undoError) }),
    );
    throw error;
  }
  if (taken.length === 0) {
    await ledger.updateRun(runKey, ["starting"], { state: "abandoned", endedAt: nowIso, error: "no upload claimed" });
    await ledger.releaseSlot(runKey);
    return null;
  }

  let glueRunId: string;
  try {
    glueRunId = await glue.startRun({
      [`--${GLUE_ARGUMENTS.manifestUri}`]: `s3://${manifestBucket(deps)}/${key}`,
      [`--${GLUE_ARGUMENTS.runKey}`]: runKey,
    });
  } catch (error) {
    const started = startFailureKind(error);
    log.error("StartJobRun failed", { runKey, started, error: messageOf(error) });
    if (started === "no") await undoStart(deps, runKey, manifest, `StartJobRun failed: ${messageOf(error)}`);
    // "unknown": keep the slot and the claims; the state-change event or the sweeper (GetJobRuns by run key)
    // settles it. Either way the caller reports its records as failed so SQS brings them back.
    throw new StartRunError(runKey, started, error);
  }
  await ledger.linkGlueRun(glueRunId, runKey);
  await ledger.updateRun(runKey, ["starting"], {
    state: "running",
    glueRunId,
    startedAt: deps.clock.now().toISOString(),
  });
  metrics.add("RunsStarted", 1);
  metrics.add("FilesPerRun", taken.length);
  log.info("run started", { runKey, glueRunId, files: taken.length, keys: taken.slice(0, 20).map((u) => u.key) });
  return { started: true, runKey, glueRunId, files: taken.length };
}

/** A start that certainly did not happen: uploads back to pending (unchanged attempts), run closed, slot freed. */
export async function undoStart(deps: Deps, runKey: string, manifest: Manifest | null, error: string): Promise<void> {
  const now = deps.clock.now().toISOString();
  if (manifest) {
    await mapLimit(manifest.uploads, 32, async (u) => {
      const record = await deps.ledger.getUpload(u.uploadId);
      if (record?.status !== "running" || record.runKey !== runKey) return;
      await deps.ledger.settleUpload(
        u.uploadId,
        runKey,
        { status: "pending", error, attempts: record.attempts, retryGroupSize: record.retryGroupSize },
        now,
      );
    });
  }
  await deps.ledger.updateRun(runKey, ["starting"], { state: "start_failed", endedAt: now, error });
  await deps.ledger.releaseSlot(runKey);
}

/** The manifest of a run, or null when it was never written. */
export async function readManifest(deps: Deps, run: Pick<RunRecord, "manifestKey">): Promise<Manifest | null> {
  const text = await deps.objects.getText(manifestBucket(deps), run.manifestKey);
  return text === null ? null : parseManifest(text, `s3://${manifestBucket(deps)}/${run.manifestKey}`);
}

/** Manifests live in the control bucket (uploaders cannot forge one); the data bucket where none is configured. */
export function manifestBucket(deps: Pick<Deps, "bucket" | "controlBucket">): string {
  return deps.controlBucket ?? deps.bucket;
}

/** The newest pending version of each key (by last-modified, then version tag), and the older ones it replaces. */
export function newestPerKey(uploads: readonly UploadRecord[]): {
  newest: UploadRecord[];
  superseded: { old: UploadRecord; by: UploadRecord }[];
} {
  const byKey = new Map<string, UploadRecord>();
  for (const u of uploads) {
    const seen = byKey.get(u.key);
    if (!seen || isLaterVersion(u, seen)) byKey.set(u.key, u);
  }
  const newest = uploads.filter((u) => byKey.get(u.key) === u);
  const superseded = uploads
    .filter((u) => byKey.get(u.key) !== u)
    .map((old) => ({ old, by: byKey.get(old.key) as UploadRecord }));
  return { newest, superseded };
}

/** Whether `a` is a later version of the same key than `b` (by last-modified, then version tag). */
export function isLaterVersion(
  a: Pick<UploadRecord, "key" | "lastModified" | "versionTag">,
  b: Pick<UploadRecord, "key" | "lastModified" | "versionTag">,
): boolean {
  return (
    a.key === b.key &&
    (a.lastModified > b.lastModified || (a.lastModified === b.lastModified && a.versionTag > b.versionTag))
  );
}

function newRunRecord(runKey: string, key: string, uploads: readonly UploadRecord[], now: string): RunRecord {
  return {
    runKey,
    state: "starting",
    glueRunId: null,
    manifestKey: key,
    fileCount: uploads.length,
    bytes: sumBytes(uploads),
    createdAt: now,
    startedAt: null,
    endedAt: null,
    error: null,
    rowsRead: null,
    rowsProcessed: null,
    rowsRejected: null,
    filesProcessed: null,
    filesFailed: null,
  };
}

function sumBytes(uploads: readonly { size: number }[]): number {
  return uploads.reduce((n, u) => n + u.size, 0);
}

/**
 * Runs `fn` over `items` with at most `limit` in flight; results in input order. On the first failure no new item
 * is started, the ones in flight are awaited, then the failure is thrown: nothing keeps running after the caller
 * has its answer (on Lambda, leftover work would resume at a later invocation, long after the caller gave up).
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async () => {
    while (next < items.length && failure === null) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw (failure as { error: unknown }).error;
  return results;
}
