/**
 * The soak: start a twin, drive the seeded workload through the plain SDK, wait for quiescence (bounded), read the
 * final state independently and check the invariants. `main.ts` is the command line; the chaos test calls
 * `runSoak` for a short window.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { clientConfig } from "../src/aws.js";
import { type FaultConfig, FaultDice } from "../src/faults/config.js";
import type { GlueRunLogLine } from "../src/glue/service.js";
import { projectPaths } from "../src/paths.js";
import { Twin, type TwinLog, type TwinOptions } from "../src/twin.js";
import { check, type GlueRunEntry, type SoakState, type Violation } from "./check.js";
import { executePlan, type OpResult, sleep } from "./execute.js";
import { listVersions, queueDepths, readOutputs, scanLedger, waitQuiet } from "./observe.js";
import { planWorkload } from "./workload.js";

export interface SoakOptions {
  readonly seed: number;
  /** How long the workload runs (quiescence and the check come after). */
  readonly minutes: number;
  /** The twin's fault layer: a checked config (see `faultConfig`), seeded with the soak's seed; null: faults off. */
  readonly faults?: FaultConfig | null;
  /** How the faults were asked for (a profile name or a file), for the report. */
  readonly faultsLabel?: string | null;
  /** How often the twin's sweeper runs (default: the config's sweepIntervalMinutes, as on AWS). */
  readonly sweepIntervalMs?: number;
  /** Bound on the wait for quiescence. */
  readonly quiesceTimeoutMs?: number;
  readonly intensity?: number;
  readonly longKeyBytes?: readonly [number, number];
  readonly log?: (line: string) => void;
  /** Interrupts the workload and the wait for quiescence; what happened so far is still checked. */
  readonly signal?: AbortSignal;
  /** Extra twin options (tests). */
  readonly twin?: TwinOptions;
}

export interface SoakReport {
  readonly seed: number;
  readonly minutes: number;
  readonly faults: string | null;
  readonly uploads: number;
  readonly deletes: number;
  readonly clientErrors: readonly string[];
  readonly glueRuns: Readonly<Record<string, number>>;
  readonly ledgerRuns: number;
  readonly uploadsByStatus: Readonly<Record<string, number>>;
  readonly faultsInjected: Readonly<Record<string, number>> | null;
  readonly latency: {
    readonly n: number;
    readonly p50Ms: number | null;
    readonly p99Ms: number | null;
    readonly maxMs: number | null;
  };
  readonly quiescenceMs: number;
  readonly workloadMs: number;
  readonly dlq: Readonly<Record<string, number>>;
  readonly violations: readonly Violation[];
}

export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? null;
}

/** The Glue service's runs as it holds them in memory (what quiescence polls). */
export function glueLog(twin: Twin): GlueRunEntry[] {
  return twin.glue.listRuns().map((r) => ({
    id: r.id,
    runKey: r.arguments["--run_key"] ?? null,
    state: r.state,
    startedOn: r.startedOn.getTime(),
    completedOn: r.completedOn ? r.completedOn.getTime() : null,
    error: r.errorMessage,
  }));
}

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR"]);

/**
 * The Glue service's own run log (`glue-runs.jsonl`: one line per start and state change) → one entry per run: active
 * from its first line to its first terminal state. Run keys come from the runs' arguments (`runKeys`).
 */
export function glueRunsFromLog(text: string, runKeys: ReadonlyMap<string, string | null>): GlueRunEntry[] {
  const runs = new Map<string, { start: number; end: number | null; state: string; error: string | null }>();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const l = JSON.parse(line) as GlueRunLogLine;
    const t = Date.parse(l.t);
    const r = runs.get(l.jobRunId) ?? { start: t, end: null, state: l.state, error: null };
    r.start = Math.min(r.start, t);
    if (r.end === null) {
      r.state = l.state;
      if (TERMINAL.has(l.state)) r.end = t;
      if (l.message) r.error = l.message;
    }
    runs.set(l.jobRunId, r);
  }
  return [...runs.entries()].map(([id, r]) => ({
    id,
    runKey: runKeys.get(id) ?? null,
    state: r.state,
    startedOn: r.start,
    completedOn: r.end,
    error: r.error,
  }));
}

/** Upload → processed: from the put's answer to the ledger's settle time, for every processed upload of a put. */
function latencies(history: readonly OpResult[], ledger: SoakState["ledger"]): number[] {
  const byVersion = new Map<string, OpResult>();
  for (const h of history) {
    if (h.op.kind !== "put" || h.error) continue;
    byVersion.set(`${h.op.key}\n${h.versionId ?? h.etag}`, h);
  }
  const out: number[] = [];
  for (const i of ledger) {
    if (i.type !== "upload" || i.status !== "processed") continue;
    const id = typeof i.versionId === "string" ? i.versionId : String(i.etag ?? "").replaceAll('"', "");
    const h = byVersion.get(`${String(i.key)}\n${id}`);
    const at = typeof i.updatedAt === "string" ? Date.parse(i.updatedAt) : Number.NaN;
    if (h && Number.isFinite(at)) out.push(at - h.endedAt);
  }
  return out.sort((a, b) => a - b);
}

const count = <T>(items: readonly T[], by: (t: T) => string) =>
  items.reduce<Record<string, number>>((acc, t) => {
    const k = by(t);
    acc[k] = (acc[k] ?? 0) + 1;
    return acc;
  }, {});

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const say = opts.log ?? (() => undefined);
  const windowMs = Math.round(opts.minutes * 60_000);
  const ops = planWorkload({
    seed: opts.seed,
    windowMs,
    ...(opts.intensity ? { intensity: opts.intensity } : {}),
    ...(opts.longKeyBytes ? { longKeyBytes: opts.longKeyBytes } : {}),
  });
  const faultsOn = opts.faults ? Object.entries(opts.faults.rates).filter(([, r]) => r) : [];
  say(
    `seed ${opts.seed}: ${ops.filter((o) => o.kind === "put").length} uploads and ${ops.filter((o) => o.kind === "delete").length} deletes over ${opts.minutes} min; faults ${faultsOn.length ? `${opts.faultsLabel ?? "on"} (${faultsOn.map(([k, r]) => `${k} ${r}`).join(", ")})` : "off"}`,
  );
  const base = projectPaths();
  const paths = projectPaths(base.root, join(base.twinDir, `soak-${process.pid}`));
  const twin = await Twin.start({
    paths,
    writeState: false,
    log: { info: () => undefined, warn: (m) => say(`twin: ${m}`) } satisfies TwinLog,
    ...(opts.faults ? { faults: opts.faults } : {}),
    ...(opts.sweepIntervalMs !== undefined ? { sweepIntervalMs: opts.sweepIntervalMs } : {}),
    ...opts.twin,
  });
  // Quiet means quiet for longer than an S3 event can be held back by the fault layer (delay, then reorder hold).
  const dice = new FaultDice(twin.faults.config);
  const heldBackMs =
    dice.rate("s3EventDelay") > 0 || dice.rate("s3EventReorder") > 0 ? dice.setting("s3EventDelayMs") + 2_000 : 0;
  const s3 = new S3Client({ ...clientConfig(twin.endpoints.aws), forcePathStyle: true });
  const dynamo = new DynamoDBClient(clientConfig(twin.endpoints.aws));
  const sqs = new SQSClient(clientConfig(twin.endpoints.aws));
  let stopped = false;
  try {
    const t0 = Date.now();
    let lastSaid = 0;
    const history = await executePlan({
      s3,
      bucket: twin.names.bucket,
      ops,
      ...(opts.signal ? { signal: opts.signal } : {}),
      onProgress: (done, total) => {
        if (Date.now() - lastSaid > 30_000 || done === total) {
          lastSaid = Date.now();
          say(`workload: ${done}/${total} operations done (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
        }
      },
    });
    const workloadMs = Date.now() - t0;

    say("quiescence: waiting until the queues are empty, no run is active and nothing is pending");
    const queues: Record<string, string> = { ingest: twin.queues.ingest.url, recorder: twin.queues.recorder.url };
    if (twin.queues.s3Events) queues["s3-event relay"] = twin.queues.s3Events.url;
    let lastQuiet = 0;
    const quiesceStart = Date.now();
    const timeoutMs = opts.quiesceTimeoutMs ?? 15 * 60_000;
    const waitForQuiet = () =>
      waitQuiet(
        {
          queues: () => queueDepths(sqs, queues),
          ledger: () => scanLedger(dynamo, twin.names.ledgerTable),
          glueRuns: () => glueLog(twin),
        },
        {
          timeoutMs: Math.max(1_000, timeoutMs - (Date.now() - quiesceStart)),
          stable: Math.max(3, Math.ceil(heldBackMs / 1000) + 2),
          signal: opts.signal,
          onPoll: (left) => {
            if (left.length > 0 && Date.now() - lastQuiet > 30_000) {
              lastQuiet = Date.now();
              say(`quiescence: ${left.join("; ")}`);
            }
          },
        },
      );
    let quiescence = await waitForQuiet();
    // A dropped S3 event is found only by the reconciler (every 15 min, grace config.reconciler.graceSeconds). Rather
    // than wait out the schedule, the soak runs the next scheduled pass itself once the last upload is older than the
    // grace, and again after each pass that recorded something, until a whole pass records nothing (at most 5).
    if (dice.rate("s3EventDrop") > 0) {
      const graceMs = twin.config.reconciler.graceSeconds * 1000;
      for (let pass = 1; pass <= 5 && quiescence.reached && !opts.signal?.aborted; pass++) {
        const due = t0 + workloadMs + graceMs + 2_000 - Date.now();
        if (due > 0) await sleep(due, opts.signal);
        const report = await twin.reconcileNow();
        const recorded = report?.recorded ?? -1;
        say(
          report
            ? `reconciler pass ${pass}: ${report.checked} checked, ${report.recorded} recorded, ${report.failed} failed${report.passEnded ? "" : " (pass not ended)"}`
            : `reconciler pass ${pass} failed; again after quiescence`,
        );
        // Quiet again before the check, whatever the pass found: the other timers (sweeper) and late messages go on
        // meanwhile (seed 3's 10-minute soak was checked right after a clean pass while a start held the slot).
        quiescence = await waitForQuiet();
        if (report && recorded === 0 && report.failed === 0 && report.passEnded) break;
      }
    }
    quiescence = { ...quiescence, waitedMs: Date.now() - quiesceStart };
    say(
      quiescence.reached
        ? `quiet after ${(quiescence.waitedMs / 1000).toFixed(1)} s; checking`
        : `NOT quiet after ${(quiescence.waitedMs / 1000).toFixed(0)} s; checking anyway`,
    );

    const [objects, ledger, outs, dlqs] = await Promise.all([
      listVersions(s3, twin.names.bucket, "input/"),
      scanLedger(dynamo, twin.names.ledgerTable),
      readOutputs(s3, twin.names.bucket),
      queueDepths(sqs, { ingestDlq: twin.queues.ingestDlq.url, recorderDlq: twin.queues.recorderDlq.url }),
    ]);
    const memoryRuns = glueLog(twin);
    const faultsInjected = { ...twin.faults.counts } as Record<string, number>;
    await twin.stop(); // ends the Glue service's run log
    stopped = true;
    const runKeys = new Map(memoryRuns.map((g) => [g.id, g.runKey]));
    let glueRuns: GlueRunEntry[];
    try {
      glueRuns = glueRunsFromLog(readFileSync(join(paths.twinDir, "glue-runs.jsonl"), "utf8"), runKeys);
    } catch (e) {
      say(`the Glue service's run log is unreadable (${e instanceof Error ? e.message : String(e)}); using its memory`);
      glueRuns = memoryRuns;
    }
    const state: SoakState = {
      bucket: twin.names.bucket,
      history,
      objects,
      ledger,
      glueRuns,
      outputs: outs.outputs,
      rejected: outs.rejected,
      stats: outs.stats,
      quiescence,
    };
    const violations = check(state);
    const lat = latencies(history, ledger);
    return {
      seed: opts.seed,
      minutes: opts.minutes,
      faults: faultsOn.length ? (opts.faultsLabel ?? "on") : null,
      uploads: history.filter((h) => h.op.kind === "put" && !h.error).length,
      deletes: history.filter((h) => h.op.kind === "delete" && !h.error).length,
      clientErrors: history
        .filter((h) => h.error)
        .map((h) => `#${h.op.n} ${h.op.kind} ${shortKey(h.op.key)}: ${h.error}`),
      glueRuns: count(glueRuns, (g) => g.state),
      ledgerRuns: ledger.filter((i) => i.type === "run").length,
      uploadsByStatus: count(
        ledger.filter((i) => i.type === "upload"),
        (i) => String(i.status),
      ),
      faultsInjected: faultsOn.length ? faultsInjected : null,
      latency: { n: lat.length, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), maxMs: lat.at(-1) ?? null },
      quiescenceMs: quiescence.waitedMs,
      workloadMs,
      dlq: Object.fromEntries(dlqs.map((q) => [q.name, q.visible + q.inFlight + q.delayed])),
      violations,
    };
  } finally {
    s3.destroy();
    dynamo.destroy();
    sqs.destroy();
    if (!stopped) await twin.stop();
  }
}

const secs = (ms: number | null) => (ms === null ? "—" : `${(ms / 1000).toFixed(1)} s`);
const kv = (r: Readonly<Record<string, number>>) =>
  Object.entries(r)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${v}`)
    .join(", ") || "none";

/** A key of several hundred bytes, shortened for the report (its length in bytes kept). */
export function shortKey(key: string, max = 100): string {
  if (key.length <= max) return key;
  return `${key.slice(0, 60)}…${key.slice(-24)} (${Buffer.byteLength(key, "utf8")} bytes)`;
}

/** The report; every violation is listed, the histories of the first `withHistory` only (--json has them all). */
export function formatReport(r: SoakReport, replay: string, withHistory = 20): string {
  const lines = [
    `seed: ${r.seed}   minutes: ${r.minutes}   faults: ${r.faults ?? "off"}`,
    `uploads: ${r.uploads}   deletes: ${r.deletes}   client errors: ${r.clientErrors.length}`,
    ...r.clientErrors.slice(0, 10).map((e) => `  client error: ${e}`),
    `glue runs: ${kv(r.glueRuns)}   ledger runs: ${r.ledgerRuns}`,
    `ledger uploads: ${kv(r.uploadsByStatus)}`,
    `faults injected: ${r.faultsInjected ? kv(r.faultsInjected) : "none (fault layer off)"}`,
    `upload → processed: p50 ${secs(r.latency.p50Ms)}, p99 ${secs(r.latency.p99Ms)}, max ${secs(r.latency.maxMs)} (n=${r.latency.n})`,
    `workload ${secs(r.workloadMs)}, quiescence ${secs(r.quiescenceMs)}; DLQ depth: ${kv(r.dlq)}`,
    `violations: ${r.violations.length}`,
  ];
  if (r.violations.length > 0) {
    const kinds = count(
      r.violations,
      (v) => `(${v.invariant}) ${v.message.replace(/#\d+|\d{8}T\d{6}Z-[\w-]+|\d+/g, "…")}`,
    );
    lines.push("  by kind:");
    for (const [k, n] of Object.entries(kinds).sort(([, a], [, b]) => b - a)) lines.push(`    ${n} × ${k}`);
  }
  for (const [i, v] of r.violations.entries()) {
    lines.push(`  (${v.invariant}) ${shortKey(v.subject)}: ${v.message}`);
    if (i < withHistory) for (const h of v.history) lines.push(`      ${h}`);
  }
  if (r.violations.length > withHistory) lines.push(`  (histories of the first ${withHistory} shown; --json has all)`);
  lines.push(`seed: ${r.seed} (replay: ${replay})`);
  return lines.join("\n");
}
