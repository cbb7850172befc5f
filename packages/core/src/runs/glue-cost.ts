/**
 * What a Glue run cost, from what Glue itself reports at its end (GetJobRun): the capacity it ran with and the time
 * it consumed resources. Recorded on the run item by completion (`RunRecord.glue`), shown by `ingest status`, priced
 * with the one price table (config/prices.ts). An estimate at list price: no free tier, no Savings Plans, no tax.
 */
import { GLUE_WORKER_DPUS } from "../config/pipeline.js";
import { PRICES } from "../config/prices.js";

/** Glue's own figures for one ended run; each null when Glue did not say (or said something unreadable). */
export interface GlueUsage {
  readonly workerType: string | null;
  readonly numberOfWorkers: number | null;
  /** "STANDARD" or "FLEX", as Glue reports it. */
  readonly executionClass: string | null;
  /** Glue's ExecutionTime: the seconds the run consumed resources (what is billed, before the minimum). */
  readonly executionSeconds: number | null;
  /** Glue's DPUSeconds: reported only for Flex runs and runs with auto scaling (then it is the billed amount). */
  readonly dpuSeconds: number | null;
}

/**
 * DPUs per worker of the G worker types, billed at the DPU-hour rate (AWS Glue pricing). Other types (R.*, Z.*, the
 * legacy "Standard") have other rates or rules: no price recorded, so no cost is shown for them. A Map: a worker type
 * is Glue's text, and must never find an object's own properties ("constructor").
 */
export const DPUS_PER_WORKER: ReadonlyMap<string, number> = new Map([
  ...Object.entries(GLUE_WORKER_DPUS), // the types our capacity table asks for (G.1X, G.2X)
  ["G.025X", 0.25],
  ["G.4X", 4],
  ["G.8X", 8],
  ["G.12X", 12],
  ["G.16X", 16],
]);

export interface GlueCost {
  /**
   * DPU-seconds billed: workers × DPUs × ExecutionTime, at least the 1-minute minimum; for a Flex run Glue's own
   * DPUSeconds when it reports them (never below the minimum). A run that consumed nothing (ExecutionTime 0, e.g. it
   * failed to provision) is priced 0.
   */
  readonly dpuSeconds: number;
  readonly dollars: number;
  readonly executionClass: "STANDARD" | "FLEX";
}

/** A finite number in [0, 2^53), or null: what may be stored and priced. */
function amount(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER ? v : null;
}

/** Glue's short text (a worker type, an execution class), or null when it is anything else. */
function label(v: unknown): string | null {
  return typeof v === "string" && /^[A-Za-z0-9._-]{1,32}$/.test(v) ? v : null;
}

/**
 * Glue's figures as they may be stored on the run item: each field a sane value or null. DynamoDB refuses NaN,
 * Infinity and integers past 2^53 before sending anything, so an odd answer must never reach the run's close (which
 * would then fail on every redelivery and keep the run slot held).
 */
export function cleanUsage(u: Partial<Record<keyof GlueUsage, unknown>> | null | undefined): GlueUsage | null {
  if (!u) return null;
  return {
    workerType: label(u.workerType),
    numberOfWorkers: amount(u.numberOfWorkers),
    executionClass: label(u.executionClass),
    executionSeconds: amount(u.executionSeconds),
    dpuSeconds: amount(u.dpuSeconds),
  };
}

/**
 * Glue's billing of consumed resources (DPU-seconds, or seconds): per second, at least `minimum` — and nothing for a
 * run that consumed nothing. The one rule both this module and the simulation's billing (bench/sim/cost.ts) apply.
 */
export function billed(consumed: number, minimum: number): number {
  return consumed === 0 ? 0 : Math.max(consumed, minimum);
}

/**
 * The run's Glue cost at list price, or null when Glue's figures do not allow one (see DPUS_PER_WORKER). Auto
 * scaling is off for this job (infra/glue.ts), so a standard run is billed for all its workers for its execution time;
 * DPUSeconds is taken only for Flex, where Glue reports the billed amount.
 */
export function glueRunCost(usage: GlueUsage, prices: typeof PRICES.glue = PRICES.glue): GlueCost | null {
  if (usage.executionClass !== null && usage.executionClass !== "FLEX" && usage.executionClass !== "STANDARD") {
    return null;
  }
  const executionClass = usage.executionClass === "FLEX" ? "FLEX" : "STANDARD";
  const perWorker = usage.workerType === null ? undefined : DPUS_PER_WORKER.get(usage.workerType);
  const workers = amount(usage.numberOfWorkers);
  if (perWorker === undefined || workers === null || workers === 0) return null;
  const dpus = perWorker * workers;
  const reported = executionClass === "FLEX" ? amount(usage.dpuSeconds) : null;
  const seconds = amount(usage.executionSeconds);
  let dpuSeconds: number;
  if (reported !== null) dpuSeconds = billed(reported, dpus * prices.minimumBilledSeconds);
  else if (seconds !== null) dpuSeconds = dpus * billed(seconds, prices.minimumBilledSeconds);
  else return null;
  const rate = executionClass === "FLEX" ? prices.flexDpuHour : prices.dpuHour;
  return { dpuSeconds, dollars: (dpuSeconds / 3600) * rate, executionClass };
}
