/**
 * pnpm run soak -- --minutes N --seed S [--faults <profile|file.json>] [--quiesce-timeout SECONDS] [--intensity X]
 *                  [--long-key-bytes LO-HI] [--sweep-every SECONDS] [--json]
 *
 * Starts a twin, drives a seeded workload through the plain AWS SDK, waits for quiescence, checks the invariants
 * from the emulator's state and the Glue service's log, prints the figures and every violation with its history.
 * Exit code 1 when there is any violation. The seed is printed; the same seed replays the same workload.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type FaultConfig, faultConfig } from "../src/faults/config.js";
import { formatReport, runSoak } from "./soak.js";

// `pnpm run soak -- --minutes 1` hands the script the "--" too.
const argv = process.argv.slice(2);
const { values } = parseArgs({
  args: argv[0] === "--" ? argv.slice(1) : argv,
  options: {
    minutes: { type: "string", default: "10" },
    seed: { type: "string" },
    faults: { type: "string" },
    "sweep-every": { type: "string" },
    "quiesce-timeout": { type: "string", default: "900" },
    intensity: { type: "string", default: "1" },
    "long-key-bytes": { type: "string", default: "1000-1024" },
    json: { type: "boolean", default: false },
  },
});

function number(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`--${name} must be a non-negative number, got "${text}"\n`);
    process.exit(2);
  }
  return n;
}

const seed = values.seed !== undefined ? Math.trunc(number("seed", values.seed)) : Date.now() % 1_000_000;
const minutes = number("minutes", values.minutes);
const faults = values.faults ?? null;

/** `--faults <profile|file.json>`: a profile of the twin's fault layer, or a JSON config; seeded with the soak's seed. */
function faultsOf(spec: string | null): FaultConfig | null {
  if (spec === null) return null;
  try {
    if (spec.endsWith(".json")) {
      const parsed = JSON.parse(readFileSync(spec, "utf8")) as Partial<FaultConfig>;
      if (typeof parsed?.rates !== "object") throw new Error('a fault config needs a "rates" object (kind → 0..1)');
      return faultConfig({ ...parsed, rates: parsed.rates ?? {} }, seed);
    }
    return faultConfig(spec, seed);
  } catch (e) {
    process.stderr.write(`--faults ${spec}: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  }
}
const faultsConfig = faultsOf(faults);
const longKeyBytes = values["long-key-bytes"].split("-").map((x) => number("long-key-bytes", x));
if (longKeyBytes.length !== 2 || (longKeyBytes[0] ?? 0) > (longKeyBytes[1] ?? 0)) {
  process.stderr.write(`--long-key-bytes wants LO-HI, got "${values["long-key-bytes"]}"\n`);
  process.exit(2);
}
const replay = [
  `pnpm run soak -- --minutes ${minutes} --seed ${seed}`,
  faults ? ` --faults ${faults}` : "",
  values.intensity !== "1" ? ` --intensity ${values.intensity}` : "",
  values["long-key-bytes"] !== "1000-1024" ? ` --long-key-bytes ${values["long-key-bytes"]}` : "",
  values["sweep-every"] !== undefined ? ` --sweep-every ${values["sweep-every"]}` : "",
].join("");
const stamp = () => new Date().toISOString().slice(11, 19);
// Ctrl-C: stop the workload / the wait, check what happened so far, stop the twin; a second Ctrl-C exits at once.
const interrupt = new AbortController();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (interrupt.signal.aborted) process.exit(130);
    process.stderr.write(`${stamp()} ${sig}: stopping the workload, checking what happened so far\n`);
    interrupt.abort();
  });
}
const report = await runSoak({
  seed,
  minutes,
  faults: faultsConfig,
  faultsLabel: faults,
  ...(values["sweep-every"] !== undefined
    ? { sweepIntervalMs: number("sweep-every", values["sweep-every"]) * 1000 }
    : {}),
  quiesceTimeoutMs: number("quiesce-timeout", values["quiesce-timeout"]) * 1000,
  intensity: number("intensity", values.intensity),
  longKeyBytes: [longKeyBytes[0] ?? 1000, longKeyBytes[1] ?? 1024],
  log: (line) => process.stderr.write(`${stamp()} ${line}\n`),
  signal: interrupt.signal,
});
process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report, replay)}\n`);
process.exitCode = report.violations.length > 0 ? 1 : 0;
