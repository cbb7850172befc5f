/**
 * Our pipeline as a discrete-event simulation over whole simulated seconds, driving the REAL coalescing logic
 * (handleUploadBatch, recordRunEnd, sweep → startNextRun) against the in-memory adapters of src/testing and
 * src/ledger/memory.ts. Nothing sleeps: the clock jumps from one second with something to do to the next.
 *
 * Within one second, everything due (upload arrivals, SQS deliveries, batcher invocations, Glue run ends, recorder
 * deliveries, the sweeper) is started together and awaited together; the in-memory ledger yields on every call, so
 * concurrent handlers interleave call by call, as two Lambdas racing on DynamoDB would. Handlers take no simulated
 * time.
 *
 * What is modelled (rates in sim/model.ts):
 *  - SQS + the Lambda event source mapping: `maximumConcurrency` consumers (2) poll the queue; each visible message
 *    goes to the next consumer with room (round robin), which starts its batching window at its first message and
 *    invokes when the window ends or the batch is full (batchSize). A received message is invisible for the
 *    visibility timeout from its receipt. A message received maxReceiveCount times goes to the DLQ on its next
 *    receipt.
 *  - The crash lease (src/queue/lease.ts, as packages/functions wires it): each consumer invocation first leases its
 *    messages for its timeout + 30 s, doubling per receive while shorter than visibility − window
 *    (`crashLeaseSeconds`); messages it reports failed, or a whole batch it fails by throwing, are given back
 *    visibility − window from that moment (`giveBackSeconds`; a ChangeMessageVisibility call per 10 messages, each
 *    way). `BENCH_LEASE=0` runs without it (the visibility from receipt, as before).
 *  - Crashes: a crashed invocation stops at a random call into the ledger/S3/Glue (that call takes effect, its
 *    answer and everything after it never happen), or after all its work but before answering; either way SQS sees
 *    a failed invocation and redelivers the whole batch (the recorder's one message) when its lease ends — a message
 *    whose lease call (the k-th, 10 messages each) is not before the crash point counts as not leased and waits the
 *    visibility timeout, as does one whose lease would not be shorter.
 *  - Transient ledger faults: in 1% of invocations one ledger call (the k-th, k uniform over the invocation's expected
 *    calls, as for a crash point) throws a throttle (MemoryLedger.failAtCall). Before 2 Dec (session 17) a fault was
 *    armed on a random METHOD and stayed armed until that method was next called, so one armed on a rarely called
 *    method blocked every later fault: the day scenario met 2–3 faults in ~3,700 invocations, not ~37.
 *  - Glue: MemoryGlue (MaxConcurrentRuns=1); a started run ends after its duration, writes stats saying every file
 *    of its manifest was processed (unless the run fails), and its "Glue Job State Change" goes through the
 *    recorder queue (parseRunEnded → recordRunEnd): sometimes lost (only the sweeper can repair), sometimes twice.
 *  - The sweeper runs every runs.sweepIntervalMinutes.
 *
 * The simulation ends when everything has drained (no message, event, active run, held slot, pending or running
 * upload left), or 24 simulated hours after the last upload.
 */
import {
  type CapacitySettings,
  GLUE_WORKER_DPUS,
  type PipelineConfig,
  pipelineConfig,
  type RunSettings,
} from "../../src/config/pipeline.js";
import type { Deps, ObjectLister, ReconcilerPositionStore } from "../../src/ledger/ports.js";
import { RUN_ACTIVE_STATES, type UploadStatus } from "../../src/ledger/types.js";
import { type ManifestEntry, parseManifest, statsKey } from "../../src/manifest/format.js";
import {
  crashLeaseSeconds,
  giveBackSeconds,
  type LeaseSettings,
  leaseSettingsOf,
  messageToSendBack,
} from "../../src/queue/lease.js";
import { parseRunEnded, recordRunEnd } from "../../src/runs/completion.js";
import { handleUploadBatch, type QueueMessage } from "../../src/runs/intake.js";
import { reconcile } from "../../src/runs/reconciler.js";
import { type Repair, sweep } from "../../src/runs/sweeper.js";
import { glueStateChange } from "../../tests/helpers/world.js";
import { type Arrivals, keyName } from "./arrivals.js";
import { billGlueRun, billJobS3, newUsage, type Usage } from "./cost.js";
import { type Figures, figuresOf, newOutcomes } from "./figures.js";
import { billInvocation, meteredDeps, newMeter } from "./meter.js";
import { eventDeliveries, glueRun, inRange, MODEL } from "./model.js";
import { Rng } from "./prng.js";
import { experimentTiers } from "./tiers.js";
import { type AwsProfile, awsWorld, BUCKET, JOB_NAME, memoryWorld, type SimWorld } from "./world.js";

const T0 = Date.parse("2026-04-01T00:00:00Z");
const DRAIN_LIMIT_SECONDS = 24 * 3600;
const TRACE = process.env.BENCH_TRACE === "1";
/** BENCH_TRACE_FROM=a,b: trace only simulated seconds a..b (usable on big patterns). */
const TRACE_RANGE = process.env.BENCH_TRACE_FROM?.split(",").map(Number) ?? null;
const traced = (t: number) =>
  TRACE || (TRACE_RANGE !== null && t >= (TRACE_RANGE[0] as number) && t <= (TRACE_RANGE[1] as number));

export interface OursDiagnostics {
  readonly simulatedHours: number;
  readonly drained: boolean;
  readonly batcherInvocations: number;
  readonly largestBatch: number;
  /** Seconds in which both consumers' batches ran concurrently (interleaved), and a batch ran with the recorder or sweeper. */
  readonly stepsWithTwoBatchers: number;
  readonly stepsWithBatcherAndOther: number;
  readonly messagesDelivered: number;
  readonly messagesRedelivered: number;
  readonly messagesToDlq: number;
  readonly crashes: {
    readonly batcher: number;
    readonly recorder: number;
    readonly sweeper: number;
    readonly reconciler: number;
  };
  /** Invocations that threw (after handling what they could), by handler. */
  readonly handlerErrors: {
    readonly batcher: number;
    readonly recorder: number;
    readonly sweeper: number;
    readonly reconciler: number;
  };
  readonly transientLedgerFaults: number;
  readonly glueStartFaults: number;
  readonly glueStartsRefused: number;
  readonly maxConcurrentGlueRuns: number;
  readonly glueRunsFailed: number;
  readonly endEventsLost: number;
  readonly endEventsDuplicated: number;
  readonly endEventsToDlq: number;
  readonly sweeperRepairs: Readonly<Record<string, number>>;
  /** Uploads the reconciler recorded (their S3 event was lost). */
  readonly reconciled: number;
  /** Why lost uploads were not processed (ledger status at the end, or "not-recorded"). */
  readonly lostByStatus: Readonly<Record<string, number>>;
  /** Ledger says processed but no succeeded run listed it, or the reverse: both must be 0. */
  readonly ledgerVsGlueMismatches: number;
  /**
   * Manifest entries (of started runs) whose version had already been overwritten when the run started: recorded
   * while current, so owed and processed here; the real job (glue/csv_ingest/ingest.py) reads the key, i.e. the NEWER bytes.
   */
  readonly staleManifestEntries: number;
  /** Manifest entries with a newer version of the same key in the same run (the real job fails the older one). */
  readonly olderVersionInSameRun: number;
  /** Stale entries with no newer version in the run: the real job would process the newer bytes under this id. */
  readonly staleWithoutNewerInRun: number;
  readonly endEventsLate: number;
  readonly glueRunsFailedByOutage: number;
  /** Held bursts whose batch sent one message back to come back when the hold ends (the batcher's wake-up). */
  readonly burstsSentBack: number;
  /** Current versions of their key reported failed as superseded (must be 0). */
  readonly currentSuperseded: number;
  /** Uploads failed although their file was fine (not broken, not superseded): must be 0. */
  readonly healthyFailed: number;
  /** Uploads failed because the job could not read them (the pattern's broken files): expected. */
  readonly brokenFailed: number;
  /** Uploads whose S3 event was never delivered (aws profile). */
  readonly eventsLost: number;
  /** Batches cut short by Lambda's 6 MB payload limit. */
  readonly batchesCutByPayload: number;
  /** The world: memory or aws, and what the fake AWS injected. */
  readonly world: string;
  readonly injected: Record<string, unknown> | null;
}

export interface OursResult {
  readonly figures: Figures;
  readonly diagnostics: OursDiagnostics;
  readonly usage: Usage;
}

export interface OursOptions {
  /** The capacity table runs ask for (default: the prod config's; the fixed-capacity variant passes one tier). */
  readonly capacity?: CapacitySettings;
  /** Run against the real adapters on the fake AWS with this profile (default: the in-memory world). */
  readonly aws?: AwsProfile;
  /** runs.fillHold (default: env BENCH_FILL, else the prod config's). */
  readonly fillHold?: RunSettings["fillHold"];
  /** runs.maxFilesPerRun (default: env BENCH_MAX_FILES, else the prod config's): an experiment knob for the cap. */
  readonly maxFilesPerRun?: number;
}

/** Lambda's invoke payload limit (6 MB) bounds an SQS batch, whatever its batch size says. */
const LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024;
/** One SQS record in the Lambda event besides its body: ids, receipt handle, attributes, ARN, MD5 (~0.6 KB). */
const SQS_RECORD_ENVELOPE_BYTES = 600;

export function simulateOurs(a: Arrivals, seed: number, options: OursOptions = {}): Promise<OursResult> {
  return new Simulation(a, seed, options).run();
}

/** Every run at the job definition's capacity (prod: G.1X × 10, 120 min): what runs got before capacity per run. */
export function fixedCapacity(config: PipelineConfig): CapacitySettings {
  const { workerType, numberOfWorkers, timeoutMinutes } = config.glue;
  const all = Number.MAX_SAFE_INTEGER;
  return {
    tiers: [{ maxFiles: all, maxBytes: all, workerType, numberOfWorkers, timeoutMinutes }],
    maxWorkers: numberOfWorkers,
    executionClass: "STANDARD",
  };
}

/** SQS: Lambda's event source mapping keeps this many long-polling receivers per queue (20 s polls) when idle. */
const IDLE_POLLERS_PER_QUEUE = 5;
const QUEUES = 2;

interface SqsMessage extends QueueMessage {
  /** The pattern's upload this event is for (the simulation's own bookkeeping; the handler never reads it). */
  readonly upload: number;
  receiveCount: number;
  receivedAt: number;
}

interface Consumer {
  batch: SqsMessage[];
  bytes: number;
  /** Second at which the batching window ends; -1 while the consumer holds no message. */
  windowEndsAt: number;
}

interface SimRun {
  readonly glueRunId: string;
  readonly runKey: string;
  readonly startedAt: number;
  readonly uploads: Int32Array;
  fails: boolean;
  message: string;
  entries: readonly ManifestEntry[] | null;
  /** The job's answer per manifest entry: null = processed, else why it failed (read at the run's start). */
  outcomes: (string | null)[];
}

type SimEvent =
  | { readonly kind: "message"; readonly message: SqsMessage }
  | { readonly kind: "wake" }
  | { readonly kind: "glue-end"; readonly run: SimRun }
  | { readonly kind: "run-ended-event"; readonly run: SimRun; readonly receives: number }
  | { readonly kind: "sweep"; readonly retry?: number }
  | { readonly kind: "reconcile"; readonly retry?: number };

type HandlerKind = "batcher" | "recorder" | "sweeper" | "reconciler";
/** A crash reports the call it died at (1 = the first: the crash lease, sent beside it, is not counted as landed). */
type Outcome<T> = { kind: "ok"; value: T } | { kind: "error"; error: unknown } | { kind: "crash"; atCall: number };

/** The crash lease is on unless BENCH_LEASE=0 (the behaviour before it, for comparison). */
const LEASE_ON = process.env.BENCH_LEASE !== "0";

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

class Simulation {
  private readonly config: PipelineConfig;
  private readonly usage = newUsage();
  private readonly world: SimWorld;
  private readonly deps: Deps;
  /** Uploads the Glue job cannot read (a file's own fault): the job fails them, the ledger must say so. */
  private readonly broken: Uint8Array;

  private readonly deliveryRng: Rng;
  private readonly glueRng: Rng;
  private readonly faultRng: Rng;
  private readonly endEventRng: Rng;
  private readonly multipartRng: Rng;

  private readonly calendar = new Calendar();
  private visible: SqsMessage[] = [];
  private visibleHead = 0;
  private readonly consumers: Consumer[];
  private nextConsumer = 0;
  private nextUpload = 0;
  private messageSeq = 0;
  private activeRuns = 0;
  private crashedThisStep = false;
  private sweptThisStep = false;
  private passStartedAt: number | null = null;
  private lastFullPassStartedAt: number | null = null;
  private readonly cleanedRuns = new Set<string>();
  /** Current upload of each key (the key's latest version). */
  private readonly current: Int32Array;
  private readonly out;
  /** For the latency explanation: first second a consumer received an event of the upload (-1: never). */
  private readonly firstReceived: Float64Array;
  /** Which handler started each run (runKey → kind), as its outcome says; runs of crashed handlers are absent. */
  private readonly starterOf = new Map<string, string>();
  private readonly processedBy: (string | undefined)[] = [];

  private readonly counts = {
    batcherInvocations: 0,
    largestBatch: 0,
    messagesDelivered: 0,
    messagesRedelivered: 0,
    messagesToDlq: 0,
    crashes: { batcher: 0, recorder: 0, sweeper: 0, reconciler: 0 },
    handlerErrors: { batcher: 0, recorder: 0, sweeper: 0, reconciler: 0 },
    transientLedgerFaults: 0,
    maxConcurrentGlueRuns: 0,
    glueRunsFailed: 0,
    endEventsLost: 0,
    endEventsDuplicated: 0,
    endEventsToDlq: 0,
    endEventsLate: 0,
    glueRunsFailedByOutage: 0,
    burstsSentBack: 0,
    staleManifestEntries: 0,
    olderVersionInSameRun: 0,
    staleWithoutNewerInRun: 0,
    eventsLost: 0,
    batchesCutByPayload: 0,
    stepsWithTwoBatchers: 0,
    stepsWithBatcherAndOther: 0,
    sweeperRepairs: {} as Record<string, number>,
    reconciled: 0,
  };

  constructor(
    private readonly a: Arrivals,
    seed: number,
    options: OursOptions,
  ) {
    const prod = pipelineConfig("prod");
    const consumers = Number(process.env.BENCH_CONSUMERS ?? prod.queue.maximumConcurrency);
    const window = Number(process.env.BENCH_WINDOW ?? prod.queue.batchingWindowSeconds);
    const batchSize = Number(process.env.BENCH_BATCH ?? prod.queue.batchSize);
    const timeout = Number(process.env.BENCH_TIMEOUT ?? prod.queue.consumerTimeoutSeconds);
    // The queue's visibility follows the batcher's timeout and window as the config module derives it.
    const visibility =
      window === prod.queue.batchingWindowSeconds && timeout === prod.queue.consumerTimeoutSeconds
        ? prod.queue.visibilityTimeoutSeconds
        : 6 * timeout + window;
    const base = {
      ...prod,
      queue: {
        ...prod.queue,
        maximumConcurrency: consumers,
        batchingWindowSeconds: window,
        batchSize,
        consumerTimeoutSeconds: timeout,
        visibilityTimeoutSeconds: visibility,
      },
    };
    const sweep = Number(process.env.BENCH_SWEEP_MINUTES ?? base.runs.sweepIntervalMinutes);
    const maxFilesPerRun = options.maxFilesPerRun ?? Number(process.env.BENCH_MAX_FILES ?? base.runs.maxFilesPerRun);
    if (!Number.isInteger(maxFilesPerRun) || maxFilesPerRun < 1) {
      throw new Error(`maxFilesPerRun: want a positive integer, got ${maxFilesPerRun}`);
    }
    this.config = {
      ...base,
      runs: {
        ...base.runs,
        sweepIntervalMinutes: sweep,
        maxFilesPerRun,
        capacity: options.capacity ?? experimentTiers(base.runs.capacity),
        fillHold: options.fillHold !== undefined ? options.fillHold : experimentFillHold(base.runs.fillHold),
      },
    };
    this.world = options.aws
      ? awsWorld(this.config, T0, Rng.stream(seed, "ours/aws"), options.aws)
      : memoryWorld(this.config, T0, Rng.stream(seed, "ours/glue-start-faults"));
    this.deps = this.world.deps;
    this.deliveryRng = Rng.stream(seed, "ours/deliveries");
    this.glueRng = Rng.stream(seed, "ours/glue");
    this.faultRng = Rng.stream(seed, "ours/faults");
    this.endEventRng = Rng.stream(seed, "ours/end-events");
    this.multipartRng = Rng.stream(seed, "ours/multipart");
    this.broken = new Uint8Array(a.count);
    if (MODEL.brokenFileShare > 0) {
      const rng = Rng.stream(seed, "ours/broken");
      for (let i = 0; i < a.count; i++) if (rng.chance(MODEL.brokenFileShare)) this.broken[i] = 1;
    }
    this.consumers = Array.from({ length: this.config.queue.maximumConcurrency }, () => ({
      batch: [],
      bytes: 0,
      windowEndsAt: -1,
    }));
    this.current = new Int32Array(a.keyCount).fill(-1);
    this.out = newOutcomes(a);
    this.firstReceived = new Float64Array(a.count).fill(-1);
  }

  async run(): Promise<OursResult> {
    const { a } = this;
    const sweepEvery = this.config.runs.sweepIntervalMinutes * 60;
    const stopAt = (a.times[a.count - 1] ?? 0) + DRAIN_LIMIT_SECONDS;
    this.calendar.add(sweepEvery, { kind: "sweep" });
    this.calendar.add(this.config.reconciler.intervalMinutes * 60, { kind: "reconcile" });
    let now = 0;
    let drained = false;
    for (;;) {
      const t = Math.min(
        this.nextUpload < a.count ? (a.times[this.nextUpload] as number) : Number.POSITIVE_INFINITY,
        this.calendar.peek() ?? Number.POSITIVE_INFINITY,
      );
      if (t > stopAt) break;
      now = t;
      await this.step(t);
      if (this.drained()) {
        drained = true;
        break;
      }
    }
    return this.results(now, drained);
  }

  private async step(t: number): Promise<void> {
    const { a } = this;
    this.world.clock.enter(T0 + t * 1000);
    while (this.nextUpload < a.count && a.times[this.nextUpload] === t) this.arrive(this.nextUpload++, t);

    const actions: Promise<void>[] = [];
    for (const ev of this.calendar.take(t)) {
      switch (ev.kind) {
        case "message":
          this.visible.push(ev.message);
          break;
        case "wake":
          break;
        case "glue-end":
          await this.endGlueRun(ev.run, t);
          break;
        case "run-ended-event":
          actions.push(this.deliverRunEnded(ev.run, ev.receives, t));
          break;
        case "sweep":
          if (ev.retry === undefined) {
            this.calendar.add(t + this.config.runs.sweepIntervalMinutes * 60, { kind: "sweep" });
          }
          actions.push(this.runSweeper(t, ev.retry ?? 0));
          break;
        case "reconcile":
          if (ev.retry === undefined) {
            this.calendar.add(t + this.config.reconciler.intervalMinutes * 60, { kind: "reconcile" });
          }
          actions.push(this.runReconciler(t, ev.retry ?? 0));
          break;
      }
    }

    this.distribute(t);
    const others = actions.length;
    for (const c of this.consumers) {
      const full = c.batch.length >= this.config.queue.batchSize || c.bytes + 2_000 > LAMBDA_PAYLOAD_BYTES;
      if (c.batch.length > 0 && (full || c.windowEndsAt <= t)) {
        if (full && c.batch.length < this.config.queue.batchSize) this.counts.batchesCutByPayload++;
        const batch = c.batch;
        c.batch = [];
        c.bytes = 0;
        c.windowEndsAt = -1;
        actions.push(this.runBatcher(batch, t));
      }
    }
    if (this.visibleHead < this.visible.length) this.calendar.add(t + 1, { kind: "wake" });
    const batchers = actions.length - others;
    if (batchers >= 2) this.counts.stepsWithTwoBatchers++;
    if (batchers >= 1 && others >= 1) this.counts.stepsWithBatcherAndOther++;

    if (actions.length > 0) {
      this.crashedThisStep = false;
      await Promise.all(actions);
      // Calls a crashed handler had in flight land now, before the clock moves on.
      if (this.crashedThisStep) await tick();
    }
    this.discoverRuns(t);
    if (this.sweptThisStep) this.dropSettledRunDocuments();
    this.sweptThisStep = false;
    if (traced(t)) this.trace(t);
  }

  private lastTrace = "";
  /** BENCH_TRACE=1: one line whenever the slot, the active run or the pending count changes (slow; small patterns). */
  private trace(t: number): void {
    let pending = 0;
    let running = 0;
    for (const u of this.world.uploads()) {
      if (u.status === "pending") pending++;
      else if (u.status === "running") running++;
    }
    const holderKey = this.world.slotHolder();
    const holder = holderKey ? [...this.world.runs()].find((r) => r.runKey === holderKey) : null;
    const line = `slot=${holderKey ?? "-"}${this.world.slotWakeup() ? "+wake" : ""} run=${holder?.state ?? "-"} glue=${this.activeRuns} pending=${pending} running=${running}`;
    if (line !== this.lastTrace) console.log(`t=${t} ${line}`);
    this.lastTrace = line;
  }

  /** PutObject, then the event(s) S3 → EventBridge → SQS will deliver for it. */
  private arrive(i: number, t: number): void {
    const key = this.a.keyOf[i] as number;
    // A share of uploads are multipart (aws profile): Last-Modified is when they were initiated, up to 30 s earlier.
    const multipart = MODEL.multipartShare > 0 && this.multipartRng.chance(MODEL.multipartShare);
    const body = this.world.upload(i, keyName(this.a, key), `id,name\n${i},x\n`, {
      ...(multipart ? { multipartInitiatedMs: T0 + (t - this.multipartRng.between(1, 30)) * 1000 } : {}),
    });
    this.current[key] = i;
    const deliveries = eventDeliveries(this.deliveryRng);
    if (deliveries.length === 0) this.counts.eventsLost++;
    for (const offset of deliveries) {
      this.counts.messagesDelivered++;
      this.usage.eventbridgeEvents++;
      this.usage.sqsRequests++; // EventBridge → SendMessage
      const message = { messageId: `m-${++this.messageSeq}`, body, upload: i, receiveCount: 0, receivedAt: -1 };
      this.calendar.add(t + offset, { kind: "message", message });
    }
  }

  /** Visible messages → the consumers' batches (see the header). */
  private distribute(t: number): void {
    const { batchSize, batchingWindowSeconds, maxReceiveCount } = this.config.queue;
    while (this.visibleHead < this.visible.length) {
      const next = this.visible[this.visibleHead] as SqsMessage;
      const consumer = this.consumerWithRoom(batchSize, next.body.length + SQS_RECORD_ENVELOPE_BYTES);
      if (!consumer) break;
      const m = this.visible[this.visibleHead++] as SqsMessage;
      if (m.receiveCount >= maxReceiveCount) {
        this.counts.messagesToDlq++;
        continue;
      }
      m.receiveCount++;
      m.receivedAt = t;
      if ((this.firstReceived[m.upload] as number) < 0) this.firstReceived[m.upload] = t;
      if (consumer.batch.length === 0) {
        consumer.windowEndsAt = t + batchingWindowSeconds;
        this.calendar.add(consumer.windowEndsAt, { kind: "wake" });
      }
      consumer.batch.push(m);
      consumer.bytes += m.body.length + SQS_RECORD_ENVELOPE_BYTES;
    }
    if (this.visibleHead === this.visible.length) {
      this.visible = [];
      this.visibleHead = 0;
    } else if (this.visibleHead > 65_536) {
      this.visible = this.visible.slice(this.visibleHead);
      this.visibleHead = 0;
    }
  }

  private consumerWithRoom(batchSize: number, bytes: number): Consumer | null {
    const n = this.consumers.length;
    for (let k = 0; k < n; k++) {
      const i = (this.nextConsumer + k) % n;
      const c = this.consumers[i] as Consumer;
      if (c.batch.length < batchSize && c.bytes + bytes <= LAMBDA_PAYLOAD_BYTES) {
        this.nextConsumer = (i + 1) % n;
        return c;
      }
    }
    return null;
  }

  private async runBatcher(batch: SqsMessage[], t: number): Promise<void> {
    this.counts.batcherInvocations++;
    this.usage.sqsRequests += 2 * Math.ceil(batch.length / 10); // ReceiveMessage + DeleteMessageBatch, 10 a call
    this.counts.largestBatch = Math.max(this.counts.largestBatch, batch.length);
    const outcome = await this.invoke("batcher", 2 * batch.length + 12, (deps) =>
      handleUploadBatch(deps, this.config, batch),
    );
    let again: SqsMessage[] = batch;
    // The crash lease, as the handler sends it: the messages it leases, in batch order, 10 per call.
    const leaseOf = (m: SqsMessage) => (LEASE_ON ? this.leaseSeconds("queue", m.receiveCount) : null);
    const leasedCall = new Map<SqsMessage, number>();
    for (const m of batch) if (leaseOf(m) !== null) leasedCall.set(m, Math.floor(leasedCall.size / 10) + 1);
    this.usage.sqsRequests += Math.ceil(leasedCall.size / 10); // ChangeMessageVisibilityBatch, 10 a call
    if (traced(t)) {
      const v = outcome.kind === "ok" ? outcome.value : null;
      console.log(
        `t=${t}   batcher(${batch.length}) ${outcome.kind}${v ? ` recorded ${v.recorded} dup ${v.duplicates} failed ${v.failedMessageIds.length} run ${JSON.stringify(v.run)}` : ""}`,
      );
    }
    if (outcome.kind === "ok") {
      const r = outcome.value.run;
      if (r?.started) this.starterOf.set(r.runKey, "batcher");
      const failed = new Set(outcome.value.failedMessageIds);
      again = batch.filter((m) => failed.has(m.messageId));
      const held = outcome.value.heldBurst;
      // The burst hold's wake-up, as the batcher sends it: one message on its first receive gets the hold's remaining
      // seconds of visibility and is reported failed, so it comes back then (the change counted as applied, as the
      // lease's are; none without the lease: the handler's NO_LEASE sends nothing).
      const backId =
        held && LEASE_ON
          ? messageToSendBack(
              held.messageIds,
              batch.map((m) => ({ messageId: m.messageId, receiveCount: m.receiveCount })),
            )
          : null;
      const back = backId === null ? undefined : batch.find((m) => m.messageId === backId);
      if (held && back) {
        this.counts.burstsSentBack++;
        this.usage.sqsRequests++;
        this.calendar.add(t + held.seconds, { kind: "message", message: back });
      }
    }
    const queueReturn = (m: SqsMessage) => Math.max(t + 1, m.receivedAt + this.config.queue.visibilityTimeoutSeconds);
    let givenBack = 0;
    for (const m of again) {
      this.counts.messagesRedelivered++;
      const lease = leaseOf(m);
      const call = leasedCall.get(m);
      let at: number;
      if (lease === null || call === undefined) at = queueReturn(m);
      else if (outcome.kind === "crash") {
        // Its lease call counts as landed only if the invocation died after that many of its own calls (the lease's
        // calls go beside the handler's, 8 at a time in the handler; counted here one by one, the kinder side).
        at = call < outcome.atCall ? t + lease : queueReturn(m);
      } else {
        // reported failed, or the handler threw: what is left of visibility − window (handlers take no sim time)
        givenBack++;
        at = t + giveBackSeconds(0, this.leaseSettings("queue"));
      }
      this.calendar.add(at, { kind: "message", message: m });
    }
    this.usage.sqsRequests += Math.ceil(givenBack / 10);
  }

  /** The Glue job's end: state, stats (when it succeeded), then its state-change event (or not). */
  private async endGlueRun(run: SimRun, t: number): Promise<void> {
    this.activeRuns--;
    const entries = run.entries ?? [];
    run.entries = null;
    if (!run.fails && this.world.glueDown()) {
      // A run ending during the outage fails for Glue's reasons, not its files'.
      run.fails = true;
      run.message = "InternalServiceException: Glue had an internal error (simulated outage)";
      this.counts.glueRunsFailedByOutage++;
    }
    if (run.fails) {
      this.counts.glueRunsFailed++;
      this.world.finishGlueRun(run.glueRunId, "FAILED", run.message);
    } else {
      this.world.writeJson(
        statsKey(run.runKey),
        statsDocument(run.runKey, entries, run.outcomes, this.world.clock.now()),
      );
      this.world.finishGlueRun(run.glueRunId, "SUCCEEDED", null);
      run.uploads.forEach((i, k) => {
        if (run.outcomes[k] !== null) return;
        this.out.succeededRuns[i] = Math.min(255, (this.out.succeededRuns[i] as number) + 1);
        if ((this.out.processedRunStart[i] as number) < 0) {
          this.out.processedRunStart[i] = run.startedAt;
          this.processedBy[i] = run.runKey;
        }
      });
    }
    const rng = this.endEventRng;
    if (rng.chance(MODEL.endEventLostShare)) {
      this.counts.endEventsLost++;
      return;
    }
    let first = t + inRange(rng, MODEL.endEventDelaySeconds);
    if (MODEL.endEventLateShare > 0 && rng.chance(MODEL.endEventLateShare)) {
      this.counts.endEventsLate++;
      first += inRange(rng, MODEL.endEventLateExtraSeconds);
    }
    this.calendar.add(first, { kind: "run-ended-event", run, receives: 0 });
    this.usage.eventbridgeEvents++;
    if (rng.chance(MODEL.endEventDuplicateShare)) {
      this.usage.eventbridgeEvents++;
      this.counts.endEventsDuplicated++;
      const second = first + inRange(rng, MODEL.endEventDuplicateExtraSeconds);
      this.calendar.add(second, { kind: "run-ended-event", run, receives: 0 });
    }
  }

  /** The crash lease settings each consumer's handler uses (packages/functions: crashLease). */
  private leaseSettings(queue: "queue" | "recorder"): LeaseSettings {
    return leaseSettingsOf(queue === "queue" ? this.config.queue : this.config.recorder);
  }

  /** The crash lease of a consumer invocation on a message's n-th receive (null: none sent), as the handlers ask it. */
  private leaseSeconds(queue: "queue" | "recorder", receiveCount: number): number | null {
    const timeout = queue === "queue" ? this.config.queue.consumerTimeoutSeconds : this.config.recorder.timeoutSeconds;
    return crashLeaseSeconds(receiveCount, timeout * 1000, this.leaseSettings(queue));
  }

  /** The recorder Lambda with one SQS record: the EventBridge event, parsed as the real handler does. */
  private async deliverRunEnded(run: SimRun, receives: number, t: number): Promise<void> {
    this.usage.sqsRequests += receives === 0 ? 3 : 2; // SendMessage (first delivery), ReceiveMessage, DeleteMessage
    if (LEASE_ON && this.leaseSeconds("recorder", receives + 1) !== null) this.usage.sqsRequests++; // its lease
    const state = run.fails ? "FAILED" : "SUCCEEDED";
    const body = JSON.stringify(glueStateChange(JOB_NAME, run.glueRunId, state, run.fails ? run.message : ""));
    const parsed = parseRunEnded(body, JOB_NAME);
    if (parsed.kind !== "run-ended") throw new Error(`simulation bug: state change ignored (${parsed.reason})`);
    const outcome = await this.invoke("recorder", 2 * run.uploads.length + 12, (deps) =>
      recordRunEnd(deps, this.config, parsed.ended),
    );
    if (traced(t)) {
      const v = outcome.kind === "ok" ? outcome.value : null;
      console.log(
        `t=${t}   recorder(${run.runKey}) ${outcome.kind}${v ? ` applied ${v.applied} next ${JSON.stringify(v.next)}` : ""}`,
      );
    }
    if (outcome.kind === "ok") {
      if (outcome.value.next?.started) this.starterOf.set(outcome.value.next.runKey, "recorder (run end)");
      return;
    }
    if (receives + 1 >= this.config.queue.maxReceiveCount) {
      this.counts.endEventsToDlq++;
      return;
    }
    // This was receive n = receives + 1. A crash after its lease landed (its one call came before the crash point):
    // back when the lease ends; a failure it reported (an error): given back visibility − window (one more call).
    const lease = LEASE_ON ? this.leaseSeconds("recorder", receives + 1) : null;
    let at = t + this.config.recorder.visibilityTimeoutSeconds;
    if (lease !== null && outcome.kind === "crash" && outcome.atCall > 1) at = t + lease;
    else if (lease !== null && outcome.kind === "error") {
      this.usage.sqsRequests++;
      at = t + giveBackSeconds(0, this.leaseSettings("recorder"));
    }
    this.calendar.add(at, { kind: "run-ended-event", run, receives: receives + 1 });
  }

  /**
   * The scheduled handlers (sweeper, reconciler) are invoked asynchronously by an EventBridge schedule: when an
   * invocation fails (an error or a crash), Lambda runs it again twice, 1 minute and then 2 more minutes later
   * (Lambda's documented asynchronous-invocation retries; the functions keep the default).
   */
  private retryAsync(kind: "sweep" | "reconcile", t: number, attempt: number): void {
    const delay = ASYNC_RETRY_DELAYS[attempt];
    if (delay !== undefined) this.calendar.add(t + delay, { kind, retry: attempt + 1 });
  }

  private async runSweeper(t: number, attempt: number): Promise<void> {
    const outcome = await this.invoke("sweeper", 30, (deps) => sweep(deps, this.config));
    if (outcome.kind !== "ok") this.retryAsync("sweep", t, attempt);
    if (traced(t)) {
      const v = outcome.kind === "ok" ? outcome.value : null;
      console.log(
        `t=${t}   sweeper ${outcome.kind}${v ? ` repairs ${v.repairs.join(",")} next ${JSON.stringify(v.next)}` : ""}`,
      );
    }
    if (outcome.kind === "ok") {
      if (outcome.value.next?.started) this.starterOf.set(outcome.value.next.runKey, "sweeper");
      for (const r of outcome.value.repairs) this.countRepair(r);
    }
    // Documents of closed runs are dropped once this step's Glue starts are discovered (see dropSettledRunDocuments).
    this.sweptThisStep = true;
  }

  /**
   * The reconciler, as scheduled on AWS: lists input/ from its saved position and records uploads whose S3 event was
   * lost. Its listing and position calls go to the world's S3 and ledger directly (not metered, not crash-wrapped).
   */
  private async runReconciler(t: number, attempt: number): Promise<void> {
    const sources = {
      lister: this.deps.objects as unknown as ObjectLister,
      positions: this.deps.ledger as unknown as ReconcilerPositionStore,
    };
    const outcome = await this.invoke("reconciler", 30, (deps) => reconcile(deps, this.config, sources));
    if (outcome.kind !== "ok") {
      this.retryAsync("reconcile", t, attempt);
      return;
    }
    const report = outcome.value;
    this.counts.reconciled += report.recorded;
    if (report.from === null) this.passStartedAt = t;
    if (report.passEnded && this.passStartedAt !== null) this.lastFullPassStartedAt = this.passStartedAt;
  }

  /**
   * BENCH_EXPLAIN=1: where the slowest 2% of uploads (upload → run start) spent their time: the event's delivery,
   * the time from its first receipt to its ledger record (a crashed or failed batch comes back after the visibility
   * timeout), and the wait from record to run start (with the handler that started the run).
   */
  private explain(recordedAt: Float64Array): void {
    const { a } = this;
    const rows: { i: number; lat: number }[] = [];
    for (let i = 0; i < a.count; i++) {
      const start = this.out.processedRunStart[i] as number;
      if (start >= 0) rows.push({ i, lat: start - (a.times[i] as number) });
    }
    rows.sort((x, y) => y.lat - x.lat);
    const top = rows.slice(0, Math.max(1, Math.ceil(rows.length * 0.02)));
    const causes = new Map<string, { n: number; lat: number; sample: string }>();
    for (const { i, lat } of top) {
      const t = a.times[i] as number;
      const received = this.firstReceived[i] as number;
      const recorded = recordedAt[i] as number;
      const start = this.out.processedRunStart[i] as number;
      const runKey = this.processedBy[i] ?? "?";
      const starter = this.starterOf.get(runKey) ?? "a crashed handler";
      const window = this.config.queue.batchingWindowSeconds;
      const cause =
        received - t > 10
          ? "event late"
          : recorded - received > window + 5
            ? "record late (batch redelivered)"
            : `waited pending; run started by ${starter}`;
      const c = causes.get(cause) ?? { n: 0, lat: 0, sample: "" };
      c.n++;
      c.lat += lat;
      if (c.n <= 3) c.sample += ` [t=${t} recv+${received - t} rec+${recorded - t} start+${start - t} ${runKey}]`;
      causes.set(cause, c);
    }
    console.log(`  explain: slowest ${top.length} uploads (≥ ${top.at(-1)?.lat} s):`);
    for (const [cause, c] of [...causes.entries()].sort((x, y) => y[1].n - x[1].n)) {
      console.log(`    ${String(c.n).padStart(6)} × ${cause}, mean ${(c.lat / c.n).toFixed(0)} s;${c.sample}`);
    }
  }

  private countRepair(r: Repair): void {
    this.counts.sweeperRepairs[r] = (this.counts.sweeperRepairs[r] ?? 0) + 1;
  }

  /**
   * Memory only (an S3 lifecycle rule, in effect): manifests and stats of runs the ledger has closed are never read
   * again by the logic (completion and the sweeper only read those of starting/running runs), and 200+ runs of
   * 5,000 files would otherwise hold a gigabyte of JSON.
   */
  private dropSettledRunDocuments(): void {
    for (const run of this.world.runs()) {
      if (RUN_ACTIVE_STATES.includes(run.state) || this.cleanedRuns.has(run.runKey)) continue;
      this.cleanedRuns.add(run.runKey);
      this.world.deleteObject(run.manifestKey);
      this.world.deleteObject(statsKey(run.runKey));
    }
  }

  /** Runs Glue started during this step (by any handler, including crashed ones): read their manifest, schedule their end. */
  private discoverRuns(t: number): void {
    for (const jr of this.world.newGlueRuns()) {
      const uri = jr.arguments["--manifest_uri"] ?? "";
      const runKey = jr.arguments["--run_key"] ?? "";
      const text = this.world.readText(uri.replace(`s3://${BUCKET}/`, ""));
      if (text === undefined) throw new Error(`Glue run ${jr.id} started without a manifest at ${uri}`);
      const manifest = parseManifest(text, uri);
      const uploads = Int32Array.from(manifest.uploads, (e) => this.world.uploadOf(e.etag));
      if (uploads.includes(-1)) throw new Error(`Glue run ${jr.id}: a manifest entry is no upload of the pattern`);
      // The job (glue/csv_ingest/ingest.py): a file it cannot read fails with the reason; a version no longer current (its
      // ETag changed) fails as superseded; the rest is processed.
      const outcomes = manifest.uploads.map((e, k) => {
        if (this.broken[uploads[k] as number] === 1) return `cannot read ${e.key}: missing column "amount" (simulated)`;
        if (this.world.currentEtag(e.key) !== e.etag.replaceAll('"', "")) {
          return `superseded: ${e.key} was uploaded again after this run was planned (etag ${e.etag} changed)`;
        }
        return null;
      });
      this.countVersionOverlaps(uploads);
      const bursts = new Set<number>();
      for (const i of uploads) bursts.add(this.a.burstOf[i] as number);
      for (const b of bursts) if (b >= 0) this.out.runsOfBurst[b] = (this.out.runsOfBurst[b] as number) + 1;
      const capacity = jr.capacity;
      const workers = capacity?.numberOfWorkers ?? this.config.glue.numberOfWorkers;
      const planned = glueRun(this.glueRng, uploads.length, workers);
      // During a Glue outage a run fails with an internal error 10–30 s in, whatever its files.
      const seconds = this.world.glueDown() ? this.glueRng.between(10, 30) : planned.seconds;
      const fails = planned.fails;
      const dpus = workers * GLUE_WORKER_DPUS[capacity?.workerType ?? this.config.glue.workerType];
      billGlueRun(this.usage, dpus, seconds, capacity?.executionClass === "FLEX");
      billJobS3(this.usage, uploads.length);
      const run: SimRun = {
        glueRunId: jr.id,
        runKey,
        startedAt: t,
        uploads,
        fails,
        message: "simulated failure",
        entries: manifest.uploads,
        outcomes,
      };
      this.activeRuns++;
      this.counts.maxConcurrentGlueRuns = Math.max(this.counts.maxConcurrentGlueRuns, this.activeRuns);
      this.calendar.add(t + seconds, { kind: "glue-end", run });
    }
  }

  /** Re-upload effects on a run's manifest (diagnostics only; upload indexes grow with upload time). */
  private countVersionOverlaps(uploads: Int32Array): void {
    const newestInRun = new Map<number, number>();
    for (const i of uploads) {
      const key = this.a.keyOf[i] as number;
      const j = newestInRun.get(key);
      if (j !== undefined) this.counts.olderVersionInSameRun++;
      if (j === undefined || i > j) newestInRun.set(key, i);
    }
    for (const i of uploads) {
      const key = this.a.keyOf[i] as number;
      if (this.current[key] === i) continue;
      this.counts.staleManifestEntries++;
      if (newestInRun.get(key) === i) this.counts.staleWithoutNewerInRun++;
    }
  }

  /** Runs a handler, possibly crashing it (see the header) or arming a transient ledger fault first. */
  private async invoke<T>(
    kind: HandlerKind,
    expectedCalls: number,
    fn: (deps: Deps) => Promise<T>,
  ): Promise<Outcome<T>> {
    const rng = this.faultRng;
    this.world.armLedgerFault(rng, expectedCalls);
    const meter = newMeter();
    const deps0 = meteredDeps(this.deps, meter);
    if (!rng.chance(MODEL.crashShare)) {
      try {
        return { kind: "ok", value: await fn(deps0) };
      } catch (error) {
        this.counts.handlerErrors[kind]++;
        if (process.env.BENCH_DEBUG === "1") console.error(`${kind} failed:`, error);
        return { kind: "error", error };
      } finally {
        if (this.world.ledgerFaultFired()) this.counts.transientLedgerFaults++;
        billInvocation(this.usage, meter, !this.world.wireUsage);
      }
    }
    this.counts.crashes[kind]++;
    this.crashedThisStep = true;
    let die = () => {};
    const died = new Promise<void>((resolve) => {
      die = resolve;
    });
    const point: CrashPoint = { at: 1 + rng.int(expectedCalls), calls: 0, dead: false, die };
    const deps: Deps = {
      ...deps0,
      ledger: crashing(deps0.ledger, point),
      objects: crashing(deps0.objects, point),
      glue: crashing(deps0.glue, point),
    };
    // Either the crash point is reached, or the handler finishes and the invocation dies before answering.
    await Promise.race([fn(deps).then(noop, noop), died]);
    point.dead = true;
    if (this.world.ledgerFaultFired()) this.counts.transientLedgerFaults++;
    billInvocation(this.usage, meter, !this.world.wireUsage);
    return { kind: "crash", atCall: point.at };
  }

  private drained(): boolean {
    if (this.nextUpload < this.a.count || this.calendar.pendingNonSweep > 0 || this.activeRuns > 0) return false;
    // S3 events were lost: not drained until a reconciler pass that began once every upload was past its grace ended.
    if (this.counts.eventsLost > 0) {
      const last = this.a.times[this.a.count - 1] ?? 0;
      if (
        this.lastFullPassStartedAt === null ||
        this.lastFullPassStartedAt < last + this.config.reconciler.graceSeconds
      )
        return false;
    }
    if (this.visibleHead < this.visible.length || this.consumers.some((c) => c.batch.length > 0)) return false;
    if (this.world.slotHolder() !== null) return false;
    for (const u of this.world.uploads()) if (u.status === "pending" || u.status === "running") return false;
    return true;
  }

  private results(endedAt: number, drained: boolean): OursResult {
    const { a, out } = this;
    const status = new Map<number, UploadStatus>();
    const isCurrent = new Uint8Array(a.count);
    for (const i of this.current) if (i >= 0) isCurrent[i] = 1;
    let currentSuperseded = 0;
    let healthyFailed = 0;
    let brokenFailed = 0;
    const recordedAt = new Float64Array(a.count).fill(-1);
    for (const u of this.world.uploads()) {
      const i = this.world.uploadOf(u.etag);
      if (i < 0) throw new Error(`ledger upload ${u.uploadId} is no upload of the pattern`);
      status.set(i, u.status);
      recordedAt[i] = (Date.parse(u.receivedAt) - T0) / 1000;
      const superseded = u.status === "failed" && u.error?.startsWith("superseded:") === true;
      if (superseded && isCurrent[i] === 1) currentSuperseded++;
      if (u.status === "failed" && !superseded) {
        if (this.broken[i] === 1) brokenFailed++;
        else healthyFailed++;
      }
      // An older version reported failed as superseded (a newer upload of its key ran instead) is not owed: the
      // ledger answers for it, and processing its key's current bytes under its id would be wrong. A broken file
      // reported failed with its reason is answered for too.
      if (superseded && isCurrent[i] !== 1) continue;
      if (u.status === "failed" && this.broken[i] === 1) continue;
      out.owed[i] = 1; // taken on by the pipeline (in the ledger)
      if (u.status === "processed") out.processed[i] = 1;
    }
    for (let i = 0; i < a.count; i++) {
      // still the current version (a broken one the ledger reported failed is answered for)
      if (isCurrent[i] === 1 && !(this.broken[i] === 1 && status.get(i) === "failed")) out.owed[i] = 1;
    }
    const lostByStatus: Record<string, number> = {};
    let mismatches = 0;
    for (let i = 0; i < a.count; i++) {
      const done = out.processed[i] === 1;
      if (out.owed[i] === 1 && !done) {
        const s = status.get(i) ?? "not-recorded";
        lostByStatus[s] = (lostByStatus[s] ?? 0) + 1;
      }
      if (done !== (out.succeededRuns[i] as number) > 0) mismatches++;
    }
    if (process.env.BENCH_EXPLAIN === "1") this.explain(recordedAt);
    const c = this.counts;
    const wire = this.world.wire();
    if (wire) {
      this.usage.dynamodbWriteUnits += wire.dynamodbWriteUnits;
      this.usage.dynamodbReadUnits += wire.dynamodbReadUnits;
      this.usage.s3GetRequests += wire.s3Get;
      this.usage.s3PutListRequests += wire.s3PutList;
    }
    // Idle long polling of both queues by Lambda's pollers, over the simulated time.
    this.usage.sqsRequests += Math.round(QUEUES * IDLE_POLLERS_PER_QUEUE * (endedAt / 20));
    return {
      usage: this.usage,
      figures: figuresOf(a, { ...out, glueRunsStarted: this.world.glueRunCount() }),
      diagnostics: {
        simulatedHours: endedAt / 3600,
        drained,
        batcherInvocations: c.batcherInvocations,
        largestBatch: c.largestBatch,
        messagesDelivered: c.messagesDelivered,
        messagesRedelivered: c.messagesRedelivered,
        messagesToDlq: c.messagesToDlq,
        crashes: c.crashes,
        handlerErrors: c.handlerErrors,
        transientLedgerFaults: c.transientLedgerFaults,
        glueStartFaults: this.world.glueFaults.startFaults,
        glueStartsRefused: this.world.glueFaults.refused,
        maxConcurrentGlueRuns: c.maxConcurrentGlueRuns,
        glueRunsFailed: c.glueRunsFailed,
        endEventsLost: c.endEventsLost,
        endEventsDuplicated: c.endEventsDuplicated,
        endEventsToDlq: c.endEventsToDlq,
        sweeperRepairs: c.sweeperRepairs,
        reconciled: c.reconciled,
        lostByStatus,
        ledgerVsGlueMismatches: mismatches,
        staleManifestEntries: c.staleManifestEntries,
        olderVersionInSameRun: c.olderVersionInSameRun,
        staleWithoutNewerInRun: c.staleWithoutNewerInRun,
        stepsWithTwoBatchers: c.stepsWithTwoBatchers,
        stepsWithBatcherAndOther: c.stepsWithBatcherAndOther,
        currentSuperseded,
        healthyFailed,
        brokenFailed,
        eventsLost: c.eventsLost,
        batchesCutByPayload: c.batchesCutByPayload,
        endEventsLate: c.endEventsLate,
        glueRunsFailedByOutage: c.glueRunsFailedByOutage,
        burstsSentBack: c.burstsSentBack,
        world: this.world.kind,
        injected: this.world.injected(),
      },
    };
  }
}

const noop = () => {};

/** Lambda's asynchronous invocation: 2 retries of a failed invocation, after 1 and then 2 more minutes. */
const ASYNC_RETRY_DELAYS = [60, 120] as const;

interface CrashPoint {
  readonly at: number;
  calls: number;
  dead: boolean;
  readonly die: () => void;
}

const NEVER = new Promise<never>(() => {});

/** `target` as seen by a handler that dies at its `point.at`-th call: that call happens, nothing after it does. */
function crashing<T extends object>(target: T, point: CrashPoint): T {
  return new Proxy(target, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (point.dead) return NEVER;
        const result: unknown = value.apply(obj, args);
        if (++point.calls < point.at) return result;
        point.dead = true;
        point.die();
        if (result instanceof Promise) result.catch(noop); // its answer is lost with the process
        return NEVER;
      };
    },
  });
}

/** The stats document the Glue job writes (format of tests/helpers/world.ts writeStats): every file processed. */
function statsDocument(
  runKey: string,
  entries: readonly ManifestEntry[],
  outcomes: readonly (string | null)[],
  now: Date,
) {
  const failed = outcomes.filter((o) => o !== null).length;
  const processed = entries.length - failed;
  return {
    format: "csv-ingest-stats/1",
    runKey,
    processingDate: now.toISOString(),
    totals: {
      files: entries.length,
      filesProcessed: processed,
      filesFailed: failed,
      rowsRead: processed,
      rowsProcessed: processed,
      rowsRejected: 0,
      duplicatesRemoved: 0,
      qualityIssues: {},
    },
    files: entries.map((u, k) => {
      const error = outcomes[k] ?? null;
      return {
        uploadId: u.uploadId,
        key: u.key,
        status: error === null ? "processed" : "failed",
        error,
        rowsRead: error === null ? 1 : 0,
        rowsProcessed: error === null ? 1 : 0,
        rowsRejected: 0,
        duplicatesRemoved: 0,
        qualityIssues: {},
        output: error === null ? `s3://${BUCKET}/${u.outputPrefix}` : null,
        rejectedOutput: error === null ? `s3://${BUCKET}/${u.rejectedPrefix}` : null,
      };
    }),
  };
}

/** Events by simulated second, with a min-heap of the seconds that have any. */
class Calendar {
  private readonly bySecond = new Map<number, SimEvent[]>();
  private readonly heap: number[] = [];
  /** Events other than the (self-rescheduling) sweeps: when 0, nothing but the sweeper will ever act again. */
  pendingNonSweep = 0;

  add(t: number, ev: SimEvent): void {
    let list = this.bySecond.get(t);
    if (!list) {
      list = [];
      this.bySecond.set(t, list);
      this.push(t);
    }
    list.push(ev);
    if (ev.kind !== "sweep" && ev.kind !== "reconcile") this.pendingNonSweep++;
  }

  peek(): number | undefined {
    return this.heap[0];
  }

  take(t: number): SimEvent[] {
    const list = this.bySecond.get(t);
    if (!list) return [];
    this.bySecond.delete(t);
    if (this.heap[0] !== t) throw new Error("calendar out of order");
    this.pop();
    for (const ev of list) if (ev.kind !== "sweep" && ev.kind !== "reconcile") this.pendingNonSweep--;
    return list;
  }

  private push(t: number): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((h[parent] as number) <= t) break;
      h[i] = h[parent] as number;
      i = parent;
    }
    h[i] = t;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop() as number;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && (h[r] as number) < (h[l] as number) ? r : l;
      if ((h[c] as number) >= last) break;
      h[i] = h[c] as number;
      i = c;
    }
    h[i] = last;
  }
}

/**
 * BENCH_FILL="minFiles:maxWaitSeconds:quietSeconds" runs ours and the fixed variant with that fill hold
 * (RunSettings.fillHold), "off" without one; BENCH_FILL_FIXED=off denies it to the fixed variant (see fixedFillHold).
 */
function experimentFillHold(config: RunSettings["fillHold"]): RunSettings["fillHold"] {
  const spec = process.env.BENCH_FILL;
  if (spec === undefined) return config;
  if (spec === "off") return null;
  const parts = spec.split(":");
  const [minFiles, maxWaitSeconds, quietSeconds] = parts.map(Number);
  const positive = (n: number | undefined): n is number => n !== undefined && Number.isFinite(n) && n > 0;
  if (parts.length !== 3 || !Number.isInteger(minFiles) || ![minFiles, maxWaitSeconds, quietSeconds].every(positive)) {
    throw new Error(`BENCH_FILL: want "files:seconds:quietSeconds" (positive numbers) or "off", got "${spec}"`);
  }
  return {
    minFiles: minFiles as number,
    maxWaitSeconds: maxWaitSeconds as number,
    quietSeconds: quietSeconds as number,
  };
}

/** The fixed variant's fill hold: ours' (the same pipeline, only its capacity fixed) unless BENCH_FILL_FIXED=off. */
export function fixedFillHold(): { fillHold?: null } {
  return process.env.BENCH_FILL_FIXED === "off" ? { fillHold: null } : {};
}
