/**
 * Starting a run: take the run slot, write the manifest of pending uploads, claim them, StartJobRun once.
 * Used by intake (after recording uploads), by completion (after a run ends) and by the sweeper. Never waits on Glue.
 *
 * Rules (issue 10):
 *  - the holder claims the uploads its caller just recorded (`known`) besides what the pending index lists: the index
 *    is eventually consistent, the caller's own records are not;
 *  - a start is never undone while Glue may be running it: after any StartJobRun failure Glue is asked for a run
 *    carrying our run key (adopted when found); only a refusal of the first and only try undoes the start, anything
 *    else is left to the sweeper, which looks again once the start is stale;
 *  - when two versions of one key are pending together, S3 (HeadObject now) says which one is current;
 *  - after consecutive system failures, starts wait out a backoff (see RunSettings.systemRetryBaseSeconds).
 */
import { GLUE_ARGUMENTS, type RunSettings } from "../config/pipeline.js";
import { messageOf, StartRunError, startFailureKind } from "../errors.js";
import { pendingOrder, sortedBy } from "../ledger/memory.js";
import type { Deps, GlueJobRun } from "../ledger/ports.js";
import type { RunRecord, SlotRecord, UploadRecord } from "../ledger/types.js";
import { buildManifest, type Manifest, manifestKey, parseManifest } from "../manifest/format.js";
import { normalizeEtag, normalizeVersionId, type ObjectVersion } from "../upload/identity.js";
import { runCapacity } from "./capacity.js";
import { selectRunUploads } from "./selection.js";

export type StartOutcome =
  | { readonly started: true; readonly runKey: string; readonly glueRunId: string; readonly files: number }
  | {
      readonly started: false;
      readonly reason: "slot-held" | "nothing-pending" | "backing-off" | "filling";
    }
  /**
   * A young burst held (RunSettings.burstHoldSeconds): its oldest pending upload reaches the hold's age in
   * `retryInSeconds`. The batcher has one of its messages come back then, so the start does not depend on another
   * batch arriving (a burst whose last batch was full) or on the sweeper.
   */
  | { readonly started: false; readonly reason: "holding-burst"; readonly retryInSeconds: number };

/** Wake-ups are retried this many times before leaving the rest to the sweeper (guards against a hot loop). */
const MAX_ROUNDS = 3;

/** Settle rounds a woken holder waits for the index to show uploads it could not know (covers 2 s of lag). */
const WOKEN_PATIENCE_ROUNDS = 2;

/** What the caller of a run start knows. */
export interface StartContext {
  /** Pending uploads the caller has just recorded (read from the table, not the index): claimed even when the index
   * does not list them yet. */
  readonly known?: readonly UploadRecord[];
  /** The caller released the slot with a wake-up request: someone recorded uploads the index may not show yet. */
  readonly woken?: boolean;
  /** The caller's batch was full: hold the start while the burst is young (RunSettings.burstHoldSeconds). */
  readonly burst?: boolean;
}

/** Takes the slot and starts a run of pending uploads, if any. */
export async function startNextRun(deps: Deps, runs: RunSettings, context: StartContext = {}): Promise<StartOutcome> {
  const known = context.known ?? [];
  if (await backingOff(deps, runs)) return { started: false, reason: "backing-off" };
  let woken = context.woken ?? false;
  let hold = context.burst ?? false;
  let notStarted: "nothing-pending" | "filling" = "nothing-pending";
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const now = deps.clock.now();
    const runKey = deps.newRunKey(now);
    if (!(await deps.ledger.takeSlot(runKey, now.toISOString()))) {
      // Part of a burst that is still arriving: no wake-up (a holding holder would read it as the burst's last batch
      // calling); a run's end always looks for pending uploads, and the burst's last batch or the sweeper starts them.
      if (hold) return { started: false, reason: "slot-held" };
      // Someone holds the slot: make sure its end looks for our pending uploads. If it was released just now,
      // go round and try to take it ourselves.
      const slot = await deps.ledger.requestWakeup();
      if (!slot) continue;
      // Held by a start that died before launching: revoke it and go round (its uploads are pending again).
      if (!(await revokeStaleStart(deps, runs, slot, now))) return { started: false, reason: "slot-held" };
      woken = true;
      continue;
    }
    let chosen: UploadRecord[];
    let backlog: boolean;
    try {
      const age = hold ? await oldestPendingAge(deps, known, now) : null;
      if (age !== null && age < runs.burstHoldSeconds) {
        const { wakeup } = await deps.ledger.releaseSlot(runKey);
        // A wake-up may come from the burst's last batch, which relies on us: then no more holding.
        if (!wakeup) {
          return { started: false, reason: "holding-burst", retryInSeconds: Math.ceil(runs.burstHoldSeconds - age) };
        }
        hold = false;
        woken = true;
        continue;
      }
      const pending = await settledPending(deps, runs, known, woken);
      chosen = selectRunUploads(pending, runs);
      // The read goes one past the cap, so a run of exactly maxFilesPerRun knows whether anything waits behind it.
      backlog = chosen.length < pending.length;
      if (!backlog && fillingUp(runs, chosen, deps.clock.now())) {
        const { wakeup } = await deps.ledger.releaseSlot(runKey);
        if (!wakeup) return { started: false, reason: "filling" };
        // Someone recorded uploads meanwhile: look again (they may fill the run); past MAX_ROUNDS, still filling.
        notStarted = "filling";
        woken = true;
        continue;
      }
    } catch (error) {
      // Failed (a throttled read) before the run item exists: give the slot back now. Kept, it would be held by a
      // run key with no run: every batch sees slot-held until the sweeper judges it stale (minutes).
      await deps.ledger
        .releaseSlot(runKey)
        .catch((releaseError: unknown) =>
          deps.log.error("could not free the slot; the sweeper will", { runKey, error: messageOf(releaseError) }),
        );
      throw error;
    }
    if (chosen.length === 0) {
      const { wakeup } = await deps.ledger.releaseSlot(runKey);
      if (wakeup) {
        woken = true;
        continue;
      }
      return { started: false, reason: "nothing-pending" };
    }
    const outcome = await startClaimedRun(deps, runs, runKey, now, chosen, backlog);
    if (outcome) return outcome;
  }
  return { started: false, reason: notStarted };
}

/** How long ago (s) the oldest pending upload (the index's, or the caller's own) was recorded; null: none. */
async function oldestPendingAge(deps: Deps, known: readonly UploadRecord[], now: Date): Promise<number | null> {
  const [oldest] = withKnown(await deps.ledger.listPending(1), known, 1);
  if (!oldest) return null;
  return (now.getTime() - Date.parse(oldest.receivedAt)) / 1000;
}

/**
 * Whether a run of `chosen` should wait for the stream to fill it (RunSettings.fillHold). Only when all of:
 *  - fewer than `minFiles` fresh uploads (and fewer than the manifest cap: a full run never waits);
 *  - a stream, not one batch: the uploads were recorded over at least a second, the newest in the last
 *    `quietSeconds` (a burst that has ended, a reconciler's pass, a one-off batch are not held);
 *  - at the rate they came (count / the oldest's age) the run would reach `minFiles` before the oldest is
 *    `maxWaitSeconds` old — with fewer than minFiles this also bounds the hold: it implies age < maxWaitSeconds.
 * A record time in the future (a writer's clock ahead of ours) or unreadable: no hold. Retries never wait. The caller
 * also never holds a selection the caps cut short (more pending than chosen).
 */
export function fillingUp(runs: RunSettings, chosen: readonly UploadRecord[], now: Date): boolean {
  const hold = runs.fillHold;
  const oldest = chosen[0];
  if (!hold || !oldest || oldest.retryGroupSize !== null) return false;
  if (chosen.length >= Math.min(hold.minFiles, runs.maxFilesPerRun)) return false;
  const nowMs = now.getTime();
  const oldestMs = Date.parse(oldest.receivedAt);
  const newestMs = chosen.reduce((t, u) => Math.max(t, Date.parse(u.receivedAt)), oldestMs);
  if (!(newestMs <= nowMs && newestMs - oldestMs >= 1000)) return false;
  if (!(nowMs - newestMs < hold.quietSeconds * 1000)) return false;
  return chosen.length * hold.maxWaitSeconds * 1000 >= hold.minFiles * (nowMs - oldestMs);
}

/** How long starts wait after `n` consecutive system failures (the breaker is open from `breakerThreshold` on). */
export function systemRetryDelayMs(n: number, runs: RunSettings): number {
  if (n <= 0) return 0;
  if (n >= runs.breakerThreshold) return runs.systemRetryMaxSeconds * 1000;
  return Math.min(runs.systemRetryBaseSeconds * 2 ** (n - 1), runs.systemRetryMaxSeconds) * 1000;
}

async function backingOff(deps: Deps, runs: RunSettings): Promise<boolean> {
  const health = await deps.ledger.getHealth();
  if (health.consecutiveSystemFailures === 0 || health.lastFailureAt === null) return false;
  const due = Date.parse(health.lastFailureAt) + systemRetryDelayMs(health.consecutiveSystemFailures, runs);
  return deps.clock.now().getTime() < due;
}

/** The index's pending uploads plus the caller's own, oldest first, at most `limit`. */
function withKnown(listed: readonly UploadRecord[], known: readonly UploadRecord[], limit: number): UploadRecord[] {
  if (known.length === 0) return [...listed];
  const byId = new Map(listed.map((u) => [u.uploadId, u]));
  for (const u of known) if (!byId.has(u.uploadId)) byId.set(u.uploadId, u);
  return sortedBy([...byId.values()], pendingOrder).slice(0, limit);
}

/**
 * The pending uploads once the list stops growing (see RunSettings.settleMs), or as soon as a run is full. `woken`:
 * someone recorded uploads we do not know while we held the slot; when the index does not show them yet, wait for it
 * (its lag is seconds) rather than give the slot back with their wake-up spent.
 */
async function settledPending(
  deps: Deps,
  runs: RunSettings,
  known: readonly UploadRecord[],
  woken: boolean,
): Promise<UploadRecord[]> {
  // One past the cap: a full run also learns whether uploads are left waiting behind it (its capacity depends on it).
  const limit = runs.maxFilesPerRun + 1;
  const read = async () => withKnown(await deps.ledger.listPending(limit), known, limit);
  let pending = await read();
  for (let round = 0; round < runs.maxSettleRounds && pending.length < runs.maxFilesPerRun; round++) {
    // Woken and the index shows nothing yet: wait WOKEN_PATIENCE_ROUNDS settle rounds at most (the index lags
    // seconds; a wake-up is often spurious, the waker's uploads already claimed into the run that just ended).
    if (pending.length === 0 && (!woken || round >= WOKEN_PATIENCE_ROUNDS)) break;
    await deps.clock.sleep(runs.settleMs);
    const again = await read();
    if (again.length === pending.length && again.length > 0) break;
    pending = again;
  }
  return pending;
}

/**
 * With the slot held by `runKey`: manifest, claims, StartJobRun. Returns null when no upload could be claimed.
 * `backlog`: pending uploads are left waiting behind this run (its capacity tier's backlogWorkers).
 */
async function startClaimedRun(
  deps: Deps,
  runs: RunSettings,
  runKey: string,
  now: Date,
  candidates: readonly UploadRecord[],
  backlog: boolean,
): Promise<StartOutcome | null> {
  const { ledger, objects, glue, log, metrics } = deps;
  const key = manifestKey(runKey);
  const nowIso = now.toISOString();
  // The run item comes first so the sweeper can always find what a crashed start left behind.
  try {
    await ledger.createRun(newRunRecord(runKey, key, candidates, nowIso));
  } catch (error) {
    // Failed (throttled) with nothing claimed yet: give the slot back now — kept, it would be held by a run key with
    // no run and every batch would see slot-held until the sweeper judged it stale (minutes). The write may have
    // applied with its answer lost: then the run item is closed first, so no open run is left without the slot.
    log.error("run start failed writing its run item; giving the slot back", { runKey, error: messageOf(error) });
    await ledger
      .updateRun(runKey, ["starting"], {
        state: "abandoned",
        endedAt: nowIso,
        error: `run start failed: ${messageOf(error)}`,
      })
      .then(() => ledger.releaseSlot(runKey))
      .catch((undoError: unknown) =>
        log.error("could not give the slot back; the sweeper will", { runKey, error: messageOf(undoError) }),
      );
    throw error;
  }
  let manifest: Manifest | null = null;
  let taken: UploadRecord[];
  let revoked = false;
  try {
    // Two versions of one key pending together: only S3's current one is read (the job reads a key's current bytes);
    // the others are reported failed rather than processed with bytes that are not theirs.
    const { current, dropped } = await currentVersions(deps, candidates);
    manifest = buildManifest({ runKey, bucket: deps.bucket, createdAt: now, uploads: current });
    await objects.putJson(manifestBucket(deps), key, manifest);
    const results = await mapLimit(current, 32, (u) => ledger.claimUpload(u.uploadId, runKey, nowIso));
    taken = current.filter((_, i) => results[i]);
    if (taken.length !== current.length) {
      // Only the slot holder claims, so the pending index lagged; the manifest must list exactly the run.
      log.warn("some pending uploads were already taken; rewriting the manifest", {
        runKey,
        skipped: current.length - taken.length,
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
    await mapLimit(dropped, 32, async ({ old, error }) => {
      if (!(await ledger.failPendingUpload(old.uploadId, runKey, error, nowIso))) return;
      log.info("upload not current", { key: old.key, uploadId: old.uploadId, error });
    });
    // The launch fence: from here on a Glue run may exist, so only the sweeper (which asks Glue) may repair this
    // start. Refused when a repairer revoked the start as stale meanwhile: then Glue must never be called.
    revoked = taken.length > 0 && !(await ledger.markLaunched(runKey, deps.clock.now().toISOString()));
  } catch (error) {
    // Nothing was started: give the claims back now rather than leave them to the sweeper.
    log.error("run start failed before StartJobRun; undoing it", { runKey, error: messageOf(error) });
    await undoStart(deps, runKey, manifest, `run start failed: ${messageOf(error)}`).catch((undoError: unknown) =>
      log.error("could not undo the start; the sweeper will", { runKey, error: messageOf(undoError) }),
    );
    throw error;
  }
  if (revoked) {
    // Our claims may postdate the repairer's pass over the manifest: give them back ourselves (Glue never saw them).
    log.warn("run start revoked as stale before it launched; giving its uploads back", { runKey });
    await undoStart(deps, runKey, manifest, "the run start was revoked as stale before it launched");
    return null;
  }
  if (taken.length === 0) {
    await ledger.updateRun(runKey, ["starting"], { state: "abandoned", endedAt: nowIso, error: "no upload claimed" });
    await ledger.releaseSlot(runKey);
    return null;
  }

  let glueRunId: string;
  try {
    glueRunId = await glue.startRun(
      {
        [`--${GLUE_ARGUMENTS.manifestUri}`]: `s3://${manifestBucket(deps)}/${key}`,
        [`--${GLUE_ARGUMENTS.runKey}`]: runKey,
      },
      runCapacity({ files: taken.length, bytes: sumBytes(taken), backlog }, runs.capacity),
    );
  } catch (error) {
    // Before deciding anything, ask Glue: a run carrying our run key is ours, whatever the error said.
    const found = await findGlueRunOf(deps, runKey, nowIso).catch(() => null);
    if (found) {
      log.warn("StartJobRun failed but Glue has the run; adopting it", { runKey, glueRunId: found.id });
      if (!(await adoptGlueRun(deps, runKey, found))) return null;
      metrics.add("RunsStarted", 1);
      metrics.add("FilesPerRun", taken.length);
      return { started: true, runKey, glueRunId: found.id, files: taken.length };
    }
    const started = startFailureKind(error);
    log.error("StartJobRun failed", { runKey, started, error: messageOf(error) });
    if (started === "no") {
      await undoStart(deps, runKey, manifest, `StartJobRun failed: ${messageOf(error)}`);
      await noteSystemFailure(deps, runs, runKey, `StartJobRun refused: ${messageOf(error)}`);
    }
    // "unknown": keep the slot and the claims; the state-change event or the sweeper (GetJobRuns by run key, once the
    // start is stale) settles it.
    throw error instanceof StartRunError ? error : new StartRunError(runKey, started, error);
  }
  if (!(await adoptGlueRun(deps, runKey, { id: glueRunId, startedOn: deps.clock.now() }))) return null;
  metrics.add("RunsStarted", 1);
  metrics.add("FilesPerRun", taken.length);
  log.info("run started", { runKey, glueRunId, files: taken.length, keys: taken.slice(0, 20).map((u) => u.key) });
  return { started: true, runKey, glueRunId, files: taken.length };
}

/** The Glue run carrying `runKey` in its arguments, among runs started since a minute before `createdAt`. */
export async function findGlueRunOf(deps: Deps, runKey: string, createdAt: string): Promise<GlueJobRun | null> {
  const since = new Date(Date.parse(createdAt) - 60_000);
  const runs = await deps.glue.recentRuns(since);
  return runs.find((r) => r.arguments[`--${GLUE_ARGUMENTS.runKey}`] === runKey) ?? null;
}

/**
 * Records that `runKey`'s start happened as Glue run `found` (by its own answer, or found by run key when the answer
 * was lost). false when the ledger had already given the start up (`start_failed`: the sweeper judged it dead after
 * the start timeout and found no Glue run — a starter paused that long between its launch fence and Glue's answer):
 * its uploads are pending again and may go into another run, so this Glue run is stopped.
 */
export async function adoptGlueRun(
  deps: Deps,
  runKey: string,
  found: Pick<GlueJobRun, "id" | "startedOn">,
): Promise<boolean> {
  await deps.ledger.linkGlueRun(found.id, runKey);
  const recorded = await deps.ledger.updateRun(runKey, ["starting"], {
    state: "running",
    glueRunId: found.id,
    startedAt: found.startedOn?.toISOString() ?? deps.clock.now().toISOString(),
  });
  if (recorded) return true;
  const run = await deps.ledger.getRun(runKey);
  // Already ended (a short run whose end was recorded first) or adopted with another id by nobody: nothing to undo.
  if (run?.state !== "start_failed") return true;
  deps.log.error("a Glue run started for a run start the ledger had given up; stopping it", {
    runKey,
    glueRunId: found.id,
  });
  // Refused stops are reported, not thrown: the run may have ended already (its files are the next run's anyway).
  await deps.glue.stopRun(found.id).catch((error: unknown) =>
    deps.log.error("could not stop the Glue run (it may have ended already)", {
      runKey,
      glueRunId: found.id,
      error: messageOf(error),
    }),
  );
  return false;
}

/**
 * A start that died before its launch fence (a crashed or timed-out starter) holds the slot: every batch would see
 * slot-held until the sweeper's next pass. Whoever finds the slot held longer than `revokeUnlaunchedAfterSeconds`
 * (75 s, past the batcher's and recorder's timeouts) by a holder that has not launched revokes it — a release
 * conditional on the holder still not having launched; the revoked starter's own fence then fails, so it never calls
 * Glue however late it wakes up — then gives the start's claims back and closes its run. A launched start (a Glue
 * run may exist) is left to the sweeper, which asks Glue. Returns the repair made, null when there was none to make.
 */
export async function revokeStaleStart(
  deps: Deps,
  runs: RunSettings,
  slot: SlotRecord,
  now: Date,
): Promise<"freed-stale-slot" | "undid-failed-start" | null> {
  const holder = slot.holder;
  if (holder === null || slot.launched) return null;
  const heldMs = now.getTime() - Date.parse(slot.takenAt ?? "1970-01-01T00:00:00Z");
  if (heldMs <= runs.revokeUnlaunchedAfterSeconds * 1000) return null;
  let run = await deps.ledger.getRun(holder);
  if (!run) {
    // No run item yet: write it, closed, before revoking — a starter stalled before its createRun would otherwise
    // write an open one after our release and, dying then, leave a run no repair looks at. Its createRun now fails.
    const nowIso = now.toISOString();
    const closed = { ...newRunRecord(holder, manifestKey(holder), [], nowIso), state: "start_failed" as const };
    try {
      await deps.ledger.createRun({ ...closed, endedAt: nowIso, error: "the run start died before its run item" });
    } catch {
      run = await deps.ledger.getRun(holder); // its own landed first
      if (!run) throw new Error(`run ${holder}: neither its item nor ours could be written`);
    }
  }
  if (run && (run.state !== "starting" || run.glueRunId !== null)) return null; // not a dead start: the sweeper's
  const { released } = await deps.ledger.releaseSlot(holder, { unlessLaunched: true });
  if (!released) return null; // it launched (or was released) meanwhile
  deps.log.warn("revoked a run start that died before launching", { runKey: holder, heldSeconds: heldMs / 1000 });
  if (!run) return "freed-stale-slot";
  await undoStart(
    deps,
    holder,
    await readManifest(deps, run),
    "the run start died before launching (revoked as stale)",
  );
  return "undid-failed-start";
}

/** Counts a system failure of `runKey` once; emits the metrics the breaker alarm watches. */
export async function noteSystemFailure(deps: Deps, runs: RunSettings, runKey: string, why: string): Promise<void> {
  const before = await deps.ledger.getHealth();
  const after = await deps.ledger.recordRunHealth(runKey, "system-failure", deps.clock.now().toISOString());
  if (after.consecutiveSystemFailures === before.consecutiveSystemFailures) return; // counted already
  deps.metrics.add("RunSystemFailures", 1);
  const n = after.consecutiveSystemFailures;
  if (n >= runs.breakerThreshold) {
    deps.metrics.add("CircuitOpen", 1);
    deps.log.error("circuit breaker open: consecutive system failures", { runKey, failures: n, why });
  } else {
    deps.log.warn("system failure; the run is retried whole after a backoff", {
      runKey,
      failures: n,
      retryInSeconds: systemRetryDelayMs(n, runs) / 1000,
      why,
    });
  }
}

/**
 * A start that certainly did not reach Glue (or that Glue certainly does not have): run closed, uploads back to
 * pending (unchanged attempts), slot freed. The run is closed FIRST, conditionally: a starter whose StartJobRun
 * answer comes late records its run only while it is "starting", so either it records it (and the undo stops here,
 * uploads untouched) or it finds the start given up and stops its Glue run. Closed by someone else as a start that
 * never ran (start_failed, abandoned): the uploads are still given back (a revoked starter's claims may postdate the
 * repairer's pass). Returns false when the run turned out to be running or ended (nothing undone).
 */
export async function undoStart(
  deps: Deps,
  runKey: string,
  manifest: Manifest | null,
  error: string,
): Promise<boolean> {
  const now = deps.clock.now().toISOString();
  if (!(await deps.ledger.updateRun(runKey, ["starting"], { state: "start_failed", endedAt: now, error }))) {
    const run = await deps.ledger.getRun(runKey);
    if (run && run.state !== "start_failed" && run.state !== "abandoned") return false;
  }
  if (manifest) {
    await mapLimit(manifest.uploads, 32, async (u) => {
      const record = await deps.ledger.getUpload(u.uploadId);
      if (record?.status !== "running" || record.runKey !== runKey) return;
      await deps.ledger.settleUpload(
        u.uploadId,
        runKey,
        { status: "pending", error, attempts: record.attempts, retryGroupSize: record.retryGroupSize },
        now,
        record,
      );
    });
  }
  await deps.ledger.releaseSlot(runKey);
  return true;
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

/**
 * The version of each key to run, and the others with why they are dropped. One pending version of a key runs as it
 * is (the job reads it with If-Match on its etag, so a later overwrite fails it rather than feeding it other bytes).
 * When several versions of one key are pending, S3 decides which is current (HeadObject now): Last-Modified has
 * second resolution and a multipart upload reports its initiation time, and version ids and etags are random, so no
 * order of ours can tell.
 */
export async function currentVersions(
  deps: Pick<Deps, "objects">,
  uploads: readonly UploadRecord[],
): Promise<{ current: UploadRecord[]; dropped: { old: UploadRecord; error: string }[] }> {
  const byKey = new Map<string, UploadRecord[]>();
  for (const u of uploads) {
    const group = byKey.get(`${u.bucket}/${u.key}`);
    if (group) group.push(u);
    else byKey.set(`${u.bucket}/${u.key}`, [u]);
  }
  const winner = new Map<string, UploadRecord | null>();
  const heads = new Map<string, ObjectVersion | null>();
  await mapLimit(
    [...byKey.entries()].filter(([, group]) => group.length > 1),
    16,
    async ([id, group]) => {
      const first = group[0] as UploadRecord;
      const head = await deps.objects.head(first.bucket, first.key);
      heads.set(id, head);
      winner.set(id, head ? (group.find((u) => isVersion(u, head)) ?? null) : null);
    },
  );
  const current: UploadRecord[] = [];
  const dropped: { old: UploadRecord; error: string }[] = [];
  for (const u of uploads) {
    const id = `${u.bucket}/${u.key}`;
    if (!winner.has(id) || winner.get(id) === u) {
      current.push(u);
      continue;
    }
    const by = winner.get(id);
    const head = heads.get(id);
    const error = by
      ? `superseded: ${u.key} was uploaded again (${by.versionTag}) before this version was processed`
      : head
        ? `superseded: ${u.key} was uploaded again (etag ${head.etag}) before this version was processed`
        : "the object was deleted before it could be processed";
    dropped.push({ old: u, error });
  }
  return { current, dropped };
}

/** Whether `u` is the version S3 describes in `head` (version id when versioned, else etag and Last-Modified). */
export function isVersion(u: Pick<UploadRecord, "versionId" | "etag" | "lastModified">, head: ObjectVersion): boolean {
  const versionId = normalizeVersionId(head.versionId);
  if (versionId || u.versionId) return u.versionId === versionId;
  return u.etag === normalizeEtag(head.etag) && Date.parse(u.lastModified) === Date.parse(head.lastModified);
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
