/**
 * Capacity sweep: "ours" alone on the day scenario (sim/arrivals.ts `day`) under several capacity tables and seeds,
 * next to the fixed-capacity variant — how the capacity table in the config module (runs.capacity) was chosen
 * (docs/notes/cost.md). One line per (table, seed): runs, upload → run start p50 / p99, Glue $ and how many times
 * less Glue than the fixed variant on the same seed.
 *
 *   pnpm exec tsx packages/core/bench/capacity-sweep.ts --tables="config;1000:2,2500:3,10000:6/16" --seeds=42,7,1234
 *   options: --uploads=N (default 1,000,000), --faults=on|off (default on). A table is "config" (prod's) or
 *   "maxFiles:workers[/backlogWorkers],..." (bytes and timeouts as the config's tier of the same rank, see BENCH_TIERS
 *   in sim/ours.ts; "/N": N workers when the caps leave uploads waiting behind the run).
 *   --caps=N,M (default the config's runs.maxFilesPerRun): files per run at most, for ours AND the fixed variant
 *   (compared at the same cap); a cap other than the config's also prints the fixed variant at the config's cap
 *   ("fixed@config" lines; --reference=off skips them). A run past every tier gets the last one, so give a cap above
 *   the last tier a tier of its own ("...,20000:20").
 */
import { type CapacitySettings, pipelineConfig } from "../src/config/pipeline.js";
import { day } from "./sim/arrivals.js";
import { glueUsd } from "./sim/cost.js";
import { disableFaults } from "./sim/model.js";
import { fixedCapacity, fixedFillHold, simulateOurs } from "./sim/ours.js";
import { tiersFromSpec } from "./sim/tiers.js";

const args = process.argv.slice(2);
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const tables = (option("tables") ?? "config").split(";");
const seeds = (option("seeds") ?? "42").split(",").map(Number);
const uploads = Number(option("uploads") ?? 1_000_000);
if (option("faults") === "off") disableFaults();
const config = pipelineConfig("prod");
const configCap = config.runs.maxFilesPerRun;
const caps = (option("caps") ?? String(configCap)).split(",").map(Number);

const capacityOf = (table: string): CapacitySettings =>
  table === "config" ? config.runs.capacity : tiersFromSpec(table, config.runs.capacity);

console.log(`capacity sweep: day of ${uploads.toLocaleString("en-US")} uploads, faults ${option("faults") ?? "on"}`);
const row = (...cells: unknown[]) => console.log(cells.map((c) => String(c ?? "-")).join("\t"));
row(
  "cap",
  "table",
  "seed",
  "runs",
  "runs/burst",
  "p50 s",
  "p99 s",
  "Glue $",
  "fixed: runs",
  "p99 s",
  "Glue $",
  "× less",
);
for (const seed of seeds) {
  const arrivals = day(seed, uploads);
  const fixedAt = (maxFilesPerRun: number) =>
    simulateOurs(arrivals, seed, { capacity: fixedCapacity(config), maxFilesPerRun, ...fixedFillHold() });
  const figures = (r: Awaited<ReturnType<typeof simulateOurs>>) => {
    const { glueRunsStarted, runsPerBurst, latencySeconds } = r.figures;
    return [glueRunsStarted, runsPerBurst?.mean.toFixed(2), latencySeconds.p50, latencySeconds.p99];
  };
  if (option("reference") !== "off" && caps.some((cap) => cap !== configCap)) {
    const f = await fixedAt(configCap);
    row(configCap, "fixed@config", seed, ...figures(f), glueUsd(f.usage).toFixed(2));
  }
  for (const cap of caps) {
    const fixed = await fixedAt(cap);
    for (const table of tables) {
      const ours = await simulateOurs(arrivals, seed, { capacity: capacityOf(table), maxFilesPerRun: cap });
      const [o, f] = [glueUsd(ours.usage), glueUsd(fixed.usage)];
      const { glueRunsStarted, latencySeconds } = fixed.figures;
      row(
        cap,
        table,
        seed,
        ...figures(ours),
        o.toFixed(2),
        glueRunsStarted,
        latencySeconds.p99,
        f.toFixed(2),
        (f / o).toFixed(2),
      );
    }
  }
}
