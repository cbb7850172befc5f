/**
 * Exploring interleavings (issue 10): concurrent batchers, recorders, a sweeper and the Glue job over the REAL core
 * code (intake, start, completion, sweeper) with MemoryLedger and the in-memory S3/Glue fakes. Every call into the
 * ledger, S3 or Glue is a scheduling point of fast-check's scheduler, so the property explores which actor moves
 * next; a fault may hit any call: thrown before it applies, applied with its answer lost and retried (the SDK's
 * retry), applied then thrown (the last retry timed out), applied then the process dies (a Lambda crash), or a
 * stale index read. Then the world is brought to quiescence (redeliveries, Glue runs finishing, sweeps) and the
 * checker reads the final state independently of the system's own status codes (Jepsen's shape).
 */
import { createHash } from "node:crypto";
import fc from "fast-check";
import { type PipelineConfig, pipelineConfig } from "../../src/config/pipeline.js";
import { MemoryLedger } from "../../src/ledger/memory.js";
import type { Deps, GlueRunner, LedgerStore, ObjectStore } from "../../src/ledger/ports.js";
import { RUN_ACTIVE_STATES, type UploadRecord } from "../../src/ledger/types.js";
import { parseManifest, statsKey } from "../../src/manifest/format.js";
import { parseRunEnded, recordRunEnd } from "../../src/runs/completion.js";
import { handleUploadBatch, type QueueMessage } from "../../src/runs/intake.js";
import { sweep } from "../../src/runs/sweeper.js";
import {
  CountingMetrics,
  GlueServiceError,
  ManualClock,
  MemoryGlue,
  MemoryLog,
  MemoryObjects,
  sequentialRunKeys,
} from "../../src/testing/fakes.js";
import type { ObjectVersion } from "../../src/upload/identity.js";
import { glueStateChange, objectCreatedEvent } from "./world.js";

const BUCKET = "data-bucket";
const JOB = "csv-ingest-job";

export const FAULT_KINDS = ["throw", "lose-answer-retry", "apply-then-throw", "crash", "stale-read"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export interface Fault {
  /** The n-th call (0-based, over all actors) into the ledger, S3 or Glue. */
  readonly at: number;
  readonly kind: FaultKind;
}

export interface Scenario {
  /** Uploads in order: which of 3 keys, whether the next one follows within the same second, which batch delivers it. */
  readonly uploads: readonly {
    key: number;
    sameSecond: boolean;
    batch: number;
    duplicate: boolean;
    /** A multipart upload: S3 reports its initiation time (here 5 s earlier) as its Last-Modified. */
    multipart: boolean;
  }[];
  readonly faults: readonly Fault[];
  /** Whether the first run's state-change event is lost (only the sweeper can repair it). */
  readonly loseFirstEnd: boolean;
  /** Whether the first run's state-change event is delivered twice. */
  readonly duplicateFirstEnd: boolean;
  /** Whether the first Glue run fails for Glue's own reasons (internal error, no stats): an outage, not the files. */
  readonly outageFirstRun: boolean;
}

export const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  uploads: fc.array(
    fc.record({
      key: fc.nat(2),
      sameSecond: fc.boolean(),
      batch: fc.nat(2),
      duplicate: fc.boolean(),
      multipart: fc.boolean(),
    }),
    { minLength: 1, maxLength: 7 },
  ),
  faults: fc.array(fc.record({ at: fc.nat(120), kind: fc.constantFrom(...FAULT_KINDS) }), { maxLength: 3 }),
  loseFirstEnd: fc.boolean(),
  duplicateFirstEnd: fc.boolean(),
  outageFirstRun: fc.boolean(),
});

const never = new Promise<never>(() => {});
const READS = new Set([
  "getUpload",
  "listPending",
  "listRunning",
  "listUploads",
  "uploadsOfKey",
  "getRun",
  "runKeyOfGlueRun",
  "listRuns",
  "getSlot",
  "getHealth",
  "head",
  "getText",
  "getRun",
  "recentRuns",
]);

/** Glue that records every run it really started, and the job's side: reading the manifest, writing stats. */
class ObservedGlue extends MemoryGlue {
  readonly seen = new Set<string>();
  onStarted: (id: string) => void = () => {};
  override async startRun(args: Readonly<Record<string, string>>) {
    try {
      return await super.startRun(args);
    } finally {
      for (const id of this.runs.keys()) {
        if (!this.seen.has(id)) {
          this.seen.add(id);
          this.onStarted(id);
        }
      }
    }
  }
}

interface Actor {
  readonly name: string;
  dead: boolean;
  done: boolean;
  /** What SQS does when this invocation dies: its messages come back. */
  onDeath?: () => void;
}

export interface Outcome {
  readonly violations: string[];
  readonly trace: string[];
}

/**
 * Options beyond the scenario. `clockJumpAfter`: a "clock" actor makes that many scheduled calls, then moves the clock
 * past the start timeout while the others are mid-flight — every start in progress is then stale, so batchers, the
 * sweeper and recorders revoke or repair starts whose starters are alive (the launch fence's case). With
 * `clockJumpTo: "revocation"` it moves only past the revocation age (75 s): unlaunched starts may be revoked while
 * launched ones are not yet stale.
 */
export interface RunOptions {
  readonly clockJumpAfter?: number;
  readonly clockJumpTo?: "start-timeout" | "revocation";
}

export async function runScenario(scenario: Scenario, s: fc.Scheduler, options: RunOptions = {}): Promise<Outcome> {
  const clock = new ManualClock();
  const ledger = new MemoryLedger();
  const objects = new MemoryObjects(clock);
  const glue = new ObservedGlue(clock, 1);
  const metrics = new CountingMetrics();
  const log = new MemoryLog(false);
  const base = pipelineConfig("test");
  // small caps so runs fill up and batches of 3 are "full" (the burst hold is explored too); a fill hold of 3 files,
  // so runs of 1–2 uploads made within a second or two of each other are held (the quiescence's clock moves past it)
  const config: PipelineConfig = {
    ...base,
    queue: { ...base.queue, batchSize: 3 },
    runs: { ...base.runs, maxFilesPerRun: 4, fillHold: { minFiles: 3, maxWaitSeconds: 300, quietSeconds: 75 } },
  };
  const newRunKey = sequentialRunKeys();
  const trace: string[] = [];
  const actors: Actor[] = [];
  let calls = 0;
  let scheduling = true;
  let lastPending: UploadRecord[] = [];
  let lastRunning: UploadRecord[] = [];
  /** Glue run id → upload ids its job processed (wrote output for). */
  const processedBy = new Map<string, string[]>();
  const undelivered: QueueMessage[] = [];
  const endEvents: { body: string }[] = [];
  let firstEnd = true;
  let firstRun = true;

  function wrap<T extends object>(target: T, service: string, actor: Actor): T {
    return new Proxy(target, {
      get(obj, prop) {
        const value: unknown = Reflect.get(obj, prop);
        if (typeof value !== "function") return value;
        const method = String(prop);
        return async (...args: unknown[]) => {
          if (scheduling) await s.schedule(Promise.resolve(), `${actor.name} ${service}.${method}`);
          if (actor.dead) return never;
          const n = calls++;
          const fault = scheduling ? scenario.faults.find((f) => f.at === n) : undefined;
          const call = () => (value as (...a: unknown[]) => Promise<unknown>).apply(obj, args);
          if (!fault) {
            const result = await call();
            if (method === "listPending") lastPending = result as UploadRecord[];
            if (method === "listRunning") lastRunning = result as UploadRecord[];
            return result;
          }
          trace.push(`#${n} ${actor.name} ${service}.${method}: ${fault.kind}`);
          const isRead = READS.has(method);
          switch (fault.kind) {
            case "throw":
              throw new Error(`injected: ${service}.${method} failed before applying`);
            case "stale-read":
              if (method === "listPending") return lastPending;
              if (method === "listRunning") return lastRunning;
              return call();
            case "lose-answer-retry":
              if (isRead) return call();
              if (service === "glue" && method === "startRun") {
                // the SDK's retry meets the run the first try started
                await call();
                const e = new GlueServiceError("ConcurrentRunsExceededException", 400, "retry after a lost answer");
                (e.$metadata as { attempts?: number }).attempts = 2;
                throw e;
              }
              await call();
              return call();
            case "apply-then-throw":
              await call();
              throw new GlueServiceError("TimeoutError", 500, `injected: ${service}.${method} answer lost`);
            case "crash":
              await call().catch(() => {});
              actor.dead = true;
              actor.onDeath?.();
              return never;
          }
        };
      },
    });
  }

  function depsOf(actor: Actor): Deps {
    return {
      ledger: wrap<LedgerStore>(ledger, "ledger", actor),
      objects: wrap<ObjectStore>(objects, "s3", actor),
      glue: wrap<GlueRunner>(glue, "glue", actor),
      clock,
      log,
      metrics,
      newRunKey,
      bucket: BUCKET,
    };
  }

  function spawn(name: string, body: (deps: Deps, actor: Actor) => Promise<void>, onDeath?: () => void): Promise<void> {
    const actor: Actor = { name, dead: false, done: false, ...(onDeath ? { onDeath } : {}) };
    actors.push(actor);
    return body(depsOf(actor), actor)
      .catch((e: unknown) => {
        trace.push(`${name} threw: ${(e as Error).message}`);
      })
      .finally(() => {
        actor.done = true;
      });
  }

  /** The Glue job: reads its manifest, processes each upload whose bytes are still current (If-Match), ends. */
  async function runJob(id: string) {
    const outage = firstRun && scenario.outageFirstRun;
    firstRun = false;
    if (outage) {
      // Glue's own failure: no stats, an internal error; the run's files are not to blame
      glue.finish(id, "FAILED", "InternalServiceException: an internal error occurred");
      trace.push(`glue run ${id} failed (outage)`);
      endEvents.push({ body: JSON.stringify(glueStateChange(JOB, id, "FAILED", "InternalServiceException")) });
      return;
    }
    const run = glue.runs.get(id);
    const runKey = run?.arguments["--run_key"] ?? "";
    const text = await objects.getText(BUCKET, `manifests/${runKey}.json`);
    const manifest = text ? parseManifest(text, runKey) : null;
    const files = (manifest?.uploads ?? []).map((u) => {
      const current = objects.objects.get(`${BUCKET}/${u.key}`)?.version;
      const ok = current !== undefined && current.etag === u.etag && current.lastModified === u.lastModified;
      if (ok) processedBy.set(u.uploadId, [...(processedBy.get(u.uploadId) ?? []), id]);
      return {
        uploadId: u.uploadId,
        key: u.key,
        status: ok ? "processed" : "failed",
        error: ok ? null : "At least one of the pre-conditions you specified did not hold (If-Match)",
        rowsRead: 1,
        rowsProcessed: ok ? 1 : 0,
        rowsRejected: 0,
        duplicatesRemoved: 0,
        qualityIssues: {},
        output: ok ? `s3://${BUCKET}/${u.outputPrefix}` : null,
        rejectedOutput: ok ? `s3://${BUCKET}/${u.rejectedPrefix}` : null,
      };
    });
    await objects.putJson(BUCKET, statsKey(runKey), {
      format: "csv-ingest-stats/1",
      runKey,
      processingDate: clock.now().toISOString(),
      totals: { files: files.length, rowsRead: files.length, rowsProcessed: 0, rowsRejected: 0 },
      files,
    });
    glue.finish(id, "SUCCEEDED");
    const body = JSON.stringify(glueStateChange(JOB, id, "SUCCEEDED"));
    const lost = firstEnd && scenario.loseFirstEnd;
    const twice = firstEnd && scenario.duplicateFirstEnd;
    firstEnd = false;
    if (lost) {
      trace.push(`end of ${id} lost`);
      return;
    }
    endEvents.push({ body });
    if (twice) endEvents.push({ body });
  }

  const recorder = (body: string) => async (deps: Deps) => {
    const parsed = parseRunEnded(body, JOB);
    if (parsed.kind !== "run-ended") return;
    try {
      await recordRunEnd(deps, config, parsed.ended);
    } catch (e) {
      endEvents.push({ body }); // SQS redelivers a failed record
      throw e;
    }
  };

  const pendingJobs: Promise<void>[] = [];
  glue.onStarted = (id) => {
    trace.push(`glue started ${id}`);
    pendingJobs.push(
      (async () => {
        if (scheduling) await s.schedule(Promise.resolve(), `job ${id}`);
        await runJob(id);
      })(),
    );
  };

  // --- the concurrent phase: uploads, their batches, recorders for runs that end, one sweep ---
  const batches: QueueMessage[][] = [[], [], []];
  const puts: Promise<ObjectVersion>[] = [];
  let seq = 0;
  let previous: Promise<unknown> = Promise.resolve();
  for (const [i, u] of scenario.uploads.entries()) {
    const put = previous.then(async () => {
      await s.schedule(Promise.resolve(), `put ${i}`);
      if (!u.sameSecond) clock.advance(1_000);
      const key = `input/k${u.key}.csv`;
      const etag = createHash("md5").update(`upload-${i}`).digest("hex"); // random-looking: no order to exploit
      const lastModified = new Date(
        Math.floor(clock.now().getTime() / 1000) * 1000 - (u.multipart ? 5_000 : 0),
      ).toISOString();
      const version: ObjectVersion = { bucket: BUCKET, key, versionId: null, etag, lastModified, size: 10 };
      objects.objects.set(`${BUCKET}/${key}`, { version, body: `id\n${i}\n` });
      trace.push(`put ${key} ${etag.slice(0, 6)} @${lastModified}`);
      return version;
    });
    previous = put;
    puts.push(put);
    put.then((version) => {
      const message = { messageId: `m${++seq}`, body: JSON.stringify(objectCreatedEvent(version)) };
      batches[u.batch]?.push(message);
      if (u.duplicate) batches[(u.batch + 1) % 3]?.push({ ...message, messageId: `m${++seq}` });
    });
  }
  // Each batch is delivered once its own uploads are in S3: later uploads (new versions) race with its intake.
  const batchers = batches.map((_, g) =>
    spawn(
      `batcher${g}`,
      async (deps) => {
        await Promise.all(puts.filter((_, i) => scenario.uploads[i]?.batch === g));
        const messages = [...(batches[g] ?? [])];
        if (messages.length === 0) return;
        try {
          const r = await handleUploadBatch(deps, config, messages);
          const failed = new Set(r.failedMessageIds);
          undelivered.push(...messages.filter((m) => failed.has(m.messageId)));
        } catch (e) {
          undelivered.push(...messages);
          throw e;
        }
      },
      () => undelivered.push(...(batches[g] ?? [])),
    ),
  );
  const sweeper = spawn("sweeper", async (deps) => {
    await sweep(deps, config);
  });
  const jumpAfter = options.clockJumpAfter;
  if (jumpAfter !== undefined) {
    void spawn("clock", async (deps) => {
      for (let i = 0; i < jumpAfter; i++) await deps.ledger.getSlot();
      const toRevocation = options.clockJumpTo === "revocation";
      clock.advance(
        (toRevocation ? config.runs.revokeUnlaunchedAfterSeconds : config.runs.startTimeoutSeconds) * 1000 + 1000,
      );
      trace.push(`clock moved past the ${toRevocation ? "revocation age" : "start timeout"}`);
      // a second sweeper pass after the jump: it finds every start in progress stale
      await sweep(deps, config);
    });
  }
  let recorders = 0;
  const live = () => actors.some((a) => !a.done && !a.dead) || endEvents.length > 0;
  for (let step = 0; step < 5_000; step++) {
    const body = endEvents.shift();
    if (body) void spawn(`recorder${++recorders}`, recorder(body.body), () => endEvents.push(body));
    if (s.count() > 0) await s.waitNext(1);
    else if (!live()) break;
    else await new Promise<void>((resolve) => setImmediate(resolve));
  }
  void batchers;
  void sweeper;

  // --- quiescence: no more faults or scheduling; SQS redelivers, Glue runs end, the sweeper repairs ---
  scheduling = false;
  const clean = (): Deps => depsOf({ name: "clean", dead: false, done: false });
  for (let round = 0; round < 25; round++) {
    await Promise.all(pendingJobs.splice(0));
    for (const body of endEvents.splice(0)) await recorder(body.body)(clean()).catch(() => {});
    const again = undelivered.splice(0);
    if (again.length > 0) {
      const r = await handleUploadBatch(clean(), config, again);
      const failed = new Set(r.failedMessageIds);
      undelivered.push(...again.filter((m) => failed.has(m.messageId)));
    }
    await Promise.all(pendingJobs.splice(0));
    for (const body of endEvents.splice(0)) await recorder(body.body)(clean()).catch(() => {});
    const busy =
      ledger.slot.holder !== null ||
      [...ledger.uploads.values()].some((u) => u.status === "pending" || u.status === "running") ||
      glue.active().length > 0 ||
      undelivered.length > 0 ||
      // a start left open without the slot (its starter revoked, then dead) waits for a sweep to close it
      [...ledger.runs.values()].some((r) => RUN_ACTIVE_STATES.includes(r.state));
    if (!busy) break;
    // past the start timeout and any backoff, so the sweeper repairs and starts whatever is left
    clock.advance(
      Math.max(config.runs.startTimeoutSeconds, Number(config.runs.systemRetryMaxSeconds) || 0) * 1000 + 1000,
    );
    await sweep(clean(), config);
  }

  return { violations: await check(), trace };

  async function check(): Promise<string[]> {
    const v: string[] = [];
    const uploads = [...ledger.uploads.values()];
    // nothing pending or running, slot free, no Glue run active
    for (const u of uploads) {
      if (u.status === "pending" || u.status === "running") v.push(`${u.uploadId} is still ${u.status}`);
      if (u.status === "failed" && !u.error) v.push(`${u.uploadId} failed without a reason`);
    }
    if (ledger.slot.holder !== null) v.push(`slot still held by ${ledger.slot.holder}`);
    if (glue.active().length > 0) v.push(`Glue runs still active: ${glue.active().map((r) => r.id)}`);
    for (const r of ledger.runs.values()) {
      if (RUN_ACTIVE_STATES.includes(r.state)) v.push(`run ${r.runKey} still ${r.state}`);
    }
    const skip = new Set(process.env.EXPLORE_SKIP?.split(",") ?? []);
    // the current version of every key is processed (nothing lost; never superseded by an older one)
    for (const { version } of skip.has("current") ? [] : objects.objects.values()) {
      if (!version.key.startsWith("input/")) continue;
      const u = uploads.find(
        (x) => x.key === version.key && x.etag === version.etag && x.lastModified === version.lastModified,
      );
      if (!u) v.push(`current version of ${version.key} (${version.etag.slice(0, 6)}) is not in the ledger`);
      else if (u.status !== "processed") v.push(`current version of ${version.key} is ${u.status}: ${u.error}`);
    }
    // processed at most once, by the Glue run the ledger says (a run that failed processed nothing)
    for (const [uploadId, ids] of processedBy) {
      if (ids.length > 1) v.push(`${uploadId} processed by ${ids.length} Glue runs: ${ids}`);
    }
    for (const u of uploads.filter((x) => x.status === "processed")) {
      const run = u.runKey ? ledger.runs.get(u.runKey) : undefined;
      const ids = processedBy.get(u.uploadId) ?? [];
      if (!run?.glueRunId || ids.length !== 1 || ids[0] !== run.glueRunId) {
        v.push(`${u.uploadId} is processed in the ledger by ${run?.glueRunId}, by Glue in ${ids}`);
      }
    }
    // every Glue run belongs to a ledger run that knows it (no orphan)
    for (const id of glue.runs.keys()) {
      const owner = [...ledger.runs.values()].find((r) => r.glueRunId === id);
      if (!owner) v.push(`Glue run ${id} is an orphan (no ledger run has it)`);
      else {
        const ended = glue.runs.get(id)?.state === "SUCCEEDED" ? "succeeded" : "failed";
        if (owner.state !== ended)
          v.push(`Glue run ${id} ended ${ended}, its ledger run ${owner.runKey} is ${owner.state}`);
      }
    }
    // run counts are the sum over their uploads (EXPLORE_SKIP=counts,current looks past these checks for other bugs)
    if (skip.has("counts")) return v;
    for (const r of ledger.runs.values()) {
      if (r.filesProcessed === null) continue;
      const text = await objects.getText(BUCKET, r.manifestKey);
      const members = new Set(text ? parseManifest(text, r.runKey).uploads.map((u) => u.uploadId) : []);
      const mine = uploads.filter((u) => u.runKey === r.runKey && members.has(u.uploadId));
      const processed = mine.filter((u) => u.status === "processed").length;
      const failed = mine.filter((u) => u.status === "failed").length;
      if (r.filesProcessed !== processed || r.filesFailed !== failed) {
        v.push(`run ${r.runKey} says ${r.filesProcessed}/${r.filesFailed}, its uploads ${processed}/${failed}`);
      }
    }
    return v;
  }
}
