/**
 * The soak's checker (Jepsen's "checker"): reads a final state gathered independently of the pipeline's status code
 * (the emulator's object versions, the ledger table's raw items, the local Glue service's own run log, the output
 * and stats objects) and the client's history, and reports every violated invariant with the history that led to
 * it. Pure: `tests/unit/soak-check.test.ts` feeds it hand-made states that break each invariant.
 *
 *   (a) every key's current version is processed exactly once by a succeeded run, or failed with a reason naming
 *       the file's own problem;
 *   (b) nothing pending or running after quiescence (and quiescence was reached in time);
 *   (c) never two Glue runs active at once (from the Glue service's log of start and end times);
 *   (d) each output's row count equals its stats, and read = processed + rejected + duplicates;
 *   (e) no output of a superseded version under the current name: every output folder holds only the rows of the
 *       version its name says.
 */

import { createHash } from "node:crypto";
import { uploadOutputName } from "@ingest/core";
import type { OpResult } from "./execute.js";
import {
  expectedCounts,
  FILE_PROBLEM,
  fileBody,
  isProcessedKind,
  MULTIPART_PART_BYTES,
  type PutOp,
} from "./workload.js";

export type Invariant = "a" | "b" | "c" | "d" | "e";

export interface Violation {
  readonly invariant: Invariant;
  /** What it is about: a key, a run, an output folder. */
  readonly subject: string;
  readonly message: string;
  /** The operations and states that led to it, oldest first. */
  readonly history: readonly string[];
}

/** One entry of ListObjectVersions (an object version or a delete marker). */
export interface S3VersionEntry {
  readonly key: string;
  /** null: the bucket is not versioned ("null"). */
  readonly versionId: string | null;
  /** Without quotes; null for a delete marker. */
  readonly etag: string | null;
  readonly lastModified: string;
  readonly isLatest: boolean;
  readonly deleteMarker: boolean;
  readonly size: number;
}

/** One run as the Glue service logged it (the service's own record, not the ledger's). */
export interface GlueRunEntry {
  readonly id: string;
  /** The run's `--run_key` argument. */
  readonly runKey: string | null;
  readonly state: string;
  /** epoch ms */
  readonly startedOn: number;
  readonly completedOn: number | null;
  readonly error: string | null;
}

/** What is under one output folder. */
export interface OutputFolder {
  /** `processed/<name>/v=<tag>/` or `processed/rejected/<name>/v=<tag>/` */
  readonly prefix: string;
  readonly rows: number;
  /** Distinct upload markers found in the rows (processed folders only). */
  readonly markers: readonly number[];
  /** Rows with no marker (processed folders only). */
  readonly unmarked: number;
  readonly success: boolean;
}

export type LedgerItem = Readonly<Record<string, unknown>>;

export interface SoakState {
  readonly bucket: string;
  readonly history: readonly OpResult[];
  readonly objects: readonly S3VersionEntry[];
  /** Every item of the ledger table, unmarshalled, from a consistent Scan. */
  readonly ledger: readonly LedgerItem[];
  readonly glueRuns: readonly GlueRunEntry[];
  readonly outputs: readonly OutputFolder[];
  readonly rejected: readonly OutputFolder[];
  /** Every stats document under processed/stats/, parsed JSON. */
  readonly stats: readonly unknown[];
  readonly quiescence: { readonly reached: boolean; readonly waitedMs: number; readonly notQuiet: readonly string[] };
}

// ---------------------------------------------------------------------------------------------------------------
// Independent derivations (the checker does not use the pipeline's code for these)

/** S3's ETag of what a put sent: MD5 of the body, or for a multipart upload MD5 of the parts' MD5s + "-parts". */
export function contentEtag(op: PutOp): string {
  const body = fileBody(op.file);
  if (!op.multipart) return createHash("md5").update(body).digest("hex");
  const parts = [body.subarray(0, MULTIPART_PART_BYTES), body.subarray(MULTIPART_PART_BYTES)];
  const joined = Buffer.concat(parts.map((p) => createHash("md5").update(p).digest()));
  return `${createHash("md5").update(joined).digest("hex")}-${parts.length}`;
}

/** The version part of an output folder's name: last-modified (to the second) + version id, or etag unversioned. */
export function versionTag(v: { lastModified: string; versionId: string | null; etag: string | null }): string {
  const t = new Date(v.lastModified)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  return `${t}-${v.versionId ?? v.etag ?? "?"}`;
}

/**
 * `input/a/b.csv` → `a/b`: an upload's folder name under processed/, by the documented (and property-tested)
 * encoding of untrusted keys, `uploadOutputName` (segments percent-encoded, names over 512 bytes hashed). The
 * version part of the folder is still derived here, from S3's own answers.
 */
export function outputName(key: string): string {
  const folder = uploadOutputName({ key, versionTag: "x" });
  return folder.slice(0, -"/v=x".length);
}

const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
const num = (v: unknown): number | null => (typeof v === "number" ? v : null);

interface UploadItem {
  readonly uploadId: string;
  readonly key: string;
  readonly versionId: string | null;
  readonly etag: string | null;
  readonly versionTag: string | null;
  readonly status: string;
  readonly runKey: string | null;
  readonly error: string | null;
  readonly output: string | null;
  readonly rejectedOutput: string | null;
  readonly rowsRead: number | null;
  readonly rowsProcessed: number | null;
  readonly rowsRejected: number | null;
  readonly attempts: number | null;
  readonly runs: number | null;
  readonly updatedAt: string | null;
}

function uploadItems(ledger: readonly LedgerItem[]): UploadItem[] {
  return ledger
    .filter((i) => i.type === "upload" || str(i.pk)?.startsWith("UPLOAD#"))
    .map((i) => ({
      uploadId: str(i.uploadId) ?? `${String(i.pk)}@${String(i.sk)}`,
      key: str(i.key) ?? "",
      versionId: str(i.versionId),
      etag: str(i.etag),
      versionTag: str(i.versionTag) ?? str(i.sk),
      status: str(i.status) ?? "?",
      runKey: str(i.runKey),
      error: str(i.error),
      output: str(i.output),
      rejectedOutput: str(i.rejectedOutput),
      rowsRead: num(i.rowsRead),
      rowsProcessed: num(i.rowsProcessed),
      rowsRejected: num(i.rowsRejected),
      attempts: num(i.attempts),
      runs: num(i.runs),
      updatedAt: str(i.updatedAt),
    }));
}

interface FileStatsEntry {
  readonly uploadId: string;
  readonly key: string;
  readonly status: string;
  readonly error: string | null;
  readonly rowsRead: number;
  readonly rowsProcessed: number;
  readonly rowsRejected: number;
  readonly duplicatesRemoved: number;
  readonly output: string | null;
  readonly rejectedOutput: string | null;
}

function statsFiles(doc: unknown): { runKey: string; files: FileStatsEntry[] } | null {
  const d = doc as { runKey?: unknown; files?: unknown } | null;
  if (!d || typeof d.runKey !== "string" || !Array.isArray(d.files)) return null;
  const files = (d.files as Record<string, unknown>[]).map((f) => ({
    uploadId: str(f.uploadId) ?? "?",
    key: str(f.key) ?? "?",
    status: str(f.status) ?? "?",
    error: str(f.error),
    rowsRead: num(f.rowsRead) ?? Number.NaN,
    rowsProcessed: num(f.rowsProcessed) ?? Number.NaN,
    rowsRejected: num(f.rowsRejected) ?? Number.NaN,
    duplicatesRemoved: num(f.duplicatesRemoved) ?? Number.NaN,
    output: str(f.output),
    rejectedOutput: str(f.rejectedOutput),
  }));
  return { runKey: d.runKey, files };
}

const iso = (ms: number | null) => (ms === null ? "—" : new Date(ms).toISOString().slice(11, 23));

// ---------------------------------------------------------------------------------------------------------------

export function check(state: SoakState): Violation[] {
  const violations: Violation[] = [];
  const uploads = uploadItems(state.ledger);
  const runItems = state.ledger.filter((i) => i.type === "run" || i.pk === "RUN");
  const slot = state.ledger.find((i) => i.pk === "SLOT");
  const t0 = Math.min(...state.history.map((h) => h.startedAt), Number.POSITIVE_INFINITY);
  const rel = (ms: number) => `+${((ms - t0) / 1000).toFixed(1)}s`;

  // Which put made which S3 version: by the version id S3 answered, else by the content's ETag.
  const puts = state.history.filter((h): h is OpResult & { op: PutOp } => h.op.kind === "put");
  const opByVersion = new Map<string, OpResult & { op: PutOp }>();
  const opByEtag = new Map<string, OpResult & { op: PutOp }>();
  for (const h of puts) {
    if (h.versionId) opByVersion.set(`${h.op.key}\n${h.versionId}`, h);
    opByEtag.set(`${h.op.key}\n${h.etag ?? contentEtag(h.op)}`, h);
  }
  const opOf = (key: string, versionId: string | null, etag: string | null) =>
    (versionId ? opByVersion.get(`${key}\n${versionId}`) : undefined) ??
    (etag ? opByEtag.get(`${key}\n${etag}`) : undefined);

  const glueByRunKey = new Map<string, GlueRunEntry[]>();
  for (const g of state.glueRuns) {
    if (g.runKey) glueByRunKey.set(g.runKey, [...(glueByRunKey.get(g.runKey) ?? []), g]);
  }
  const stats = state.stats.map(statsFiles).filter((s): s is NonNullable<typeof s> => s !== null);
  const statsByRunKey = new Map(stats.map((s) => [s.runKey, s]));

  /** Succeeded Glue runs whose stats say this upload was processed (each Glue run counts, even with one run key). */
  const processedBy = (uploadId: string): GlueRunEntry[] =>
    stats.flatMap((s) =>
      s.files.some((f) => f.uploadId === uploadId && f.status === "processed")
        ? (glueByRunKey.get(s.runKey) ?? []).filter((g) => g.state === "SUCCEEDED")
        : [],
    );

  const historyOf = (key: string): string[] => {
    const lines: string[] = [];
    for (const h of state.history.filter((x) => x.op.key === key)) {
      const what =
        h.op.kind === "put"
          ? `put #${h.op.n} (${h.op.group}, ${h.op.file.kind}${h.op.multipart ? ", multipart" : ""}, marker ${h.op.file.marker})`
          : `delete #${h.op.n} (${h.op.group})`;
      const answer = h.error
        ? `client error ${h.error}`
        : `version ${h.versionId ?? "null"}${h.op.kind === "put" ? ` etag ${h.etag ?? contentEtag(h.op)}` : ""}`;
      lines.push(`${rel(h.startedAt)}..${rel(h.endedAt)} ${what} → ${answer}`);
    }
    for (const v of state.objects.filter((o) => o.key === key)) {
      lines.push(
        `S3: ${v.deleteMarker ? "delete marker" : "version"} ${v.versionId ?? "null"}${v.etag ? ` etag ${v.etag}` : ""} ${v.lastModified}${v.isLatest ? " (current)" : ""}`,
      );
    }
    const runKeys = new Set<string>();
    for (const u of uploads.filter((x) => x.key === key)) {
      lines.push(
        `ledger: upload ${u.versionTag} ${u.status} run ${u.runKey ?? "—"} runs=${u.runs ?? "?"} attempts=${u.attempts ?? "?"}${u.error ? ` error: ${u.error}` : ""}${u.output ? ` output ${u.output}` : ""}`,
      );
      if (u.runKey) runKeys.add(u.runKey);
    }
    for (const s of stats) {
      for (const f of s.files.filter((x) => x.key === key)) {
        runKeys.add(s.runKey);
        lines.push(
          `stats ${s.runKey}: ${f.uploadId.split("@").at(-1)} ${f.status} read ${f.rowsRead} processed ${f.rowsProcessed} rejected ${f.rowsRejected} duplicates ${f.duplicatesRemoved}${f.error ? ` error: ${f.error}` : ""}`,
        );
      }
    }
    for (const rk of runKeys) lines.push(...runHistory(rk));
    return lines;
  };
  const runHistory = (runKey: string): string[] => {
    const lines: string[] = [];
    const item = runItems.find((r) => r.runKey === runKey || r.sk === runKey);
    if (item) {
      lines.push(
        `ledger: run ${runKey} ${String(item.state)} glue ${String(item.glueRunId ?? "—")} files ${String(item.fileCount ?? "?")}${item.error ? ` error: ${String(item.error)}` : ""}`,
      );
    }
    for (const g of glueByRunKey.get(runKey) ?? []) {
      lines.push(
        `glue: ${g.id.slice(0, 15)}… run_key ${runKey} ${g.state} ${iso(g.startedOn)}..${iso(g.completedOn)}${g.error ? ` error: ${g.error}` : ""}`,
      );
    }
    return lines;
  };
  const add = (invariant: Invariant, subject: string, message: string, history: string[]) =>
    violations.push({ invariant, subject, message, history });

  // (a) the current version of every key
  const keys = [...new Set(state.objects.map((o) => o.key))].sort();
  for (const key of keys) {
    const current = state.objects.find((o) => o.key === key && o.isLatest);
    if (!current || current.deleteMarker) continue;
    const op = opOf(key, current.versionId, current.etag);
    if (!op) {
      add("a", key, "the current version was not made by any operation of the workload", historyOf(key));
      continue;
    }
    const items = uploads.filter(
      (u) =>
        u.key === key &&
        (current.versionId ? u.versionId === current.versionId : u.etag?.replaceAll('"', "") === current.etag),
    );
    if (items.length === 0) {
      add("a", key, `the current version (put #${op.op.n}) is not in the ledger: lost`, historyOf(key));
      continue;
    }
    if (items.length > 1) {
      add("a", key, `the current version is in the ledger ${items.length} times`, historyOf(key));
    }
    const item = items[0] as UploadItem;
    const by = processedBy(item.uploadId);
    if (isProcessedKind(op.op.file.kind)) {
      if (item.status !== "processed") {
        add(
          "a",
          key,
          `a ${op.op.file.kind} file's current version ended ${item.status}${item.error ? `: ${item.error}` : ""}`,
          historyOf(key),
        );
      } else if (by.length !== 1) {
        add(
          "a",
          key,
          `the current version was processed by ${by.length} succeeded Glue runs (${by.map((g) => g.id.slice(0, 15)).join(", ") || "none"}), not exactly one`,
          historyOf(key),
        );
      } else if (by[0]?.runKey !== item.runKey) {
        add(
          "a",
          key,
          `the ledger credits run ${item.runKey ?? "—"}, but the succeeded Glue run that processed it had run key ${by[0]?.runKey ?? "—"}`,
          historyOf(key),
        );
      }
    } else {
      const problem = FILE_PROBLEM[op.op.file.kind];
      if (item.status !== "failed" || !problem.test(item.error ?? "")) {
        add(
          "a",
          key,
          `a bad file (${op.op.file.kind}) ended ${item.status}${item.error ? ` with "${item.error}"` : ""}; want failed with a reason matching ${problem}`,
          historyOf(key),
        );
      }
      if (by.length > 0)
        add("a", key, `a bad file (${op.op.file.kind}) was processed by a succeeded run`, historyOf(key));
    }
  }

  // (b) nothing pending or running after quiescence
  if (!state.quiescence.reached) {
    // the whole system's story: the slot, every run in the ledger and every Glue run
    const story = [
      `ledger: run slot ${typeof slot?.holder === "string" ? `held by ${slot.holder} since ${String(slot.takenAt)}` : "free"}`,
      ...runItems.flatMap((r) => runHistory(String(r.runKey ?? r.sk))),
      ...state.glueRuns
        .filter((g) => !g.runKey || !runItems.some((r) => r.runKey === g.runKey))
        .map(
          (g) =>
            `glue: ${g.id.slice(0, 15)}… run_key ${g.runKey ?? "—"} ${g.state} ${iso(g.startedOn)}..${iso(g.completedOn)}`,
        ),
    ];
    add(
      "b",
      "quiescence",
      `not quiet after ${(state.quiescence.waitedMs / 1000).toFixed(0)} s: ${state.quiescence.notQuiet.join("; ")}`,
      story,
    );
  }
  for (const u of uploads.filter((x) => x.status !== "processed" && x.status !== "failed")) {
    add("b", u.key, `upload ${u.versionTag} is still ${u.status} after quiescence`, historyOf(u.key));
  }
  for (const r of runItems.filter((x) => x.state === "starting" || x.state === "running")) {
    const rk = String(r.runKey ?? r.sk);
    add("b", `run ${rk}`, `run ${rk} is still ${String(r.state)} after quiescence`, runHistory(rk));
  }
  if (slot && typeof slot.holder === "string") {
    add("b", "run slot", `the run slot is still held by ${slot.holder} after quiescence`, runHistory(slot.holder));
  }
  for (const g of state.glueRuns.filter((x) => x.completedOn === null)) {
    add(
      "b",
      `glue ${g.id}`,
      `Glue run ${g.id} is still ${g.state} after quiescence`,
      g.runKey ? runHistory(g.runKey) : [],
    );
  }

  // (c) never two Glue runs at once
  const byStart = [...state.glueRuns].sort((x, y) => x.startedOn - y.startedOn);
  for (const [i, g] of byStart.entries()) {
    for (const h of byStart.slice(i + 1)) {
      const gEnd = g.completedOn ?? Number.POSITIVE_INFINITY;
      if (h.startedOn < gEnd) {
        add(
          "c",
          `glue ${g.id.slice(0, 15)}… and ${h.id.slice(0, 15)}…`,
          `two Glue runs active at once: ${g.id.slice(0, 15)}… ${iso(g.startedOn)}..${iso(g.completedOn)} and ${h.id.slice(0, 15)}… from ${iso(h.startedOn)}`,
          [...(g.runKey ? runHistory(g.runKey) : []), ...(h.runKey ? runHistory(h.runKey) : [])],
        );
      } else break;
    }
  }

  // (d) each output's rows equal its stats; read = processed + rejected + duplicates
  const folder = (prefix: string | null, list: readonly OutputFolder[]) => {
    if (!prefix) return undefined;
    const key = prefix.startsWith(`s3://${state.bucket}/`) ? prefix.slice(`s3://${state.bucket}/`.length) : prefix;
    const wanted = key.endsWith("/") ? key : `${key}/`;
    return list.find((f) => f.prefix === wanted);
  };
  for (const s of stats) {
    for (const f of s.files) {
      if (f.status === "processed" && f.rowsRead !== f.rowsProcessed + f.rowsRejected + f.duplicatesRemoved) {
        add(
          "d",
          f.key,
          `stats of run ${s.runKey}: read ${f.rowsRead} ≠ processed ${f.rowsProcessed} + rejected ${f.rowsRejected} + duplicates ${f.duplicatesRemoved}`,
          historyOf(f.key),
        );
      }
    }
  }
  for (const u of uploads.filter((x) => x.status === "processed")) {
    const s = u.runKey ? statsByRunKey.get(u.runKey) : undefined;
    const f = s?.files.find((x) => x.uploadId === u.uploadId);
    if (!f) {
      add("d", u.key, `processed upload ${u.versionTag}: no stats for it in run ${u.runKey ?? "—"}`, historyOf(u.key));
      continue;
    }
    const problems: string[] = [];
    if (u.rowsRead !== f.rowsRead || u.rowsProcessed !== f.rowsProcessed || u.rowsRejected !== f.rowsRejected) {
      problems.push(
        `ledger rows ${u.rowsRead}/${u.rowsProcessed}/${u.rowsRejected} ≠ stats ${f.rowsRead}/${f.rowsProcessed}/${f.rowsRejected} (read/processed/rejected)`,
      );
    }
    const out = folder(u.output ?? f.output, state.outputs);
    if (!out) problems.push(`output folder ${u.output ?? f.output ?? "—"} does not exist`);
    else {
      if (!out.success) problems.push(`output folder ${out.prefix} has no _SUCCESS`);
      if (out.rows !== f.rowsProcessed)
        problems.push(`output has ${out.rows} rows, stats say ${f.rowsProcessed} processed`);
    }
    const rej = folder(u.rejectedOutput ?? f.rejectedOutput, state.rejected);
    const rejRows = rej?.rows ?? 0;
    if (rejRows !== f.rowsRejected) problems.push(`rejected output has ${rejRows} rows, stats say ${f.rowsRejected}`);
    const op = opOf(u.key, u.versionId, u.etag?.replaceAll('"', "") ?? null);
    if (op && isProcessedKind(op.op.file.kind)) {
      const want = expectedCounts(op.op.file);
      if (
        want.read !== f.rowsRead ||
        want.processed !== f.rowsProcessed ||
        want.rejected !== f.rowsRejected ||
        want.duplicates !== f.duplicatesRemoved
      ) {
        problems.push(
          `the file had read ${want.read} / processed ${want.processed} / rejected ${want.rejected} / duplicates ${want.duplicates}; stats say ${f.rowsRead} / ${f.rowsProcessed} / ${f.rowsRejected} / ${f.duplicatesRemoved}`,
        );
      }
    }
    for (const p of problems) add("d", u.key, `processed upload ${u.versionTag}: ${p}`, historyOf(u.key));
  }

  // (e) every output folder holds the rows of the version its name says, and only those
  const markerOfFolder = new Map<string, { marker: number; key: string; current: boolean }>();
  const remember = (key: string, tag: string, versionId: string | null, etag: string | null, current: boolean) => {
    const op = opOf(key, versionId, etag);
    if (op) markerOfFolder.set(`processed/${outputName(key)}/v=${tag}/`, { marker: op.op.file.marker, key, current });
  };
  for (const v of state.objects.filter((o) => !o.deleteMarker)) {
    remember(v.key, versionTag(v), v.versionId, v.etag, v.isLatest);
  }
  // An unversioned bucket forgets overwritten versions: the ledger's tag names them (matched to a put by content).
  for (const u of uploads) {
    const prefix = `processed/${outputName(u.key)}/v=${u.versionTag}/`;
    if (u.versionTag && !markerOfFolder.has(prefix)) {
      remember(u.key, u.versionTag, u.versionId, u.etag?.replaceAll('"', "") ?? null, false);
    }
  }
  for (const out of state.outputs) {
    const owner = markerOfFolder.get(out.prefix);
    if (!owner) {
      add("e", out.prefix, `output folder ${out.prefix} names no version the workload uploaded`, []);
      continue;
    }
    const foreign = out.markers.filter((m) => m !== owner.marker);
    if (foreign.length > 0 || out.unmarked > 0) {
      const whose = foreign
        .map((m) => {
          const p = puts.find((h) => h.op.file.marker === m);
          return p
            ? `put #${p.op.n} (${p.op.key === owner.key ? "a superseded version of this key" : p.op.key})`
            : `#${m}`;
        })
        .join(", ");
      add(
        "e",
        owner.key,
        `output ${out.prefix}${owner.current ? " (the current version's name)" : ""} holds rows of ${whose || `${out.unmarked} unmarked row(s)`}, not only of put #${owner.marker}`,
        historyOf(owner.key),
      );
    }
  }
  // the current version's ledger output is its own folder
  for (const key of keys) {
    const current = state.objects.find((o) => o.key === key && o.isLatest && !o.deleteMarker);
    if (!current) continue;
    const own = `s3://${state.bucket}/processed/${outputName(key)}/v=${versionTag(current)}/`;
    for (const u of uploads.filter((x) => x.key === key && x.status === "processed")) {
      const isCurrent = current.versionId ? u.versionId === current.versionId : u.etag === current.etag;
      if (isCurrent && u.output !== own) {
        add("e", key, `the current version's output is ${u.output ?? "—"}, not its own folder ${own}`, historyOf(key));
      }
    }
  }
  return violations;
}
