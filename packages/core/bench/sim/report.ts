/** Fixed-width tables for the figures. */
import type { BatchCost } from "./batch-cost.js";
import type { Figures } from "./figures.js";
import type { OursDiagnostics } from "./ours.js";

const LABEL = 44;
const COL = 16;

function num(n: number | null, digits = 0): string {
  if (n === null) return "—";
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function row(label: string, ours: string, seed: string): string {
  return `${label.padEnd(LABEL)}${ours.padStart(COL)}${seed.padStart(COL)}`;
}

export function patternTable(title: string, ours: Figures, seed: Figures, idealRunsPerBurst: number | null): string {
  const perBurst = (f: Figures) =>
    f.runsPerBurst ? `${num(f.runsPerBurst.mean, 1)} / ${num(f.runsPerBurst.max)}` : "—";
  const lines = [
    title,
    row("", "ours", "seed"),
    row("uploads", num(ours.uploads), num(seed.uploads)),
    row("Glue runs started", num(ours.glueRunsStarted), num(seed.glueRunsStarted)),
    row(
      `runs per burst, mean / max${idealRunsPerBurst === null ? "" : ` (cap floor ${num(idealRunsPerBurst, 1)})`}`,
      perBurst(ours),
      perBurst(seed),
    ),
    row("runs per hour of arrivals", num(ours.runsPerHour, 1), num(seed.runsPerHour, 1)),
    row("upload → run start, p50 (s)", num(ours.latencySeconds.p50), num(seed.latencySeconds.p50)),
    row("upload → run start, p99 (s)", num(ours.latencySeconds.p99), num(seed.latencySeconds.p99)),
    row("upload → run start, max (s)", num(ours.latencySeconds.max), num(seed.latencySeconds.max)),
    row("files processed", num(ours.processed), num(seed.processed)),
    row("files LOST", num(ours.lost), num(seed.lost)),
    row("files processed twice (succeeded runs)", num(ours.processedTwice), num(seed.processedTwice)),
    row("superseded (not processed, by design)", num(ours.supersededByDesign), num(seed.supersededByDesign)),
  ];
  return lines.join("\n");
}

export function diagnosticsLines(d: OursDiagnostics, seedRefused: number): string {
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
    `  ours: crashes batcher/recorder/sweeper ${d.crashes.batcher}/${d.crashes.recorder}/${d.crashes.sweeper}, ` +
      `handler errors ${d.handlerErrors.batcher}/${d.handlerErrors.recorder}/${d.handlerErrors.sweeper}, ledger faults ${d.transientLedgerFaults}, Glue start 5xx ${d.glueStartFaults}, ` +
      `Glue refusals ${d.glueStartsRefused}, max concurrent Glue runs ${d.maxConcurrentGlueRuns}, failed runs ${d.glueRunsFailed}`,
    `  ours: end events lost ${d.endEventsLost}, duplicated ${d.endEventsDuplicated}, to DLQ ${d.endEventsToDlq}; ` +
      `sweeper repairs: ${repairs || "none"}`,
    `  ours: ${d.drained ? "drained" : "NOT drained"} after ${num(d.simulatedHours, 2)} simulated h; ` +
      `ledger/Glue mismatches ${d.ledgerVsGlueMismatches}${lost ? `; lost by status: ${lost}` : ""}`,
    `  ours: manifest entries with a newer version of their key in the same run ${num(d.olderVersionInSameRun)}; ` +
      `entries already overwritten at run start ${num(d.staleManifestEntries)}, ` +
      `${num(d.staleWithoutNewerInRun)} of them without the newer version in the run`,
    `  seed: ${num(seedRefused)} StartJobRun calls refused (ConcurrentRunsExceededException → 500, not retried)`,
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
