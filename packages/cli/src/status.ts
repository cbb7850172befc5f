/** `ingest status` and `ingest wait`: what the ledger and the queues say, as tables or JSON. */
import { ListObjectVersionsCommand } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import {
  type GlueUsage,
  glueRunCost,
  INPUT_PREFIX,
  isInputKey,
  normalizeEtag,
  normalizeVersionId,
  PRICES,
  type RunRecord,
  type SlotRecord,
  type UploadRecord,
} from "@ingest/core";
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
    { header: "WORKERS", value: (r) => workers(r.glue ?? null) },
    { header: "GLUE $", value: (r) => dollars(r.glue ? (glueRunCost(r.glue)?.dollars ?? null) : null), align: "right" },
    { header: "ERROR", value: (r) => (r.error ?? "").slice(0, 80) },
  ]);
}

/** "6 × G.1X" (", flex" for the Flex class), as Glue reported the run; "-" when it did not. */
export function workers(u: GlueUsage | null): string {
  if (!u || u.numberOfWorkers == null || u.workerType == null) return "-";
  return `${u.numberOfWorkers} × ${u.workerType}${u.executionClass === "FLEX" ? ", flex" : ""}`;
}

/** Dollars for the tables: four decimals below $1 (a one-minute G.1X × 2 run is $0.0147), two above; "-" for none. */
export function dollars(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return "-";
  return v < 1 ? `$${v.toFixed(4)}` : `$${v.toFixed(2)}`;
}

/** Runs that ran on Glue and have ended: the ones a cost is owed for (not starting/running, never-started ones). */
const ENDED_ON_GLUE: ReadonlySet<string> = new Set(["succeeded", "failed", "timeout", "stopped"]);

/**
 * The Glue line under the runs table: the ended runs' total at list price and per 1,000 files they processed, with
 * the price table's region and date, and how many ended runs it could not price (and why); null when it priced none.
 */
export function glueCostLine(runs: readonly RunRecord[]): string | null {
  let total = 0;
  let priced = 0;
  let files = 0;
  let noFigures = 0;
  let noPrice = 0;
  for (const r of runs) {
    if (!ENDED_ON_GLUE.has(r.state)) continue;
    const cost = r.glue ? glueRunCost(r.glue) : null;
    if (!r.glue) noFigures++;
    else if (!cost) noPrice++;
    if (!cost) continue;
    total += cost.dollars;
    priced++;
    files += r.filesProcessed ?? 0;
  }
  if (priced === 0) return null;
  const perThousand = files > 0 ? `, ${dollars((total / files) * 1000)} per 1,000 files processed` : "";
  const left = [
    ...(noFigures > 0 ? [`${noFigures} without Glue's figures`] : []),
    ...(noPrice > 0 ? [`${noPrice} with no price recorded for their worker type`] : []),
  ];
  return (
    `Glue at list price (${PRICES.region}, prices of ${PRICES.asOf}): ${dollars(total)} for ${priced} ended run(s)${perThousand}` +
    (left.length > 0 ? ` · not counted: ${left.join(", ")}` : "")
  );
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
  const costLine = glueCostLine(runs);
  const lines = [
    printable(
      `${target.kind === "twin" ? "local twin" : `stage ${target.stage}`} · s3://${target.bucket}/ · ${busyReason(s) ?? "idle"}`,
    ),
    `files: ${c.processed} processed, ${c.failed} failed, ${c.running} running, ${c.pending} pending · DLQ: ${s.dlq.ingest} ingest, ${s.dlq.recorder} recorder`,
    "",
    `Runs (${runs.length})`,
    runs.length ? runsTable(runs) : "  none",
    ...(costLine ? [costLine] : []),
    "",
    `Files (${uploads.length})`,
    uploads.length ? filesTable(uploads) : "  none",
  ];
  return lines.join("\n");
}

/** A current object version under input/ that the pipeline owes a terminal ledger record. */
export interface CurrentInput {
  readonly key: string;
  /** null when the bucket is not versioned. */
  readonly versionId: string | null;
  readonly etag: string;
}

/**
 * What S3 holds under input/ now: each input key's current version (ListObjectVersions: a versioned bucket's
 * latest version, an unversioned bucket's only one with version "null"; a key whose latest entry is a delete marker
 * is owed nothing). Read from S3, not from events: an S3 event may reach the queue seconds or minutes after the PUT.
 */
export async function currentInputs(target: Pick<Target, "s3" | "bucket">): Promise<CurrentInput[]> {
  const out: CurrentInput[] = [];
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  for (;;) {
    const page = await target.s3.send(
      new ListObjectVersionsCommand({
        Bucket: target.bucket,
        Prefix: INPUT_PREFIX,
        ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
        ...(versionIdMarker !== undefined ? { VersionIdMarker: versionIdMarker } : {}),
      }),
    );
    for (const v of page.Versions ?? []) {
      if (!v.IsLatest || !v.Key || !isInputKey(v.Key)) continue;
      out.push({ key: v.Key, versionId: normalizeVersionId(v.VersionId), etag: normalizeEtag(v.ETag ?? "") });
    }
    if (!page.IsTruncated) return out;
    keyMarker = page.NextKeyMarker;
    versionIdMarker = page.NextVersionIdMarker;
  }
}

/** The current versions without a processed/failed ledger record (matched by version id, else by ETag). */
export function unsettledInputs(current: readonly CurrentInput[], uploads: readonly UploadRecord[]): CurrentInput[] {
  const settled = new Set<string>();
  for (const u of uploads) {
    if (u.status !== "processed" && u.status !== "failed") continue;
    settled.add(u.versionId ? `${u.key}\0v\0${u.versionId}` : `${u.key}\0e\0${normalizeEtag(u.etag)}`);
  }
  return current.filter((c) => !settled.has(c.versionId ? `${c.key}\0v\0${c.versionId}` : `${c.key}\0e\0${c.etag}`));
}

export interface WaitOptions {
  readonly timeoutSeconds: number;
  readonly progress: boolean;
  /** Keys that must each have a settled upload before the wait can end (what `demo` just uploaded). */
  readonly keys?: readonly string[];
  readonly pollMs?: number;
}

/**
 * Waits until every current object version under input/ in S3 has a processed/failed record in the ledger and nothing
 * is queued, pending or running (seen twice in a row), or throws WaitTimeoutError naming what is still missing.
 * "Idle" alone is not enough: on AWS an upload's S3 event can reach the queue seconds (sometimes a minute) after the
 * PUT, so queue and ledger can look idle before the pipeline has heard of it. The ledger reads are consistent (the
 * uploads Query and the slot Get on the table; a GSI could not be read consistently, so none is used here).
 */
export async function waitUntilIdle(target: Target, opts: WaitOptions): Promise<Snapshot> {
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  const progress = new Progress("waiting", 0, opts.progress);
  const started = Date.now();
  let quietOnce = false;
  try {
    for (;;) {
      const s = await snapshot(target);
      let reason = busyReason(s);
      if (!reason) {
        const unsettled = unsettledInputs(await currentInputs(target), s.uploads);
        if (unsettled.length > 0) {
          const first = unsettled
            .slice(0, 3)
            .map((u) => printable(`${u.key}${u.versionId ? ` (version ${u.versionId})` : ""}`))
            .join(", ");
          reason = `${unsettled.length} upload(s) in s3://${target.bucket}/${INPUT_PREFIX} not processed or failed in the ledger yet: ${first}${unsettled.length > 3 ? ", …" : ""}`;
        }
      }
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
