/**
 * The manifest (what a run reads) and the stats (what a run did): the two documents shared by the trigger and the
 * Glue job. Their shapes are defined here once; `examples/*.json` are the test vectors both sides check against
 * (vitest here, pytest in `glue/`).
 */
import {
  FILE_STATS_PREFIX,
  INGEST_DATE_PARTITION,
  MANIFEST_PREFIX,
  PARQUET_PREFIX,
  PROCESSED_PREFIX,
  REJECTED_PREFIX,
  STATS_PREFIX,
} from "../config/pipeline.js";
import type { Upload } from "../upload/identity.js";
import { uploadOutputName } from "../upload/identity.js";

export const MANIFEST_FORMAT = "csv-ingest-manifest/1";
export const STATS_FORMAT = "csv-ingest-stats/1";

export interface ManifestEntry {
  readonly uploadId: string;
  readonly key: string;
  readonly versionId: string | null;
  readonly etag: string;
  readonly lastModified: string;
  readonly size: number;
  /** Folder for this upload's processed CSV (finished when `_SUCCESS` is in it). */
  readonly outputPrefix: string;
  /** Folder for this upload's rejected rows. */
  readonly rejectedPrefix: string;
  /** Folder for this upload's processed rows as Parquet (`parquet/ingest_date=<day>/<name>/`). */
  readonly parquetPrefix?: string;
}

export interface Manifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly runKey: string;
  readonly createdAt: string;
  readonly bucket: string;
  readonly statsKey: string;
  /** Where the job writes the per-file stats as JSON Lines (`stats/files/ingest_date=<day>/<runKey>.jsonl`). */
  readonly fileStatsKey?: string;
  readonly uploads: readonly ManifestEntry[];
}

export type FileOutcome = "processed" | "failed";

export interface FileStats {
  readonly uploadId: string;
  readonly key: string;
  readonly status: FileOutcome;
  /** Why the file could not be processed (null when processed). */
  readonly error: string | null;
  readonly rowsRead: number;
  readonly rowsProcessed: number;
  readonly rowsRejected: number;
  readonly duplicatesRemoved: number;
  readonly qualityIssues: Readonly<Record<string, number>>;
  /** `s3://bucket/processed/.../` when processed. */
  readonly output: string | null;
  readonly rejectedOutput: string | null;
  /** `s3://bucket/parquet/.../` when processed and the manifest named a Parquet folder. */
  readonly parquetOutput?: string | null;
}

export interface RunStats {
  readonly format: typeof STATS_FORMAT;
  readonly runKey: string;
  readonly processingDate: string;
  readonly totals: {
    readonly files: number;
    readonly filesProcessed: number;
    readonly filesFailed: number;
    readonly rowsRead: number;
    readonly rowsProcessed: number;
    readonly rowsRejected: number;
    readonly duplicatesRemoved: number;
    readonly qualityIssues: Readonly<Record<string, number>>;
  };
  readonly files: readonly FileStats[];
}

export function manifestKey(runKey: string): string {
  return `${MANIFEST_PREFIX}${runKey}.json`;
}

export function statsKey(runKey: string): string {
  return `${STATS_PREFIX}${runKey}.json`;
}

/** `ingest_date=2026-04-01/`: the partition folder of a run whose manifest was written at `createdAt` (UTC). */
export function ingestDatePartition(createdAt: Date): string {
  return `${INGEST_DATE_PARTITION}=${createdAt.toISOString().slice(0, 10)}/`;
}

export function buildManifest(args: {
  runKey: string;
  bucket: string;
  createdAt: Date;
  uploads: readonly Upload[];
}): Manifest {
  return {
    format: MANIFEST_FORMAT,
    runKey: args.runKey,
    createdAt: args.createdAt.toISOString(),
    bucket: args.bucket,
    statsKey: statsKey(args.runKey),
    fileStatsKey: `${FILE_STATS_PREFIX}${ingestDatePartition(args.createdAt)}${args.runKey}.jsonl`,
    uploads: args.uploads.map((u) => {
      const name = uploadOutputName(u);
      return {
        uploadId: u.uploadId,
        key: u.key,
        versionId: u.versionId,
        etag: u.etag,
        lastModified: u.lastModified,
        size: u.size,
        outputPrefix: `${PROCESSED_PREFIX}${name}/`,
        rejectedPrefix: `${REJECTED_PREFIX}${name}/`,
        parquetPrefix: `${PARQUET_PREFIX}${ingestDatePartition(args.createdAt)}${name}/`,
      };
    }),
  };
}

export class FormatError extends Error {
  override name = "FormatError";
}

/** Parses one of the two documents: JSON, an object, with the expected `format` tag. */
function parseDocument<T extends { format: string }>(
  text: string,
  where: string,
  what: string,
  format: string,
): Partial<T> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new FormatError(`${where}: ${what} is not JSON`, { cause });
  }
  if (typeof doc !== "object" || doc === null) throw new FormatError(`${where}: ${what} is not an object`);
  const d = doc as Partial<T>;
  if (d.format !== format) throw new FormatError(`${where}: ${what} format is ${String(d.format)}, want ${format}`);
  return d;
}

/** Parses a stats document written by the Glue job; throws FormatError naming what is wrong. */
export function parseRunStats(text: string, where: string): RunStats {
  const d = parseDocument<RunStats>(text, where, "stats", STATS_FORMAT);
  if (!Array.isArray(d.files)) throw new FormatError(`${where}: stats has no files list`);
  for (const [i, f] of d.files.entries()) {
    if (typeof f?.uploadId !== "string" || (f.status !== "processed" && f.status !== "failed")) {
      throw new FormatError(`${where}: stats files[${i}] has no uploadId or a bad status`);
    }
    // What the recorder writes into the ledger: a count DynamoDB cannot store (past 2^53) or a string summed as a
    // number would fail or corrupt every settle of the run, on every retry (the slot held meanwhile). The run's stats
    // are then unreadable instead: its files go the way of a run without stats (retried, then failed with a reason).
    for (const field of ["rowsRead", "rowsProcessed", "rowsRejected"] as const) {
      const v: unknown = f[field];
      if (v !== undefined && v !== null && !(Number.isSafeInteger(v) && (v as number) >= 0)) {
        throw new FormatError(`${where}: stats files[${i}].${field} is not a count (${JSON.stringify(v)})`);
      }
    }
    for (const field of ["output", "rejectedOutput", "error"] as const) {
      const v: unknown = f[field];
      if (v !== undefined && v !== null && typeof v !== "string") {
        throw new FormatError(`${where}: stats files[${i}].${field} is not a string`);
      }
    }
  }
  return d as RunStats;
}

/** Parses a manifest; throws FormatError naming what is wrong. */
export function parseManifest(text: string, where: string): Manifest {
  const d = parseDocument<Manifest>(text, where, "manifest", MANIFEST_FORMAT);
  if (!Array.isArray(d.uploads)) throw new FormatError(`${where}: manifest has no uploads list`);
  return d as Manifest;
}
