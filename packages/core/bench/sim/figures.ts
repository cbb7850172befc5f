/**
 * The per-pattern figures both strategies report, and how they are computed from per-upload outcomes.
 *
 * What counts as lost (the same rule for both strategies): an upload is one version of a key (key + Last-Modified
 * + ETag). It is OWED processing when it is still the key's current version at the end of the simulation, or when
 * the pipeline took it on while it was current (ours: it is in the ledger; seed: its event reached the Lambda while
 * it was the current version). An owed upload that was never processed is LOST. An upload that was overwritten
 * before the pipeline took it on is SUPERSEDED: not processing it is by design (the newer version is processed).
 */
import type { Arrivals } from "./arrivals.js";

export interface Latency {
  /** Seconds from the upload (PutObject) to the start of the Glue run that processed it. */
  readonly p50: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

export interface Figures {
  readonly uploads: number;
  readonly glueRunsStarted: number;
  /** Runs whose manifest held at least one upload of the burst, mean and max over bursts (null: no bursts). */
  readonly runsPerBurst: { readonly mean: number; readonly max: number } | null;
  /** Runs started per hour of arrivals (null when uploads span less than an hour). */
  readonly runsPerHour: number | null;
  readonly latencySeconds: Latency;
  readonly processed: number;
  readonly lost: number;
  /** Uploads listed in the manifests of two or more succeeded runs. */
  readonly processedTwice: number;
  readonly supersededByDesign: number;
}

export interface Outcomes {
  /** 1 when the upload was processed (what the strategy's record says). */
  readonly processed: Uint8Array;
  /** 1 when the upload is owed processing (see above). */
  readonly owed: Uint8Array;
  /** Succeeded runs whose manifest listed the upload. */
  readonly succeededRuns: Uint8Array;
  /** Start second of the first succeeded run that processed it; -1 when none. */
  readonly processedRunStart: Float64Array;
  /** Runs started, per burst. */
  readonly runsOfBurst: Uint32Array;
  readonly glueRunsStarted: number;
}

export function newOutcomes(a: Arrivals): {
  processed: Uint8Array;
  owed: Uint8Array;
  succeededRuns: Uint8Array;
  processedRunStart: Float64Array;
  runsOfBurst: Uint32Array;
} {
  return {
    processed: new Uint8Array(a.count),
    owed: new Uint8Array(a.count),
    succeededRuns: new Uint8Array(a.count),
    processedRunStart: new Float64Array(a.count).fill(-1),
    runsOfBurst: new Uint32Array(a.burstSizes.length),
  };
}

export function figuresOf(a: Arrivals, o: Outcomes): Figures {
  let processed = 0;
  let lost = 0;
  let twice = 0;
  let superseded = 0;
  const latencies: number[] = [];
  for (let i = 0; i < a.count; i++) {
    const done = o.processed[i] === 1;
    if (done) processed++;
    if (o.owed[i] === 1 && !done) lost++;
    if (o.owed[i] !== 1 && !done) superseded++;
    if ((o.succeededRuns[i] ?? 0) > 1) twice++;
    const start = o.processedRunStart[i] ?? -1;
    if (start >= 0) latencies.push(start - (a.times[i] ?? 0));
  }
  const sorted = Float64Array.from(latencies).sort();
  const runs = [...o.runsOfBurst];
  return {
    uploads: a.count,
    glueRunsStarted: o.glueRunsStarted,
    runsPerBurst:
      runs.length === 0 ? null : { mean: runs.reduce((x, y) => x + y, 0) / runs.length, max: Math.max(...runs) },
    runsPerHour: a.spanSeconds >= 3600 ? o.glueRunsStarted / (a.spanSeconds / 3600) : null,
    latencySeconds: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: percentile(sorted, 1) },
    processed,
    lost,
    processedTwice: twice,
    supersededByDesign: superseded,
  };
}

/** Nearest-rank percentile of an ascending array; null when empty. */
export function percentile(sorted: Float64Array, q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? null;
}
