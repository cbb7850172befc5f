/**
 * An in-memory ledger with the same conditional semantics as the DynamoDB one (the shared contract suite in
 * tests/ runs against both). Every method is async and yields once, so interleavings like two consumers racing for
 * the run slot happen in tests as they do against DynamoDB.
 */
import { createHash } from "node:crypto";
import type { GlueUsage } from "../runs/glue-cost.js";
import type { Upload } from "../upload/identity.js";
import type { LedgerStore, ReconcilerPosition, ReconcilerPositionStore, Settlement } from "./ports.js";
import {
  FREE_SLOT,
  HEALTHY,
  type HealthRecord,
  RUN_ACTIVE_STATES,
  type RunRecord,
  type RunState,
  type SlotRecord,
  type UploadRecord,
} from "./types.js";

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

export function newUploadRecord(upload: Upload, now: string, failure?: string): UploadRecord {
  return {
    ...upload,
    status: failure === undefined ? "pending" : "failed",
    receivedAt: now,
    updatedAt: now,
    attempts: 0,
    runs: 0,
    retryGroupSize: null,
    runKey: null,
    lastRunKey: null,
    output: null,
    rejectedOutput: null,
    rowsRead: null,
    rowsProcessed: null,
    rowsRejected: null,
    error: failure ?? null,
  };
}

/**
 * The attributes a settlement to processed or failed sets; every other attribute of the record is kept. DynamoLedger
 * writes exactly these in its UpdateItem. A field the settlement lacks is stored as null (the marshaller would drop
 * an undefined, leaving the update expression naming a missing value).
 */
export function settledFields(
  s: Exclude<Settlement, { status: "pending" }>,
  now: string,
): Pick<UploadRecord, "status" | "updatedAt" | "error"> & Partial<UploadRecord> {
  if (s.status === "failed") return { status: "failed", updatedAt: now, error: s.error, attempts: s.attempts };
  return {
    status: "processed",
    updatedAt: now,
    output: s.output ?? null,
    rejectedOutput: s.rejectedOutput ?? null,
    rowsRead: s.rowsRead ?? null,
    rowsProcessed: s.rowsProcessed ?? null,
    rowsRejected: s.rowsRejected ?? null,
    error: null,
  };
}

/** The record an upload has after a settlement (shared with DynamoLedger so both store the same fields). */
export function settledRecord(r: UploadRecord, s: Settlement, now: string): UploadRecord {
  switch (s.status) {
    case "processed":
    case "failed":
      return { ...r, ...settledFields(s, now) };
    case "pending":
      return {
        ...r,
        status: "pending",
        updatedAt: now,
        error: s.error,
        attempts: s.attempts,
        retryGroupSize: s.retryGroupSize,
        runKey: null,
      };
  }
}

/** The record a pending upload has once failed without running (shared with DynamoLedger). */
export function failedPendingRecord(r: UploadRecord, runKey: string | null, error: string, now: string): UploadRecord {
  return { ...r, status: "failed", runKey, error, updatedAt: now };
}

/**
 * Whether `r` is already what settling it from `runKey` with `s` at `now` makes: the read-back test of an idempotent
 * settle (shared with DynamoLedger). A pending settlement leaves no run key, so its time and contents identify it.
 */
export function matchesSettlement(r: UploadRecord, runKey: string, s: Settlement, now: string): boolean {
  if (r.status !== s.status || r.updatedAt !== now) return false;
  switch (s.status) {
    case "processed":
      return r.runKey === runKey && r.output === s.output;
    case "failed":
      return r.runKey === runKey && r.error === s.error && r.attempts === s.attempts;
    case "pending":
      return (
        r.runKey === null &&
        r.lastRunKey === runKey &&
        r.error === s.error &&
        r.attempts === s.attempts &&
        r.retryGroupSize === s.retryGroupSize
      );
  }
}

/** Whether a pending upload was failed by this very write (read-back test of failPendingUpload). */
export function matchesFailedPending(r: UploadRecord, runKey: string | null, error: string, now: string): boolean {
  return r.status === "failed" && r.runKey === runKey && r.error === error && r.updatedAt === now;
}

/** Whether a redrive at `now` already put this upload back (read-back test of requeueUpload). */
export function matchesRequeued(r: UploadRecord, now: string): boolean {
  // a requeued upload keeps the error it failed with; a fresh one has none
  return r.status === "pending" && r.attempts === 0 && r.runKey === null && r.error !== null && r.updatedAt === now;
}

/** Whether `run` already holds exactly these figures (read-back test of fillRunGlue: null or absent never matches). */
export function matchesFilledGlue(run: RunRecord, glue: GlueUsage): boolean {
  return run.glue != null && matchesPatch(run, { glue });
}

/** Whether every field of `patch` already has its value in `run` (read-back test of updateRun). */
export function matchesPatch(run: RunRecord, patch: Partial<Omit<RunRecord, "runKey">>): boolean {
  return Object.entries(patch).every(
    ([k, v]) => v === undefined || canonical((run as unknown as Record<string, unknown>)[k] ?? null) === canonical(v),
  );
}

/** JSON with object keys sorted: a map read back from DynamoDB need not keep the order it was written in. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(
          Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : x,
  );
}

/** Whether two runs are the same record (read-back test of createRun). */
export function sameRun(a: RunRecord, b: RunRecord): boolean {
  return matchesPatch(a, b) && matchesPatch(b, a);
}

/** The health after counting `runKey`'s outcome (shared with DynamoLedger). */
export function nextHealth(
  h: HealthRecord,
  runKey: string,
  outcome: "system-failure" | "healthy",
  now: string,
): HealthRecord {
  if (h.lastRunKey === runKey) return h;
  // Only "system-failure" counts (as DynamoLedger reads it): any other outcome closes the breaker.
  return outcome === "system-failure"
    ? { consecutiveSystemFailures: h.consecutiveSystemFailures + 1, lastRunKey: runKey, lastFailureAt: now }
    : { consecutiveSystemFailures: 0, lastRunKey: runKey, lastFailureAt: h.lastFailureAt };
}

export class MemoryLedger implements LedgerStore, ReconcilerPositionStore {
  readonly uploads = new Map<string, UploadRecord>();
  /** Upload ids per `bucket/key` (the table's partition key): uploadsOfKey reads one key, not every upload. */
  private readonly idsOfKey = new Map<string, string[]>();
  readonly runs = new Map<string, RunRecord>();
  readonly glueRuns = new Map<string, string>();
  slot: SlotRecord = FREE_SLOT;
  /** Who released the slot last, and the wake-up it reported (a retried release reports the same). */
  lastRelease: { runKey: string; wakeup: boolean } | null = null;
  health: HealthRecord = HEALTHY;
  /** Fault injection for tests: the next call of the named method throws this error. */
  failNext: { method: keyof LedgerStore; error: Error } | null = null;
  /** Fault injection for the simulation: the `calls`-th call from now, whatever its method, throws (then disarmed). */
  failAtCall: { calls: number; error: Error; fired: boolean } | null = null;

  private async enter(method: keyof LedgerStore): Promise<void> {
    await tick();
    if (this.failNext?.method === method) {
      const { error } = this.failNext;
      this.failNext = null;
      throw error;
    }
    const at = this.failAtCall;
    if (at && !at.fired && --at.calls <= 0) {
      at.fired = true;
      throw new Error(`${at.error.message} (${method})`);
    }
  }

  async recordUpload(upload: Upload, now: string, failure?: string) {
    await this.enter("recordUpload");
    const existing = this.uploads.get(upload.uploadId);
    if (existing) return { created: false, record: existing };
    const record = newUploadRecord(upload, now, failure);
    this.uploads.set(upload.uploadId, record);
    const keyOf = `${upload.bucket}/${upload.key}`;
    this.idsOfKey.set(keyOf, [...(this.idsOfKey.get(keyOf) ?? []), upload.uploadId]);
    return { created: true, record };
  }

  async getUpload(uploadId: string) {
    await this.enter("getUpload");
    return this.uploads.get(uploadId) ?? null;
  }

  async listPending(limit: number) {
    await this.enter("listPending");
    return sortedBy(
      [...this.uploads.values()].filter((u) => u.status === "pending"),
      pendingOrder,
    ).slice(0, limit);
  }

  async claimUpload(uploadId: string, runKey: string, now: string) {
    await this.enter("claimUpload");
    const r = this.uploads.get(uploadId);
    if (r?.status !== "pending") return r?.status === "running" && r.runKey === runKey;
    this.uploads.set(uploadId, {
      ...r,
      status: "running",
      runKey,
      lastRunKey: runKey,
      runs: r.runs + 1,
      updatedAt: now,
    });
    return true;
  }

  async settleUpload(uploadId: string, runKey: string, settlement: Settlement, now: string, _read?: UploadRecord) {
    // `_read` is for stores that would otherwise read the item again; this one has it at hand.
    await this.enter("settleUpload");
    const r = this.uploads.get(uploadId);
    if (!r) return false;
    if (r.status !== "running" || r.runKey !== runKey) return matchesSettlement(r, runKey, settlement, now);
    this.uploads.set(uploadId, settledRecord(r, settlement, now));
    return true;
  }

  async failPendingUpload(uploadId: string, runKey: string | null, error: string, now: string) {
    await this.enter("failPendingUpload");
    const r = this.uploads.get(uploadId);
    if (!r) return false;
    if (r.status !== "pending") return matchesFailedPending(r, runKey, error, now);
    this.uploads.set(uploadId, failedPendingRecord(r, runKey, error, now));
    return true;
  }

  async listRunning(limit: number, exceptRunKey: string | null) {
    await this.enter("listRunning");
    return sortedBy(
      [...this.uploads.values()].filter((u) => u.status === "running" && u.runKey !== exceptRunKey),
      runningOrder,
    ).slice(0, limit);
  }

  async requeueUpload(uploadId: string, now: string) {
    await this.enter("requeueUpload");
    const r = this.uploads.get(uploadId);
    if (!r) return false;
    if (r.status !== "failed") return matchesRequeued(r, now);
    this.uploads.set(uploadId, {
      ...r,
      status: "pending",
      attempts: 0,
      retryGroupSize: null,
      runKey: null,
      updatedAt: now,
    });
    return true;
  }

  async listUploads() {
    await this.enter("listUploads");
    return [...this.uploads.values()];
  }

  async uploadsOfKey(bucket: string, key: string) {
    await this.enter("uploadsOfKey");
    const ids = this.idsOfKey.get(`${bucket}/${key}`) ?? [];
    return ids.map((id) => this.uploads.get(id)).filter((u): u is UploadRecord => u !== undefined);
  }

  async createRun(run: RunRecord) {
    await this.enter("createRun");
    const existing = this.runs.get(run.runKey);
    if (existing && sameRun(existing, run)) return;
    if (existing) throw new Error(`run ${run.runKey} exists`);
    this.runs.set(run.runKey, run);
  }

  async getRun(runKey: string) {
    await this.enter("getRun");
    return this.runs.get(runKey) ?? null;
  }

  async updateRun(runKey: string, from: readonly RunState[], patch: Partial<Omit<RunRecord, "runKey">>) {
    await this.enter("updateRun");
    const r = this.runs.get(runKey);
    if (!r) return false;
    if (!from.includes(r.state)) return matchesPatch(r, patch);
    this.runs.set(runKey, { ...r, ...patch });
    return true;
  }

  async fillRunGlue(runKey: string, glue: GlueUsage) {
    await this.enter("fillRunGlue");
    const r = this.runs.get(runKey);
    if (!r) return false;
    if (RUN_ACTIVE_STATES.includes(r.state) || r.glue !== null) return matchesFilledGlue(r, glue);
    this.runs.set(runKey, { ...r, glue });
    return true;
  }

  async linkGlueRun(glueRunId: string, runKey: string) {
    await this.enter("linkGlueRun");
    this.glueRuns.set(glueRunId, runKey);
  }

  async runKeyOfGlueRun(glueRunId: string) {
    await this.enter("runKeyOfGlueRun");
    return this.glueRuns.get(glueRunId) ?? null;
  }

  async listRuns(limit: number) {
    await this.enter("listRuns");
    return [...this.runs.values()].sort((a, b) => b.runKey.localeCompare(a.runKey)).slice(0, limit);
  }

  async takeSlot(runKey: string, now: string) {
    await this.enter("takeSlot");
    if (this.slot.holder !== null) return this.slot.holder === runKey;
    this.slot = { holder: runKey, takenAt: now, wakeup: false, launched: false, launchedAt: null };
    return true;
  }

  async markLaunched(runKey: string, now: string) {
    await this.enter("markLaunched");
    if (this.slot.holder !== runKey) return false;
    if (!this.slot.launched) this.slot = { ...this.slot, launched: true, launchedAt: now };
    return true;
  }

  async releaseSlot(runKey: string, options: { readonly unlessLaunched?: boolean } = {}) {
    await this.enter("releaseSlot");
    if (this.slot.holder !== runKey) {
      return this.lastRelease?.runKey === runKey
        ? { released: true, wakeup: this.lastRelease.wakeup }
        : { released: false, wakeup: false };
    }
    if (options.unlessLaunched && this.slot.launched) return { released: false, wakeup: false };
    const { wakeup } = this.slot;
    this.slot = FREE_SLOT;
    this.lastRelease = { runKey, wakeup };
    return { released: true, wakeup };
  }

  async requestWakeup() {
    await this.enter("requestWakeup");
    if (this.slot.holder === null) return null;
    this.slot = { ...this.slot, wakeup: true };
    return this.slot;
  }

  async getSlot() {
    await this.enter("getSlot");
    return this.slot;
  }

  async getHealth() {
    await this.enter("getHealth");
    return this.health;
  }

  async recordRunHealth(runKey: string, outcome: "system-failure" | "healthy", now: string) {
    await this.enter("recordRunHealth");
    this.health = nextHealth(this.health, runKey, outcome, now);
    return this.health;
  }

  // The reconciler's saved listing position (not part of LedgerStore: only the reconciler uses it).
  reconcilerPosition: ReconcilerPosition | null = null;

  async getReconcilerPosition() {
    await tick();
    return this.reconcilerPosition;
  }

  async saveReconcilerPosition(position: ReconcilerPosition) {
    await tick();
    this.reconcilerPosition = position;
  }
}

/** `items` in the byte order of `key` (DynamoDB's sort-key order), each key computed once. */
export function sortedBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  return items
    .map((item) => ({ item, k: key(item) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map(({ item }) => item);
}

/** A short, fixed-length stand-in for an upload id in index sort keys (an S3 key alone can fill DynamoDB's 1 KB). */
export function indexIdOf(uploadId: string): string {
  let id = indexIds.get(uploadId);
  if (id === undefined) {
    id = createHash("sha256").update(uploadId).digest("hex").slice(0, 32);
    if (indexIds.size >= INDEX_ID_CACHE) indexIds.clear();
    indexIds.set(uploadId, id);
  }
  return id;
}

/** Hashes already computed (the in-memory ledger and the run start sort the same pending uploads again and again). */
const indexIds = new Map<string, string>();
const INDEX_ID_CACHE = 100_000;

/** Sort key of the pending index: first receipt time, then a hash of the id (stable, and at most 57 bytes). */
export function pendingOrder(u: Pick<UploadRecord, "receivedAt" | "uploadId">): string {
  return `${u.receivedAt}#${indexIdOf(u.uploadId)}`;
}

/** Sort key of running uploads in the same index: their run first (run keys sort by time), then the id's hash. */
export function runningOrder(u: Pick<UploadRecord, "runKey" | "uploadId">): string {
  return `${u.runKey ?? ""}#${indexIdOf(u.uploadId)}`;
}
