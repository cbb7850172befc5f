/**
 * What a Glue run cost, from what Glue itself reports at its end (GetJobRun): the capacity it ran with and the time
 * it consumed resources. Recorded on the run item by completion (`RunRecord.glue`), shown by `ingest status`, priced
 * with the one price table (config/prices.ts). An estimate at list price: no free tier, no Savings Plans, no tax.
 */
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
 * legacy "Standard") have other rates or rules: no price recorded, so no cost is shown for them.
 */
export const DPUS_PER_WORKER: Readonly<Record<string, number>> = {
  "G.025X": 0.25,
  "G.1X": 1,
  "G.2X": 2,
  "G.4X": 4,
  "G.8X": 8,
  "G.12X": 12,
  "G.16X": 16,
};

export interface GlueCost {
  /** DPU-seconds billed: Glue's DPUSeconds when it reports them, else workers × DPUs × seconds; ≥ the 1-minute minimum. */
  readonly dpuSeconds: number;
  readonly dollars: number;
  readonly executionClass: "STANDARD" | "FLEX";
}

/** A finite number ≥ 0, or null. */
function amount(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : null;
}

/** The run's Glue cost at list price, or null when Glue's figures do not allow one (see DPUS_PER_WORKER). */
export function glueRunCost(usage: GlueUsage, prices: typeof PRICES.glue = PRICES.glue): GlueCost | null {
  const executionClass = usage.executionClass === "FLEX" ? "FLEX" : "STANDARD";
  if (usage.executionClass !== null && usage.executionClass !== "FLEX" && usage.executionClass !== "STANDARD") {
    return null;
  }
  const perWorker = usage.workerType === null ? undefined : DPUS_PER_WORKER[usage.workerType];
  const workers = amount(usage.numberOfWorkers);
  if (perWorker === undefined || workers === null || workers === 0) return null;
  const dpus = perWorker * workers;
  const minimum = dpus * prices.minimumBilledSeconds;
  const reported = amount(usage.dpuSeconds);
  const seconds = amount(usage.executionSeconds);
  let dpuSeconds: number;
  if (reported !== null) dpuSeconds = Math.max(reported, minimum);
  else if (seconds !== null) dpuSeconds = dpus * Math.max(seconds, prices.minimumBilledSeconds);
  else return null;
  const rate = executionClass === "FLEX" ? prices.flexDpuHour : prices.dpuHour;
  return { dpuSeconds, dollars: (dpuSeconds / 3600) * rate, executionClass };
}
