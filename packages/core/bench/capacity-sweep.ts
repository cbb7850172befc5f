/**
 * Capacity sweep: "ours" alone on the day scenario (sim/arrivals.ts `day`) under several capacity tables and seeds,
 * next to the fixed-capacity variant — how the capacity table in the config module (runs.capacity) was chosen
 * (docs/notes/cost.md). One line per (table, seed): runs, upload → run start p50 / p99, Glue $ and how many times
 * less Glue than the fixed variant on the same seed.
 *
 *   pnpm exec tsx packages/core/bench/capacity-sweep.ts --tables="config;50:2,2500:3,10000:12" --seeds=42,7,1234
 *   options: --uploads=N (default 1,000,000), --faults=on|off (default on). A table is "config" (prod's) or
 *   "maxFiles:workers,..." (bytes and timeouts as the config's tier of the same rank, see BENCH_TIERS in sim/ours.ts).
 */
import { type CapacitySettings, pipelineConfig } from "../src/config/pipeline.js";
import { day } from "./sim/arrivals.js";
import { glueUsd } from "./sim/cost.js";
import { disableFaults } from "./sim/model.js";
import { fixedCapacity, simulateOurs, tiersFromSpec } from "./sim/ours.js";

const args = process.argv.slice(2);
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const tables = (option("tables") ?? "config").split(";");
const seeds = (option("seeds") ?? "42").split(",").map(Number);
const uploads = Number(option("uploads") ?? 1_000_000);
if (option("faults") === "off") disableFaults();
const config = pipelineConfig("prod");

const capacityOf = (table: string): CapacitySettings =>
  table === "config" ? config.runs.capacity : tiersFromSpec(table, config.runs.capacity);

console.log(`capacity sweep: day of ${uploads.toLocaleString("en-US")} uploads, faults ${option("faults") ?? "on"}`);
console.log(["table", "seed", "runs", "p50 s", "p99 s", "Glue $", "fixed: p99 s", "fixed Glue $", "× less"].join("\t"));
for (const seed of seeds) {
  const arrivals = day(seed, uploads);
  const fixed = await simulateOurs(arrivals, seed, { capacity: fixedCapacity(config) });
  for (const table of tables) {
    const ours = await simulateOurs(arrivals, seed, { capacity: capacityOf(table) });
    const [o, f] = [ours.figures.latencySeconds, fixed.figures.latencySeconds];
    const less = glueUsd(fixed.usage) / glueUsd(ours.usage);
    console.log(
      [table, seed, ours.figures.glueRunsStarted, o.p50, o.p99, glueUsd(ours.usage).toFixed(2)]
        .concat([f.p99, glueUsd(fixed.usage).toFixed(2), less.toFixed(2)])
        .join("\t"),
    );
  }
}
