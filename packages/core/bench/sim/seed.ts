/**
 * The two contenders whose job finds its files with Glue job bookmarks over the whole `input/` prefix, with the job's
 * MaxConcurrentRuns = 1 (as ours):
 *
 * - **The seed** (its design document, modelled honestly): every S3 event invokes its Lambda (async), which calls
 *   StartJobRun (G.1X × 2, as its code asks). While a run is active Glue refuses (ConcurrentRunsExceededException);
 *   the Lambda catches it and *returns* a 500 body, so the async invoke is not retried: that event is dropped. A run
 *   that starts reads every file under `input/` not yet bookmarked, so a file whose own event was refused is not lost
 *   but **stranded** until some later upload's event starts a run (lost only if none follows). The Lambda then
 *   busy-polls GetJobRun until the run ends (billed all along), and dies at Lambda's 15-minute limit: a timeout is a
 *   function error, so Lambda's async invoke retries it twice (after ~1 and ~2 more minutes), each retry calling
 *   StartJobRun again.
 * - **Glue's native trigger** (the AWS docs' "Starting an AWS Glue workflow with an Amazon EventBridge event"): an
 *   EventBridge rule on the same S3 events targets a Glue workflow whose EventBridge trigger has an
 *   EventBatchingCondition (BatchSize ≤ 100 events, BatchWindow ≤ 900 s, the window starting at the batch's first
 *   event); the batch resets when it fires and the workflow run starts the job. The run receives only the batch's
 *   event ids (run property `aws:eventIds`, read with GetWorkflowRunProperties); EventBridge has no API that returns
 *   an event by id, so the job cannot learn the objects from them: as in the AWS examples it reads its input prefix
 *   with job bookmarks (the same rule as the seed's job). A batch that fires while the job runs starts a workflow run
 *   whose job run is refused (MaxConcurrentRuns = 1): its files are stranded until a later batch fires. The AWS docs
 *   also say Glue neither guarantees delivery of EventBridge events nor deduplicates them.
 *
 * A run lists the files that landed before it started (a version overwritten before then is superseded: only the
 * key's current version is read, as for ours). A failed run commits no bookmark: its files are listed again by the
 * next run. Delivery delays, late and duplicate events, Glue run durations and failures: the shared model.
 */
import type { Arrivals } from "./arrivals.js";
import { billGlueRun, billJobS3, newUsage, type Usage } from "./cost.js";
import { type Figures, figuresOf, newOutcomes, percentile } from "./figures.js";
import { eventDeliveries, glueRun } from "./model.js";
import { Rng } from "./prng.js";

/** The seed's Lambda: console defaults (x86_64, 128 MB), Lambda's 15-minute limit, async invoke's 2 retries. */
const SEED_LAMBDA = { memoryGb: 0.125, timeoutSeconds: 900, refusedSeconds: 0.3, retryDelays: [60, 120] } as const;
/** The seed's StartJobRun asks for G.1X × 2. */
const SEED_WORKERS = 2;

export interface NativeTrigger {
  /** EventBatchingCondition: 1–100 events, 1–900 s. */
  readonly batchSize: number;
  readonly batchWindowSeconds: number;
  /** The user's job: G.1X × this many workers (the same fixed capacity as ours' job definition). */
  readonly workers: number;
}

export interface StrandedFigures {
  /** Files whose own trigger was refused or lost and that waited for another upload's trigger. */
  readonly stranded: number;
  /** ...of which were processed in the end, and their wait from upload to the start of the run that read them. */
  readonly strandedProcessed: number;
  readonly waitSeconds: { readonly p50: number | null; readonly p99: number | null; readonly max: number | null };
  /** Stranded and never processed: no later trigger started a run (what "lost" counts for these contenders). */
  readonly neverProcessed: number;
}

export interface BookmarkResult {
  readonly figures: Figures;
  readonly stranded: StrandedFigures;
  readonly usage: Usage;
  readonly diagnostics: {
    readonly eventsDelivered: number;
    readonly startsRefused: number;
    readonly triggersFired: number;
    readonly lambdaTimeouts: number;
    readonly glueRunsFailed: number;
  };
}

type Ev =
  | { t: number; kind: "deliver"; upload: number }
  | { t: number; kind: "retry"; upload: number; attempt: number }
  | { t: number; kind: "window"; generation: number }
  | { t: number; kind: "end"; run: Run };

interface Run {
  readonly start: number;
  readonly end: number;
  readonly fails: boolean;
  /** Uploads [from, to) in upload order were listed; `listed` are the current versions among them. */
  readonly to: number;
  readonly listed: Int32Array;
}

/** A Glue outage, in seconds of the pattern: runs started or ending then fail (the AWS-semantics scenario). */
export type Outage = readonly [number, number] | null;

export function simulateSeed(a: Arrivals, seed: number, outage: Outage = null): BookmarkResult {
  return new BookmarkSim(a, seed, "seed", null, outage).run();
}

export function simulateNative(
  a: Arrivals,
  seed: number,
  trigger: NativeTrigger,
  outage: Outage = null,
): BookmarkResult {
  return new BookmarkSim(a, seed, "native", trigger, outage).run();
}

class BookmarkSim {
  private readonly deliveryRng: Rng;
  private readonly glueRng: Rng;
  private readonly heap = new EventHeap();
  private readonly out;
  private readonly usage = newUsage();
  /** 0: own trigger not fired yet; 1: fired and refused/lost; 2: fired and started a run. */
  private readonly trigger: Uint8Array;
  private readonly strandedFlag: Uint8Array;
  private readonly current: Int32Array;
  private readonly keysSeen: Uint8Array;
  private keysInPrefix = 0;
  private nextUpload = 0;
  /** Bookmark: uploads before this index were read by a succeeded run. */
  private bookmark = 0;
  private active: Run | null = null;
  private batch: number[] = [];
  private batchGeneration = 0;
  private readonly counts = {
    eventsDelivered: 0,
    startsRefused: 0,
    triggersFired: 0,
    lambdaTimeouts: 0,
    glueRunsFailed: 0,
    runs: 0,
  };

  constructor(
    private readonly a: Arrivals,
    seed: number,
    private readonly kind: "seed" | "native",
    private readonly native: NativeTrigger | null,
    private readonly outage: Outage,
  ) {
    this.deliveryRng = Rng.stream(seed, `${kind}/deliveries`);
    this.glueRng = Rng.stream(seed, `${kind}/glue`);
    this.out = newOutcomes(a);
    this.trigger = new Uint8Array(a.count);
    this.strandedFlag = new Uint8Array(a.count);
    this.current = new Int32Array(a.keyCount).fill(-1);
    this.keysSeen = new Uint8Array(a.keyCount);
  }

  run(): BookmarkResult {
    const { a } = this;
    for (let i = 0; i < a.count; i++) {
      const deliveries = eventDeliveries(this.deliveryRng);
      // A lost event: its trigger never comes; the file waits for another upload's.
      if (deliveries.length === 0) this.trigger[i] = 1;
      for (const offset of deliveries) {
        this.counts.eventsDelivered++;
        this.heap.push({ t: (a.times[i] as number) + offset, kind: "deliver", upload: i });
      }
    }
    this.usage.eventbridgeEvents += this.kind === "native" ? this.counts.eventsDelivered : 0;
    for (;;) {
      const ev = this.heap.pop();
      if (!ev) break;
      this.arrivalsUpTo(ev.t);
      this.handle(ev);
    }
    return this.results();
  }

  /** Uploads that have happened by second `t` (a listing at `t` sees those before `t`). */
  private arrivalsUpTo(t: number): void {
    const { a } = this;
    while (this.nextUpload < a.count && (a.times[this.nextUpload] as number) <= t) {
      const i = this.nextUpload++;
      const key = a.keyOf[i] as number;
      this.current[key] = i;
      if (this.keysSeen[key] === 0) {
        this.keysSeen[key] = 1;
        this.keysInPrefix++;
      }
    }
  }

  private handle(ev: Ev): void {
    switch (ev.kind) {
      case "deliver":
        if (this.kind === "seed") this.seedInvoke(ev.t, ev.upload, 0);
        else this.nativeEvent(ev.t, ev.upload);
        return;
      case "retry":
        this.seedInvoke(ev.t, ev.upload, ev.attempt);
        return;
      case "window":
        if (ev.generation === this.batchGeneration && this.batch.length > 0) this.fire(ev.t);
        return;
      case "end":
        this.endRun(ev.run);
        return;
    }
  }

  /** One invocation of the seed's Lambda for upload `i`'s event. */
  private down(t: number): boolean {
    return this.outage !== null && t >= this.outage[0] && t < this.outage[1];
  }

  private seedInvoke(t: number, i: number, attempt: number): void {
    this.usage.lambdaRequests++;
    if (this.active) {
      this.counts.startsRefused++;
      this.usage.lambdaGbSecondsX86 += SEED_LAMBDA.memoryGb * SEED_LAMBDA.refusedSeconds;
      this.markRefused([i]);
      return;
    }
    this.counts.triggersFired++;
    const run = this.startRun(t, [i], SEED_WORKERS);
    // The Lambda polls GetJobRun until the run ends, or until Lambda kills it at 15 minutes.
    const polled = Math.min(run.end - t, SEED_LAMBDA.timeoutSeconds);
    this.usage.lambdaGbSecondsX86 += SEED_LAMBDA.memoryGb * polled;
    if (run.end - t > SEED_LAMBDA.timeoutSeconds) {
      this.counts.lambdaTimeouts++;
      const delay = SEED_LAMBDA.retryDelays[attempt];
      if (delay !== undefined) {
        this.heap.push({ t: t + SEED_LAMBDA.timeoutSeconds + delay, kind: "retry", upload: i, attempt: attempt + 1 });
      }
    }
  }

  /** Glue's EventBridge trigger: count the event into the batch; fire at BatchSize or when the window ends. */
  private nativeEvent(t: number, i: number): void {
    const cfg = this.native as NativeTrigger;
    if (this.batch.length === 0) {
      this.heap.push({ t: t + cfg.batchWindowSeconds, kind: "window", generation: this.batchGeneration });
    }
    this.batch.push(i);
    if (this.batch.length >= cfg.batchSize) this.fire(t);
  }

  private fire(t: number): void {
    const events = this.batch;
    this.batch = [];
    this.batchGeneration++;
    this.counts.triggersFired++;
    if (this.active) {
      // The workflow run starts, its job run is refused (MaxConcurrentRuns = 1): nothing is read, nothing billed.
      this.counts.startsRefused++;
      this.markRefused(events);
      return;
    }
    this.startRun(t, events, (this.native as NativeTrigger).workers);
  }

  private markRefused(uploads: readonly number[]): void {
    for (const i of uploads)
      if (this.trigger[i] !== 2 && (this.out.processedRunStart[i] as number) < 0) this.trigger[i] = 1;
  }

  /** A run starting at `t`: lists every upload not yet bookmarked that landed before `t`, reads the current ones. */
  private startRun(t: number, triggeredBy: readonly number[], workers: number): Run {
    const { a } = this;
    for (const i of triggeredBy) this.trigger[i] = 2;
    let to = this.bookmark;
    while (to < a.count && (a.times[to] as number) < t) to++;
    const listed: number[] = [];
    for (let i = this.bookmark; i < to; i++) {
      if (this.current[a.keyOf[i] as number] === i) listed.push(i);
    }
    const planned = glueRun(this.glueRng, listed.length, workers);
    // During a Glue outage a run fails with an internal error 10–30 s in (as for ours).
    const seconds = this.down(t) ? this.glueRng.between(10, 30) : planned.seconds;
    const fails = planned.fails || this.down(t);
    const run: Run = { start: t, end: t + seconds, fails, to, listed: Int32Array.from(listed) };
    this.active = run;
    this.counts.runs++;
    billGlueRun(this.usage, workers, seconds);
    // Bookmarks list the whole prefix every run (1,000 keys per LIST), then the job reads and writes its files.
    this.usage.s3PutListRequests += Math.max(1, Math.ceil(this.keysInPrefix / 1000));
    billJobS3(this.usage, listed.length);
    const bursts = new Set<number>();
    for (const i of listed) bursts.add(a.burstOf[i] as number);
    for (const b of bursts) if (b >= 0) this.out.runsOfBurst[b] = (this.out.runsOfBurst[b] as number) + 1;
    this.heap.push({ t: run.end, kind: "end", run });
    return run;
  }

  private endRun(run: Run): void {
    this.active = null;
    if (run.fails || this.down(run.end)) {
      this.counts.glueRunsFailed++;
      return;
    }
    for (const i of run.listed) {
      if (this.trigger[i] === 1) this.strandedFlag[i] = 1;
      this.out.processed[i] = 1;
      this.out.owed[i] = 1;
      this.out.succeededRuns[i] = Math.min(255, (this.out.succeededRuns[i] as number) + 1);
      if ((this.out.processedRunStart[i] as number) < 0) this.out.processedRunStart[i] = run.start;
    }
    this.bookmark = Math.max(this.bookmark, run.to);
  }

  private results(): BookmarkResult {
    const { a, out } = this;
    this.arrivalsUpTo(Number.POSITIVE_INFINITY);
    for (const v of this.current) if (v >= 0) out.owed[v] = 1;
    const waits: number[] = [];
    let stranded = 0;
    let never = 0;
    for (let i = 0; i < a.count; i++) {
      const processed = out.processed[i] === 1;
      if (out.owed[i] === 1 && !processed) {
        stranded++;
        never++;
      } else if (this.strandedFlag[i] === 1) {
        stranded++;
        waits.push((out.processedRunStart[i] as number) - (a.times[i] as number));
      }
    }
    const sorted = Float64Array.from(waits).sort();
    return {
      figures: figuresOf(a, { ...out, glueRunsStarted: this.counts.runs }),
      stranded: {
        stranded,
        strandedProcessed: waits.length,
        waitSeconds: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: percentile(sorted, 1) },
        neverProcessed: never,
      },
      usage: this.usage,
      diagnostics: {
        eventsDelivered: this.counts.eventsDelivered,
        startsRefused: this.counts.startsRefused,
        triggersFired: this.counts.triggersFired,
        lambdaTimeouts: this.counts.lambdaTimeouts,
        glueRunsFailed: this.counts.glueRunsFailed,
      },
    };
  }
}

/** A binary min-heap of events by time (ties: insertion order). */
class EventHeap {
  private readonly items: { ev: Ev; seq: number }[] = [];
  private seq = 0;

  push(ev: Ev): void {
    const h = this.items;
    const node = { ev, seq: this.seq++ };
    h.push(node);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(node, h[p] as typeof node)) break;
      h[i] = h[p] as typeof node;
      i = p;
    }
    h[i] = node;
  }

  pop(): Ev | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (!top || !last) return undefined;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && less(h[r] as typeof last, h[l] as typeof last) ? r : l;
        if (!less(h[c] as typeof last, last)) break;
        h[i] = h[c] as typeof last;
        i = c;
      }
      h[i] = last;
    }
    return top.ev;
  }
}

function less(x: { ev: Ev; seq: number }, y: { ev: Ev; seq: number }): boolean {
  return x.ev.t < y.ev.t || (x.ev.t === y.ev.t && x.seq < y.seq);
}
