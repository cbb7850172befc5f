/**
 * An upload is one version of one object under `input/`, identified by what S3 says about it (key + last-modified +
 * version id, or etag where the bucket is not versioned) -- never by event or message ids, which S3 repeats and the
 * local emulator keeps constant.
 */
import { INPUT_PREFIX, INPUT_SUFFIX } from "../config/pipeline.js";

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

/** `input/sales/a.csv` at tag T → `sales/a/v=T`: the folder name under processed/ a user can derive from the key. */
export function uploadOutputName(u: Pick<Upload, "key" | "versionTag">): string {
  let name = u.key.startsWith(INPUT_PREFIX) ? u.key.slice(INPUT_PREFIX.length) : u.key;
  if (name.endsWith(INPUT_SUFFIX)) name = name.slice(0, -INPUT_SUFFIX.length);
  return `${name}/v=${u.versionTag}`;
}
