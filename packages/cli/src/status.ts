/** `ingest status` and `ingest wait`: what the ledger and the queues say, as tables or JSON. */
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { INPUT_PREFIX, type RunRecord, type SlotRecord, type UploadRecord } from "@ingest/core";
import { WaitTimeoutError } from "./errors.js";
import { between, duration, num, Progress, printable, table } from "./output.js";
import type { Target } from "./target.js";

export interface QueueDepth {
  readonly waiting: number;
  readonly inFlight: number;
}

export interface Snapshot {
  readonly at: string;
  readonly slot: SlotRecord;
  readonly runs: RunRecord[];
  readonly uploads: UploadRecord[];
  readonly ingestQueue: QueueDepth;
  readonly dlq: { readonly ingest: number; readonly recorder: number };
}

async function depth(target: Target, url: string): Promise<QueueDepth> {
  const { Attributes: a } = await target.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  return {
    waiting: Number(a?.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(a?.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}

export async function snapshot(target: Target, runLimit = 1000): Promise<Snapshot> {
  const [slot, runs, uploads, ingestQueue, ingestDlq, recorderDlq] = await Promise.all([
    target.ledger.getSlot(),
    target.ledger.listRuns(runLimit),
    target.ledger.listUploads(),
    depth(target, target.ingestQueueUrl),
    depth(target, target.ingestDlqUrl),
    depth(target, target.recorderDlqUrl),
  ]);
  return {
    at: new Date().toISOString(),
    slot,
    runs,
    uploads,
    ingestQueue,
    dlq: { ingest: ingestDlq.waiting + ingestDlq.inFlight, recorder: recorderDlq.waiting + recorderDlq.inFlight },
  };
}

export interface StatusFilter {
  /** A key (input/a.csv) or a name under input/ (a.csv). */
  readonly file?: string | undefined;
  readonly run?: string | undefined;
}

export function filterSnapshot(s: Snapshot, f: StatusFilter): Snapshot {
  let { runs, uploads } = s;
  if (f.file) {
    const keys = new Set([f.file, `${INPUT_PREFIX}${f.file.replace(/^\/+/, "")}`]);
    uploads = uploads.filter((u) => keys.has(u.key));
    const runKeys = new Set(uploads.map((u) => u.runKey));
    runs = runs.filter((r) => runKeys.has(r.runKey));
  }
  if (f.run) {
    runs = runs.filter((r) => r.runKey === f.run || r.glueRunId === f.run);
    const runKeys = new Set(runs.map((r) => r.runKey));
    uploads = uploads.filter((u) => u.runKey !== null && runKeys.has(u.runKey));
  }
  return { ...s, runs, uploads };
}

export interface Counts {
  readonly pending: number;
  readonly running: number;
  readonly processed: number;
  readonly failed: number;
}

export function counts(uploads: readonly UploadRecord[]): Counts {
  const c = { pending: 0, running: 0, processed: 0, failed: 0 };
  for (const u of uploads) c[u.status]++;
  return c;
}

/** Busy = something is still to happen: messages in the ingest queue, a held run slot, uploads not settled. */
export function busyReason(s: Snapshot): string | null {
  const c = counts(s.uploads);
  const parts: string[] = [];
  const queued = s.ingestQueue.waiting + s.ingestQueue.inFlight;
  if (queued > 0) parts.push(`${queued} event(s) queued`);
  if (s.slot.holder) parts.push(`run ${s.slot.holder} active`);
  if (c.pending > 0) parts.push(`${c.pending} pending`);
  if (c.running > 0) parts.push(`${c.running} running`);
  return parts.length ? parts.join(", ") : null;
}

export function runsTable(runs: readonly RunRecord[]): string {
  return table(runs, [
    { header: "RUN", value: (r) => r.runKey },
    { header: "STATE", value: (r) => r.state },
    { header: "FILES", value: (r) => String(r.fileCount), align: "right" },
    { header: "OK", value: (r) => num(r.filesProcessed), align: "right" },
    { header: "FAILED", value: (r) => num(r.filesFailed), align: "right" },
    { header: "ROWS", value: (r) => num(r.rowsProcessed), align: "right" },
    { header: "REJECTED", value: (r) => num(r.rowsRejected), align: "right" },
    { header: "DURATION", value: (r) => duration(between(r.startedAt ?? r.createdAt, r.endedAt)), align: "right" },
    { header: "ERROR", value: (r) => (r.error ?? "").slice(0, 80) },
  ]);
}

export function filesTable(uploads: readonly UploadRecord[]): string {
  return table(uploads, [
    { header: "FILE", value: (u) => u.key },
    { header: "STATE", value: (u) => u.status },
    { header: "ROWS", value: (u) => num(u.rowsProcessed), align: "right" },
    { header: "REJECTED", value: (u) => num(u.rowsRejected), align: "right" },
    { header: "RUNS", value: (u) => String(u.runs), align: "right" },
    { header: "RUN", value: (u) => u.runKey ?? "-" },
    { header: "OUTPUT / ERROR", value: (u) => u.output ?? (u.error ? `error: ${u.error.slice(0, 100)}` : "-") },
  ]);
}

export function renderStatus(s: Snapshot, target: { kind: string; stage: string; bucket: string }): string {
  const c = counts(s.uploads);
  const runs = [...s.runs].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const uploads = [...s.uploads].sort((a, b) => a.key.localeCompare(b.key) || a.versionTag.localeCompare(b.versionTag));
  const lines = [
    printable(
      `${target.kind === "twin" ? "local twin" : `stage ${target.stage}`} · s3://${target.bucket}/ · ${busyReason(s) ?? "idle"}`,
    ),
    `files: ${c.processed} processed, ${c.failed} failed, ${c.running} running, ${c.pending} pending · DLQ: ${s.dlq.ingest} ingest, ${s.dlq.recorder} recorder`,
    "",
    `Runs (${runs.length})`,
    runs.length ? runsTable(runs) : "  none",
    "",
    `Files (${uploads.length})`,
    uploads.length ? filesTable(uploads) : "  none",
  ];
  return lines.join("\n");
}

export interface WaitOptions {
  readonly timeoutSeconds: number;
  readonly progress: boolean;
  /** Keys that must each have a settled upload before the wait can end (what `demo` just uploaded). */
  readonly keys?: readonly string[];
  readonly pollMs?: number;
}

/** Waits until nothing is queued, pending or running (seen twice in a row), or throws WaitTimeoutError. */
export async function waitUntilIdle(target: Target, opts: WaitOptions): Promise<Snapshot> {
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  const progress = new Progress("waiting", 0, opts.progress);
  const started = Date.now();
  let quietOnce = false;
  try {
    for (;;) {
      const s = await snapshot(target);
      let reason = busyReason(s);
      if (!reason && opts.keys) {
        const settled = new Set(
          s.uploads.filter((u) => u.status === "processed" || u.status === "failed").map((u) => u.key),
        );
        const missing = opts.keys.filter((k) => !settled.has(k)).length;
        if (missing > 0) reason = `${missing} upload(s) not in the ledger yet`;
      }
      if (!reason) {
        if (quietOnce) return s;
        quietOnce = true;
      } else {
        quietOnce = false;
      }
      const c = counts(s.uploads);
      progress.status(
        `${Math.round((Date.now() - started) / 1000)}s · ${c.processed} processed, ${c.failed} failed · ${reason ?? "settling"}`,
      );
      if (Date.now() > deadline) throw new WaitTimeoutError(opts.timeoutSeconds, reason ?? "settling");
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
    }
  } finally {
    progress.done();
  }
}
