/**
 * Coalescing benchmark: a deterministic simulation (seeded PRNG, simulated clock) of the ingestion pipeline's
 * coalescing logic under four arrival patterns, next to the seed's one-StartJobRun-per-event strategy, plus the
 * cost of one 10,000-record batch through the handler. Prints tables and writes bench-out/coalescing.json.
 *
 *   pnpm exec tsx packages/core/bench/coalescing-sim.ts            # full (1,000,000 uploads in pattern 3)
 *   pnpm exec tsx packages/core/bench/coalescing-sim.ts --quick    # smaller pattern 3, a smoke check
 *   BENCH_TRACE=1 prints the slot / run / pending timeline of our pipeline (slow: small patterns only).
 *   options: --seed=N (default 42), --only=burst,steady,day,storm, --faults=on|off|stress (see sim/model.ts)
 *
 * Modelling choices are documented where they are made: sim/model.ts (rates), sim/ours.ts (SQS, consumers,
 * crashes, Glue, recorder, sweeper), sim/seed.ts (the seed's strategy), sim/figures.ts (what counts as lost,
 * processed twice, superseded), sim/arrivals.ts (patterns, what a burst is).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { pipelineConfig } from "../src/config/pipeline.js";
import { type Arrivals, day, oneBurst, reuploadStorm, steady } from "./sim/arrivals.js";
import { measureBatch } from "./sim/batch-cost.js";
import { disableFaults, MODEL, stressFaults } from "./sim/model.js";
import { simulateOurs } from "./sim/ours.js";
import { batchTable, diagnosticsLines, patternTable } from "./sim/report.js";
import { simulateSeed } from "./sim/seed.js";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const faults = args.find((x) => x.startsWith("--faults="))?.slice(9) ?? "on";
if (faults === "off") disableFaults();
else if (faults === "stress") stressFaults();
else if (faults !== "on") throw new Error(`--faults=${faults}: want on, off or stress`);
const seed = Number(args.find((x) => x.startsWith("--seed="))?.slice(7) ?? 42);
const only = args
  .find((x) => x.startsWith("--only="))
  ?.slice(7)
  .split(",");
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const outFile = join(repoRoot, "bench-out", "coalescing.json");
const config = pipelineConfig("prod");
/** The figures depend on the logic measured: name the last commit of packages/core/src (and whether it is edited). */
const srcVersion = (() => {
  try {
    const git = (...a: string[]) => execFileSync("git", a, { cwd: repoRoot, encoding: "utf8" }).trim();
    const commit = git("log", "-1", "--format=%h", "--", "packages/core/src");
    return git("status", "--porcelain", "--", "packages/core/src") === "" ? commit : `${commit}+uncommitted`;
  } catch {
    return "unknown";
  }
})();

const patterns: (() => Arrivals)[] = [
  () => oneBurst(seed, 10_000),
  () => steady(3_600),
  () => (quick ? day(seed, 100_000) : day(seed, 1_000_000)),
  () => reuploadStorm(seed, 200, 20),
];

async function main(): Promise<void> {
  const started = performance.now();
  console.log(
    `coalescing simulation of packages/core/src @ ${srcVersion} — seed ${seed}${quick ? ", QUICK" : ""}${faults === "on" ? "" : `, faults ${faults.toUpperCase()}`}; prod config: batch ${config.queue.batchSize} / ` +
      `window ${config.queue.batchingWindowSeconds} s / ${config.queue.maximumConcurrency} consumers, ` +
      `visibility ${config.queue.visibilityTimeoutSeconds} s, maxReceiveCount ${config.queue.maxReceiveCount}, ` +
      `≤ ${config.runs.maxFilesPerRun} files per run, sweeper every ${config.runs.sweepIntervalMinutes} min`,
  );
  console.log(
    `model: Glue run ${MODEL.glueBaseSeconds.join("–")} s + ${MODEL.glueSecondsPerFile} s/file, ${pct(MODEL.glueFailureShare)} fail; ` +
      `events ${MODEL.deliveryDelaySeconds.join("–")} s, ${pct(MODEL.lateEventShare)} late, ${pct(MODEL.duplicateEventShare)} twice; ` +
      `${pct(MODEL.crashShare)} of invocations crash, ${pct(MODEL.transientLedgerFaultShare)} hit a ledger fault; ` +
      `${pct(MODEL.glueStartFaultShare)} StartJobRun 5xx; end events ${pct(MODEL.endEventLostShare)} lost, ` +
      `${pct(MODEL.endEventDuplicateShare)} twice\n`,
  );

  // The handler's own cost first, in a process that has not yet built a million-upload ledger.
  const cold = await measureBatch(10_000);
  const warm = await measureBatch(10_000);

  const results = [];
  for (const [n, make] of patterns.entries()) {
    const a = make();
    if (only && !only.includes(a.name)) continue;
    const t0 = performance.now();
    const ours = await simulateOurs(a, seed);
    const oursSeconds = (performance.now() - t0) / 1000;
    const seedResult = simulateSeed(a, seed);
    const wallSeconds = (performance.now() - t0) / 1000;
    const ideal =
      a.burstSizes.length === 0
        ? null
        : a.burstSizes.reduce((s, size) => s + Math.ceil(size / config.runs.maxFilesPerRun), 0) / a.burstSizes.length;
    console.log(
      patternTable(
        `── ${n + 1}. ${a.title} — simulated in ${wallSeconds.toFixed(1)} s wall ──`,
        ours.figures,
        seedResult.figures,
        ideal,
      ),
    );
    console.log(diagnosticsLines(ours.diagnostics, seedResult.diagnostics.startsRefused));
    console.log("");
    results.push({
      pattern: a.name,
      title: a.title,
      uploads: a.count,
      bursts: a.burstSizes.length,
      idealRunsPerBurst: ideal,
      wallSeconds: { ours: oursSeconds, total: wallSeconds },
      ours: ours.figures,
      seed: seedResult.figures,
      oursDiagnostics: ours.diagnostics,
      seedDiagnostics: seedResult.diagnostics,
    });
  }

  console.log(
    batchTable([
      { label: "first (cold)", cost: cold },
      { label: "second (warm)", cost: warm },
    ]),
  );
  const totalSeconds = (performance.now() - started) / 1000;
  const maxRssMiB = process.resourceUsage().maxRSS / 1024;
  console.log(
    "\nnote: the sweeper's recorded-lost-end also counts ends it noticed before their event arrived (1–5 s after the end)",
  );
  console.log(`total wall time ${totalSeconds.toFixed(1)} s, process max RSS ${maxRssMiB.toFixed(0)} MiB`);

  mkdirSync(dirname(outFile), { recursive: true });
  const doc = {
    benchmark: "coalescing-sim",
    srcVersion,
    seed,
    quick,
    faults,
    config: { queue: config.queue, runs: config.runs, glue: { maxConcurrentRuns: config.glue.maxConcurrentRuns } },
    model: MODEL,
    patterns: results,
    batch: { cold, warm },
    totalWallSeconds: totalSeconds,
    maxRssMiB,
  };
  writeFileSync(outFile, `${JSON.stringify(doc, null, 2)}\n`);
  console.log(`figures written to ${outFile}`);
}

function pct(share: number): string {
  return `${(share * 100).toLocaleString("en-US", { maximumFractionDigits: 2 })}%`;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
