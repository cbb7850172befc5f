/** Fixed-width tables for the figures. */
import type { BatchCost } from "./batch-cost.js";
import { costLines, totalUsd, type Usage } from "./cost.js";
import type { Figures } from "./figures.js";
import type { OursDiagnostics } from "./ours.js";
import type { StrandedFigures } from "./seed.js";

const LABEL = 44;
const COL = 16;

function num(n: number | null, digits = 0): string {
  if (n === null) return "—";
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** One contender's figures for a scenario, as the comparison table prints them. */
export interface Contender {
  readonly label: string;
  readonly figures: Figures;
  readonly usage: Usage;
  /** Bookmark contenders (seed, Glue's native trigger) only. */
  readonly stranded: StrandedFigures | null;
}

const WIDE = 20;

/** Every contender side by side: runs, latency, what was lost/stranded/twice, and the cost, each line item shown. */
export function comparisonTable(title: string, cs: readonly Contender[], idealRunsPerBurst: number | null): string {
  const line = (label: string, f: (c: Contender) => string) =>
    `${label.padEnd(LABEL)}${cs.map((c) => f(c).padStart(WIDE)).join("")}`;
  const perBurst = (f: Figures) =>
    f.runsPerBurst ? `${num(f.runsPerBurst.mean, 1)} / ${num(f.runsPerBurst.max)}` : "—";
  const st = (c: Contender, f: (s: StrandedFigures) => string) => (c.stranded ? f(c.stranded) : "—");
  const usd = (x: number) => (x === 0 ? "$0" : x < 0.01 ? `$${x.toFixed(5)}` : `$${num(x, 2)}`);
  const lines = [
    title,
    line("", (c) => c.label),
    line("Glue runs started", (c) => num(c.figures.glueRunsStarted)),
    line(
      `runs per burst, mean / max${idealRunsPerBurst === null ? "" : ` (cap floor ${num(idealRunsPerBurst, 1)})`}`,
      (c) => perBurst(c.figures),
    ),
    line("runs per hour of arrivals", (c) => num(c.figures.runsPerHour, 1)),
    line(
      "upload → run start, p50 / p99 (s)",
      (c) => `${num(c.figures.latencySeconds.p50)} / ${num(c.figures.latencySeconds.p99)}`,
    ),
    line("upload → run start, max (s)", (c) => num(c.figures.latencySeconds.max)),
    line("files processed", (c) => num(c.figures.processed)),
    line("files LOST (owed, never processed)", (c) => num(c.figures.lost)),
    line("stranded (waited for another's trigger)", (c) => st(c, (s) => num(s.stranded))),
    line("  of which processed: wait p50 / p99 (s)", (c) =>
      st(c, (s) => `${num(s.waitSeconds.p50)} / ${num(s.waitSeconds.p99)}`),
    ),
    line("  never processed (no later trigger)", (c) => st(c, (s) => num(s.neverProcessed))),
    line("files processed twice (succeeded runs)", (c) => num(c.figures.processedTwice)),
    line("superseded (not processed, by design)", (c) => num(c.figures.supersededByDesign)),
  ];
  const names = costLines(cs[0]?.usage ?? ({} as Usage)).map((l) => l.item);
  names.forEach((item, k) => {
    lines.push(
      line(`  $ ${item}`, (c) => {
        const l = costLines(c.usage)[k];
        return l && l.quantity > 0 ? `${usd(l.usd)} (${compact(l.quantity)} ${l.unit})` : "—";
      }),
    );
  });
  lines.push(line("$ total", (c) => usd(totalUsd(c.usage))));
  lines.push(
    line("$ per 1,000 files processed", (c) =>
      c.figures.processed === 0 ? "—" : usd((1000 * totalUsd(c.usage)) / c.figures.processed),
    ),
  );
  return lines.join("\n");
}

/** 1234 → 1.2k, 1234567 → 1.2M (the line items' quantities, to fit a column). */
function compact(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  if (n >= 100) return num(n);
  return num(n, n < 10 ? 2 : 1);
}

export function diagnosticsLines(d: OursDiagnostics, others: readonly string[]): string {
  const repairs = Object.entries(d.sweeperRepairs)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  const lost = Object.entries(d.lostByStatus)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return [
    `  ours: ${num(d.batcherInvocations)} batcher invocations (largest ${num(d.largestBatch)} records), ` +
      `${num(d.messagesDelivered)} messages, ${num(d.messagesRedelivered)} redelivered, ${num(d.messagesToDlq)} to DLQ; ` +
      `concurrent: 2 batches ${num(d.stepsWithTwoBatchers)}×, batch + recorder/sweeper ${num(d.stepsWithBatcherAndOther)}×`,
    `  ours: crashes batcher/recorder/sweeper/reconciler ${d.crashes.batcher}/${d.crashes.recorder}/${d.crashes.sweeper}/${d.crashes.reconciler}, ` +
      `handler errors ${d.handlerErrors.batcher}/${d.handlerErrors.recorder}/${d.handlerErrors.sweeper}/${d.handlerErrors.reconciler}, ledger faults ${d.transientLedgerFaults}, Glue start 5xx ${d.glueStartFaults}, ` +
      `Glue refusals ${d.glueStartsRefused}, max concurrent Glue runs ${d.maxConcurrentGlueRuns}, failed runs ${d.glueRunsFailed}`,
    `  ours: end events lost ${d.endEventsLost}, duplicated ${d.endEventsDuplicated}, to DLQ ${d.endEventsToDlq}; ` +
      `sweeper repairs: ${repairs || "none"}; reconciler recorded ${d.reconciled}`,
    `  ours: ${d.drained ? "drained" : "NOT drained"} after ${num(d.simulatedHours, 2)} simulated h; ` +
      `ledger/Glue mismatches ${d.ledgerVsGlueMismatches}${lost ? `; lost by status: ${lost}` : ""}`,
    `  ours: INVARIANTS current versions superseded ${num(d.currentSuperseded)}, healthy files failed ${num(d.healthyFailed)}, ` +
      `ledger/Glue mismatches ${num(d.ledgerVsGlueMismatches)} (broken files failed with their reason ${num(d.brokenFailed)})`,
    `  ours: world ${d.world}; S3 events lost ${num(d.eventsLost)}, Glue end events late ${num(d.endEventsLate)}, ` +
      `runs failed by the outage ${num(d.glueRunsFailedByOutage)}, batches cut by the 6 MB payload ${num(d.batchesCutByPayload)}, ` +
      `held bursts that sent a message back ${num(d.burstsSentBack)}` +
      (d.injected ? `; fake AWS injected ${JSON.stringify(d.injected)}` : ""),
    `  ours: manifest entries with a newer version of their key in the same run ${num(d.olderVersionInSameRun)}; ` +
      `entries already overwritten at run start ${num(d.staleManifestEntries)}, ` +
      `${num(d.staleWithoutNewerInRun)} of them without the newer version in the run`,
    ...others,
  ].join("\n");
}

export function batchTable(runs: readonly { label: string; cost: BatchCost }[]): string {
  const col = (s: string) => s.padStart(COL);
  const lines = [
    `ONE batch of ${num(runs[0]?.cost.records ?? 0)} records through handleUploadBatch (fresh in-memory world, prod config)`,
    `${"".padEnd(LABEL)}${runs.map((r) => col(r.label)).join("")}`,
  ];
  const add = (label: string, f: (c: BatchCost) => string) =>
    lines.push(`${label.padEnd(LABEL)}${runs.map((r) => col(f(r.cost))).join("")}`);
  add("uploads recorded / files in the run started", (c) => `${num(c.recorded)} / ${num(c.runFiles)}`);
  add("wall time (ms)", (c) => num(c.wallMs));
  add("CPU user + system (ms)", (c) => `${num(c.cpuUserMs)} + ${num(c.cpuSystemMs)}`);
  add("peak RSS above baseline (MiB)", (c) => num(c.peakRssDeltaMiB, 1));
  add("peak heapUsed above baseline (MiB)", (c) => num(c.peakHeapUsedDeltaMiB, 1));
  return lines.join("\n");
}
