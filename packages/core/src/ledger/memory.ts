/**
 * An in-memory ledger with the same conditional semantics as the DynamoDB one (the shared contract suite in
 * tests/ runs against both). Every method is async and yields once, so interleavings like two consumers racing for
 * the run slot happen in tests as they do against DynamoDB.
 */
import type { Upload } from "../upload/identity.js";
import type { LedgerStore, ReconcilerPosition, ReconcilerPositionStore, Settlement } from "./ports.js";
import type { RunRecord, RunState, SlotRecord, UploadRecord } from "./types.js";

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
    output: null,
    rejectedOutput: null,
    rowsRead: null,
    rowsProcessed: null,
    rowsRejected: null,
    error: failure ?? null,
  };
}

/** The record an upload has after a settlement (shared with DynamoLedger so both store the same fields). */
export function settledRecord(r: UploadRecord, s: Settlement, now: string): UploadRecord {
  switch (s.status) {
    case "processed":
      return {
        ...r,
        status: "processed",
        updatedAt: now,
        output: s.output,
        rejectedOutput: s.rejectedOutput,
        rowsRead: s.rowsRead,
        rowsProcessed: s.rowsProcessed,
        rowsRejected: s.rowsRejected,
        error: null,
      };
    case "failed":
      return { ...r, status: "failed", updatedAt: now, error: s.error, attempts: s.attempts };
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

export class MemoryLedger implements LedgerStore, ReconcilerPositionStore {
  readonly uploads = new Map<string, UploadRecord>();
  readonly runs = new Map<string, RunRecord>();
  readonly glueRuns = new Map<string, string>();
  slot: SlotRecord = { holder: null, takenAt: null, wakeup: false };
  /** Fault injection for tests: the next call of the named method throws this error. */
  failNext: { method: keyof LedgerStore; error: Error } | null = null;

  private async enter(method: keyof LedgerStore): Promise<void> {
    await tick();
    if (this.failNext?.method === method) {
      const { error } = this.failNext;
      this.failNext = null;
      throw error;
    }
  }

  async recordUpload(upload: Upload, now: string, failure?: string) {
    await this.enter("recordUpload");
    const existing = this.uploads.get(upload.uploadId);
    if (existing) return { created: false, record: existing };
    const record = newUploadRecord(upload, now, failure);
    this.uploads.set(upload.uploadId, record);
    return { created: true, record };
  }

  async getUpload(uploadId: string) {
    await this.enter("getUpload");
    return this.uploads.get(uploadId) ?? null;
  }

  async listPending(limit: number) {
    await this.enter("listPending");
    return [...this.uploads.values()]
      .filter((u) => u.status === "pending")
      .sort((a, b) => pendingOrder(a).localeCompare(pendingOrder(b)))
      .slice(0, limit);
  }

  async claimUpload(uploadId: string, runKey: string, now: string) {
    await this.enter("claimUpload");
    const r = this.uploads.get(uploadId);
    if (r?.status !== "pending") return false;
    this.uploads.set(uploadId, { ...r, status: "running", runKey, runs: r.runs + 1, updatedAt: now });
    return true;
  }

  async settleUpload(uploadId: string, runKey: string, settlement: Settlement, now: string) {
    await this.enter("settleUpload");
    const r = this.uploads.get(uploadId);
    if (r?.status !== "running" || r.runKey !== runKey) return false;
    this.uploads.set(uploadId, settledRecord(r, settlement, now));
    return true;
  }

  async failPendingUpload(uploadId: string, runKey: string | null, error: string, now: string) {
    await this.enter("failPendingUpload");
    const r = this.uploads.get(uploadId);
    if (r?.status !== "pending") return false;
    this.uploads.set(uploadId, failedPendingRecord(r, runKey, error, now));
    return true;
  }

  async listRunning(limit: number, exceptRunKey: string | null) {
    await this.enter("listRunning");
    return [...this.uploads.values()]
      .filter((u) => u.status === "running" && u.runKey !== exceptRunKey)
      .sort((a, b) => (runningOrder(a) < runningOrder(b) ? -1 : runningOrder(a) > runningOrder(b) ? 1 : 0))
      .slice(0, limit);
  }

  async requeueUpload(uploadId: string, now: string) {
    await this.enter("requeueUpload");
    const r = this.uploads.get(uploadId);
    if (r?.status !== "failed") return false;
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
    return [...this.uploads.values()].filter((u) => u.bucket === bucket && u.key === key);
  }

  async createRun(run: RunRecord) {
    await this.enter("createRun");
    if (this.runs.has(run.runKey)) throw new Error(`run ${run.runKey} exists`);
    this.runs.set(run.runKey, run);
  }

  async getRun(runKey: string) {
    await this.enter("getRun");
    return this.runs.get(runKey) ?? null;
  }

  async updateRun(runKey: string, from: readonly RunState[], patch: Partial<Omit<RunRecord, "runKey">>) {
    await this.enter("updateRun");
    const r = this.runs.get(runKey);
    if (!r || !from.includes(r.state)) return false;
    this.runs.set(runKey, { ...r, ...patch });
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
    if (this.slot.holder !== null) return false;
    this.slot = { holder: runKey, takenAt: now, wakeup: false };
    return true;
  }

  async releaseSlot(runKey: string) {
    await this.enter("releaseSlot");
    if (this.slot.holder !== runKey) return { released: false, wakeup: false };
    const { wakeup } = this.slot;
    this.slot = { holder: null, takenAt: null, wakeup: false };
    return { released: true, wakeup };
  }

  async requestWakeup() {
    await this.enter("requestWakeup");
    if (this.slot.holder === null) return false;
    this.slot = { ...this.slot, wakeup: true };
    return true;
  }

  async getSlot() {
    await this.enter("getSlot");
    return this.slot;
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

/** Sort key of the pending index: first receipt time, then id (stable). */
export function pendingOrder(u: Pick<UploadRecord, "receivedAt" | "uploadId">): string {
  return `${u.receivedAt}#${u.uploadId}`;
}

/** Sort key of running uploads in the same index: their run first (run keys sort by time), then id. */
export function runningOrder(u: Pick<UploadRecord, "runKey" | "uploadId">): string {
  return `${u.runKey ?? ""}#${u.uploadId}`;
}
