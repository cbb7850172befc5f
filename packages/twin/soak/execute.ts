/**
 * Carries out the plan against the emulator with the plain AWS SDK for JS (PutObject, the multipart API,
 * DeleteObject), each operation at its planned time, and records what S3 answered: the history the checker reads.
 */
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { fileBody, MULTIPART_PART_BYTES, type Op } from "./workload.js";

export interface OpResult {
  readonly op: Op;
  /** epoch ms when the request was sent / answered */
  readonly startedAt: number;
  readonly endedAt: number;
  /** What S3 answered (null for an unversioned bucket or on error). */
  readonly versionId: string | null;
  /** Without quotes (puts only). */
  readonly etag: string | null;
  readonly size: number;
  readonly error: string | null;
}

const unquote = (etag: string | undefined) => (etag ? etag.replaceAll('"', "") : null);
const version = (v: string | undefined) => (v && v !== "null" ? v : null);

async function put(s3: S3Client, bucket: string, op: Extract<Op, { kind: "put" }>) {
  const body = fileBody(op.file);
  if (!op.multipart) {
    const r = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: op.key, Body: body }));
    return { versionId: version(r.VersionId), etag: unquote(r.ETag), size: body.length };
  }
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: op.key }));
  const parts = [body.subarray(0, MULTIPART_PART_BYTES), body.subarray(MULTIPART_PART_BYTES)];
  const done: { ETag: string; PartNumber: number }[] = [];
  for (const [i, part] of parts.entries()) {
    const r = await s3.send(
      new UploadPartCommand({ Bucket: bucket, Key: op.key, UploadId, PartNumber: i + 1, Body: part }),
    );
    done.push({ ETag: r.ETag ?? "", PartNumber: i + 1 });
  }
  const r = await s3.send(
    new CompleteMultipartUploadCommand({ Bucket: bucket, Key: op.key, UploadId, MultipartUpload: { Parts: done } }),
  );
  return { versionId: version(r.VersionId), etag: unquote(r.ETag), size: body.length };
}

export interface ExecuteOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly ops: readonly Op[];
  /** Requests in flight at most (a burst is uploaded this many at a time). */
  readonly parallel?: number;
  readonly now?: () => number;
  readonly onProgress?: (done: number, total: number) => void;
  /** Stops starting operations (those in flight finish). */
  readonly signal?: AbortSignal;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

/**
 * Runs every operation at its planned offset from now (later if the client falls behind); operations on the same
 * key run in plan order, one after the other, so the history's order per key is the order S3 saw. The history has
 * the operations that ran (all of them unless `signal` stopped the plan).
 */
export async function executePlan(opts: ExecuteOptions): Promise<OpResult[]> {
  const now = opts.now ?? Date.now;
  const t0 = now();
  const parallel = opts.parallel ?? 16;
  const results: OpResult[] = new Array(opts.ops.length);
  const lastOfKey = new Map<string, Promise<void>>();
  let inFlight = 0;
  const waiters: (() => void)[] = [];
  const acquire = async () => {
    while (inFlight >= parallel) await new Promise<void>((r) => waiters.push(r));
    inFlight++;
  };
  const release = () => {
    inFlight--;
    waiters.shift()?.();
  };
  let done = 0;
  const all: Promise<void>[] = [];
  for (const op of opts.ops) {
    const wait = t0 + op.at - now();
    if (wait > 0) await sleep(wait, opts.signal);
    if (opts.signal?.aborted) break;
    const before = lastOfKey.get(op.key) ?? Promise.resolve();
    const task = before.then(async () => {
      await acquire();
      const startedAt = now();
      try {
        if (op.kind === "put") {
          const r = await put(opts.s3, opts.bucket, op);
          results[op.n] = { op, startedAt, endedAt: now(), ...r, error: null };
        } else {
          const r = await opts.s3.send(new DeleteObjectCommand({ Bucket: opts.bucket, Key: op.key }));
          results[op.n] = {
            op,
            startedAt,
            endedAt: now(),
            versionId: version(r.VersionId),
            etag: null,
            size: 0,
            error: null,
          };
        }
      } catch (e) {
        const error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        results[op.n] = { op, startedAt, endedAt: now(), versionId: null, etag: null, size: 0, error };
      } finally {
        release();
        opts.onProgress?.(++done, opts.ops.length);
      }
    });
    lastOfKey.set(op.key, task);
    all.push(task);
  }
  await Promise.all(all);
  return results.filter((r) => r !== undefined);
}
