/**
 * How long ONE batching-Lambda invocation's work takes, in real time: handleUploadBatch with the REAL adapters
 * (DynamoLedger, S3Objects, GlueJobs) and the SDK's own clients, retry strategies and backoff (real timers), over the
 * fake AWS of packages/adapters/tests/helpers/fake-aws.ts. The fake answers at once; this script adds a round-trip
 * latency per request (drawn from a profile below) and the SDK's socket limit (50 per client), so the time measured is
 * what the code's concurrency (64 HeadObject / PutItem, 32 claims, 16 index shards, the settle window, the burst
 * check) makes of those latencies — plus this machine's CPU for serializing, signing and parsing every request (the
 * fake's own work included, so the CPU figure is an upper bound).
 *
 * The worst path of the batcher: a FULL batch (4,000 records, queue.batchSize) of new uploads arriving while 6,000
 * older uploads are pending (older than the burst hold, so the full batch does not hold): it records 4,000 uploads,
 * then starts one run of 10,000 (runs.maxFilesPerRun): settle reads, the run item, a 10,000-entry manifest, 10,000
 * conditional claims, StartJobRun. The pending index lags 0–2 s (the fake's eventual consistency), so the settle
 * window does take rounds.
 *
 * The latencies are ASSUMPTIONS, not AWS measurements (no AWS here): see PROFILES. Usage:
 *   pnpm exec tsx packages/core/bench/batcher-timing.ts [--profile=a,b] [--pending=6000] [--batch=4000] [--repeat=N]
 *   … --mode=recorder --pending=10000 --batch=10000: the recorder's worst path instead — a run of 10,000 files ends
 *   (recordRunEnd settles each upload from the stats), then the next run of 10,000 pending uploads is started.
 */
import { loadavg } from "node:os";
import { DynamoLedger, GlueJobs, S3Objects } from "../../adapters/src/index.js";
import type { FaultRates } from "../../adapters/tests/helpers/fake-aws.js";
import { pipelineConfig } from "../src/config/pipeline.js";
import type { Deps } from "../src/ledger/ports.js";
import { parseManifest } from "../src/manifest/format.js";
import { recordRunEnd } from "../src/runs/completion.js";
import { handleUploadBatch } from "../src/runs/intake.js";
import { startNextRun } from "../src/runs/start.js";
import { CountingMetrics, MemoryLog, sequentialRunKeys } from "../src/testing/fakes.js";
import { toUpload } from "../src/upload/identity.js";
import { objectCreatedEvent } from "../tests/helpers/world.js";
import { Rng } from "./sim/prng.js";
import { ledgerFakeAws, TABLE } from "./sim/world.js";

type Service = "dynamodb" | "s3" | "glue";
/** [low, high] ms, uniform; `tail` of the requests take [tailLow, tailHigh] instead. */
interface Latency {
  readonly ms: readonly [number, number];
  readonly tail: number;
  readonly tailMs: readonly [number, number];
}

interface Profile {
  readonly name: string;
  readonly what: string;
  readonly dynamodb: Latency;
  readonly s3Head: Latency;
  readonly s3Put: Latency;
  /** S3 PUT throughput for the manifest's bytes (MB/s) on top of its latency. */
  readonly s3PutMBps: number;
  readonly glue: Latency;
  readonly faults: Record<Service, FaultRates>;
}

const LAG: readonly [number, number] = [0, 2_000];
const none = (gsiLagMs: readonly [number, number] = [0, 0]): FaultRates => ({ lostAnswer: 0, throttle: 0, gsiLagMs });

// Latencies of the "typical" and "slow" profiles; the throttled profiles are these plus throttling.
const TYPICAL = {
  dynamodb: { ms: [4, 12], tail: 0.01, tailMs: [50, 150] },
  s3Head: { ms: [15, 50], tail: 0.01, tailMs: [100, 300] },
  s3Put: { ms: [50, 150], tail: 0.01, tailMs: [300, 1_000] },
  s3PutMBps: 50,
  glue: { ms: [200, 800], tail: 0.01, tailMs: [1_000, 3_000] },
} satisfies Omit<Profile, "name" | "what" | "faults">;
const SLOW = {
  dynamodb: { ms: [12, 36], tail: 0.02, tailMs: [100, 400] },
  s3Head: { ms: [100, 200], tail: 0.02, tailMs: [200, 1_000] },
  s3Put: { ms: [100, 300], tail: 0.02, tailMs: [1_000, 3_000] },
  s3PutMBps: 20,
  glue: { ms: [500, 2_000], tail: 0.02, tailMs: [2_000, 5_000] },
} satisfies Omit<Profile, "name" | "what" | "faults">;

/** The slow profile's faults (1% of answers lost after apply) with `dynamodb` / `s3` shares of requests throttled. */
function slowFaults(dynamodb: number, s3: number): Profile["faults"] {
  return {
    dynamodb: { lostAnswer: 0.01, throttle: dynamodb, gsiLagMs: LAG },
    s3: { lostAnswer: 0.01, throttle: s3, gsiLagMs: [0, 0] },
    glue: { lostAnswer: 0.01, throttle: 0, gsiLagMs: [0, 0] },
  };
}

const PROFILES: Profile[] = [
  {
    name: "cpu",
    what: "no latency at all: the CPU floor (SDK + fake), index lag 0–2 s",
    dynamodb: { ms: [0, 0], tail: 0, tailMs: [0, 0] },
    s3Head: { ms: [0, 0], tail: 0, tailMs: [0, 0] },
    s3Put: { ms: [0, 0], tail: 0, tailMs: [0, 0] },
    s3PutMBps: Number.POSITIVE_INFINITY,
    glue: { ms: [0, 0], tail: 0, tailMs: [0, 0] },
    faults: { dynamodb: none(LAG), s3: none(), glue: none() },
  },
  {
    name: "typical",
    what: "DynamoDB 4–12 ms (1%: 50–150), S3 HEAD 15–50 ms (1%: 100–300), PUT 50–150 ms + 50 MB/s, Glue 200–800 ms",
    ...TYPICAL,
    faults: { dynamodb: none(LAG), s3: none(), glue: none() },
  },
  {
    name: "slow",
    what:
      "3× typical DynamoDB (12–36 ms, 2%: 100–400), S3 HEAD 100–200 ms (S3's documented small-object latency; 2%: " +
      "200–1,000), PUT 100–300 ms + 20 MB/s, Glue 0.5–2 s (2%: 2–5 s); 1% of answers lost after apply (SDK retries)",
    ...SLOW,
    faults: slowFaults(0, 0),
  },
  {
    name: "typical+throttle10",
    what: "typical, and 10% of DynamoDB requests throttled (SDK backoff: 1 s base, full jitter)",
    ...TYPICAL,
    faults: { dynamodb: { lostAnswer: 0, throttle: 0.1, gsiLagMs: LAG }, s3: none(), glue: none() },
  },
  { name: "slow+throttle2", what: "slow, and 2% of DynamoDB requests throttled", ...SLOW, faults: slowFaults(0.02, 0) },
  {
    name: "slow+throttle10",
    what: "slow, and 10% of DynamoDB requests and 1% of S3 requests throttled (SDK backoff: 1 s base, full jitter)",
    ...SLOW,
    faults: slowFaults(0.1, 0.01),
  },
  {
    name: "slow+throttle50",
    what: "slow, and HALF of all DynamoDB requests throttled (the SDK's retry quota runs out: calls then fail)",
    ...SLOW,
    faults: slowFaults(0.5, 0.01),
  },
];

/** Node's SDK HTTP handler opens at most 50 sockets per client: requests beyond wait for one. */
const MAX_SOCKETS = 50;

class Sockets {
  private free = MAX_SOCKETS;
  private readonly waiting: (() => void)[] = [];
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Timing {
  readonly profile: string;
  readonly records: number;
  readonly pendingBefore: number;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly recorded: number;
  readonly failed: number;
  readonly run: string;
  readonly requests: Record<string, number>;
  readonly throttles: number;
  readonly lostAnswers: number;
  readonly manifestBytes: number;
  readonly marks: Record<string, number>;
}

const BUCKET = "data-bucket";

async function measure(
  profile: Profile,
  pendingBefore: number,
  records: number,
  seed: number,
  mode: "batcher" | "recorder",
): Promise<Timing> {
  const config = pipelineConfig("prod");
  const rng = new Rng(seed);
  const fake = ledgerFakeAws(config, () => Date.now(), rng, "csv-ingest-prod-job");
  // As packages/functions/src/runtime.ts wires them: the SDK's default clients (DynamoDB: 4 attempts), StartJobRun
  // through a client without SDK retries (GlueJobs retries itself, with real pauses).
  const clients = fake.clients();
  const startClient = fake.clients({ maxAttempts: 1 }).glue;
  const ledger = new DynamoLedger({ client: clients.dynamodb, tableName: TABLE });
  // When each phase began (the first call of the method that opens it), ms after the handler was called.
  const marks: Record<string, number> = {};
  let t0 = 0;
  const mark = <T extends object>(target: T, methods: readonly string[]): T =>
    new Proxy(target, {
      get(obj, prop, receiver) {
        const value = Reflect.get(obj, prop, receiver);
        if (typeof value !== "function" || !methods.includes(String(prop))) return value;
        return (...a: unknown[]) => {
          if (t0 > 0) marks[String(prop)] ??= performance.now() - t0;
          return (value as (...x: unknown[]) => unknown).apply(obj, a);
        };
      },
    });
  const objects = new S3Objects(clients.s3);
  const deps: Deps = {
    ledger: mark(ledger, ["takeSlot", "createRun", "claimUpload", "releaseSlot"]),
    objects,
    glue: mark(new GlueJobs(clients.glue, "csv-ingest-prod-job", { startClient }), ["startRun"]),
    clock: { now: () => new Date(), sleep },
    log: new MemoryLog(false),
    metrics: new CountingMetrics(),
    newRunKey: sequentialRunKeys(),
    bucket: BUCKET,
  };

  // Before the clock starts (no latency yet): the older pending uploads, received 10 minutes ago (past the burst
  // hold), and the batch's new objects.
  const oldIso = new Date(Date.now() - 600_000).toISOString();
  const body = "id,name,amount\n1,alpha,10\n2,beta,20\n";
  for (let i = 0; i < pendingBefore; i++) {
    const key = `input/backlog/2026/12/01/part-${String(i).padStart(6, "0")}.csv`;
    fake.putUpload(BUCKET, key, body);
    const head = await objects.head(BUCKET, key);
    if (!head) throw new Error("bench bug: no object");
    await ledger.recordUpload(toUpload(head), oldIso);
  }
  const messages = Array.from({ length: records }, (_, i) => {
    const key = `input/burst/2026/12/01/file-${String(i).padStart(6, "0")}.csv`;
    const v = fake.putUpload(BUCKET, key, body);
    const event = objectCreatedEvent({
      bucket: BUCKET,
      key,
      versionId: v.versionId,
      etag: v.etag.replaceAll('"', ""),
      lastModified: new Date(v.lastModifiedMs).toISOString(),
      size: v.body.length,
    });
    event.detail.object.sequencer = v.sequencer;
    return { messageId: `m-${i}`, body: JSON.stringify(event) };
  });
  // Recorder mode: the backlog is a RUN of `pendingBefore` files (started now, without latency), which ends; `records`
  // more uploads are pending (recorded 10 minutes ago) for the next run the recorder starts.
  let ended: { glueRunId: string; runKey: string } | null = null;
  if (mode === "recorder") {
    const first = await startNextRun(deps, config.runs);
    if (!first.started) throw new Error(`bench bug: no first run (${first.reason})`);
    ended = { glueRunId: first.glueRunId, runKey: first.runKey };
    for (const m of messages) {
      const key = (JSON.parse(m.body) as { detail: { object: { key: string } } }).detail.object.key;
      const head = await objects.head(BUCKET, key);
      if (!head) throw new Error("bench bug: no object");
      await ledger.recordUpload(toUpload(head), oldIso);
    }
    const text = await objects.getText(BUCKET, `manifests/${first.runKey}.json`);
    const manifest = parseManifest(text ?? "", first.runKey);
    await objects.putJson(BUCKET, manifest.statsKey, statsOf(first.runKey, manifest.uploads));
    fake.finishRun(first.glueRunId, "SUCCEEDED");
  }
  // Let the index catch up with the backlog before measuring (it lags up to 2 s).
  await sleep(profile.faults.dynamodb.gsiLagMs[1] + 50);

  const sockets: Record<Service, Sockets> = { dynamodb: new Sockets(), s3: new Sockets(), glue: new Sockets() };
  const requests: Record<string, number> = {};
  let manifestBytes = 0;
  const draw = (l: Latency) => {
    const [lo, hi] = rng.chance(l.tail) ? l.tailMs : l.ms;
    return lo + (hi - lo) * rng.next();
  };
  fake.faults = profile.faults;
  fake.onRequest = async (service, op) => {
    const name = `${service}:${op}`;
    requests[name] = (requests[name] ?? 0) + 1;
    let ms: number;
    if (service === "dynamodb") ms = draw(profile.dynamodb);
    else if (service === "glue") ms = draw(profile.glue);
    else if (op === "PUT")
      ms =
        draw(profile.s3Put) +
        (estimateManifestBytes(
          Math.min(config.runs.maxFilesPerRun, mode === "recorder" ? records : records + pendingBefore),
        ) /
          (profile.s3PutMBps * 1e6)) *
          1e3;
    else ms = draw(profile.s3Head);
    if (ms <= 0) return undefined;
    await sockets[service].take();
    try {
      await sleep(ms);
    } finally {
      sockets[service].give();
    }
    return undefined;
  };

  const cpu0 = process.cpuUsage();
  t0 = performance.now();
  let recorded = 0;
  let failed = 0;
  let run: Awaited<ReturnType<typeof handleUploadBatch>>["run"] = null;
  let threw: string | null = null;
  try {
    if (ended) {
      const r = await recordRunEnd(deps, config, { glueRunId: ended.glueRunId, state: "SUCCEEDED", message: null });
      run = r.next;
      recorded = r.applied ? pendingBefore : 0;
    } else {
      const r = await handleUploadBatch(deps, config, messages);
      run = r.run;
      recorded = r.recorded;
      failed = r.failedMessageIds.length;
    }
  } catch (error) {
    // The invocation fails (Lambda: its message comes back after the visibility timeout); how long it took counts.
    threw = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  fake.onRequest = null;
  if (run?.started) {
    const text = await objects.getText(BUCKET, `manifests/${run.runKey}.json`);
    manifestBytes = text ? Buffer.byteLength(text) : 0;
  }
  return {
    profile: profile.name,
    records,
    pendingBefore,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    recorded,
    failed,
    run: threw
      ? `none — the handler threw ${threw}`
      : run === null
        ? "none"
        : run.started
          ? `started, ${run.files} files`
          : `not started (${run.reason})`,
    requests,
    throttles: Object.values(fake.injected.throttles).reduce((a, b) => a + b, 0),
    lostAnswers: Object.values(fake.injected.lostAnswers).reduce((a, b) => a + b, 0),
    manifestBytes,
    marks,
  };
}

/** ~700 bytes per manifest entry for these keys (manifestBytes, printed after a run); 1,000 assumed for longer keys. */
function estimateManifestBytes(files: number): number {
  return files * 1_000;
}

/** The Glue job's stats for a run whose every file was processed (glue/CONTRACT.md's shape, as the sim writes it). */
function statsOf(
  runKey: string,
  uploads: readonly { uploadId: string; key: string; outputPrefix: string; rejectedPrefix: string }[],
) {
  return {
    format: "csv-ingest-stats/1",
    runKey,
    processingDate: new Date().toISOString(),
    totals: {
      files: uploads.length,
      filesProcessed: uploads.length,
      filesFailed: 0,
      rowsRead: uploads.length,
      rowsProcessed: uploads.length,
      rowsRejected: 0,
      duplicatesRemoved: 0,
      qualityIssues: {},
    },
    files: uploads.map((u) => ({
      uploadId: u.uploadId,
      key: u.key,
      status: "processed",
      error: null,
      rowsRead: 1,
      rowsProcessed: 1,
      rowsRejected: 0,
      duplicatesRemoved: 0,
      qualityIssues: {},
      output: `s3://${BUCKET}/${u.outputPrefix}`,
      rejectedOutput: `s3://${BUCKET}/${u.rejectedPrefix}`,
    })),
  };
}

function phases(marks: Record<string, number>): string {
  return Object.entries(marks)
    .sort(([, a], [, b]) => a - b)
    .map(([k, v]) => `${k} ${(v / 1000).toFixed(2)}`)
    .join(", ");
}

const args = process.argv.slice(2);
const opt = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const pending = Number(opt("pending") ?? 6_000);
const batch = Number(opt("batch") ?? pipelineConfig("prod").queue.batchSize);
const repeat = Number(opt("repeat") ?? 1);
const mode = opt("mode") === "recorder" ? "recorder" : "batcher";
const chosen = opt("profile")?.split(",") ?? PROFILES.map((p) => p.name);
const load = () => loadavg()[0]?.toFixed(2);

console.log(
  (mode === "recorder"
    ? `recorder timing: one recordRunEnd of a run of ${pending} files, then the next start over ${batch} pending; `
    : `batcher timing: one invocation of handleUploadBatch, ${batch} records, ${pending} older uploads pending; `) +
    `prod config ` +
    `(batch ${pipelineConfig("prod").queue.batchSize}, ≤ ${pipelineConfig("prod").runs.maxFilesPerRun} files per run, ` +
    `settle ${pipelineConfig("prod").runs.settleMs} ms × ${pipelineConfig("prod").runs.maxSettleRounds}); the ${mode}'s timeout is ` +
    `${mode === "recorder" ? pipelineConfig("prod").recorder.timeoutSeconds : pipelineConfig("prod").queue.consumerTimeoutSeconds} s`,
);
for (const name of chosen) {
  const profile = PROFILES.find((p) => p.name === name);
  if (!profile) throw new Error(`no profile ${name}; have ${PROFILES.map((p) => p.name).join(", ")}`);
  console.log(`\n${profile.name}: ${profile.what}`);
  for (let r = 0; r < repeat; r++) {
    const t = await measure(profile, pending, batch, 42 + r, mode);
    const reqs = Object.entries(t.requests)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    console.log(
      `  wall ${(t.wallMs / 1000).toFixed(2)} s, CPU ${(t.cpuMs / 1000).toFixed(2)} s (load ${load()}); recorded ${t.recorded}, ` +
        `failed ${t.failed}, run ${t.run}; manifest ${(t.manifestBytes / 1e6).toFixed(2)} MB; throttled ${t.throttles}, ` +
        `answers lost ${t.lostAnswers}\n    phases (s after the call): ${phases(t.marks)}\n    requests: ${reqs}`,
    );
  }
}
