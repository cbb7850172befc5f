/**
 * Runs one job run of the real `glue/job.py` on local Spark (local[*]). Spark reads and writes a staging folder, not
 * the emulator: the manifest and its uploads' objects are copied from the emulator's bucket into
 * `.twin/glue/<runId>/data/` (same relative keys), the job runs with the real arguments pointed at that folder, and
 * everything it wrote under `out/` is copied back to the bucket under the same keys (processed/...), whether the run
 * succeeded or not (on AWS the job's writes land in S3 as they happen). The copy writes small objects many per request
 * with the twin's bulk PutObject (bulk.ts: still one PutObject each in the emulator and in the call record).
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { GetObjectCommand, NoSuchKey, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { GLUE_ARGUMENTS, mapLimit, parseManifest } from "@ingest/core";
import { messageOf } from "../errors.js";
import {
  BULK_OBJECT_MAX_BYTES,
  type BulkGet,
  type BulkGetObject,
  type BulkObject,
  type BulkPut,
  bulkBatches,
} from "./bulk.js";
import type { ExecutionResult, JobExecutor } from "./service.js";

export interface SparkExecutorOptions {
  readonly s3: S3Client;
  readonly python: string;
  readonly script: string;
  /** Staging folders go under here, one per job run. */
  readonly stageRoot: string;
  /** Fault injection (tests, demos): a run whose manifest names a key containing one of these fails before Spark. */
  readonly failKeys?: readonly string[] | undefined;
  /** Keep the staging folder of successful runs too (failed ones are always kept for their job.log). */
  readonly keepStage?: boolean | undefined;
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** How the copy of `out/` back to S3 retries (tests: a fake clock); default PUBLISH_RETRY with real sleeps. */
  readonly publishRetry?: Partial<PublishRetry> | undefined;
  /** Where each run's phases are reported (objects staged, job.py, objects published: counts and seconds). */
  readonly log?: { info(m: string): void } | undefined;
  /**
   * The twin's bulk PutObject (bulk.ts): objects up to BULK_OBJECT_MAX_BYTES are published with it, many per
   * request; without it (or for bigger objects) each object is its own PutObject.
   */
  readonly bulkPut?: BulkPut | undefined;
  /** The twin's bulk GetObject (bulk.ts): uploads up to BULK_OBJECT_MAX_BYTES are staged with it, many per request. */
  readonly bulkGet?: BulkGet | undefined;
}

/** Bulk requests in flight at once while staging or publishing (moto handles them one object at a time anyway). */
export const BULK_CONCURRENCY = 2;

/** Objects copied between the emulator's S3 and the staging folder at once (each way). */
export const COPY_CONCURRENCY = 32;

/**
 * The copy of `out/` back to S3 stands in for the job's own S3 writes, which on AWS its client retries (glue/csv_ingest/io/storage.py:
 * boto3 "standard" mode, 10 attempts). So each PutObject of the copy is retried the same way — the SDK's standard
 * strategy: transient errors (5xx, throttling, a reset connection, a timeout) only, full-jitter exponential backoff
 * from 100 ms (500 ms after a throttle) capped at 20 s, bounded attempts — on top of the client's own attempts. A PUT
 * of the same bytes to the same key is idempotent, so a retry after a lost answer is harmless. One throttle no longer
 * fails a whole run for a system reason (soak finding F4).
 */
export interface PublishRetry {
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly throttleBaseDelayMs: number;
  readonly maxDelayMs: number;
  readonly sleep: (ms: number) => Promise<void>;
  /** In [0, 1): the jitter. */
  readonly random: () => number;
}

export const PUBLISH_RETRY: PublishRetry = {
  maxAttempts: 10,
  baseDelayMs: 100,
  throttleBaseDelayMs: 500,
  maxDelayMs: 20_000,
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  random: Math.random,
};

const THROTTLING_CODES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "ProvisionedThroughputExceededException",
  "BandwidthLimitExceeded",
]);
const TRANSIENT_CODES = new Set([
  "InternalError",
  "ServiceUnavailable",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
]);

/** "throttling", "transient" (both retried, as the SDK's standard strategy does) or null (not retried). */
export function retryableKind(e: unknown): "throttling" | "transient" | null {
  const err = e as {
    name?: string;
    code?: string;
    $retryable?: { throttling?: boolean };
    $metadata?: { httpStatusCode?: number };
  } | null;
  if (!err || typeof err !== "object") return null;
  const status = err.$metadata?.httpStatusCode;
  if (err.$retryable?.throttling || THROTTLING_CODES.has(err.name ?? "") || status === 429) return "throttling";
  if (err.$retryable || TRANSIENT_CODES.has(err.name ?? "") || TRANSIENT_CODES.has(err.code ?? "")) return "transient";
  if (status !== undefined && [500, 502, 503, 504].includes(status)) return "transient";
  return null;
}

/** How a bulk object's outcome (`fault:<kind>`, `error:<code>`) is retried, as the same error of a PutObject would be. */
export function outcomeKind(outcome: string): "throttling" | "transient" | null {
  if (outcome === "fault:throttle") return "throttling";
  if (outcome === "fault:serverError" || outcome === "fault:lostAnswer") return "transient";
  const code = outcome.startsWith("error:") ? outcome.slice("error:".length) : outcome;
  if (THROTTLING_CODES.has(code)) return "throttling";
  if (TRANSIENT_CODES.has(code)) return "transient";
  return null;
}

/**
 * Sends `items` with a bulk request, retrying what failed as `withRetries` retries one request: the items a request
 * did not do (or the whole request, when it failed as a whole with a retryable error) go again after a full-jitter
 * backoff (the throttle base when one of them was throttled), up to maxAttempts rounds. An item whose error is not
 * retryable, or still fails after the last round, fails the whole, naming the key. `final` says which outcomes are
 * an answer (default: `ok`); the answers are returned by item.
 */
export async function withBulkRetries<T extends { readonly key: string }, R extends { readonly outcome: string }>(
  send: (items: readonly T[]) => Promise<readonly R[]>,
  items: readonly T[],
  retry: PublishRetry,
  final: (outcome: string) => boolean = (outcome) => outcome === "ok",
): Promise<Map<T, R>> {
  const answers = new Map<T, R>();
  let pending = items;
  for (let attempt = 1; ; attempt++) {
    let results: readonly (R | undefined)[];
    try {
      results = await send(pending);
    } catch (e) {
      // the request as a whole failed (a reset connection, a 5xx): every item of it goes again, if retryable
      if (retryableKind(e) === null || attempt >= retry.maxAttempts) throw e;
      results = [];
    }
    const failed: { item: T; outcome: string }[] = [];
    pending.forEach((item, i) => {
      const r = results[i];
      if (r && final(r.outcome)) answers.set(item, r);
      else failed.push({ item, outcome: r?.outcome ?? "error:InternalError" });
    });
    if (failed.length === 0) return answers;
    const kinds = failed.map((f) => outcomeKind(f.outcome));
    const fatal = failed.find((_, i) => kinds[i] === null);
    if (fatal) throw new Error(`${fatal.item.key}: ${fatal.outcome}`);
    if (attempt >= retry.maxAttempts) {
      const first = failed[0] as { item: T; outcome: string };
      const more = failed.length > 1 ? ` (and ${failed.length - 1} more)` : "";
      throw new Error(`${first.item.key}: ${first.outcome}${more} after ${attempt} attempts`);
    }
    const base = kinds.includes("throttling") ? retry.throttleBaseDelayMs : retry.baseDelayMs;
    await retry.sleep(Math.floor(retry.random() * Math.min(retry.maxDelayMs, base * 2 ** (attempt - 1))));
    pending = failed.map((f) => f.item);
  }
}

/** Writes `objects` with the bulk PutObject, retrying the objects that failed (withBulkRetries). */
export async function publishInBulk(
  bulkPut: BulkPut,
  bucket: string,
  objects: readonly BulkObject[],
  retry: PublishRetry,
): Promise<void> {
  await withBulkRetries((pending) => bulkPut(bucket, pending), objects, retry);
}

/**
 * Reads `objects` with the bulk GetObject, retrying the objects that failed (withBulkRetries): each object's bytes,
 * or null when it does not exist (NoSuchKey, as `getText`); any other error fails the staging.
 */
export async function stageInBulk<T extends BulkGetObject>(
  bulkGet: BulkGet,
  bucket: string,
  objects: readonly T[],
  retry: PublishRetry,
): Promise<Map<T, Buffer | null>> {
  const answers = await withBulkRetries(
    (pending) => bulkGet(bucket, pending),
    objects,
    retry,
    (outcome) => outcome === "ok" || outcome === "error:NoSuchKey",
  );
  return new Map(objects.map((o) => [o, answers.get(o)?.body ?? null]));
}

/** `send` until it succeeds, a non-retryable error, or maxAttempts (the last error is thrown). */
export async function withRetries<T>(send: () => Promise<T>, retry: PublishRetry): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (e) {
      const kind = retryableKind(e);
      if (kind === null || attempt >= retry.maxAttempts) throw e;
      const base = kind === "throttling" ? retry.throttleBaseDelayMs : retry.baseDelayMs;
      await retry.sleep(Math.floor(retry.random() * Math.min(retry.maxDelayMs, base * 2 ** (attempt - 1))));
    }
  }
}

const arg = (name: string) => `--${name}`;

export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3a?:\/\/([^/]+)\/(.*)$/.exec(uri);
  if (!m?.[1]) throw new Error(`not an s3:// URI: ${uri}`);
  return { bucket: m[1], key: m[2] ?? "" };
}

/** A local path as the literal file:// URI the job reads (glue/csv_ingest/io/storage.py): not percent-encoded, like Hadoop paths. */
export function fileUri(path: string): string {
  return `file://${resolve(path)}`;
}

/** A folder as a literal file:// URI with a trailing slash (what the job prefixes keys with). */
export function folderUri(path: string): string {
  const uri = fileUri(path);
  return uri.endsWith("/") ? uri : `${uri}/`;
}

/**
 * An object's bytes, or null when it does not exist. The request and the body's read are retried together like the
 * job's own S3 client on AWS would retry its reads (soak finding: one throttle while staging failed a whole run).
 */
async function getText(
  s3: S3Client,
  retry: PublishRetry,
  bucket: string,
  key: string,
  versionId?: string | null,
): Promise<Buffer | null> {
  try {
    return await withRetries(async () => {
      const r = await s3.send(
        new GetObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }),
      );
      return Buffer.from((await r.Body?.transformToByteArray()) ?? []);
    }, retry);
  } catch (e) {
    if (e instanceof NoSuchKey || (e as { name?: string }).name === "NoSuchKey") return null;
    throw e;
  }
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/**
 * A file system allows at most 255 bytes per path component; an S3 key may have a segment of any length up to its
 * 1,024 bytes (soak finding F2: ENAMETOOLONG). Local paths only — never a key — spell a segment over
 * LOCAL_NAME_MAX_BYTES as "~sha256-" + the hex SHA-256 of its UTF-8 bytes: the same rule as the job's local storage
 * (glue/csv_ingest/io/storage.py, local_name), so the job finds what the service staged, and the service maps the job's local
 * names back to the key's segments when it copies `out/` to S3.
 */
export const LOCAL_NAME_MAX_BYTES = 200;
const LOCAL_NAME_HASH_PREFIX = "~sha256-";

export function localName(segment: string): string {
  if (Buffer.byteLength(segment, "utf8") <= LOCAL_NAME_MAX_BYTES) return segment;
  return `${LOCAL_NAME_HASH_PREFIX}${createHash("sha256").update(segment, "utf8").digest("hex")}`;
}

/** A key as a relative local path: each `/`-separated segment through localName. */
export const localPath = (key: string) => key.split("/").map(localName).join("/");

/** Local name → segment, for every long segment of every key the manifest names (uploads, outputs, stats). */
function longSegmentsOf(value: unknown, into = new Map<string, string>()): Map<string, string> {
  if (typeof value === "string") {
    for (const segment of value.split("/")) {
      const name = localName(segment);
      if (name !== segment) into.set(name, segment);
    }
  } else if (Array.isArray(value)) {
    for (const v of value) longSegmentsOf(v, into);
  } else if (value && typeof value === "object") {
    for (const v of Object.values(value)) longSegmentsOf(v, into);
  }
  return into;
}

/** The S3 key of a file the job wrote under `out/` (its relative path's hashed names mapped back). */
function keyOfLocal(relativePath: string, longSegments: ReadonlyMap<string, string>): string {
  return relativePath
    .split(sep)
    .map((name) => {
      if (!name.startsWith(LOCAL_NAME_HASH_PREFIX)) return name;
      const segment = longSegments.get(name);
      if (segment === undefined) throw new Error(`${relativePath}: no key in the manifest has a segment named ${name}`);
      return segment;
    })
    .join("/");
}

/** Hadoop's local checksum files (`.part-….crc`) exist only on the local file system; S3 never has them. */
const isLocalChecksum = (name: string) => name.startsWith(".") && name.endsWith(".crc");

const contentType = (key: string) =>
  key.endsWith(".json") ? "application/json" : key.endsWith(".csv") ? "text/csv" : "application/octet-stream";

/**
 * The line of a failed job's log that says why: the exception line of the last Python traceback, else the last
 * error-looking line that is not Spark/py4j logging, else the last line.
 */
export function failureLine(log: string): string {
  const lines = log.split(/\r?\n/);
  const clip = (l: string) => l.trim().slice(0, 1000);
  const tb = lines.map((l) => l.trim()).lastIndexOf("Traceback (most recent call last):");
  if (tb >= 0) {
    const exception = lines.slice(tb + 1).find((l) => l.trim() !== "" && !/^\s/.test(l));
    if (exception) return clip(exception);
  }
  const isLogging = (l: string) => /^\d{2,4}[-/]\d\d[-/]\d\d[ T][\d:,.]+\s+(TRACE|DEBUG|INFO|WARN|WARNING)\b/.test(l);
  const meaningful = lines.filter((l) => l.trim() !== "" && !isLogging(l));
  const err = [...meaningful].reverse().find((l) => /(Error|Exception|Failed)\b/.test(l));
  return clip(err ?? meaningful.at(-1) ?? lines.filter((l) => l.trim()).at(-1) ?? "no output");
}

export function sparkExecutor(opts: SparkExecutorOptions): JobExecutor {
  return async ({ id, jobName, arguments: runArgs, signal }): Promise<ExecutionResult> => {
    const manifestUri = runArgs[arg(GLUE_ARGUMENTS.manifestUri)];
    if (!manifestUri) return { ok: false, error: `missing argument ${arg(GLUE_ARGUMENTS.manifestUri)}` };
    const stage = join(opts.stageRoot, id);
    const dataDir = join(stage, "data");
    const outDir = join(stage, "out");
    mkdirSync(dataDir, { recursive: true });
    mkdirSync(outDir, { recursive: true });

    // 1. stage the manifest and its uploads
    const retry: PublishRetry = { ...PUBLISH_RETRY, ...opts.publishRetry };
    const { bucket, key: manifestKey } = parseS3Uri(manifestUri);
    const manifestBody = await getText(opts.s3, retry, bucket, manifestKey);
    if (!manifestBody) return { ok: false, error: `manifest ${manifestUri} does not exist` };
    const manifestFile = join(stage, "manifest.json");
    writeFileSync(manifestFile, manifestBody);
    const manifest = parseManifest(manifestBody.toString("utf8"), manifestUri);

    const poisoned = manifest.uploads.find((u) => opts.failKeys?.some((k) => k && u.key.includes(k)));
    if (poisoned) return { ok: false, error: `injected fault: ${poisoned.key} matches TWIN_GLUE_FAIL_KEYS` };

    const t0 = Date.now();
    const stageFile = (key: string, body: Buffer | null) => {
      // A missing object is left missing: the job meets it as it would on S3.
      if (!body) return;
      // The key as a literal path (not join(), which folds `x/../`; long segments by localName): the job opens `<data root><key>` literally, and
      // the OS resolves `x/..` only when the folder x exists.
      const file = `${dataDir}/${localPath(key)}`;
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, body);
    };
    const { bulkGet } = opts;
    const inBulk = bulkGet ? manifest.uploads.filter((u) => u.size <= BULK_OBJECT_MAX_BYTES) : [];
    const bulkSet = new Set(inBulk);
    if (bulkGet && inBulk.length > 0) {
      const wanted = inBulk.map((u) => ({ key: u.key, versionId: u.versionId ?? undefined, size: u.size }));
      await mapLimit(
        bulkBatches(wanted, (o) => o.size),
        BULK_CONCURRENCY,
        async (batch) => {
          for (const [o, body] of await stageInBulk(bulkGet, manifest.bucket, batch, retry)) stageFile(o.key, body);
        },
      );
    }
    await mapLimit(
      manifest.uploads.filter((u) => !bulkSet.has(u)),
      COPY_CONCURRENCY,
      async (u) => stageFile(u.key, await getText(opts.s3, retry, manifest.bucket, u.key, u.versionId)),
    );
    if (signal.aborted) return { ok: false, error: "aborted before Spark started" };
    const t1 = Date.now();

    // 2. run the job with the real arguments, roots pointed at the staging folder
    const args: Record<string, string> = {
      ...runArgs,
      [arg(GLUE_ARGUMENTS.manifestUri)]: fileUri(manifestFile),
      [arg(GLUE_ARGUMENTS.dataRoot)]: folderUri(dataDir),
      [arg(GLUE_ARGUMENTS.outputRoot)]: folderUri(outDir),
      "--JOB_NAME": jobName,
      "--JOB_RUN_ID": id,
    };
    const argv = [opts.script, ...Object.entries(args).flat()];
    const logFile = join(stage, "job.log");
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: string }>(
      (resolve) => {
        const log = createWriteStream(logFile);
        const child = spawn(opts.python, argv, {
          cwd: stage,
          detached: true, // its own process group, so a timeout or stop ends the JVM too
          stdio: ["ignore", "pipe", "pipe"],
          env: {
            ...process.env,
            ...opts.env,
            PYSPARK_PYTHON: opts.python,
            PYSPARK_DRIVER_PYTHON: opts.python,
            SPARK_LOCAL_IP: "127.0.0.1",
            PYTHONUNBUFFERED: "1",
          },
        });
        child.stdout?.pipe(log, { end: false });
        child.stderr?.pipe(log, { end: false });
        const kill = (sig: NodeJS.Signals) => {
          try {
            if (child.pid) process.kill(-child.pid, sig);
          } catch {
            // already gone
          }
        };
        const onAbort = () => {
          kill("SIGTERM");
          setTimeout(() => kill("SIGKILL"), 5_000).unref();
        };
        signal.addEventListener("abort", onAbort, { once: true });
        child.once("error", (e) => {
          signal.removeEventListener("abort", onAbort);
          log.end(() => resolve({ code: null, signal: null, error: e.message }));
        });
        child.once("close", (code, sig) => {
          signal.removeEventListener("abort", onAbort);
          log.end(() => resolve({ code, signal: sig }));
        });
      },
    );
    // 3. publish what the job wrote — whatever the outcome: on AWS the job writes S3 directly, so a failed, timed-out
    //    or stopped run leaves its stats, partial outputs and staging leftovers in the bucket as well.
    const t2 = Date.now();
    let copyError: string | null = null;
    let published = 0;
    try {
      const files = filesUnder(outDir).filter((f) => !isLocalChecksum(f.split(sep).at(-1) ?? ""));
      published = files.length;
      const longSegments = longSegmentsOf(manifest);
      const keyOf = (file: string) => keyOfLocal(relative(outDir, file), longSegments);
      const { bulkPut } = opts;
      const small = bulkPut ? files.filter((f) => statSync(f).size <= BULK_OBJECT_MAX_BYTES) : [];
      const inBulk = new Set(small);
      const own = files.filter((f) => !inBulk.has(f));
      if (bulkPut && small.length > 0) {
        const objects = small.map((file) => {
          const key = keyOf(file);
          return { key, contentType: contentType(key), body: readFileSync(file) };
        });
        await mapLimit(
          bulkBatches(objects, (o) => o.body.length),
          BULK_CONCURRENCY,
          (batch) => publishInBulk(bulkPut, manifest.bucket, batch, retry),
        );
      }
      await mapLimit(own, COPY_CONCURRENCY, async (file) => {
        const key = keyOf(file);
        const body = readFileSync(file);
        await withRetries(
          () =>
            opts.s3.send(
              new PutObjectCommand({ Bucket: manifest.bucket, Key: key, Body: body, ContentType: contentType(key) }),
            ),
          retry,
        );
      });
    } catch (e) {
      copyError = `could not copy the job's output to s3://${manifest.bucket}/: ${messageOf(e)}`;
    }
    const seconds = (from: number, to: number) => ((to - from) / 1000).toFixed(1);
    opts.log?.info(
      `glue: run ${id.slice(0, 12)}… staged ${manifest.uploads.length} upload(s) in ${seconds(t0, t1)} s, job.py ` +
        `${seconds(t1, t2)} s, published ${published} object(s) in ${seconds(t2, Date.now())} s`,
    );
    if (signal.aborted) return { ok: false, error: "job run aborted" };
    if (exit.error) return { ok: false, error: `job could not start: ${exit.error}` };
    if (exit.code !== 0) {
      const why = failureLine(readFileSync(logFile, "utf8"));
      return { ok: false, error: `job.py exited with ${exit.code ?? exit.signal}: ${why}` };
    }
    if (copyError) return { ok: false, error: copyError };
    // The staging folder goes after the run has ended (thousands of small files take a while to delete); on AWS
    // there is none.
    if (!opts.keepStage) void rm(stage, { recursive: true, force: true }).catch(() => undefined);
    return { ok: true };
  };
}
