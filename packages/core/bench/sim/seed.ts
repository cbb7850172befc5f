/**
 * The seed's strategy, modelled only as far as it matters for the figures: every S3 event invokes the Lambda
 * (async), which calls StartJobRun for that one file. Glue's MaxConcurrentRuns=1 refuses the call while a run is
 * active (ConcurrentRunsExceededException); the Lambda catches it and returns 500, and an async invoke that
 * *returns* (rather than throws) is not retried, so that event is simply dropped. A run reads the key as it is
 * when the run starts, i.e. its current version. Deliveries (delays, late and duplicate events) and Glue run
 * durations and failures use the same model as our pipeline (sim/model.ts); no other faults are needed to lose files.
 */
import type { Arrivals } from "./arrivals.js";
import { type Figures, figuresOf, newOutcomes } from "./figures.js";
import { eventDeliveries, glueRun } from "./model.js";
import { Rng } from "./prng.js";

export interface SeedResult {
  readonly figures: Figures;
  readonly diagnostics: { readonly eventsDelivered: number; readonly startsRefused: number };
}

export function simulateSeed(a: Arrivals, seed: number): SeedResult {
  const deliveryRng = Rng.stream(seed, "seed/deliveries");
  const glueRng = Rng.stream(seed, "seed/glue");

  // Event deliveries, bucketed by second (counting sort: the times are whole seconds).
  const evTime: number[] = [];
  const evUpload: number[] = [];
  for (let i = 0; i < a.count; i++) {
    for (const offset of eventDeliveries(deliveryRng)) {
      evTime.push((a.times[i] as number) + offset);
      evUpload.push(i);
    }
  }
  const lastSecond = evTime.reduce((m, t) => Math.max(m, t), 0);
  const perSecond = new Uint32Array(lastSecond + 2);
  for (const t of evTime) perSecond[t + 1] = (perSecond[t + 1] as number) + 1;
  for (let s = 1; s < perSecond.length; s++) perSecond[s] = (perSecond[s] as number) + (perSecond[s - 1] as number);
  const order = new Int32Array(evTime.length);
  const fill = perSecond.slice();
  evTime.forEach((t, e) => {
    order[fill[t] as number] = e;
    fill[t] = (fill[t] as number) + 1;
  });

  const out = newOutcomes(a);
  const current = new Int32Array(a.keyCount).fill(-1);
  const seen = new Uint8Array(a.count);
  let nextUpload = 0;
  let runs = 0;
  let refused = 0;
  let busyUntil = -1;
  for (const e of order) {
    const t = evTime[e] as number;
    while (nextUpload < a.count && (a.times[nextUpload] as number) <= t) {
      current[a.keyOf[nextUpload] as number] = nextUpload;
      nextUpload++;
    }
    const i = evUpload[e] as number;
    const key = a.keyOf[i] as number;
    // Owed: the Lambda was asked about this version while it was the current one (see figures.ts).
    if (seen[i] === 0) {
      seen[i] = 1;
      if (current[key] === i) out.owed[i] = 1;
    }
    if (t < busyUntil) {
      refused++;
      continue;
    }
    runs++;
    const burst = a.burstOf[i] as number;
    if (burst >= 0) out.runsOfBurst[burst] = (out.runsOfBurst[burst] as number) + 1;
    const run = glueRun(glueRng, 1);
    busyUntil = t + run.seconds;
    if (run.fails) continue;
    const v = current[key] as number; // the run reads the key as it is now
    out.processed[v] = 1;
    out.succeededRuns[v] = Math.min(255, (out.succeededRuns[v] as number) + 1);
    if ((out.processedRunStart[v] as number) < 0) out.processedRunStart[v] = t;
  }
  for (; nextUpload < a.count; nextUpload++) current[a.keyOf[nextUpload] as number] = nextUpload;
  for (let k = 0; k < a.keyCount; k++) {
    const v = current[k] as number;
    if (v >= 0) out.owed[v] = 1;
  }
  return {
    figures: figuresOf(a, { ...out, glueRunsStarted: runs }),
    diagnostics: { eventsDelivered: evTime.length, startsRefused: refused },
  };
}
