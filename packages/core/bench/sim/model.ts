/**
 * The modelling choices shared by both strategies (ours and the seed's), in one place so the tables can print them.
 * Times are whole simulated seconds: S3's Last-Modified has second resolution anyway, and putting every action of a
 * second into one concurrent step is what makes two batches (and a recorder, and the sweeper) interleave.
 */
import type { Rng } from "./prng.js";

export interface Model {
  readonly deliveryDelaySeconds: Range;
  lateEventShare: number;
  readonly lateEventExtraSeconds: Range;
  duplicateEventShare: number;
  readonly duplicateExtraSeconds: Range;
  /** Share of upload events never delivered (0 by default; the AWS-semantics scenario sets 1%). */
  lostEventShare: number;
  readonly glueBaseSeconds: Range;
  readonly glueWorkerSecondsPerFile: number;
  glueFailureShare: number;
  glueStartFaultShare: number;
  crashShare: number;
  transientLedgerFaultShare: number;
  readonly endEventDelaySeconds: Range;
  endEventLostShare: number;
  readonly endEventDuplicateShare: number;
  readonly endEventDuplicateExtraSeconds: Range;
  /** Glue events delivered late, and by how much more (0 by default; the AWS-semantics scenario sets 2%). */
  endEventLateShare: number;
  readonly endEventLateExtraSeconds: Range;
  /** Uploads the job cannot read (its own fault: a missing column): failed with the reason, never blamed on others. */
  brokenFileShare: number;
  /** Uploads made as multipart uploads: their Last-Modified is when they were initiated (1–30 s before). */
  multipartShare: number;
}

export type Range = readonly [number, number];

export const MODEL: Model = {
  /** S3 → EventBridge → SQS (ours) or S3 → Lambda async invoke (seed): 1–3 s. */
  deliveryDelaySeconds: [1, 3],
  /** Share of upload events delivered late (out of order), and by how much more. */
  lateEventShare: 0.02,
  lateEventExtraSeconds: [5, 120],
  /** Share of upload events delivered twice (at-least-once delivery), the copy 1–300 s after the first. */
  duplicateEventShare: 0.01,
  duplicateExtraSeconds: [1, 300],
  lostEventShare: 0,

  /**
   * A Glue run takes 60–180 s of startup and fixed work, plus its files' work spread over its executors (workers − 1,
   * one worker is Spark's driver): 0.18 worker-seconds per small upload (its S3 round trips), i.e. 0.02 s per file
   * on prod's fixed 10 workers, 0.18 s per file on 2.
   */
  glueBaseSeconds: [60, 180],
  glueWorkerSecondsPerFile: 0.18,
  /** Share of Glue runs that end FAILED (no stats written). Applied to both strategies. */
  glueFailureShare: 0.005,

  /** Share of StartJobRun calls (ours) answered with a 5xx; half of those started the run anyway. */
  glueStartFaultShare: 0.002,

  /** Share of handler invocations (batcher, recorder, sweeper) that crash at a random point (see sim/ours.ts). */
  crashShare: 0.01,
  /** Share of handler invocations during which one ledger call fails once (a DynamoDB throttle). */
  transientLedgerFaultShare: 0.01,

  /** Glue "state change" events (ours): delivered after 1–5 s; some lost (the sweeper must repair), some twice. */
  endEventDelaySeconds: [1, 5],
  endEventLostShare: 0.01,
  endEventDuplicateShare: 0.01,
  endEventDuplicateExtraSeconds: [1, 300],
  endEventLateShare: 0,
  endEventLateExtraSeconds: [60, 600],
  brokenFileShare: 0,
  multipartShare: 0,
};

/** What the AWS-semantics scenario adds to the shared model (besides the fake AWS's wire faults). */
export const AWS_SEMANTICS: Partial<Model> = {
  lostEventShare: 0.01,
  endEventLateShare: 0.02,
  brokenFileShare: 0.005,
  multipartShare: 0.1,
};

/** Runs `fn` with `overrides` applied to MODEL, then restores it. */
export async function withModel<T>(overrides: Partial<Model>, fn: () => Promise<T> | T): Promise<T> {
  const saved = { ...MODEL };
  Object.assign(MODEL, overrides);
  try {
    return await fn();
  } finally {
    Object.assign(MODEL, saved);
  }
}

/** `--faults=stress`: ten times the fault rates, to hunt for interleavings that lose or repeat a file. */
export function stressFaults(): void {
  MODEL.glueFailureShare = 0.05;
  MODEL.glueStartFaultShare = 0.02;
  MODEL.crashShare = 0.1;
  MODEL.transientLedgerFaultShare = 0.1;
  MODEL.endEventLostShare = 0.1;
}

/**
 * `--faults=off`: no crashes, ledger faults, Glue failures or 5xx, lost end events. Late and duplicate deliveries
 * stay (they are how SQS and EventBridge behave, not faults). With faults off, any sweeper repair or any upload
 * that waits for the sweeper points at a gap in the logic itself.
 */
export function disableFaults(): void {
  MODEL.glueFailureShare = 0;
  MODEL.glueStartFaultShare = 0;
  MODEL.crashShare = 0;
  MODEL.transientLedgerFaultShare = 0;
  MODEL.endEventLostShare = 0;
}

export function inRange(rng: Rng, [lo, hi]: Range): number {
  return rng.between(lo, hi);
}

/** When the copies of one upload event reach the consumer, as offsets (s) from the upload. */
export function eventDeliveries(rng: Rng): number[] {
  // Drawn only when set, so the default scenarios' random sequences stay as they were.
  if (MODEL.lostEventShare > 0 && rng.chance(MODEL.lostEventShare)) return [];
  let first = inRange(rng, MODEL.deliveryDelaySeconds);
  if (rng.chance(MODEL.lateEventShare)) first += inRange(rng, MODEL.lateEventExtraSeconds);
  if (!rng.chance(MODEL.duplicateEventShare)) return [first];
  return [first, first + inRange(rng, MODEL.duplicateExtraSeconds)];
}

/** How long a Glue run over `files` files on `workers` workers takes (s), and whether it fails. */
export function glueRun(rng: Rng, files: number, workers: number): { seconds: number; fails: boolean } {
  const executors = Math.max(1, workers - 1);
  const seconds = inRange(rng, MODEL.glueBaseSeconds) + Math.ceil((files * MODEL.glueWorkerSecondsPerFile) / executors);
  return { seconds, fails: rng.chance(MODEL.glueFailureShare) };
}
