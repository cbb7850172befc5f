/**
 * The fault layer's configuration: a seed and, per fault kind, a rate (the probability that one opportunity of that
 * kind — one AWS call, one S3 event, one Glue run, one invocation — gets the fault). Off by default: with no config
 * (or the `none` profile) the twin behaves exactly as without the layer. Every decision is drawn from a stream of
 * its own kind, seeded from (seed, kind), so one kind's traffic never shifts another kind's draws.
 */

/** Every fault the layer can inject, by where it acts. */
export const FAULT_KINDS = [
  // AWS calls through the proxy (handlers, the local Glue service, the job's boto3; never the CLI)
  "lostAnswer", // the request is applied, then the connection is reset before the answer: the SDK retries
  "serverError", // 500 InternalError/InternalFailure before the request is applied
  "throttle", // throttling error (S3 503 SlowDown, others 400 ThrottlingException) before the request is applied
  "latency", // the call is held for a random 0..latencyMs before it is forwarded
  "gsiLag", // an index Query answers as of gsiLagMs ago (items written since then are seen as they were)
  // S3 → EventBridge → ingest queue
  "s3EventDrop", // the event never reaches the queue
  "s3EventDuplicate", // the event reaches the queue twice
  "s3EventDelay", // the event reaches the queue after a random 0..s3EventDelayMs
  "s3EventReorder", // the event is held back until the next one has been delivered
  // Glue
  "glueEventLost", // the run's "Glue Job State Change" event is never published
  "glueEventDuplicate", // ... is published twice
  "glueStartError", // StartJobRun answers InternalServiceException / OperationTimeoutException / ThrottlingException, run NOT started
  "glueStartErrorAfterStart", // StartJobRun starts the run, then answers one of those errors
  "glueWaitingFailed", // the run waits (WAITING) for resources, then ends FAILED without running the job
  "glueInternalFailure", // the run executes the job, then ends FAILED with an internal error
  "glueSlotLag", // the run's event is out, but it still counts against MaxConcurrentRuns for up to glueSlotLagMs
  // Lambda
  "handlerCrash", // the invocation dies at a random point: its later AWS calls never happen, the batch fails
  "consumerRestart", // after an invocation, that queue's consumers are killed and restarted (what they held comes back later)
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultConfig {
  readonly seed: number;
  /** Per kind, a probability in [0, 1] (absent = 0). */
  readonly rates: Partial<Record<FaultKind, number>>;
  /** Upper bound of the `latency` fault (ms). */
  readonly latencyMs?: number;
  /** How far behind the index is when `gsiLag` strikes (ms); AWS: "within a second", usually. */
  readonly gsiLagMs?: number;
  /** Upper bound of the `s3EventDelay` fault (ms). */
  readonly s3EventDelayMs?: number;
  /** How long a `glueWaitingFailed` run waits before it fails (ms). */
  readonly glueWaitingMs?: number;
  /** Upper bound of the `glueSlotLag` fault (ms). */
  readonly glueSlotLagMs?: number;
  /** A `handlerCrash` happens at a random time in 0..handlerCrashWithinMs of the invocation. */
  readonly handlerCrashWithinMs?: number;
}

export const FAULT_DEFAULTS = {
  latencyMs: 200,
  gsiLagMs: 1_000,
  s3EventDelayMs: 5_000,
  glueWaitingMs: 3_000,
  glueSlotLagMs: 2_000,
  handlerCrashWithinMs: 3_000,
} as const;

const allAt = (rate: number): Partial<Record<FaultKind, number>> =>
  Object.fromEntries(FAULT_KINDS.map((k) => [k, rate])) as Partial<Record<FaultKind, number>>;

/**
 * Named profiles. `none`: off (the default). `aws`: what AWS does on a normal day — events seconds late, indexes
 * behind, the odd lost answer, throttle and duplicate. `chaos`: every kind, often.
 */
export const FAULT_PROFILES = {
  none: { rates: {} },
  aws: {
    rates: {
      lostAnswer: 0.002,
      serverError: 0.002,
      throttle: 0.005,
      latency: 0.2,
      gsiLag: 1,
      s3EventDuplicate: 0.01,
      s3EventDelay: 1,
      s3EventReorder: 0.05,
      glueEventDuplicate: 0.01,
      glueStartError: 0.01,
      glueStartErrorAfterStart: 0.005,
      glueWaitingFailed: 0.01,
      glueInternalFailure: 0.01,
      glueSlotLag: 0.5,
      handlerCrash: 0.002,
      consumerRestart: 0.002,
    },
    latencyMs: 100,
    gsiLagMs: 1_000,
    s3EventDelayMs: 3_000,
  },
  chaos: {
    rates: {
      ...allAt(0.05),
      latency: 0.3,
      gsiLag: 1,
      s3EventDelay: 0.5,
      s3EventDrop: 0.02,
      glueEventLost: 0.1,
      glueEventDuplicate: 0.1,
      glueStartError: 0.1,
      glueStartErrorAfterStart: 0.1,
      glueWaitingFailed: 0.1,
      glueInternalFailure: 0.1,
      glueSlotLag: 0.5,
      handlerCrash: 0.05,
      consumerRestart: 0.02,
    },
    latencyMs: 300,
    gsiLagMs: 2_000,
    s3EventDelayMs: 10_000,
  },
} as const satisfies Record<string, Omit<FaultConfig, "seed">>;
export type FaultProfileName = keyof typeof FAULT_PROFILES;

export class FaultConfigError extends Error {
  override name = "FaultConfigError";
}

/**
 * A fault config from a profile name (`none`/`aws`/`chaos`) or a config object, checked: unknown kinds, rates
 * outside [0, 1] and bad durations are refused with a message naming them.
 */
export function faultConfig(spec: FaultProfileName | string | Omit<FaultConfig, "seed">, seed = 1): FaultConfig {
  let base: Omit<FaultConfig, "seed">;
  if (typeof spec === "string") {
    const profile = (FAULT_PROFILES as Record<string, Omit<FaultConfig, "seed">>)[spec];
    if (!profile) {
      throw new FaultConfigError(`unknown fault profile "${spec}" (known: ${Object.keys(FAULT_PROFILES).join(", ")})`);
    }
    base = profile;
  } else {
    base = spec;
  }
  if (!Number.isSafeInteger(seed)) throw new FaultConfigError(`fault seed must be an integer, got ${seed}`);
  for (const [k, v] of Object.entries(base.rates ?? {})) {
    if (!(FAULT_KINDS as readonly string[]).includes(k)) {
      throw new FaultConfigError(`unknown fault kind "${k}" (known: ${FAULT_KINDS.join(", ")})`);
    }
    if (typeof v !== "number" || !(v >= 0 && v <= 1)) {
      throw new FaultConfigError(`fault rate of ${k} must be a number in [0, 1], got ${String(v)}`);
    }
  }
  for (const k of Object.keys(FAULT_DEFAULTS) as (keyof typeof FAULT_DEFAULTS)[]) {
    const v = base[k];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) {
      throw new FaultConfigError(`${k} must be a non-negative number of ms, got ${String(v)}`);
    }
  }
  return { ...base, rates: { ...base.rates }, seed };
}

/** True when no kind has a rate above 0 (the layer then only records). */
export function faultsOff(config: FaultConfig | undefined): boolean {
  return !config || Object.values(config.rates).every((r) => !r);
}

/** mulberry32: a small, fast, seedable PRNG (uniform in [0, 1)). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * The layer's dice: `roll(kind)` says whether this opportunity gets the fault (and counts it), `pick`/`uniform`
 * draw the fault's details from the same kind's stream. `counts` is what was injected, by kind.
 */
export class FaultDice {
  readonly counts: Partial<Record<FaultKind, number>> = {};
  private readonly streams = new Map<FaultKind, () => number>();

  constructor(readonly config: FaultConfig = faultConfig("none")) {}

  private stream(kind: FaultKind): () => number {
    let s = this.streams.get(kind);
    if (!s) {
      s = mulberry32(hash(`${this.config.seed}:${kind}`));
      this.streams.set(kind, s);
    }
    return s;
  }

  rate(kind: FaultKind): number {
    return this.config.rates[kind] ?? 0;
  }

  /** Draws for one opportunity of `kind`: true = inject (counted unless `count` is false). Never draws at rate 0. */
  roll(kind: FaultKind, count = true): boolean {
    const rate = this.rate(kind);
    if (rate <= 0) return false;
    const hit = this.stream(kind)() < rate;
    if (hit && count) this.count(kind);
    return hit;
  }

  /** Counts one injected fault of `kind` (for faults armed by `roll(kind, false)` that then struck). */
  count(kind: FaultKind): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
  }

  /** A uniform number in [0, max) from the kind's stream. */
  uniform(kind: FaultKind, max: number): number {
    return this.stream(kind)() * max;
  }

  pick<T>(kind: FaultKind, options: readonly T[]): T {
    return options[Math.floor(this.stream(kind)() * options.length)] as T;
  }

  setting<K extends keyof typeof FAULT_DEFAULTS>(k: K): number {
    return this.config[k] ?? FAULT_DEFAULTS[k];
  }
}
