/**
 * Coalescing benchmark: a deterministic simulation (seeded PRNG, simulated clock) of the ingestion pipeline's
 * coalescing logic under four arrival patterns, next to the seed's one-StartJobRun-per-event strategy, plus the
 * cost of one 10,000-record batch through the handler. Prints tables and writes bench-out/coalescing.json.
 *
 *   pnpm exec tsx packages/core/bench/coalescing-sim.ts            # full (1,000,000 uploads in pattern 3)
 *   pnpm exec tsx packages/core/bench/coalescing-sim.ts --quick    # smaller pattern 3, a smoke check
 *   BENCH_TRACE=1 prints the slot / run / pending timeline of our pipeline (slow: small patterns only).
 *   options: --seed=N (default 42), --only=burst,burst-ontime,burst-full,steady,day,storm,idle,idle-aws,aws-aws, --faults=on|off|stress
 *   (see sim/model.ts), --late=on|off (off: no S3 event is delivered late, for attributing a latency gap).
 *   Scenarios marked [AWS semantics] drive the real adapters over the fake AWS (sim/world.ts).
 *   BENCH_CONSUMERS=N runs ours with N concurrent batch consumers instead of the config's (an experiment knob);
 *   BENCH_MAX_FILES=N runs ours and the fixed variant with N files per run at most (runs.maxFilesPerRun); with a
 *   cap above the capacity table's last tier, give ours a tier for it with BENCH_TIERS (sim/ours.ts);
 *   BENCH_WINDOW / BENCH_BATCH set ours' batching window (s) and batch size, BENCH_NATIVE_WINDOW the native
 *   trigger's BatchWindow (default: our prod window), all experiment knobs.
 *
 * Modelling choices are documented where they are made: sim/model.ts (rates), sim/ours.ts (SQS, consumers,
 * crashes, Glue, recorder, sweeper), sim/seed.ts (the seed's strategy), sim/figures.ts (what counts as lost,
 * processed twice, superseded), sim/arrivals.ts (patterns, what a burst is).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { pipelineConfig, type RunSettings } from "../src/config/pipeline.js";
import { CRASH_LEASE_MARGIN_SECONDS } from "../src/queue/lease.js";
import { type Arrivals, awsMix, day, idleSingles, oneBurst, reuploadStorm, steady } from "./sim/arrivals.js";
import { measureBatch } from "./sim/batch-cost.js";
import { glueUsd, totalUsd } from "./sim/cost.js";
import { AWS_SEMANTICS, disableFaults, MODEL, type Model, stressFaults, withModel } from "./sim/model.js";
import { fixedCapacity, fixedFillHold, simulateOurs } from "./sim/ours.js";
import { PRICES } from "./sim/prices.js";
import { batchTable, comparisonTable, diagnosticsLines } from "./sim/report.js";
import { type BookmarkResult, type NativeTrigger, simulateNative, simulateSeed } from "./sim/seed.js";
import { capacityText, experimentTiers } from "./sim/tiers.js";
import type { AwsProfile } from "./sim/world.js";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const faults = args.find((x) => x.startsWith("--faults="))?.slice(9) ?? "on";
if (faults === "off") disableFaults();
else if (faults === "stress") stressFaults();
else if (faults !== "on") throw new Error(`--faults=${faults}: want on, off or stress`);
// --late=off: every S3 event delivered 1–3 s after its upload (an attribution experiment: how much of a p99 gap is
// late events, which a job that lists its prefix never waits for). Scenarios that set their own share keep it.
const late = args.find((x) => x.startsWith("--late="))?.slice(7) ?? "on";
if (late === "off") MODEL.lateEventShare = 0;
else if (late !== "on") throw new Error(`--late=${late}: want on or off`);
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

interface Scenario {
  readonly make: () => Arrivals;
  /** The name `--only` selects it by (default: the arrivals' name, `-aws` added on the fake AWS). */
  readonly name?: string;
  /** Run ours on the real adapters over the fake AWS with this profile. */
  readonly aws?: AwsProfile;
  /** Changes to the shared model for this scenario. */
  readonly model?: Partial<Model>;
  readonly note?: string;
}

/**
 * AWS's documented semantics: 1% answers lost after the request applied (10% for StartJobRun, called rarely but
 * decisive: at 1% a scenario of a few dozen runs would rarely meet it), 0.5% throttles, the index 0–2 s behind.
 */
const AWS_FAULTS = {
  lostAnswer: 0.01,
  throttle: 0.005,
  gsiLagMs: [0, 2_000],
  lostAnswerByOperation: { StartJobRun: 0.1 },
} as const;
const INDEX_LAG_ONLY = { lostAnswer: 0, throttle: 0, gsiLagMs: [0, 2_000] } as const;
const NO_OTHER_FAULTS: Partial<Model> = {
  crashShare: 0,
  transientLedgerFaultShare: 0,
  glueFailureShare: 0,
  glueStartFaultShare: 0,
  endEventLostShare: 0,
};

const scenarios: Scenario[] = [
  { make: () => oneBurst(seed, 10_000) },
  {
    make: () => oneBurst(seed, 10_000),
    name: "burst-ontime",
    model: { lateEventShare: 0 },
    note: "the same burst with every S3 event delivered 1–3 s after its upload (no late tail); the other faults stay on",
  },
  {
    make: () => oneBurst(seed, 8_000),
    name: "burst-full",
    model: { lateEventShare: 0, duplicateEventShare: 0 },
    note:
      "a burst that ends on full batches: two consumers receive 4,000 records each and nothing comes after them " +
      "(every S3 event on time, none twice); the other faults stay on",
  },
  { make: () => steady(3_600) },
  { make: () => (quick ? day(seed, 100_000) : day(seed, 1_000_000)) },
  { make: () => reuploadStorm(seed, 200, 20) },
  { make: () => idleSingles(seed, quick ? 100 : 300) },
  {
    make: () => idleSingles(seed, quick ? 100 : 300),
    aws: { faults: INDEX_LAG_ONLY, glueOutageSeconds: null },
    model: { ...NO_OTHER_FAULTS, lateEventShare: 0 },
    note:
      "the same on the real adapters over the fake AWS, the pending index 0–2 s behind; no other fault and no late " +
      "event, so the latency is the pipeline's own",
  },
  {
    make: () => awsMix(seed, quick ? 500 : 2_000),
    aws: { faults: AWS_FAULTS, glueOutageSeconds: [1_200, 1_800] },
    model: AWS_SEMANTICS,
    note:
      "real adapters over the fake AWS: 1% answers lost after apply (StartJobRun 10%; SDK retries), 0.5% throttled, " +
      "index 0–2 s behind, MD5 ETags + random version ids, 10% multipart (Last-Modified 1–30 s early), 1% S3 events " +
      "lost, Glue events 1% lost / 1% twice / 2% late, 0.5% broken files, Glue outage 20–30 min in (every run fails " +
      "10–30 s in); plus the shared faults",
  },
];

/** The manifest cap ours and fixed run with (sim/ours.ts reads the same BENCH_MAX_FILES). */
const maxFilesPerRun = Number(process.env.BENCH_MAX_FILES ?? config.runs.maxFilesPerRun);

/** Glue's native trigger as a user would set it: the largest batch (100 events), our prod window, our job's capacity. */
const NATIVE: NativeTrigger = {
  batchSize: 100,
  batchWindowSeconds: Number(process.env.BENCH_NATIVE_WINDOW ?? config.queue.batchingWindowSeconds),
  workers: config.glue.numberOfWorkers,
};

function fillHoldText(h: RunSettings["fillHold"]): string {
  return h ? `${h.minFiles} files / ${h.maxWaitSeconds} s / quiet ${h.quietSeconds} s` : "off";
}

async function main(): Promise<void> {
  const started = performance.now();
  console.log(
    `coalescing simulation of packages/core/src @ ${srcVersion} — seed ${seed}${quick ? ", QUICK" : ""}${faults === "on" ? "" : `, faults ${faults.toUpperCase()}`}; prod config: batch ${config.queue.batchSize} / ` +
      `window ${config.queue.batchingWindowSeconds} s / ${config.queue.maximumConcurrency} consumers, ` +
      `visibility ${config.queue.visibilityTimeoutSeconds} s, maxReceiveCount ${config.queue.maxReceiveCount}, ` +
      `${process.env.BENCH_LEASE === "0" ? "NO crash lease (BENCH_LEASE=0)" : `crash lease ${config.queue.consumerTimeoutSeconds + CRASH_LEASE_MARGIN_SECONDS} s doubling per receive`}, ` +
      `≤ ${maxFilesPerRun} files per run${maxFilesPerRun === config.runs.maxFilesPerRun ? "" : " (BENCH_MAX_FILES)"}, sweeper every ${process.env.BENCH_SWEEP_MINUTES ?? config.runs.sweepIntervalMinutes} min, ` +
      `fill hold ${process.env.BENCH_FILL ?? fillHoldText(config.runs.fillHold)}${process.env.BENCH_FILL ? " (BENCH_FILL)" : ""}`,
  );
  console.log(
    `model: Glue run ${MODEL.glueBaseSeconds.join("–")} s + ${MODEL.glueWorkerSecondsPerFile} worker-s/file over workers − 1, ${pct(MODEL.glueFailureShare)} fail; ` +
      `events ${MODEL.deliveryDelaySeconds.join("–")} s, ${pct(MODEL.lateEventShare)} late, ${pct(MODEL.duplicateEventShare)} twice; ` +
      `${pct(MODEL.crashShare)} of invocations crash, ${pct(MODEL.transientLedgerFaultShare)} hit a ledger fault; ` +
      `${pct(MODEL.glueStartFaultShare)} StartJobRun 5xx; end events ${pct(MODEL.endEventLostShare)} lost, ` +
      `${pct(MODEL.endEventDuplicateShare)} twice`,
  );
  console.log(
    `contenders: ours (capacity per run: ${capacityText(experimentTiers(config.runs.capacity))}${process.env.BENCH_TIERS ? " (BENCH_TIERS)" : ""}), ours fixed (every run G.1X × ${config.glue.numberOfWorkers}), Glue's native ` +
      `trigger (BatchSize ${NATIVE.batchSize}, BatchWindow ${NATIVE.batchWindowSeconds} s, job G.1X × ${NATIVE.workers}, bookmarks), ` +
      `seed (a StartJobRun per event, G.1X × 2, bookmarks); prices ${PRICES.region} as of ${PRICES.asOf} (src/config/prices.ts)\n`,
  );

  // The handler's own cost first, in a process that has not yet built a million-upload ledger.
  const cold = await measureBatch(10_000);
  const warm = await measureBatch(10_000);

  const results = [];
  for (const [n, scenario] of scenarios.entries()) {
    const a = scenario.make();
    const name = scenario.name ?? (scenario.aws ? `${a.name}-aws` : a.name);
    if (only && !only.includes(name)) continue;
    const t0 = performance.now();
    const aws = scenario.aws ? { aws: scenario.aws } : {};
    const outage = scenario.aws?.glueOutageSeconds ?? null;
    const { ours, fixed, native, seedResult } = await withModel(scenario.model ?? {}, async () => ({
      ours: await simulateOurs(a, seed, aws),
      fixed: await simulateOurs(a, seed, { ...aws, capacity: fixedCapacity(config), ...fixedFillHold() }),
      native: simulateNative(a, seed, NATIVE, outage),
      seedResult: simulateSeed(a, seed, outage),
    }));
    const oursSeconds = (performance.now() - t0) / 1000;
    const wallSeconds = oursSeconds;
    const ideal =
      a.burstSizes.length === 0
        ? null
        : a.burstSizes.reduce((s, size) => s + Math.ceil(size / maxFilesPerRun), 0) / a.burstSizes.length;
    const contenders = [
      { label: "ours", figures: ours.figures, usage: ours.usage, stranded: null },
      { label: "ours fixed", figures: fixed.figures, usage: fixed.usage, stranded: null },
      { label: "Glue native", figures: native.figures, usage: native.usage, stranded: native.stranded },
      { label: "seed", figures: seedResult.figures, usage: seedResult.usage, stranded: seedResult.stranded },
    ];
    console.log(
      comparisonTable(
        `── ${n + 1}. ${a.title}${scenario.aws ? " [AWS semantics]" : ""} — simulated in ${wallSeconds.toFixed(1)} s wall ──` +
          (scenario.note ? `\n   (${scenario.note})` : ""),
        contenders,
        ideal,
      ),
    );
    console.log(
      diagnosticsLines(ours.diagnostics, [
        `  ours: Glue $${glueUsd(ours.usage).toFixed(2)} vs fixed $${glueUsd(fixed.usage).toFixed(2)} ` +
          `(${(glueUsd(fixed.usage) / Math.max(1e-9, glueUsd(ours.usage))).toFixed(2)}× less); fixed variant: ` +
          `lost ${fixed.figures.lost}, twice ${fixed.figures.processedTwice}, mismatches ${fixed.diagnostics.ledgerVsGlueMismatches}`,
        bookmarkLine("Glue native", native),
        bookmarkLine("seed", seedResult),
      ]),
    );
    console.log("");
    results.push({
      pattern: name,
      world: scenario.aws ? "aws" : "memory",
      note: scenario.note ?? null,
      title: a.title,
      uploads: a.count,
      bursts: a.burstSizes.length,
      idealRunsPerBurst: ideal,
      wallSeconds: { ours: oursSeconds, total: wallSeconds },
      ours: ours.figures,
      oursFixed: fixed.figures,
      native: native.figures,
      seed: seedResult.figures,
      stranded: { native: native.stranded, seed: seedResult.stranded },
      usage: { ours: ours.usage, oursFixed: fixed.usage, native: native.usage, seed: seedResult.usage },
      usd: {
        ours: totalUsd(ours.usage),
        oursFixed: totalUsd(fixed.usage),
        native: totalUsd(native.usage),
        seed: totalUsd(seedResult.usage),
      },
      oursDiagnostics: ours.diagnostics,
      nativeDiagnostics: native.diagnostics,
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
    prices: PRICES,
    native: NATIVE,
    patterns: results,
    batch: { cold, warm },
    totalWallSeconds: totalSeconds,
    maxRssMiB,
  };
  writeFileSync(outFile, `${JSON.stringify(doc, null, 2)}\n`);
  console.log(`figures written to ${outFile}`);
}

function bookmarkLine(label: string, r: BookmarkResult): string {
  const d = r.diagnostics;
  return (
    `  ${label}: ${d.eventsDelivered} events, ${d.triggersFired} triggers fired, ${d.startsRefused} job starts refused ` +
    `(ConcurrentRunsExceeded), ${d.glueRunsFailed} failed runs${d.lambdaTimeouts ? `, ${d.lambdaTimeouts} Lambda timeouts (15 min) → async retries` : ""}`
  );
}

function pct(share: number): string {
  return `${(share * 100).toLocaleString("en-US", { maximumFractionDigits: 2 })}%`;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
