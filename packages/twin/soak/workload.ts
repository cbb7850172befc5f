/**
 * The soak's generator of client operations (Jepsen's "generator"): a seeded plan of uploads and deletes over a
 * time window, and the files' bytes. Pure: the same seed and window give the same operations and the same bytes.
 * The plan is carried out by `execute.ts` with the plain AWS SDK (never the pipeline's own code).
 *
 * What it mixes: a steady trickle, bursts, re-upload storms of the same keys, deletes (some followed by a
 * re-upload), multipart uploads, keys close to S3's 1,024-byte limit, unicode keys, and bad files whose own
 * problem must fail them (missing required column, empty, invalid UTF-8, UTF-16).
 */
import { type Rng, rng } from "./rng.js";

export type FileKind = "good" | "missing-column" | "empty" | "bad-utf8" | "utf16";

/**
 * Kinds the job processes: a good file, and a file with one record that is not UTF-8 — the contract
 * (glue/CONTRACT.md, "Encodings") rejects that record alone with its line number and processes the rest.
 */
export type ProcessedKind = "good" | "bad-utf8";
export const isProcessedKind = (kind: FileKind): kind is ProcessedKind => kind === "good" || kind === "bad-utf8";

/** What the pipeline's reason must say for a file that fails (the file's own problem, as the Glue job words it). */
export const FILE_PROBLEM: Readonly<Record<Exclude<FileKind, ProcessedKind>, RegExp>> = {
  "missing-column": /missing required column/i,
  empty: /file is empty|empty \(no header/i,
  utf16: /UTF-16/i,
};

export interface FileSpec {
  /** Unique per upload: every processed row carries it (in its email), so an output tells whose bytes it holds. */
  readonly marker: number;
  readonly kind: FileKind;
  /** Distinct good rows. */
  readonly rows: number;
  /** Rows with too few fields (the job rejects them). */
  readonly rejected: number;
  /** Exact copies of earlier rows (the job removes them). */
  readonly duplicates: number;
}

export type Op =
  | {
      readonly n: number;
      /** ms after the workload's start */
      readonly at: number;
      readonly kind: "put";
      readonly key: string;
      readonly group: string;
      readonly file: FileSpec;
      readonly multipart: boolean;
    }
  | { readonly n: number; readonly at: number; readonly kind: "delete"; readonly key: string; readonly group: string };

export type PutOp = Extract<Op, { kind: "put" }>;

export const SOAK_PREFIX = "input/soak/";
export const HEADER = "id,name,email,date,amount,status";
/** S3's multipart minimum for every part but the last. */
export const MULTIPART_PART_BYTES = 5 * 1024 * 1024;
/** S3's key limit, in UTF-8 bytes. */
export const S3_MAX_KEY_BYTES = 1024;

const UNICODE_NAMES = [
  "café-crème",
  "日本語のファイル",
  "Ærøskøbing",
  "emoji-😀-🚀",
  "a b+c%20d",
  "ñandú",
  "Ελληνικά",
  "данные",
  "עברית",
] as const;

/** The email of good row `i` of the file with `marker`: what ties an output row to the upload it came from. */
export function rowEmail(marker: number, i: number): string {
  return `v${marker}r${i}@soak.example`;
}

/** The marker an output row's email names (null: not a soak row). */
export function markerOfEmail(email: string): number | null {
  const m = /^v(\d+)r\d+@soak\.example$/.exec(email.trim());
  return m ? Number(m[1]) : null;
}

/** The bytes of a file. */
export function fileBody(spec: FileSpec): Buffer {
  switch (spec.kind) {
    case "empty":
      return Buffer.alloc(0);
    case "missing-column": {
      const rows = Array.from(
        { length: Math.max(1, spec.rows) },
        (_, i) => `${i},Nobody ${i},${rowEmail(spec.marker, i)},01-04-2025,1.00`,
      );
      return Buffer.from(`id,name,email,date,amount\n${rows.join("\n")}\n`, "utf8");
    }
    case "utf16": {
      const text = `${HEADER}\n1,Wide ${spec.marker},${rowEmail(spec.marker, 0)},01-04-2025,1.00,active\n`;
      return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]);
    }
    case "bad-utf8": {
      const good = `${HEADER}\n1,Fine ${spec.marker},${rowEmail(spec.marker, 0)},01-04-2025,1.00,active\n2,Bad `;
      const rest = ` ${spec.marker},${rowEmail(spec.marker, 1)},01-04-2025,2.00,active\n`;
      return Buffer.concat([Buffer.from(good, "utf8"), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(rest, "utf8")]);
    }
    case "good":
      return Buffer.from(goodCsv(spec), "utf8");
  }
}

const STATUSES = ["active", "pending", "inactive"] as const;

function goodRow(marker: number, i: number): string {
  return `${marker * 1_000_000 + i},Soak Person ${i},${rowEmail(marker, i)},01-04-2025,${(i % 997) + 0.25},${STATUSES[i % 3]}`;
}

function goodCsv(spec: FileSpec): string {
  const lines: string[] = [HEADER];
  for (let i = 0; i < spec.rows; i++) lines.push(goodRow(spec.marker, i));
  // rejected rows: three fields where six are required
  for (let i = 0; i < spec.rejected; i++) lines.push(`${spec.marker * 1_000_000 + 900_000 + i},Broken ${i},short`);
  // exact copies of the first rows
  for (let i = 0; i < spec.duplicates; i++) lines.push(goodRow(spec.marker, i % Math.max(1, spec.rows)));
  return `${lines.join("\n")}\n`;
}

/** Rows a good file needs to pass `bytes` bytes (for multipart uploads: more than one 5 MiB part). */
function rowsForBytes(marker: number, bytes: number): number {
  const shortest = goodRow(marker, 0).length + 1;
  return Math.ceil(bytes / shortest);
}

/** Longest path segment of a long key: S3 has no such limit, but the twin stages objects as local files (255). */
export const LONG_KEY_SEGMENT_BYTES = 200;

/**
 * A key of exactly `bytes` UTF-8 bytes (or 1-3 fewer when a multi-byte character does not fit), in segments of at
 * most LONG_KEY_SEGMENT_BYTES.
 */
export function longKey(index: number, bytes: number): string {
  const head = `${SOAK_PREFIX}long/${index}-`;
  const tail = ".csv";
  const fill = "ünïcødé-日本-long-";
  let key = head;
  let segment = 0;
  let i = 0;
  for (;;) {
    const ch = segment >= LONG_KEY_SEGMENT_BYTES - 8 ? "/" : (fill[i % fill.length] as string);
    if (Buffer.byteLength(key + ch + tail, "utf8") > bytes) break;
    key += ch;
    segment = ch === "/" ? 0 : segment + Buffer.byteLength(ch, "utf8");
    if (ch !== "/") i++;
  }
  return key + tail;
}

export interface PlanOptions {
  readonly seed: number;
  readonly windowMs: number;
  /** Scales how many files bursts and the trickle carry (1 = the default mix). */
  readonly intensity?: number;
  /** UTF-8 length range of the long keys (default: 1,000-1,024 bytes, up to S3's limit). */
  readonly longKeyBytes?: readonly [number, number];
}

interface Draft {
  readonly at: number;
  readonly kind: "put" | "delete";
  readonly key: string;
  readonly group: string;
  readonly fileKind?: FileKind;
  readonly rows?: number;
  readonly multipart?: boolean;
}

function badKind(r: Rng): FileKind {
  return r.pick(["missing-column", "empty", "bad-utf8", "utf16"] as const);
}

/** Times from a first one in [firstLo, firstHi] then every [gapLo, gapHi], inside the window. */
function times(r: Rng, windowMs: number, firstLo: number, firstHi: number, gapLo: number, gapHi: number): number[] {
  const out: number[] = [];
  for (let t = r.int(firstLo, firstHi); t < windowMs; t += r.int(gapLo, gapHi)) out.push(t);
  return out;
}

/** The whole workload, sorted by time; `n` (and the file marker) is the index in that order. */
export function planWorkload(opts: PlanOptions): Op[] {
  const W = opts.windowMs;
  const k = opts.intensity ?? 1;
  const root = rng(opts.seed);
  const drafts: Draft[] = [];
  /** First of each kind in the first half of the window, so even a short soak has one of each. */
  const early = () => [Math.round(W * 0.05), Math.round(W * 0.5)] as const;

  // 1. the steady trickle: one file every 1.5-5 s; some unicode keys, some bad files
  {
    const r = root.fork("trickle");
    let i = 0;
    for (let t = r.int(200, 2000); t < W; t += Math.round(r.int(1500, 5000) / k)) {
      const unicode = r.chance(0.1);
      const bad = r.chance(0.08);
      const name = unicode ? `${r.pick(UNICODE_NAMES)}-${i}` : `t-${i}`;
      drafts.push({
        at: t,
        kind: "put",
        key: `${SOAK_PREFIX}trickle/${name}.csv`,
        group: "trickle",
        fileKind: bad ? badKind(r) : "good",
        rows: r.int(1, 40),
      });
      i++;
    }
  }
  // 2. bursts: 20-60 files at once, every 1-2 minutes
  {
    const r = root.fork("burst");
    const [lo, hi] = early();
    for (const [b, t] of times(r, W, lo, hi, 60_000, 120_000).entries()) {
      const size = Math.max(1, Math.round(r.int(20, 60) * k));
      for (let j = 0; j < size; j++) {
        drafts.push({
          at: t,
          kind: "put",
          key: `${SOAK_PREFIX}burst-${b}/f-${String(j).padStart(3, "0")}.csv`,
          group: `burst-${b}`,
          fileKind: r.chance(0.05) ? badKind(r) : "good",
          rows: r.int(1, 30),
        });
      }
    }
  }
  // 3. re-upload storms: 3-5 keys, each uploaded 3-6 times within a few seconds (new keys, or keys already processed)
  {
    const r = root.fork("storm");
    const [lo, hi] = early();
    for (const [s, t] of times(r, W, lo, hi, 90_000, 150_000).entries()) {
      const reuse = r.chance(0.5);
      const earlier = drafts.filter((d) => d.kind === "put" && d.group === "trickle" && d.at < t - 5_000);
      const keys = Array.from({ length: r.int(3, 5) }, (_, j) =>
        reuse && earlier.length > 0 ? r.pick(earlier).key : `${SOAK_PREFIX}storm-${s}/k-${j}.csv`,
      );
      for (const key of new Set(keys)) {
        let at = t;
        for (let v = r.int(3, 6); v > 0; v--) {
          drafts.push({ at, kind: "put", key, group: `storm-${s}`, fileKind: "good", rows: r.int(1, 20) });
          at += r.int(0, 1500);
        }
      }
    }
  }
  // 4. deletes of earlier keys, half of them uploaded again a few seconds later
  {
    const r = root.fork("delete");
    const [lo, hi] = early();
    for (const t of times(r, W, lo, hi, 30_000, 60_000)) {
      const earlier = drafts.filter((d) => d.kind === "put" && d.group === "trickle" && d.at < t - 1_000);
      if (earlier.length === 0) continue;
      const key = r.pick(earlier).key;
      drafts.push({ at: t, kind: "delete", key, group: "delete" });
      if (r.chance(0.5)) {
        drafts.push({ at: t + r.int(1_000, 10_000), kind: "put", key, group: "delete", fileKind: "good", rows: 5 });
      }
    }
  }
  // 5. multipart uploads: one part of 5 MiB and a small last part
  {
    const r = root.fork("multipart");
    const [lo, hi] = early();
    for (const [m, t] of times(r, W, lo, hi, 180_000, 300_000).entries()) {
      drafts.push({
        at: t,
        kind: "put",
        key: `${SOAK_PREFIX}multipart/m-${m}.csv`,
        group: "multipart",
        fileKind: "good",
        multipart: true,
      });
    }
  }
  // 6. keys close to S3's 1,024-byte limit (multi-byte characters)
  {
    const [longLo, longHi] = opts.longKeyBytes ?? [S3_MAX_KEY_BYTES - 24, S3_MAX_KEY_BYTES];
    const r = root.fork("long");
    const [lo, hi] = early();
    for (const [l, t] of times(r, W, lo, hi, 45_000, 90_000).entries()) {
      drafts.push({
        at: t,
        kind: "put",
        key: longKey(l, r.int(longLo, longHi)),
        group: "long-key",
        fileKind: "good",
        rows: r.int(1, 10),
      });
    }
  }

  const sorted = drafts
    .map((d, i) => ({ d, i }))
    .sort((a, b) => a.d.at - b.d.at || a.i - b.i)
    .map(({ d }) => d);
  const shape = root.fork("shape");
  return sorted.map((d, n): Op => {
    if (d.kind === "delete") return { n, at: d.at, kind: "delete", key: d.key, group: d.group };
    const fileKind = d.fileKind ?? "good";
    const rows = d.multipart ? rowsForBytes(n, MULTIPART_PART_BYTES + 64 * 1024) : (d.rows ?? 1);
    const good = fileKind === "good";
    return {
      n,
      at: d.at,
      kind: "put",
      key: d.key,
      group: d.group,
      multipart: d.multipart === true,
      file: {
        marker: n,
        kind: fileKind,
        rows,
        rejected: good && shape.chance(0.3) ? shape.int(1, 3) : 0,
        duplicates: good && shape.chance(0.3) ? shape.int(1, 3) : 0,
      },
    };
  });
}

/** What a good file's run must report for it. */
export function expectedCounts(spec: FileSpec): {
  read: number;
  processed: number;
  rejected: number;
  duplicates: number;
} {
  // bad-utf8: one good record, one record that is not UTF-8 (rejected alone), whatever the spec's counts
  if (spec.kind === "bad-utf8") return { read: 2, processed: 1, rejected: 1, duplicates: 0 };
  return {
    read: spec.rows + spec.rejected + spec.duplicates,
    processed: spec.rows,
    rejected: spec.rejected,
    duplicates: spec.duplicates,
  };
}
