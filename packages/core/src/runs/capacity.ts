/**
 * Capacity per run: which Glue capacity (worker type, workers, timeout, execution class) a run asks StartJobRun for,
 * from what its manifest holds. Pure: the table lives in the config module (RunSettings.capacity).
 */
import type { CapacitySettings, RunCapacity } from "../config/pipeline.js";
import { IngestError } from "../errors.js";

/** What the choice depends on: the run's uploads, counted and summed as in its manifest. */
export interface RunSize {
  readonly files: number;
  readonly bytes: number;
  /** Pending uploads are left waiting behind this run (the caps cut its selection); absent: none. */
  readonly backlog?: boolean;
}

export class CapacityError extends IngestError {
  override name = "CapacityError";
}

/**
 * The first tier the run fits (files ≤ maxFiles and bytes ≤ maxBytes), the last tier for a run past every tier
 * (the manifest cap keeps runs within it); its `backlogWorkers` when uploads are left waiting behind the run, else
 * its `numberOfWorkers`; at most `maxWorkers` workers and never fewer than 2 (Glue's minimum for Spark jobs: a
 * driver and one executor).
 */
export function runCapacity(size: RunSize, settings: CapacitySettings): RunCapacity {
  if (!Number.isInteger(size.files) || size.files < 1) {
    throw new CapacityError(`capacity: a run needs at least one file, got files=${size.files}`);
  }
  if (!Number.isFinite(size.bytes) || size.bytes < 0) {
    throw new CapacityError(`capacity: a run's input bytes must be ≥ 0, got bytes=${size.bytes}`);
  }
  const tier =
    settings.tiers.find((t) => size.files <= t.maxFiles && size.bytes <= t.maxBytes) ?? settings.tiers.at(-1);
  if (!tier) throw new CapacityError("capacity: the capacity table has no tier");
  const workers = size.backlog === true ? (tier.backlogWorkers ?? tier.numberOfWorkers) : tier.numberOfWorkers;
  return {
    workerType: tier.workerType,
    numberOfWorkers: Math.max(2, Math.min(workers, settings.maxWorkers)),
    timeoutMinutes: tier.timeoutMinutes,
    executionClass: settings.executionClass,
  };
}
