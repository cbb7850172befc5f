/**
 * An upload is one version of one object under `input/`, identified by what S3 says about it (key + last-modified +
 * version id, or etag where the bucket is not versioned) -- never by event or message ids, which S3 repeats and the
 * local emulator keeps constant.
 */
import { createHash } from "node:crypto";
import { INPUT_PREFIX, INPUT_SUFFIX, PROCESSED_PREFIX, REJECTED_PREFIX, STATS_PREFIX } from "../config/pipeline.js";

export interface ObjectVersion {
  readonly bucket: string;
  readonly key: string;
  /** null when the bucket is not versioned (S3 reports "null" or nothing). */
  readonly versionId: string | null;
  /** Without quotes. */
  readonly etag: string;
  /** ISO-8601, as S3's Last-Modified (second resolution). */
  readonly lastModified: string;
  readonly size: number;
}

export interface Upload extends ObjectVersion {
  readonly uploadId: string;
  /** The part of the id that tells versions of one key apart; sortable by time. */
  readonly versionTag: string;
}

export function normalizeEtag(etag: string): string {
  return etag.replace(/^W\//, "").replaceAll('"', "");
}

export function normalizeVersionId(versionId: string | null | undefined): string | null {
  return versionId && versionId !== "null" ? versionId : null;
}

/** 2026-04-01T10:00:00.000Z → 20260401T100000Z */
function compactTime(iso: string): string {
  return parseTime(iso)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

function parseTime(iso: string): Date {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) throw new RangeError(`not a time: ${iso}`);
  return d;
}

export function versionTagOf(v: Pick<ObjectVersion, "lastModified" | "versionId" | "etag">): string {
  return `${compactTime(v.lastModified)}-${v.versionId ?? normalizeEtag(v.etag)}`;
}

export function toUpload(v: ObjectVersion): Upload {
  const version = {
    ...v,
    etag: normalizeEtag(v.etag),
    versionId: normalizeVersionId(v.versionId),
    lastModified: parseTime(v.lastModified).toISOString(),
  };
  const versionTag = versionTagOf(version);
  return { ...version, versionTag, uploadId: `${v.bucket}/${v.key}@${versionTag}` };
}

/**
 * The folder name under `processed/` (and `processed/rejected/`) of an upload: `input/sales/a.csv` at tag T →
 * `sales/a/v=T`. Keys are untrusted, so each `/`-separated segment of the key (after `input/`, without a
 * lower-case `.csv`) is encoded so that the name is safe and injective for every legal key:
 *
 * - letters and digits of any script (`é` stays `é`), combining marks, space and `- . _ ~` stay as they are; every
 *   other character is percent-encoded, byte by byte of its UTF-8 form (`%` → `%25`, `=` → `%3D`, `:` → `%3A`,
 *   `\` → `%5C`, control characters (C0, DEL, C1), format characters such as U+202E, other symbols, …);
 * - a segment's first character is percent-encoded when it is `.` or `_`: no `.` or `..` segment (which Hadoop's
 *   Path would fold away) and no hidden `_…`/`.…` folder (which Spark skips, and where `_staging`/`_temporary` live);
 * - an empty segment (`a//b.csv`, `/a.csv`, `a/.csv`) becomes `%2F`, which no other segment can produce;
 * - a first segment naming one of the pipeline's own trees under processed/ (none in today's layout: rejected rows
 *   and stats have top-level trees) would have its first character percent-encoded, so it stays outside that tree;
 * - a suffix in another case than `.csv` (`a.CSV`) is kept as `%2E` + its letters (`a%2ECSV`): `%2E` only ever
 *   appears first in a segment otherwise, so `a.CSV` and `a.CSV.csv` stay apart;
 * - `=` never survives in a segment, so no upload's folder can sit inside another's `…/v=T/` folder.
 *
 * Percent-decoding a segment gives back the key's segment: the encoding is injective. A name over
 * MAX_OUTPUT_NAME_BYTES (keys are up to 1,024 bytes; encoding may triple them) is `%7E` + the SHA-256 of the key
 * (no segment otherwise starts with an encoded `~`), so output keys stay under S3's 1,024-byte limit.
 */
export function uploadOutputName(u: Pick<Upload, "key" | "versionTag">): string {
  return `${encodedStem(u.key)}/v=${encodeSegment(u.versionTag)}`;
}

/** Longest encoded key part of an output name; longer ones are replaced by a hash (see uploadOutputName). */
export const MAX_OUTPUT_NAME_BYTES = 512;

/** The tree names the pipeline itself writes directly under processed/ (rejected rows, run stats). */
const RESERVED_FIRST_SEGMENTS = new Set(
  [REJECTED_PREFIX, STATS_PREFIX]
    .filter((prefix) => prefix.startsWith(PROCESSED_PREFIX))
    .map((prefix) => prefix.slice(PROCESSED_PREFIX.length).split("/")[0] ?? ""),
);

function encodedStem(key: string): string {
  let stem = key.startsWith(INPUT_PREFIX) ? key.slice(INPUT_PREFIX.length) : key;
  let suffix = "";
  if (stem.endsWith(INPUT_SUFFIX)) {
    stem = stem.slice(0, -INPUT_SUFFIX.length);
  } else if (stem.toLowerCase().endsWith(INPUT_SUFFIX)) {
    suffix = `%2E${encodeSegment(stem.slice(-INPUT_SUFFIX.length + 1))}`;
    stem = stem.slice(0, -INPUT_SUFFIX.length);
  }
  const segments = stem.split("/").map((segment, i) => {
    const encoded = encodeSegment(segment);
    if (i === 0 && RESERVED_FIRST_SEGMENTS.has(segment)) return `${percent(segment.charAt(0))}${encoded.slice(1)}`;
    return encoded;
  });
  const nonEmpty = segments.map((s) => (s === "" ? "%2F" : s));
  const name = `${nonEmpty.join("/")}${suffix}`;
  if (Buffer.byteLength(name) <= MAX_OUTPUT_NAME_BYTES) return name;
  return `%7E${createHash("sha256").update(key).digest("hex")}`;
}

const SAFE = /^[\p{L}\p{N}\p{M} ._~-]$/u;

function encodeSegment(segment: string): string {
  let out = "";
  for (const ch of segment) out += SAFE.test(ch) ? ch : percent(ch);
  if (out.startsWith(".") || out.startsWith("_")) out = `${percent(out.charAt(0))}${out.slice(1)}`;
  return out;
}

function percent(ch: string): string {
  return [...Buffer.from(ch, "utf8")].map((b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join("");
}
