/** `ingest local up | down | env`: the twin's lifecycle and how other tools reach it. */
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  exportLines,
  type FaultConfig,
  FaultConfigError,
  faultConfig,
  isAlive,
  peekTwinState,
  projectPaths,
  readTwinState,
  shellEnv,
  Twin,
  type TwinLog,
  type TwinState,
} from "@ingest/twin";
import { CliError } from "./errors.js";
import { printable } from "./output.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function stderrLog(verbose: boolean): TwinLog {
  const stamp = () => new Date().toISOString().slice(11, 23);
  return {
    info: (m) => {
      if (verbose) process.stderr.write(`${stamp()} ${printable(m)}\n`);
    },
    warn: (m) => process.stderr.write(`${stamp()} WARN ${printable(m)}\n`),
  };
}

export interface UpOptions {
  readonly motoPort?: number | undefined;
  readonly gluePort?: number | undefined;
  readonly verbose: boolean;
  readonly sweepIntervalSeconds?: number | undefined;
  /** The fault layer's config (`faultsOption`); default: none. */
  readonly faults?: FaultConfig | undefined;
}

/**
 * `--faults <profile|file.json> [--seed n]`: a profile name (none, aws, chaos) or a JSON file holding a fault config
 * (`{"seed": 7, "rates": {"lostAnswer": 0.01}, "gsiLagMs": 1000}`); checked here so a typo fails before the twin starts.
 */
export function faultsOption(spec: string | undefined, seed: number | undefined): FaultConfig | undefined {
  if (spec === undefined) return seed === undefined ? undefined : faultConfig("none", seed);
  try {
    if (spec.endsWith(".json")) {
      let parsed: Partial<FaultConfig>;
      try {
        parsed = JSON.parse(readFileSync(spec, "utf8")) as Partial<FaultConfig>;
      } catch (e) {
        throw new CliError(`--faults ${spec}: cannot read a JSON fault config: ${(e as Error).message}`);
      }
      if (!parsed || typeof parsed !== "object" || typeof parsed.rates !== "object") {
        throw new CliError(`--faults ${spec}: a fault config needs a "rates" object (kind → 0..1)`);
      }
      return faultConfig({ ...parsed, rates: parsed.rates ?? {} }, parsed.seed ?? seed ?? 1);
    }
    return faultConfig(spec, seed ?? 1);
  } catch (e) {
    if (e instanceof FaultConfigError) throw new CliError(`--faults ${spec}: ${e.message}`);
    throw e;
  }
}

function refuseIfRunning(stateFile: string): void {
  const existing = peekTwinState(stateFile);
  if (existing && isAlive(existing.pid)) {
    throw new CliError(
      `the local twin is already running (pid ${existing.pid}): stop it with \`pnpm ingest local down\``,
    );
  }
}

/** Foreground: starts the twin, prints where it is, and stops everything on Ctrl-C / SIGTERM. */
export async function up(opts: UpOptions): Promise<void> {
  const paths = projectPaths();
  refuseIfRunning(paths.stateFile);
  const twin = await Twin.start({
    paths,
    log: stderrLog(opts.verbose),
    handlerLogLevel: opts.verbose ? "INFO" : "WARN",
    ...(opts.motoPort !== undefined ? { motoPort: opts.motoPort } : {}),
    ...(opts.gluePort !== undefined ? { gluePort: opts.gluePort } : {}),
    ...(opts.sweepIntervalSeconds !== undefined ? { sweepIntervalMs: opts.sweepIntervalSeconds * 1000 } : {}),
    ...(opts.faults ? { faults: opts.faults } : {}),
  });
  const injecting = Object.entries(twin.faults.config.rates).filter(([, r]) => r);
  process.stderr.write(
    [
      `local twin up (pid ${process.pid})`,
      `  AWS APIs (moto): ${twin.endpoints.aws}`,
      `  Glue service:    ${twin.endpoints.glue}`,
      `  bucket:          s3://${twin.names.bucket}/input/`,
      `  call record:     ${twin.callRecordFile}`,
      injecting.length
        ? `  faults:          seed ${twin.faults.config.seed}: ${injecting.map(([k, r]) => `${k} ${r}`).join(", ")}`
        : "  faults:          none",
      '  use it from a shell:  eval "$(pnpm --silent ingest local env)"',
      "  Ctrl-C stops it.",
      "",
    ].join("\n"),
  );
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`\n${signal}: stopping the twin…\n`);
      twin.stop().then(resolve, (e) => {
        process.stderr.write(`stop failed: ${String(e)}\n`);
        resolve();
      });
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  const counts = Object.entries(twin.faults.counts);
  if (counts.length) process.stderr.write(`faults injected: ${counts.map(([k, n]) => `${k} ${n}`).join(", ")}\n`);
  process.stderr.write("local twin stopped\n");
}

/** Starts `local up` in the background (log in .twin/twin.log) and returns once it is ready. */
export async function upDetached(argv: readonly string[], timeoutMs = 90_000): Promise<TwinState> {
  const paths = projectPaths();
  refuseIfRunning(paths.stateFile);
  mkdirSync(paths.twinDir, { recursive: true });
  const logFile = join(paths.twinDir, "twin.log");
  const fd = openSync(logFile, "w");
  const script = process.argv[1];
  if (!script) throw new CliError("cannot find the CLI's own script to start it in the background");
  const child = spawn(process.execPath, [...process.execArgv, script, "local", "up", ...argv], {
    detached: true,
    stdio: ["ignore", fd, fd],
    env: process.env,
  });
  closeSync(fd);
  child.unref();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const state = peekTwinState(paths.stateFile);
    if (state && state.pid === child.pid) return state;
    if (child.exitCode !== null || (child.pid !== undefined && !isAlive(child.pid))) {
      const lines = readFileSync(logFile, "utf8").trim().split("\n");
      throw new CliError(`the twin did not start: ${lines.at(-1) ?? "no output"} (see ${logFile})`);
    }
    await sleep(250);
  }
  throw new CliError(`the twin did not start within ${timeoutMs / 1000} s (see ${logFile})`);
}

/** Stops a twin started by `local up` (foreground in another shell, or detached). */
export async function down(): Promise<{ stopped: boolean; pid: number | null }> {
  const paths = projectPaths();
  const state = peekTwinState(paths.stateFile);
  if (!state) return { stopped: false, pid: null };
  if (isAlive(state.pid)) {
    process.kill(state.pid, "SIGTERM");
    const deadline = Date.now() + 30_000;
    while (isAlive(state.pid) && Date.now() < deadline) await sleep(200);
    if (isAlive(state.pid)) throw new CliError(`the twin (pid ${state.pid}) did not stop within 30 s`);
  }
  // A twin killed hard leaves its moto server behind: end that one (by its recorded pid) too.
  if (state.motoPid > 0 && isAlive(state.motoPid)) process.kill(state.motoPid, "SIGTERM");
  if (existsSync(paths.stateFile)) rmSync(paths.stateFile, { force: true });
  return { stopped: true, pid: state.pid };
}

export function envOf(state: TwinState): Record<string, string> {
  return shellEnv(state.endpoints, state.names.bucket);
}

export function envScript(state: TwinState): string {
  return exportLines(envOf(state));
}

export function currentState(): TwinState {
  return readTwinState(projectPaths().stateFile);
}
