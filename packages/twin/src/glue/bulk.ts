/**
 * Publishing a run's many small output objects in bulk (issue 13, "many small uploads"). On AWS the job writes each
 * object with its own PutObject; in the twin the local Glue service copies what local Spark wrote into the emulator,
 * and moto answers only ~120 PutObjects a second over HTTP (6,002 objects: ~50 s). So small objects go in bulk: one
 * request of the twin's own (no AWS API) carries many objects, and the patched moto server (packages/twin/
 * moto_server.py, `bulk_put`) writes each one in process exactly as its PutObject handler does — same key, bytes,
 * ETag, CRC32 checksum, content type, and the same S3 → EventBridge "Object Created" event (reason PutObject).
 *
 * The request goes through the fault layer's proxy like the copy's PutObjects did, and the proxy treats each object
 * as the PutObject it stands for (proxy.ts, `bulkPut`): it draws each object's faults (throttle, server error,
 * latency, lost answer) as it would for one PutObject, forwards only the objects that were not refused, and writes
 * one call-record line per object — `glue-service s3:PutObject arn:aws:s3:::<bucket>/<key>` with that object's
 * outcome — so the IAM-by-traffic check sees the same calls as before. The answer gives each object's outcome;
 * the executor retries the ones that failed (spark.ts, `publishInBulk`).
 *
 * Staging a run's small uploads goes the same way the other direction (BULK_GET_PATH): each object read as moto's
 * GetObject handler reads it (by version id when the manifest has one; NoSuchKey / NoSuchVersion as it answers), one
 * `s3:GetObjectVersion` (or `s3:GetObject`) call-record line per object with its own faults.
 */
import { request } from "node:http";
import { TWIN_REGION } from "../constants.js";

/** The routes on the twin's moto server (moto_server.py), reached through the fault layer's proxy. */
export const BULK_PUT_PATH = "/_twin/s3/put-objects";
export const BULK_GET_PATH = "/_twin/s3/get-objects";

/** Objects up to this size go in bulk; bigger ones keep their own PutObject (a bulk request holds its bodies). */
export const BULK_OBJECT_MAX_BYTES = 1024 * 1024;
/** At most this many objects, and this many bytes of bodies, per bulk request. */
export const BULK_MAX_OBJECTS = 1000;
export const BULK_MAX_BYTES = 8 * 1024 * 1024;

export interface BulkObject {
  readonly key: string;
  readonly contentType: string;
  readonly body: Buffer;
}

/** One object's outcome, as a call-record outcome: `ok`, `fault:<kind>` (injected) or `error:<code>`. */
export interface BulkResult {
  readonly key: string;
  readonly outcome: string;
  /** The object's ETag when it was written (`ok`). */
  readonly etag?: string;
}

/** Writes `objects` into `bucket`: one outcome per object, in order. Throws when the request as a whole failed. */
export type BulkPut = (bucket: string, objects: readonly BulkObject[]) => Promise<BulkResult[]>;

export interface BulkGetObject {
  readonly key: string;
  readonly versionId?: string | undefined;
}

/** One object read: `ok` with its bytes, or the outcome it had (`error:NoSuchKey`, `fault:throttle`, ...). */
export interface BulkGetResult {
  readonly key: string;
  readonly outcome: string;
  readonly body?: Buffer;
}

/** Reads `objects` from `bucket`: one outcome per object, in order. Throws when the request as a whole failed. */
export type BulkGet = (bucket: string, objects: readonly BulkGetObject[]) => Promise<BulkGetResult[]>;

/** The wire form of a bulk GET request (the proxy and moto_server.py read it); the answer's bodies are base64. */
export interface BulkGetRequestBody {
  readonly bucket: string;
  readonly objects: readonly { readonly key: string; readonly versionId?: string }[];
}

/** The wire form of a bulk request (the proxy and moto_server.py read it). */
export interface BulkRequestBody {
  readonly bucket: string;
  readonly objects: readonly { readonly key: string; readonly contentType: string; readonly body: string }[];
}

export function encodeBulkRequest(bucket: string, objects: readonly BulkObject[]): Buffer {
  const body: BulkRequestBody = {
    bucket,
    objects: objects.map((o) => ({ key: o.key, contentType: o.contentType, body: o.body.toString("base64") })),
  };
  return Buffer.from(JSON.stringify(body));
}

/** An error shaped like the SDK's (name = code, $metadata.httpStatusCode), so `retryableKind` classifies it. */
function bulkError(status: number, text: string): Error {
  let code = `HTTP${status}`;
  let message = text.slice(0, 300);
  try {
    const parsed = JSON.parse(text) as { code?: string; message?: string };
    code = parsed.code ?? code;
    message = parsed.message ?? message;
  } catch {
    // not JSON: keep the text
  }
  return Object.assign(new Error(`${code}: ${message}`), { name: code, $metadata: { httpStatusCode: status } });
}

/**
 * POSTs `body` to `path` on `endpoint` (the fault layer's proxy) as the principal of `accessKeyId`; the answer's
 * `objects`, one per object sent. The Authorization header carries the SigV4 credential scope the proxy reads the
 * caller from; nothing in the twin verifies signatures (moto does not), and these routes are no AWS API, so the
 * request is not signed.
 */
function post<T>(endpoint: string, accessKeyId: string, path: string, body: Buffer, count: number): Promise<T[]> {
  const target = new URL(endpoint);
  const date = new Date().toISOString().slice(0, 10).replaceAll("-", "");
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        method: "POST",
        path,
        headers: {
          "content-type": "application/json",
          "content-length": String(body.length),
          authorization: `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${date}/${TWIN_REGION}/s3/aws4_request, SignedHeaders=host, Signature=twin-unsigned`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== 200) return reject(bulkError(res.statusCode ?? 0, text));
          try {
            const answer = JSON.parse(text) as { objects?: T[] };
            if (answer.objects?.length !== count) throw new Error("not one outcome per object");
            resolve(answer.objects);
          } catch (e) {
            reject(new Error(`bulk request: unreadable answer (${(e as Error).message}): ${text.slice(0, 200)}`));
          }
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A BulkPut through `endpoint` (the fault layer's proxy) as the principal of `accessKeyId`. */
export function bulkPutClient(endpoint: string, accessKeyId: string): BulkPut {
  return (bucket, objects) =>
    post<BulkResult>(endpoint, accessKeyId, BULK_PUT_PATH, encodeBulkRequest(bucket, objects), objects.length);
}

/** A BulkGet through `endpoint` (the fault layer's proxy) as the principal of `accessKeyId`. */
export function bulkGetClient(endpoint: string, accessKeyId: string): BulkGet {
  return async (bucket, objects) => {
    const request: BulkGetRequestBody = {
      bucket,
      objects: objects.map((o) => ({ key: o.key, ...(o.versionId ? { versionId: o.versionId } : {}) })),
    };
    const body = Buffer.from(JSON.stringify(request));
    const answer = await post<{ key: string; outcome: string; body?: string }>(
      endpoint,
      accessKeyId,
      BULK_GET_PATH,
      body,
      objects.length,
    );
    return answer.map((a) => ({
      key: a.key,
      outcome: a.outcome,
      ...(a.body !== undefined ? { body: Buffer.from(a.body, "base64") } : {}),
    }));
  };
}

/**
 * Groups objects into bulk requests of at most BULK_MAX_OBJECTS objects and BULK_MAX_BYTES bytes of bodies (an
 * object bigger than that goes alone), in their order.
 */
export function bulkBatches<T>(objects: readonly T[], sizeOf: (o: T) => number): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const o of objects) {
    if (current.length > 0 && (current.length >= BULK_MAX_OBJECTS || bytes + sizeOf(o) > BULK_MAX_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(o);
    bytes += sizeOf(o);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
