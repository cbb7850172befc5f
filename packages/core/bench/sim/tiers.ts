/**
 * Capacity tables for the simulation's experiments: BENCH_TIERS and `bench:capacity --tables=…` write one as
 * "50:2,2500:3,10000:6/16" — per tier, max files : G.1X workers, and "/N" for N workers when the caps leave uploads
 * waiting behind the run (CapacityTier.backlogWorkers). Bytes and timeouts are the config's tier of the same rank
 * (the last one for extra tiers); a tier without "/N" has no backlog workers, whatever the config's tier says.
 */
import type { CapacitySettings, CapacityTier } from "../../src/config/pipeline.js";

const TIER = /^(\d+):(\d+)(?:\/(\d+))?$/;

/** Refuses, naming the part: anything but digits in that shape, fewer than 2 workers (Glue's minimum), backlog
 * workers below the plain ones, and tiers whose max files do not strictly rise. */
export function tiersFromSpec(spec: string, config: CapacitySettings): CapacitySettings {
  const tiers: CapacityTier[] = spec.split(",").map((part, k) => {
    const match = TIER.exec(part);
    const like = config.tiers[Math.min(k, config.tiers.length - 1)];
    if (!match || !like) {
      throw new Error(`capacity table: bad tier "${part}" (want maxFiles:workers or maxFiles:workers/backlogWorkers)`);
    }
    const [maxFiles, workers] = [Number(match[1]), Number(match[2])];
    const backlog = match[3] === undefined ? undefined : Number(match[3]);
    if (maxFiles < 1 || workers < 2) {
      throw new Error(`capacity table: tier "${part}" needs ≥ 1 file and ≥ 2 workers (a driver and an executor)`);
    }
    if (backlog !== undefined && backlog < workers) {
      throw new Error(`capacity table: tier "${part}" has fewer workers with uploads waiting than without`);
    }
    const { backlogWorkers: _configs, ...rank } = like;
    return {
      ...rank,
      maxFiles,
      numberOfWorkers: workers,
      ...(backlog === undefined ? {} : { backlogWorkers: backlog }),
    };
  });
  tiers.forEach((t, k) => {
    const before = tiers[k - 1];
    if (before && t.maxFiles <= before.maxFiles) {
      throw new Error(
        `capacity table "${spec}": max files must rise tier by tier (${before.maxFiles}, then ${t.maxFiles})`,
      );
    }
  });
  const maxWorkers = Math.max(config.maxWorkers, ...tiers.flatMap((t) => [t.numberOfWorkers, t.backlogWorkers ?? 0]));
  return { ...config, tiers, maxWorkers };
}

/** "files → G.1X workers … ≤ 1000 → 2, ≤ 2500 → 3, ≤ 10000 → 6/12, at most 12", as the simulation's header prints. */
export function capacityText(c: CapacitySettings): string {
  const tiers = c.tiers
    .map((t) => `≤ ${t.maxFiles} → ${t.numberOfWorkers}${t.backlogWorkers === undefined ? "" : `/${t.backlogWorkers}`}`)
    .join(", ");
  return `files → G.1X workers (/N: N when uploads wait behind the run) ${tiers}, at most ${c.maxWorkers}`;
}

/** The capacity table "ours" runs with: BENCH_TIERS's if set, else `config` (the fixed variant passes its own). */
export function experimentTiers(config: CapacitySettings): CapacitySettings {
  const spec = process.env.BENCH_TIERS;
  return spec ? tiersFromSpec(spec, config) : config;
}
