/**
 * Runs one job run of the real `glue/job.py` on local Spark (local[*]). Spark reads and writes a staging folder, not
 * the emulator: the manifest and its uploads' objects are copied from the emulator's bucket into
 * `.twin/glue/<runId>/data/` (same relative keys), the job runs with the real arguments pointed at that folder, and
 * everything it wrote under `out/` is copied back to the bucket under the same keys (processed/...), whether the run
 * succeeded or not (on AWS the job's writes land in S3 as they happen).
 */
import { spawn } from "node:child_process";
import { createWriteStream, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { GetObjectCommand, NoSuchKey, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { GLUE_ARGUMENTS, mapLimit, parseManifest } from "@ingest/core";
import { messageOf } from "../errors.js";
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
  /** Where each run's phases are reported (objects staged, job.py, objects published: counts and seconds). */
  readonly log?: { info(m: string): void } | undefined;
}

/** Objects copied between the emulator's S3 and the staging folder at once (each way). */
export const COPY_CONCURRENCY = 32;

const arg = (name: string) => `--${name}`;

export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3a?:\/\/([^/]+)\/(.*)$/.exec(uri);
  if (!m?.[1]) throw new Error(`not an s3:// URI: ${uri}`);
  return { bucket: m[1], key: m[2] ?? "" };
}

/** A local path as the literal file:// URI the job reads (glue/storage.py): not percent-encoded, like Hadoop paths. */
export function fileUri(path: string): string {
  return `file://${resolve(path)}`;
}

/** A folder as a literal file:// URI with a trailing slash (what the job prefixes keys with). */
export function folderUri(path: string): string {
  const uri = fileUri(path);
  return uri.endsWith("/") ? uri : `${uri}/`;
}

async function getText(s3: S3Client, bucket: string, key: string, versionId?: string | null): Promise<Buffer | null> {
  try {
    const r = await s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }),
    );
    return Buffer.from((await r.Body?.transformToByteArray()) ?? []);
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
    const { bucket, key: manifestKey } = parseS3Uri(manifestUri);
    const manifestBody = await getText(opts.s3, bucket, manifestKey);
    if (!manifestBody) return { ok: false, error: `manifest ${manifestUri} does not exist` };
    const manifestFile = join(stage, "manifest.json");
    writeFileSync(manifestFile, manifestBody);
    const manifest = parseManifest(manifestBody.toString("utf8"), manifestUri);

    const poisoned = manifest.uploads.find((u) => opts.failKeys?.some((k) => k && u.key.includes(k)));
    if (poisoned) return { ok: false, error: `injected fault: ${poisoned.key} matches TWIN_GLUE_FAIL_KEYS` };

    const t0 = Date.now();
    await mapLimit(manifest.uploads, COPY_CONCURRENCY, async (u) => {
      const body = await getText(opts.s3, manifest.bucket, u.key, u.versionId);
      // A missing object is left missing: the job meets it as it would on S3.
      if (!body) return;
      // The key as a literal path (not join(), which folds `x/../`): the job opens `<data root><key>` literally, and
      // the OS resolves `x/..` only when the folder x exists.
      const file = `${dataDir}/${u.key}`;
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, body);
    });
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
      await mapLimit(files, COPY_CONCURRENCY, async (file) => {
        const key = relative(outDir, file).split(sep).join("/");
        await opts.s3.send(
          new PutObjectCommand({
            Bucket: manifest.bucket,
            Key: key,
            Body: readFileSync(file),
            ContentType: contentType(key),
          }),
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
