/**
 * The Spark executor around a stand-in job (a Node script, no Spark, no emulator): the S3 client is a fake that
 * answers what a test tells it to, the retry backoff runs on a fake clock.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand, type S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { buildManifest, manifestKey, toUpload } from "@ingest/core";
import { describe, expect, it } from "vitest";
import type { BulkGet, BulkObject, BulkPut } from "../../src/glue/bulk.js";
import {
  localName,
  PUBLISH_RETRY,
  publishInBulk,
  retryableKind,
  sparkExecutor,
  withRetries,
} from "../../src/glue/spark.js";
import { workspaceRoot } from "../../src/paths.js";

const BUCKET = "bucket";
const RUN_KEY = "20261130T120000Z-abcdef01";

/** The job: writes one output file under each upload's outputPrefix and the stats document, from the manifest. */
const JOB = `
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, v, i, all) => (i % 2 ? acc : [...acc, [v.slice(2), all[i + 1]]]), []));
const local = (uri) => uri.slice("file://".length);
const manifest = JSON.parse(readFileSync(local(args.manifest_uri), "utf8"));
const write = (key, text) => { const f = local(args.output_root) + key; mkdirSync(dirname(f), { recursive: true }); writeFileSync(f, text); };
for (const u of manifest.uploads) write(u.outputPrefix + "part-00000.csv", readFileSync(local(args.data_root) + u.key, "utf8"));
write(manifest.statsKey, "{}\\n");
`;

function throttled(): S3ServiceException {
  return new S3ServiceException({
    name: "SlowDown",
    $fault: "server",
    $metadata: { httpStatusCode: 503 },
    message: "Please reduce your request rate.",
  });
}

interface FakeS3 {
  readonly client: S3Client;
  readonly puts: Map<string, string>;
}

/**
 * GetObject answers the manifest and the uploads, failing with `getError(n)` for its n-th call; PutObject fails with
 * `putError(n)` for its n-th call (1-based).
 */
function fakeS3(
  objects: Map<string, string>,
  putError: (n: number) => Error | null,
  getError: (n: number) => Error | null = () => null,
): FakeS3 {
  const puts = new Map<string, string>();
  let n = 0;
  let gets = 0;
  const send = async (command: unknown) => {
    if (command instanceof GetObjectCommand) {
      const error = getError(++gets);
      if (error) throw error;
      const body = objects.get(command.input.Key ?? "");
      if (body === undefined) throw Object.assign(new Error("no such key"), { name: "NoSuchKey" });
      return { Body: { transformToByteArray: async () => new TextEncoder().encode(body) } };
    }
    if (command instanceof PutObjectCommand) {
      const error = putError(++n);
      if (error) throw error;
      puts.set(command.input.Key ?? "", Buffer.from(command.input.Body as Uint8Array).toString("utf8"));
      return {};
    }
    throw new Error(`unexpected command ${String(command)}`);
  };
  return { client: { send } as unknown as S3Client, puts };
}

/** The same job in Python through the real job's local storage (glue/csv_ingest/io/storage.py), as glue/job.py reads and writes. */
const PY_JOB = `
import json, sys
sys.path.insert(0, ${JSON.stringify(join(workspaceRoot(), "glue"))})
from csv_ingest.io import storage
args = dict(zip([a[2:] for a in sys.argv[1::2]], sys.argv[2::2]))
manifest = json.loads(storage.read_text(args["manifest_uri"]))
for u in manifest["uploads"]:
    text = storage.read_text(storage.join_uri(args["data_root"], u["key"]))
    storage.write_text(storage.join_uri(args["output_root"], u["outputPrefix"] + "part-00000.csv"), text, "text/csv")
storage.write_text(storage.join_uri(args["output_root"], manifest["statsKey"]), "{}\\n")
`;

function setup(keys: readonly string[], job: { file: string; text: string } = { file: "job.mjs", text: JOB }) {
  const dir = mkdtempSync(join(tmpdir(), "spark-executor-"));
  const script = join(dir, job.file);
  writeFileSync(script, job.text);
  const uploads = keys.map((key, i) =>
    toUpload({
      bucket: BUCKET,
      key,
      versionId: `v${i}`,
      etag: `e${i}`,
      lastModified: "2026-11-30T12:00:00.000Z",
      size: 4,
    }),
  );
  const manifest = buildManifest({
    runKey: RUN_KEY,
    bucket: BUCKET,
    createdAt: new Date("2026-11-30T12:00:00Z"),
    uploads,
  });
  const objects = new Map<string, string>([[manifestKey(RUN_KEY), JSON.stringify(manifest)]]);
  for (const [i, key] of keys.entries()) objects.set(key, `id\n${i}\n`);
  return { dir, script, manifest, objects };
}

const runArgs = { "--manifest_uri": `s3://${BUCKET}/${manifestKey(RUN_KEY)}`, "--run_key": RUN_KEY };

describe("spark executor: copying out/ back to S3 (soak finding F4)", () => {
  it("retries throttled and failed PutObjects with backoff instead of failing the run", async () => {
    const { dir, script, manifest, objects } = setup(["input/a.csv"]);
    // the first three PUTs are throttled, the fourth answers 500: each is an error the SDK client gave up on
    const s3 = fakeS3(objects, (n) =>
      n <= 3 ? throttled() : n === 4 ? Object.assign(new Error("x"), { $metadata: { httpStatusCode: 500 } }) : null,
    );
    const sleeps: number[] = [];
    const execute = sparkExecutor({
      s3: s3.client,
      python: process.execPath,
      script,
      stageRoot: dir,
      publishRetry: { sleep: async (ms) => void sleeps.push(ms), random: () => 0.5 },
    });
    const result = await execute({
      id: "jr_1",
      jobName: "job",
      arguments: runArgs,
      signal: new AbortController().signal,
    });
    expect(result).toEqual({ ok: true });
    const output = `${manifest.uploads[0]?.outputPrefix}part-00000.csv`;
    expect([...s3.puts.keys()].sort()).toEqual([manifest.statsKey, output].sort());
    expect(s3.puts.get(output)).toBe("id\n0\n");
    // four failures → four waits; full jitter at 0.5 of min(20 s, base × 2^(attempt-1)); a throttle's base is 500 ms
    expect(sleeps).toHaveLength(4);
    expect(sleeps.every((ms) => ms > 0)).toBe(true);
  });

  it("retries throttled GetObjects while staging the manifest and the uploads (the soak's runs FAILED on one)", async () => {
    const { dir, script, manifest, objects } = setup(["input/a.csv"]);
    // GET 1 (the manifest) throttled twice, then the upload's GET throttled once: 3 failures before staging is done
    const s3 = fakeS3(
      objects,
      () => null,
      (n) => (n <= 2 || n === 4 ? throttled() : null),
    );
    const sleeps: number[] = [];
    const execute = sparkExecutor({
      s3: s3.client,
      python: process.execPath,
      script,
      stageRoot: dir,
      publishRetry: { sleep: async (ms) => void sleeps.push(ms), random: () => 0.5 },
    });
    const result = await execute({
      id: "jr_2",
      jobName: "job",
      arguments: runArgs,
      signal: new AbortController().signal,
    });
    expect(result).toEqual({ ok: true });
    expect(s3.puts.get(`${manifest.uploads[0]?.outputPrefix}part-00000.csv`)).toBe("id\n0\n");
    // 0.5 × 500 ms, 0.5 × 1,000 ms for the manifest; 0.5 × 500 ms for the upload
    expect(sleeps).toEqual([250, 500, 250]);
  });

  it("still fails the run, naming the cause, when a PUT fails on every attempt or is not retryable", async () => {
    const { dir, script, objects } = setup(["input/a.csv"]);
    const sleeps: number[] = [];
    const always = sparkExecutor({
      s3: fakeS3(objects, () => throttled()).client,
      python: process.execPath,
      script,
      stageRoot: dir,
      publishRetry: { sleep: async (ms) => void sleeps.push(ms), random: () => 0, maxAttempts: 4 },
    });
    const r = await always({ id: "jr_2", jobName: "job", arguments: runArgs, signal: new AbortController().signal });
    expect(r).toEqual({
      ok: false,
      error: `could not copy the job's output to s3://${BUCKET}/: Please reduce your request rate.`,
    });

    const denied = Object.assign(new Error("Access Denied"), {
      name: "AccessDenied",
      $metadata: { httpStatusCode: 403 },
    });
    let calls = 0;
    await expect(
      withRetries(
        async () => {
          calls++;
          throw denied;
        },
        {
          maxAttempts: 10,
          baseDelayMs: 100,
          throttleBaseDelayMs: 500,
          maxDelayMs: 20_000,
          sleep: async () => {},
          random: () => 0,
        },
      ),
    ).rejects.toBe(denied);
    expect(calls).toBe(1);
  });

  it("backs off as the SDK's standard strategy does: full jitter, 500 ms base after a throttle, 100 ms otherwise, 20 s cap", async () => {
    const sleeps: number[] = [];
    const errors = [throttled(), throttled(), Object.assign(new Error("reset"), { code: "ECONNRESET" })];
    errors.push(...Array.from({ length: 9 }, () => throttled()));
    let i = 0;
    await expect(
      withRetries(
        async () => {
          throw errors[i++];
        },
        {
          maxAttempts: 10,
          baseDelayMs: 100,
          throttleBaseDelayMs: 500,
          maxDelayMs: 20_000,
          sleep: async (ms) => void sleeps.push(ms),
          random: () => 0.999999,
        },
      ),
    ).rejects.toBe(errors[9]);
    expect(i).toBe(10);
    expect(sleeps).toEqual([499, 999, 399, 3999, 7999, 15999, 19999, 19999, 19999]);
    expect(retryableKind(new Error("plain"))).toBeNull();
  });
});

describe("spark executor: keys with segments longer than a file name (soak finding F2)", () => {
  const long300 = `input/soak/${"ü".repeat(150)}.csv`; // a 300-byte segment (304 with .csv)
  const long1024 = `input/${"a".repeat(300)}/${"é".repeat(200)}/${"b".repeat(1024 - 6 - 300 - 1 - 400 - 1 - 4)}.csv`;

  it("stages them, runs the job's own local storage on them and copies the outputs back under their real keys", async () => {
    expect([Buffer.byteLength(long300) - "input/soak/".length - 4, Buffer.byteLength(long1024)]).toEqual([300, 1024]);
    const keys = [long300, long1024, "input/short.csv"];
    const { dir, script, manifest, objects } = setup(keys, { file: "job.py", text: PY_JOB });
    const s3 = fakeS3(objects, () => null);
    const execute = sparkExecutor({
      s3: s3.client,
      python: join(workspaceRoot(), ".venv", "bin", "python"),
      script,
      stageRoot: dir,
      keepStage: true,
    });
    const result = await execute({
      id: "jr_3",
      jobName: "job",
      arguments: runArgs,
      signal: new AbortController().signal,
    });
    expect(result).toEqual({ ok: true });
    // output keys are the documented ones (uploadOutputName, unchanged), with their long segments as they are
    const expected = [manifest.statsKey, ...manifest.uploads.map((u) => `${u.outputPrefix}part-00000.csv`)];
    expect([...s3.puts.keys()].sort()).toEqual(expected.sort());
    manifest.uploads.forEach((u, i) => {
      expect(s3.puts.get(`${u.outputPrefix}part-00000.csv`)).toBe(`id\n${i}\n`);
    });
    expect(manifest.uploads[0]?.outputPrefix).toContain("ü".repeat(150));
    // the staged input's long segment is a hashed local name
    expect(localName(`${"ü".repeat(150)}.csv`)).toMatch(/^~sha256-[0-9a-f]{64}$/);
    expect(localName("short.csv")).toBe("short.csv");
  });
});

describe("spark executor: publishing a run's small outputs in bulk (issue 13, many small uploads)", () => {
  const noWait = (sleeps: number[] = []) => ({ sleep: async (ms: number) => void sleeps.push(ms), random: () => 0.5 });

  it("publishes every object up to 1 MiB with ONE bulk request, and a bigger one with its own PutObject", async () => {
    const big = `${"x".repeat(1023)}\n`.repeat(1025); // 1,049,600 bytes: over BULK_OBJECT_MAX_BYTES
    const { dir, script, manifest, objects } = setup(["input/a.csv", "input/b.csv", "input/c.csv", "input/big.csv"]);
    objects.set("input/big.csv", big);
    const s3 = fakeS3(objects, () => null);
    const requests: { bucket: string; objects: BulkObject[] }[] = [];
    const bulkPut: BulkPut = async (bucket, objs) => {
      requests.push({ bucket, objects: [...objs] });
      return objs.map((o) => ({ key: o.key, outcome: "ok" }));
    };
    const execute = sparkExecutor({
      s3: s3.client,
      python: process.execPath,
      script,
      stageRoot: dir,
      bulkPut,
      publishRetry: noWait(),
    });
    const result = await execute({
      id: "jr_b1",
      jobName: "job",
      arguments: runArgs,
      signal: new AbortController().signal,
    });
    expect(result).toEqual({ ok: true });
    const [a, b, c, bigUpload] = manifest.uploads.map((u) => `${u.outputPrefix}part-00000.csv`);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.bucket).toBe(BUCKET);
    const sent = new Map(requests[0]?.objects.map((o) => [o.key, o]));
    expect([...sent.keys()].sort()).toEqual([a, b, c, manifest.statsKey].sort());
    expect(sent.get(a ?? "")?.body.toString("utf8")).toBe("id\n0\n");
    expect(sent.get(c ?? "")?.body.toString("utf8")).toBe("id\n2\n");
    expect(sent.get(a ?? "")?.contentType).toBe("text/csv");
    expect(sent.get(manifest.statsKey)?.contentType).toBe("application/json");
    // the big output: its own PutObject, as before
    expect([...s3.puts.keys()]).toEqual([bigUpload]);
    expect(s3.puts.get(bigUpload ?? "")).toBe(big);
  });

  it("stages every upload up to 1 MiB with ONE bulk GET, by version id; a bigger one with its own GetObject", async () => {
    const { dir, script, manifest, objects } = setup(["input/a.csv", "input/b.csv", "input/gone.csv", "input/big.csv"]);
    const big = `${"y".repeat(1023)}\n`.repeat(1025);
    objects.set("input/big.csv", big);
    objects.delete("input/gone.csv");
    // the manifest says how big each upload is: the big one goes alone
    const sized = {
      ...manifest,
      uploads: manifest.uploads.map((u) => (u.key === "input/big.csv" ? { ...u, size: big.length } : u)),
    };
    objects.set(manifestKey(RUN_KEY), JSON.stringify(sized));
    const gets: string[] = [];
    const s3 = fakeS3(objects, () => null);
    const client = {
      send: async (command: unknown) => {
        if (command instanceof GetObjectCommand) gets.push(command.input.Key ?? "");
        return s3.client.send(command as never);
      },
    } as unknown as S3Client;
    const requests: { bucket: string; objects: { key: string; versionId?: string | undefined }[] }[] = [];
    const bulkGet: BulkGet = async (bucket, objs) => {
      requests.push({ bucket, objects: objs.map((o) => ({ key: o.key, versionId: o.versionId })) });
      return objs.map((o) => {
        const body = objects.get(o.key);
        return body === undefined
          ? { key: o.key, outcome: "error:NoSuchKey" }
          : { key: o.key, outcome: "ok", body: Buffer.from(body) };
      });
    };
    const execute = sparkExecutor({
      s3: client,
      python: process.execPath,
      script,
      stageRoot: dir,
      bulkGet,
      keepStage: true,
      publishRetry: noWait(),
    });
    const result = await execute({
      id: "jr_b2",
      jobName: "job",
      arguments: runArgs,
      signal: new AbortController().signal,
    });
    // the stand-in job fails on the missing upload, as the job meets a missing object on S3
    expect(result.ok).toBe(false);
    expect(requests).toEqual([
      {
        bucket: BUCKET,
        objects: [
          { key: "input/a.csv", versionId: "v0" },
          { key: "input/b.csv", versionId: "v1" },
          { key: "input/gone.csv", versionId: "v2" },
        ],
      },
    ]);
    expect(gets).toEqual([manifestKey(RUN_KEY), "input/big.csv"]);
    const staged = (key: string) => readFileSync(join(dir, "jr_b2", "data", key), "utf8");
    expect([staged("input/a.csv"), staged("input/b.csv"), staged("input/big.csv")]).toEqual([
      "id\n0\n",
      "id\n1\n",
      big,
    ]);
    expect(existsSync(join(dir, "jr_b2", "data", "input", "gone.csv"))).toBe(false);
  });

  it("sends again only the objects that were throttled, failed or lost, backing off as for one PutObject", async () => {
    const objs: BulkObject[] = ["k1", "k2", "k3", "k4"].map((key) => ({
      key,
      contentType: "text/csv",
      body: Buffer.from(key),
    }));
    const calls: string[][] = [];
    const answers: Record<string, string>[] = [
      { k1: "ok", k2: "fault:throttle", k3: "fault:lostAnswer", k4: "ok" },
      { k2: "fault:serverError", k3: "ok" },
      { k2: "ok" },
    ];
    const bulkPut: BulkPut = async (_bucket, sent) => {
      const answer = answers[calls.length] ?? {};
      calls.push(sent.map((o) => o.key));
      return sent.map((o) => ({ key: o.key, outcome: answer[o.key] ?? "missing" }));
    };
    const sleeps: number[] = [];
    await publishInBulk(bulkPut, BUCKET, objs, { ...PUBLISH_RETRY, ...noWait(sleeps) });
    expect(calls).toEqual([["k1", "k2", "k3", "k4"], ["k2", "k3"], ["k2"]]);
    // full jitter at 0.5: a throttle among them → 0.5 × 500 ms; then a server error → 0.5 × 100 ms × 2
    expect(sleeps).toEqual([250, 100]);
  });

  it("fails naming the key when an object's error is not retryable, or it still fails after the last attempt", async () => {
    const objs: BulkObject[] = [{ key: "processed/x.csv", contentType: "text/csv", body: Buffer.from("x") }];
    const sleeps: number[] = [];
    let calls = 0;
    const denied: BulkPut = async (_b, sent) => {
      calls++;
      return sent.map((o) => ({ key: o.key, outcome: "error:AccessDenied" }));
    };
    await expect(publishInBulk(denied, BUCKET, objs, { ...PUBLISH_RETRY, ...noWait(sleeps) })).rejects.toThrow(
      "processed/x.csv: error:AccessDenied",
    );
    expect([calls, sleeps]).toEqual([1, []]);
    const throttled: BulkPut = async (_b, sent) => sent.map((o) => ({ key: o.key, outcome: "fault:throttle" }));
    await expect(
      publishInBulk(throttled, BUCKET, objs, { ...PUBLISH_RETRY, ...noWait(sleeps), maxAttempts: 3 }),
    ).rejects.toThrow("processed/x.csv: fault:throttle after 3 attempts");
    expect(sleeps).toEqual([250, 500]);
    // a request that failed as a whole with a retryable error goes again, whole
    let whole = 0;
    const flaky: BulkPut = async (_b, sent) => {
      if (whole++ === 0) throw Object.assign(new Error("reset"), { code: "ECONNRESET" });
      return sent.map((o) => ({ key: o.key, outcome: "ok" }));
    };
    await publishInBulk(flaky, BUCKET, objs, { ...PUBLISH_RETRY, ...noWait() });
    expect(whole).toBe(2);
  });
});
