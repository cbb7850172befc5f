/**
 * In-memory stand-ins for S3 and Glue, used by unit tests and the coalescing simulation (benchmark). They keep the
 * behaviours the logic depends on: S3 versions per key with last-modified, Glue's MaxConcurrentRuns and run states.
 */
import type { RunCapacity } from "../config/pipeline.js";
import type {
  Clock,
  GlueJobRun,
  GlueRunner,
  ListedObject,
  Log,
  MetricName,
  Metrics,
  ObjectLister,
  ObjectStore,
} from "../ledger/ports.js";
import type { GlueUsage } from "../runs/glue-cost.js";
import type { ObjectVersion } from "../upload/identity.js";

export class ManualClock implements Clock {
  constructor(public ms = Date.parse("2026-04-01T10:00:00Z")) {}
  now(): Date {
    return new Date(this.ms);
  }
  advance(ms: number): void {
    this.ms += ms;
  }
  /** Simulated time does not move; other pending work (a concurrent invocation) gets to run meanwhile. */
  async sleep(_ms: number): Promise<void> {
    for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

export class MemoryObjects implements ObjectStore, ObjectLister {
  readonly objects = new Map<string, { version: ObjectVersion; body: string }>();
  private etagSeq = 0;
  constructor(private readonly clock: Clock) {}

  /** Stores a new version of `key` (like PutObject) and returns what S3 would report. */
  put(bucket: string, key: string, body: string): ObjectVersion {
    const version: ObjectVersion = {
      bucket,
      key,
      versionId: null,
      etag: `etag${(++this.etagSeq).toString(16).padStart(8, "0")}`,
      // S3's Last-Modified has second resolution
      lastModified: new Date(Math.floor(this.clock.now().getTime() / 1000) * 1000).toISOString(),
      size: body.length,
    };
    this.objects.set(`${bucket}/${key}`, { version, body });
    return version;
  }

  delete(bucket: string, key: string): void {
    this.objects.delete(`${bucket}/${key}`);
  }

  async head(bucket: string, key: string) {
    return this.objects.get(`${bucket}/${key}`)?.version ?? null;
  }

  async putJson(bucket: string, key: string, doc: unknown) {
    const body = JSON.stringify(doc);
    this.objects.set(`${bucket}/${key}`, {
      version: {
        bucket,
        key,
        versionId: null,
        etag: "json",
        lastModified: this.clock.now().toISOString(),
        size: body.length,
      },
      body,
    });
  }

  async getText(bucket: string, key: string) {
    return this.objects.get(`${bucket}/${key}`)?.body ?? null;
  }

  /** Requests to `listAfter` (a test can see what one reconciler invocation cost). */
  listCalls = 0;

  /** Like ListObjectsV2 with StartAfter: keys in UTF-8 byte order, as S3 lists them. */
  async listAfter(bucket: string, prefix: string, startAfter: string | null, maxKeys: number) {
    this.listCalls++;
    const after = startAfter === null ? null : Buffer.from(startAfter);
    const keys = [...this.objects.values()]
      .map(({ version }) => version)
      .filter((v) => v.bucket === bucket && v.key.startsWith(prefix))
      .filter((v) => after === null || Buffer.from(v.key).compare(after) > 0)
      .sort((a, b) => Buffer.from(a.key).compare(Buffer.from(b.key)));
    const objects: ListedObject[] = keys.slice(0, maxKeys).map((v) => ({
      key: v.key,
      etag: `"${v.etag}"`,
      lastModified: v.lastModified,
      size: v.size,
    }));
    return { objects, truncated: keys.length > maxKeys };
  }
}

export class GlueServiceError extends Error {
  readonly $fault: "client" | "server";
  readonly $metadata: { httpStatusCode: number };
  constructor(name: string, status: number, message: string) {
    super(message);
    this.name = name;
    this.$fault = status < 500 ? "client" : "server";
    this.$metadata = { httpStatusCode: status };
  }
}

export class MemoryGlue implements GlueRunner {
  readonly runs = new Map<string, GlueJobRun>();
  /** The capacity each started run asked for (absent: the job's own). */
  readonly capacities = new Map<string, RunCapacity>();
  private seq = 0;
  /** Fault injection: the next startRun calls throw these (in order); `started: true` starts the run anyway. */
  readonly startFaults: { error: Error; started: boolean }[] = [];

  constructor(
    private readonly clock: Clock,
    readonly maxConcurrentRuns = 1,
  ) {}

  async startRun(args: Readonly<Record<string, string>>, capacity?: RunCapacity) {
    const active = [...this.runs.values()].filter((r) => r.state === "RUNNING").length;
    const fault = this.startFaults.shift();
    if (!fault && active >= this.maxConcurrentRuns) {
      throw new GlueServiceError("ConcurrentRunsExceededException", 400, "Concurrent runs exceeded for job");
    }
    const id = `jr_${(++this.seq).toString().padStart(6, "0")}`;
    if (!fault || fault.started) {
      this.runs.set(id, {
        id,
        state: "RUNNING",
        arguments: { ...args },
        errorMessage: null,
        startedOn: this.clock.now(),
      });
      if (capacity) this.capacities.set(id, capacity);
    }
    if (fault) throw fault.error;
    return id;
  }

  /** Ends a run as Glue would (the caller delivers the state-change event, or loses it). */
  finish(id: string, state: "SUCCEEDED" | "FAILED" | "TIMEOUT" | "STOPPED", errorMessage: string | null = null) {
    const run = this.runs.get(id);
    if (!run) throw new Error(`no run ${id}`);
    this.runs.set(id, { ...run, state, errorMessage, usage: this.usageAtEnd(run) });
  }

  /** What GetJobRun reports once a run has ended: the capacity it asked for and its time since start. */
  private usageAtEnd(run: GlueJobRun): GlueUsage {
    const capacity = this.capacities.get(run.id);
    const started = run.startedOn?.getTime();
    return {
      workerType: capacity?.workerType ?? null,
      numberOfWorkers: capacity?.numberOfWorkers ?? null,
      executionClass: capacity?.executionClass ?? null,
      executionSeconds: started === undefined ? null : Math.round((this.clock.now().getTime() - started) / 1000),
      dpuSeconds: null,
    };
  }

  /** Stopped runs, in order (BatchStopJobRun). */
  readonly stopped: string[] = [];

  async stopRun(id: string) {
    const run = this.runs.get(id);
    this.stopped.push(id);
    if (run?.state === "RUNNING") {
      this.runs.set(id, { ...run, state: "STOPPED", errorMessage: "stopped", usage: this.usageAtEnd(run) });
    }
  }

  active(): GlueJobRun[] {
    return [...this.runs.values()].filter((r) => r.state === "RUNNING");
  }

  async getRun(id: string) {
    return this.runs.get(id) ?? null;
  }

  async recentRuns(since: Date) {
    return [...this.runs.values()].filter((r) => (r.startedOn?.getTime() ?? 0) >= since.getTime()).reverse();
  }
}

export class CountingMetrics implements Metrics {
  readonly totals = new Map<MetricName, number>();
  add(name: MetricName, value: number) {
    this.totals.set(name, (this.totals.get(name) ?? 0) + value);
  }
  get(name: MetricName): number {
    return this.totals.get(name) ?? 0;
  }
}

export class MemoryLog implements Log {
  readonly lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  constructor(private readonly keep = true) {}
  info(message: string, fields?: Record<string, unknown>) {
    if (this.keep) this.lines.push({ level: "info", message, ...(fields ? { fields } : {}) });
  }
  warn(message: string, fields?: Record<string, unknown>) {
    if (this.keep) this.lines.push({ level: "warn", message, ...(fields ? { fields } : {}) });
  }
  error(message: string, fields?: Record<string, unknown>) {
    if (this.keep) this.lines.push({ level: "error", message, ...(fields ? { fields } : {}) });
  }
}

/** Run keys that sort by time and never collide within one process. */
export function sequentialRunKeys(): (now: Date) => string {
  let n = 0;
  return (now) =>
    `${now
      .toISOString()
      .replace(/[-:]/g, "")
      .replace(/\.\d{3}/, "")}-${(++n).toString(16).padStart(8, "0")}`;
}

/**
 * `target` as seen by a process that dies: once `diesAfter(method, args)` is true for a call, that call happens and
 * nothing after it does (it and every later call never answer, like a Lambda killed mid-invocation). `died`
 * resolves at that moment, so a test can look at what the crash left behind.
 */
export function crashingAfter<T extends object>(
  target: T,
  diesAfter: (method: string, args: readonly unknown[]) => boolean,
): { readonly proxy: T; readonly died: Promise<void> } {
  let dead = false;
  let die: () => void = () => {};
  const died = new Promise<void>((resolve) => {
    die = resolve;
  });
  const never = new Promise<never>(() => {});
  const proxy = new Proxy(target, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (dead) return never;
        const result: unknown = value.apply(obj, args);
        if (!diesAfter(String(prop), args)) return result;
        dead = true;
        // The call itself happens (the write reaches the ledger); its answer is lost with the process.
        return Promise.resolve(result).then(
          () => {
            die();
            return never;
          },
          () => {
            die();
            return never;
          },
        );
      };
    },
  });
  return { proxy, died };
}
