/**
 * What the simulation of our pipeline runs against, in two kinds:
 *
 * - **memory**: MemoryLedger, MemoryObjects, MemoryGlue (strongly consistent, sortable ETags, null version ids),
 *   with StartJobRun 5xx and ledger throttles injected at the ports. Fast: the 1M-upload day runs here.
 * - **aws**: the REAL adapters (DynamoLedger, S3Objects, GlueJobs) on SDK clients whose requests the fake AWS of
 *   packages/adapters/tests/helpers/fake-aws.ts answers, with the SDK's own retry strategy: answers lost after the
 *   request applied, throttles, a pending index lagging 0–2 s, MD5 ETags and random version ids, Last-Modified to the
 *   second (multipart: its initiation), a Glue outage. DynamoDB and S3 usage is counted on the wire.
 *
 * The simulation reads the outcome (the ledger's uploads and runs, the slot, Glue's runs) from the world's own state,
 * never through the code under test.
 */

import { DynamoLedger, GlueJobs, S3Objects } from "../../../adapters/src/index.js";
import { FakeAws, type FaultRates } from "../../../adapters/tests/helpers/fake-aws.js";
import type { RunCapacity } from "../../src/config/pipeline.js";
import { GLUE_ARGUMENTS, LEDGER_TABLE, type PipelineConfig } from "../../src/config/pipeline.js";
import { MemoryLedger, pendingOrder, runningOrder, sortedBy } from "../../src/ledger/memory.js";
import type { Clock, Deps, GlueJobRun, GlueRunner, LedgerStore, ListedObject } from "../../src/ledger/ports.js";
import type { RunRecord, UploadRecord } from "../../src/ledger/types.js";
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
import { objectCreatedEvent } from "../../tests/helpers/world.js";
import { MODEL } from "./model.js";
import type { Rng } from "./prng.js";

export const BUCKET = "data-bucket";
export const JOB_NAME = "csv-ingest-sim";

export interface StartedRun {
  readonly id: string;
  readonly arguments: Readonly<Record<string, string>>;
  readonly capacity: RunCapacity | null;
}

export interface SimWorld {
  readonly kind: "memory" | "aws";
  readonly clock: SimClock;
  readonly deps: Deps;
  /** DynamoDB and S3 usage is counted on the wire (aws), not estimated per port call (memory). */
  readonly wireUsage: boolean;
  /** PutObject by a user: upload number `i` of the pattern. Returns the body of its S3 "Object Created" event. */
  upload(i: number, key: string, body: string, opts: { multipartInitiatedMs?: number }): string;
  /** The upload number of a version, from what the ledger stored (its ETag). */
  uploadOf(etag: string): number;
  /** Glue runs started since the last call, in start order (by any handler, crashed ones included). */
  newGlueRuns(): StartedRun[];
  glueRunCount(): number;
  /** The Glue job's own S3 access (not through the code under test). */
  readText(key: string): string | undefined;
  writeJson(key: string, doc: unknown): void;
  deleteObject(key: string): void;
  currentEtag(key: string): string | undefined;
  finishGlueRun(id: string, state: "SUCCEEDED" | "FAILED", message: string | null): void;
  /** Glue is down at this moment (aws: the outage window). */
  glueDown(): boolean;
  /** The ledger's state, read directly. */
  slotHolder(): string | null;
  slotWakeup(): boolean;
  uploads(): Iterable<UploadRecord>;
  runs(): Iterable<RunRecord>;
  /**
   * memory: with MODEL.transientLedgerFaultShare, one of the next invocation's ledger calls (the k-th, k uniform in
   * 1..expectedCalls; none if it makes fewer) throws a throttle at the port; `ledgerFaultFired` disarms it and says
   * whether it did. aws: throttles happen on the wire instead.
   */
  armLedgerFault(rng: Rng, expectedCalls: number): void;
  ledgerFaultFired(): boolean;
  readonly glueFaults: { startFaults: number; refused: number };
  /** aws: what the fake injected. */
  injected(): Record<string, unknown> | null;
  wire(): { dynamodbWriteUnits: number; dynamodbReadUnits: number; s3Get: number; s3PutList: number } | null;
}

/** The simulated clock. aws: the settle window's sleeps advance it (so a lagging index can catch up meanwhile). */
export class SimClock extends ManualClock implements Clock {
  constructor(
    ms: number,
    private readonly sleepsAdvance: boolean,
  ) {
    super(ms);
  }
  override async sleep(ms: number): Promise<void> {
    if (this.sleepsAdvance) this.ms += ms;
    await super.sleep(ms);
  }
  /** The step's second, never moving the clock back (sleeps may have run it ahead within a step). */
  enter(ms: number): void {
    this.ms = Math.max(this.ms, ms);
  }
}

const stripQuotes = (etag: string) => etag.replaceAll('"', "");

/**
 * The uploads map of the in-memory ledger, with the ids of pending and of running uploads kept aside (what the
 * table's sparse index holds), so a pending read costs the pending count, not the whole ledger: the 1M-upload day
 * makes ~30,000 pending reads over up to a million uploads.
 */
class StatusIndexedUploads extends Map<string, UploadRecord> {
  readonly pending = new Set<string>();
  readonly running = new Set<string>();

  override set(id: string, record: UploadRecord): this {
    super.set(id, record);
    // Map's constructor calls set before the fields exist (never with entries here).
    if (this.pending === undefined) return this;
    if (record.status === "pending") this.pending.add(id);
    else this.pending.delete(id);
    if (record.status === "running") this.running.add(id);
    else this.running.delete(id);
    return this;
  }

  override delete(id: string): boolean {
    this.pending.delete(id);
    this.running.delete(id);
    return super.delete(id);
  }

  override clear(): void {
    this.pending.clear();
    this.running.clear();
    super.clear();
  }
}

/** MemoryLedger whose pending/running reads use the status sets above; same answers as MemoryLedger's scans. */
class IndexedMemoryLedger extends MemoryLedger {
  override readonly uploads = new StatusIndexedUploads();

  /** MemoryLedger's own entry step (its yield and its fault injection), private there. */
  private enterAs(method: keyof LedgerStore): Promise<void> {
    return (this as unknown as { enter(m: keyof LedgerStore): Promise<void> }).enter(method);
  }

  override async listPending(limit: number): Promise<UploadRecord[]> {
    await this.enterAs("listPending");
    const pending = [...this.uploads.pending].map((id) => this.uploads.get(id) as UploadRecord);
    return sortedBy(pending, pendingOrder).slice(0, limit);
  }

  override async listRunning(limit: number, exceptRunKey: string | null): Promise<UploadRecord[]> {
    await this.enterAs("listRunning");
    const running = [...this.uploads.running]
      .map((id) => this.uploads.get(id) as UploadRecord)
      .filter((u) => u.runKey !== exceptRunKey);
    return sortedBy(running, runningOrder).slice(0, limit);
  }
}

/** A Map that also keeps its keys sorted (ASCII keys: their string order is S3's UTF-8 byte order). */
class SortedKeyMap<V> extends Map<string, V> {
  readonly sorted: string[] = [];

  override set(k: string, v: V): this {
    // Map's constructor calls set before the fields exist (never with entries here).
    if (this.sorted !== undefined && !this.has(k)) {
      if (!/^[\x20-\x7e]*$/.test(k))
        throw new Error(`simulation: object key ${k} is not ASCII (the sorted index assumes it)`);
      const at = lowerBound(this.sorted, k);
      if (at === this.sorted.length) this.sorted.push(k);
      else this.sorted.splice(at, 0, k);
    }
    return super.set(k, v);
  }

  override delete(k: string): boolean {
    if (!this.has(k)) return false;
    this.sorted.splice(lowerBound(this.sorted, k), 1);
    return super.delete(k);
  }
}

function lowerBound(a: readonly string[], k: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((a[mid] as string) < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * MemoryObjects whose listing walks a sorted key index instead of sorting every object per call (the reconciler
 * lists up to 10,000 keys every 15 minutes: over a million objects the sort took most of the day's wall time).
 * Same answers as MemoryObjects.listAfter.
 */
class SortedMemoryObjects extends MemoryObjects {
  override readonly objects = new SortedKeyMap<{ version: ObjectVersion; body: string }>();

  override async listAfter(bucket: string, prefix: string, startAfter: string | null, maxKeys: number) {
    this.listCalls++;
    const keys = this.objects.sorted;
    const base = `${bucket}/${prefix}`;
    let i = lowerBound(keys, base);
    if (startAfter !== null) {
      const after = `${bucket}/${startAfter}`;
      i = Math.max(i, lowerBound(keys, after));
      if (keys[i] === after) i++;
    }
    const objects: ListedObject[] = [];
    for (; i < keys.length && (keys[i] as string).startsWith(base); i++) {
      if (objects.length === maxKeys) return { objects, truncated: true };
      const v = (this.objects.get(keys[i] as string) as { version: ObjectVersion }).version;
      objects.push({ key: v.key, etag: `"${v.etag}"`, lastModified: v.lastModified, size: v.size });
    }
    return { objects, truncated: false };
  }
}

// ── memory ──────────────────────────────────────────────────────────────────────────────────────────────────────

export function memoryWorld(config: PipelineConfig, t0: number, startFaultRng: Rng): SimWorld {
  const clock = new SimClock(t0, false);
  const ledger = new IndexedMemoryLedger();
  const objects = new SortedMemoryObjects(clock);
  const memoryGlue = new MemoryGlue(clock, config.glue.maxConcurrentRuns);
  const glue = new SimGlue(memoryGlue, startFaultRng);
  const deps: Deps = {
    ledger,
    objects,
    glue,
    clock,
    log: new MemoryLog(false),
    metrics: new CountingMetrics(),
    newRunKey: sequentialRunKeys(),
    bucket: BUCKET,
  };
  const byEtag = new Map<string, number>();
  let known = 0;
  return {
    kind: "memory",
    clock,
    deps,
    wireUsage: false,
    upload(i, key, body) {
      const version = objects.put(BUCKET, key, body);
      byEtag.set(stripQuotes(version.etag), i);
      return JSON.stringify(objectCreatedEvent(version));
    },
    uploadOf: (etag) => byEtag.get(stripQuotes(etag)) ?? -1,
    newGlueRuns() {
      const out: StartedRun[] = [];
      if (memoryGlue.runs.size === known) return out; // most seconds start no run: skip the walk over every run
      let seen = 0;
      for (const jr of memoryGlue.runs.values()) {
        if (seen++ < known) continue;
        out.push({ id: jr.id, arguments: jr.arguments, capacity: memoryGlue.capacities.get(jr.id) ?? null });
      }
      known = memoryGlue.runs.size;
      return out;
    },
    glueRunCount: () => memoryGlue.runs.size,
    readText: (key) => objects.objects.get(`${BUCKET}/${key}`)?.body,
    writeJson(key, doc) {
      void objects.putJson(BUCKET, key, doc);
    },
    deleteObject: (key) => objects.delete(BUCKET, key),
    currentEtag: (key) => {
      const v = objects.objects.get(`${BUCKET}/${key}`)?.version.etag;
      return v === undefined ? undefined : stripQuotes(v);
    },
    finishGlueRun: (id, state, message) => memoryGlue.finish(id, state, message),
    glueDown: () => false,
    slotHolder: () => ledger.slot.holder,
    slotWakeup: () => ledger.slot.wakeup,
    uploads: () => ledger.uploads.values(),
    runs: () => ledger.runs.values(),
    armLedgerFault(rng, expectedCalls) {
      ledger.failAtCall = rng.chance(MODEL.transientLedgerFaultShare)
        ? {
            calls: 1 + rng.int(Math.max(1, expectedCalls)),
            error: new Error("ProvisionedThroughputExceededException (simulated)"),
            fired: false,
          }
        : null;
    },
    ledgerFaultFired() {
      const fired = ledger.failAtCall?.fired ?? false;
      ledger.failAtCall = null;
      return fired;
    },
    glueFaults: glue,
    injected: () => null,
    wire: () => null,
  };
}

/** Glue in front of MemoryGlue: injects StartJobRun 5xx answers and counts refusals. */
class SimGlue implements GlueRunner {
  startFaults = 0;
  refused = 0;

  constructor(
    private readonly inner: MemoryGlue,
    private readonly rng: Rng,
  ) {}

  /**
   * As the production adapter (GlueJobs.startRun) does: up to 3 tries; after a 5xx (the run may have started) Glue
   * is asked for a run carrying our run key before trying again. Without this the memory world left every 5xx to the
   * sweeper (a start "unknown" until stale: up to 8 minutes with nothing running), which AWS's wiring never does.
   */
  async startRun(args: Readonly<Record<string, string>>, capacity?: RunCapacity): Promise<string> {
    const runKey = args[`--${GLUE_ARGUMENTS.runKey}`];
    let ambiguous = false;
    for (let attempt = 1; ; attempt++) {
      // Only when no run is active: MemoryGlue skips its concurrency check for a faulted call, real Glue would not.
      if (this.inner.active().length === 0 && this.rng.chance(MODEL.glueStartFaultShare)) {
        this.startFaults++;
        this.inner.startFaults.push({
          error: new GlueServiceError("InternalServiceException", 500, "simulated 5xx"),
          started: this.rng.chance(0.5),
        });
      }
      try {
        return await this.inner.startRun(args, capacity);
      } catch (error) {
        const name = (error as Error).name;
        if (name === "ConcurrentRunsExceededException" && !ambiguous) this.refused++;
        const retryable =
          name === "InternalServiceException" || (ambiguous && name === "ConcurrentRunsExceededException");
        if (name === "InternalServiceException") ambiguous = true;
        if (ambiguous && runKey) {
          const found = [...this.inner.runs.values()].find((r) => r.arguments[`--${GLUE_ARGUMENTS.runKey}`] === runKey);
          if (found) return found.id;
        }
        if (attempt >= 3 || !retryable) throw error;
      }
    }
  }

  getRun(id: string): Promise<GlueJobRun | null> {
    return this.inner.getRun(id);
  }

  recentRuns(since: Date): Promise<GlueJobRun[]> {
    return this.inner.recentRuns(since);
  }

  stopRun(id: string): Promise<void> {
    return this.inner.stopRun(id);
  }
}

// ── aws ─────────────────────────────────────────────────────────────────────────────────────────────────────────

export interface AwsProfile {
  readonly faults: FaultRates;
  /**
   * Glue has an outage from..to (seconds of the pattern): its API answers, but every run that ends (or starts)
   * then fails with an internal error within 10–30 s — failures no file is to blame for.
   */
  readonly glueOutageSeconds: readonly [number, number] | null;
}

/** The ledger table's name in the fake AWS (ledgerFakeAws). */
export const TABLE = "ledger";

/** The wire-level fake AWS with the ledger's table (keys and pending index) and the Glue job of `config`. */
export function ledgerFakeAws(config: PipelineConfig, now: () => number, rng: Rng, jobName = JOB_NAME): FakeAws {
  return new FakeAws({
    now,
    random: () => rng.next(),
    tableName: TABLE,
    schema: {
      hashKey: LEDGER_TABLE.hashKey,
      rangeKey: LEDGER_TABLE.rangeKey,
      indexes: [LEDGER_TABLE.pendingIndex],
    },
    job: {
      name: jobName,
      maxConcurrentRuns: config.glue.maxConcurrentRuns,
      workerType: config.glue.workerType,
      numberOfWorkers: config.glue.numberOfWorkers,
      timeoutMinutes: config.glue.timeoutMinutes,
    },
  });
}

export function awsWorld(config: PipelineConfig, t0: number, rng: Rng, profile: AwsProfile): SimWorld {
  const clock = new SimClock(t0, true);
  const fake = ledgerFakeAws(config, () => clock.ms, rng);
  fake.faults = { dynamodb: profile.faults, s3: profile.faults, glue: profile.faults };
  const outage = profile.glueOutageSeconds;
  // The SDK's standard retry strategy (its retryable errors, its quota), pausing 0 real ms: simulated time is ours.
  const clients = fake.clients({ instantRetries: true });
  const deps: Deps = {
    ledger: new DynamoLedger({ client: clients.dynamodb, tableName: TABLE }),
    objects: new S3Objects(clients.s3),
    // As packages/functions wires it: StartJobRun through a client without SDK retries (GlueJobs retries itself
    // and looks the run up by its run key in between); its pauses on the simulated clock.
    glue: new GlueJobs(clients.glue, JOB_NAME, {
      startClient: fake.clients({ maxAttempts: 1 }).glue,
      sleep: (ms) => clock.sleep(ms),
      now: () => clock.now(),
    }),
    clock,
    log: new MemoryLog(false),
    metrics: new CountingMetrics(),
    newRunKey: sequentialRunKeys(),
    bucket: BUCKET,
  };
  const byEtag = new Map<string, number>();
  let known = 0;
  const item = <T>(pk: string, sk: string) => fake.item(pk, sk) as T | undefined;
  const strip = (it: Record<string, unknown>) => {
    const { pk: _pk, sk: _sk, type: _type, gsi1pk: _a, gsi1sk: _b, ...rest } = it;
    return rest;
  };
  return {
    kind: "aws",
    clock,
    deps,
    wireUsage: true,
    upload(i, key, body, opts) {
      const multipart = opts.multipartInitiatedMs !== undefined;
      const v = fake.putUpload(BUCKET, key, body, {
        ...(multipart ? { multipartPartCount: 2, initiatedMs: opts.multipartInitiatedMs } : {}),
      });
      byEtag.set(stripQuotes(v.etag), i);
      const event = objectCreatedEvent({
        bucket: BUCKET,
        key,
        versionId: v.versionId,
        etag: stripQuotes(v.etag),
        lastModified: new Date(v.lastModifiedMs).toISOString(),
        size: v.body.length,
      });
      event.detail.object.sequencer = v.sequencer;
      event.id = `evt-${i}-${v.versionId}`;
      event.time = new Date(clock.ms).toISOString();
      return JSON.stringify(event);
    },
    uploadOf: (etag) => byEtag.get(stripQuotes(etag)) ?? -1,
    newGlueRuns() {
      const all = [...fake.glueRuns.values()];
      const out = all.slice(known).map((r) => ({
        id: r.id,
        arguments: r.arguments,
        capacity: {
          workerType: r.workerType as RunCapacity["workerType"],
          numberOfWorkers: r.numberOfWorkers,
          timeoutMinutes: r.timeoutMinutes,
          executionClass: r.executionClass as RunCapacity["executionClass"],
        },
      }));
      known = all.length;
      return out;
    },
    glueRunCount: () => fake.glueRuns.size,
    readText: (key) => fake.currentVersion(BUCKET, key)?.body.toString("utf8"),
    writeJson(key, doc) {
      fake.putUpload(BUCKET, key, JSON.stringify(doc));
    },
    deleteObject: (key) => fake.deleteObject(BUCKET, key),
    currentEtag: (key) => {
      const v = fake.currentVersion(BUCKET, key);
      return v ? stripQuotes(v.etag) : undefined;
    },
    finishGlueRun: (id, state, message) => fake.finishRun(id, state, message),
    glueDown: () => outage !== null && clock.ms >= t0 + outage[0] * 1000 && clock.ms < t0 + outage[1] * 1000,
    slotHolder: () => item<{ holder?: string }>("SLOT", "SLOT")?.holder ?? null,
    slotWakeup: () => item<{ wakeup?: boolean }>("SLOT", "SLOT")?.wakeup === true,
    *uploads() {
      for (const it of fake.items()) {
        if (typeof it.pk === "string" && it.pk.startsWith("UPLOAD#")) yield strip(it) as unknown as UploadRecord;
      }
    },
    *runs() {
      for (const it of fake.items()) if (it.pk === "RUN") yield strip(it) as unknown as RunRecord;
    },
    armLedgerFault: () => undefined,
    ledgerFaultFired: () => false,
    glueFaults: {
      get startFaults() {
        return fake.injected.lostAnswers.glue;
      },
      get refused() {
        return 0;
      },
    },
    injected: () => ({ ...fake.injected }),
    wire: () => fake.usage,
  };
}
