/**
 * `ingest`: the pipeline's CLI, against the local twin (default) or a deployed stage (`--stage <name>`).
 * Errors are one line on stderr and a non-zero exit.
 */
// The SDK warns about Node 20 on first client use; a CLI prints only what the user asked for.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

import { projectPaths, TwinNotRunningError } from "@ingest/twin";
import { Command, InvalidArgumentError } from "commander";
import { demo } from "./demo.js";
import { CliError, oneLine } from "./errors.js";
import { currentState, down, envOf, envScript, faultsOption, up, upDetached } from "./local.js";
import { exitQuietlyOnEpipe, printable, printJson } from "./output.js";
import {
  type CatalogTableView,
  copyTables,
  demoCatalogDir,
  type LocalTable,
  loadSavedCatalog,
  namedIn,
  readCatalog,
  renderAnswer,
  renderCatalog,
  runQuery,
  withScratch,
} from "./query.js";
import { redrive } from "./redrive.js";
import { filterSnapshot, renderStatus, snapshot, waitUntilIdle } from "./status.js";
import { resolveTarget, type Target } from "./target.js";
import { ignoredByPipeline, planUploads, uploadFiles } from "./upload.js";

function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number`);
    return n;
  };
}

const STAGE_HELP = "act on a deployed stage (names from .sst/outputs.json) instead of the local twin";

async function withTarget<T>(stage: string | undefined, fn: (t: Target) => Promise<T>): Promise<T> {
  const target = resolveTarget({ stage });
  try {
    return await fn(target);
  } finally {
    target.close();
  }
}

/**
 * The live twin's catalog, or (no twin running, no --stage) the copy the last `ingest demo` left, with a note on
 * stderr; `use` gets the database, its tables and how to get their files for a statement.
 */
async function withCatalog<T>(
  stage: string | undefined,
  use: (c: {
    database: string;
    tables: CatalogTableView[];
    files: (sql: string, dir: string) => Promise<LocalTable[]>;
  }) => Promise<T>,
): Promise<T> {
  let target: Target;
  try {
    target = resolveTarget({ stage });
  } catch (e) {
    const saved =
      !stage && e instanceof TwinNotRunningError ? loadSavedCatalog(demoCatalogDir(projectPaths().twinDir)) : null;
    if (!saved) throw e;
    process.stderr.write(
      `note: the local twin is not running; answering from the copy the demo saved at ${saved.savedAt}\n`,
    );
    return use({ database: saved.database, tables: [...saved.tables], files: async () => [...saved.tables] });
  }
  try {
    const tables = await readCatalog(target.glue, target.catalogDatabase);
    return await use({
      database: target.catalogDatabase,
      tables,
      files: (sql, dir) => copyTables(target.s3, tables, dir, namedIn(sql)),
    });
  } finally {
    target.close();
  }
}

export function buildProgram(): Command {
  const program = new Command("ingest")
    .description("CSV ingestion pipeline: run it locally (the twin) or drive a deployed stage")
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ outputError: (s, write) => write(`ingest: ${s.replace(/^error: /, "")}`) });

  const local = program.command("local").description("the local twin: the whole pipeline on this machine, no AWS");
  local
    .command("up")
    .description("start the twin and stay in the foreground (Ctrl-C stops everything)")
    .option("--detach", "start in the background (log in .twin/twin.log) and return when ready")
    .option("--moto-port <port>", "port of the AWS API emulator (default: a free one)", int("--moto-port"))
    .option("--glue-port <port>", "port of the local Glue service (default: a free one)", int("--glue-port"))
    .option("--sweep-interval <seconds>", "how often the sweeper runs (default: the config's)", int("--sweep-interval"))
    .option("-v, --verbose", "log every invocation and run")
    .option("--json", "with --detach: print the twin's state as JSON")
    .option("--faults <profile|file.json>", "fault layer: none (default), aws, chaos, or a JSON config file")
    .option("--seed <n>", "the fault layer's seed (default 1; a JSON config's own seed wins)", int("--seed"))
    .action(
      async (o: {
        detach?: boolean;
        motoPort?: number;
        gluePort?: number;
        sweepInterval?: number;
        verbose?: boolean;
        json?: boolean;
        faults?: string;
        seed?: number;
      }) => {
        const faults = faultsOption(o.faults, o.seed);
        if (o.detach) {
          const args = [
            ...(o.faults !== undefined ? ["--faults", o.faults] : []),
            ...(o.seed !== undefined ? ["--seed", String(o.seed)] : []),
            ...(o.motoPort !== undefined ? ["--moto-port", String(o.motoPort)] : []),
            ...(o.gluePort !== undefined ? ["--glue-port", String(o.gluePort)] : []),
            ...(o.sweepInterval !== undefined ? ["--sweep-interval", String(o.sweepInterval)] : []),
            ...(o.verbose ? ["--verbose"] : []),
          ];
          const state = await upDetached(args);
          if (o.json) printJson(state);
          else
            process.stdout.write(
              `local twin up in the background (pid ${state.pid}); stop it with \`pnpm ingest local down\`\n`,
            );
          return;
        }
        await up({
          motoPort: o.motoPort,
          gluePort: o.gluePort,
          verbose: Boolean(o.verbose),
          sweepIntervalSeconds: o.sweepInterval,
          faults,
        });
      },
    );
  local
    .command("down")
    .description("stop the twin started by `local up`")
    .option("--json", "print the result as JSON")
    .action(async (o: { json?: boolean }) => {
      const r = await down();
      if (o.json) printJson(r);
      else process.stdout.write(r.stopped ? `local twin stopped (pid ${r.pid})\n` : "the local twin was not running\n");
    });
  local
    .command("env")
    .description("print shell exports (endpoint, region, dummy credentials, bucket) so any AWS CLI/SDK uses the twin")
    .option("--json", "print them as JSON")
    .action((o: { json?: boolean }) => {
      const state = currentState();
      if (o.json) printJson(envOf(state));
      else process.stdout.write(`${envScript(state)}\n`);
    });

  program
    .command("upload")
    .description("upload CSV files or folders to input/ (in parallel)")
    .argument("<paths...>", "files or folders (a folder's files keep their relative paths)")
    .option("--prefix <prefix>", "a folder inside input/ to upload into", "")
    .option("--concurrency <n>", "parallel uploads", int("--concurrency"), 16)
    .option("--stage <stage>", STAGE_HELP)
    .option("--json", "print the uploaded keys as JSON")
    .action(async (paths: string[], o: { prefix: string; concurrency: number; stage?: string; json?: boolean }) => {
      await withTarget(o.stage, async (t) => {
        const planned = await planUploads(paths, o.prefix);
        const skipped = planned.filter(ignoredByPipeline);
        const results = await uploadFiles(t, planned, { concurrency: o.concurrency || 1, progress: !o.json });
        if (o.json) return printJson(results);
        process.stdout.write(
          `uploaded ${results.length} file(s) to ${printable(`s3://${t.bucket}/${planned.length === 1 ? planned[0]?.key : "input/"}`)}\n`,
        );
        if (skipped.length) {
          process.stdout.write(`note: ${skipped.length} of them do not end in .csv; the pipeline ignores them\n`);
        }
      });
    });

  program
    .command("status")
    .description("runs and files as tables: state, files, rows, rejected, duration, output path")
    .option("--file <key>", "only this file (input/a.csv or a.csv)")
    .option("--run <runKey>", "only this run (run key or Glue JobRunId)")
    .option("--stage <stage>", STAGE_HELP)
    .option("--json", "print the ledger records as JSON")
    .action(async (o: { file?: string; run?: string; stage?: string; json?: boolean }) => {
      await withTarget(o.stage, async (t) => {
        const s = filterSnapshot(await snapshot(t), { file: o.file, run: o.run });
        if (o.json) return printJson(s);
        process.stdout.write(`${renderStatus(s, t)}\n`);
      });
    });

  program
    .command("wait")
    .description("wait until nothing is queued, pending or running")
    .option("--timeout <seconds>", "give up (exit 2) after this long", int("--timeout"), 600)
    .option("--stage <stage>", STAGE_HELP)
    .option("--json", "print the final state as JSON")
    .action(async (o: { timeout: number; stage?: string; json?: boolean }) => {
      await withTarget(o.stage, async (t) => {
        const s = await waitUntilIdle(t, { timeoutSeconds: o.timeout, progress: !o.json });
        if (o.json) return printJson(s);
        process.stdout.write(`${renderStatus(s, t)}\n`);
      });
    });

  program
    .command("redrive")
    .description("put DLQ messages and failed files back into the flow")
    .option("--no-dlq", "leave the DLQs alone")
    .option("--no-failed", "leave failed files alone")
    .option("--stage <stage>", STAGE_HELP)
    .option("--json", "print the report as JSON")
    .action(async (o: { dlq: boolean; failed: boolean; stage?: string; json?: boolean }) => {
      await withTarget(o.stage, async (t) => {
        const r = await redrive(t, { dlq: o.dlq, failed: o.failed });
        if (o.json) return printJson(r);
        const run = r.run?.started
          ? `; started run ${r.run.runKey} (${r.run.files} file(s))`
          : r.run
            ? `; next run: ${r.run.reason}`
            : "";
        process.stdout.write(
          `moved ${r.dlqMessagesMoved.ingest} ingest and ${r.dlqMessagesMoved.recorder} recorder DLQ message(s) back; requeued ${r.uploadsRequeued.length} failed file(s)${run}\n`,
        );
      });
    });

  program
    .command("catalog")
    .description("the Data Catalog's tables over the job's outputs: format, partitions, columns, location")
    .option("--stage <stage>", STAGE_HELP)
    .option("--json", "print the tables (with every column and type) as JSON")
    .action(async (o: { stage?: string; json?: boolean }) => {
      await withCatalog(o.stage, async ({ database, tables }) => {
        if (o.json) return printJson({ database, tables: tables.map(({ files: _, ...t }: Partial<LocalTable>) => t) });
        process.stdout.write(`${renderCatalog(database, tables)}\n`);
      });
    });

  program
    .command("query")
    .description("SQL over the catalog's tables on the twin (DuckDB over the job's outputs, as Athena on AWS)")
    .argument("<sql>", 'e.g. "SELECT status, count(*) FROM processed_rows GROUP BY 1"')
    .option("--max-rows <n>", "print at most this many rows", int("--max-rows"), 1000)
    .option("--json", "print the columns and rows as JSON")
    .action(async (sql: string, o: { maxRows: number; json?: boolean }) => {
      const answer = await withCatalog(undefined, ({ files }) =>
        withScratch(async (dir) => runQuery(queryRunner(), await files(sql, dir), sql, o.maxRows)),
      );
      if (o.json) return printJson(answer);
      process.stdout.write(`${renderAnswer(answer)}\n`);
    });

  program
    .command("demo")
    .description("start a twin, upload the sample CSVs at once, wait, show runs/status/outputs, stop")
    .option("--samples <folder>", "folder of CSV files to upload (default: glue/samples)")
    .option("--timeout <seconds>", "give up after this long", int("--timeout"), 600)
    .option("-v, --verbose", "log the twin's activity")
    .option("--json", "print the report as JSON")
    .action(async (o: { samples?: string; timeout: number; verbose?: boolean; json?: boolean }) => {
      const r = await demo({
        samples: o.samples,
        timeoutSeconds: o.timeout,
        json: Boolean(o.json),
        verbose: Boolean(o.verbose),
      });
      if (o.json) printJson(r);
    });

  return program;
}

function queryRunner() {
  const paths = projectPaths();
  return { python: paths.venvPython, script: paths.twinQuery };
}

export async function main(argv: readonly string[] = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv]);
    return 0;
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    // Commander has printed its own message (or the help, exit 0).
    if ((e as { code?: string }).code?.startsWith("commander.")) return code ?? 1;
    process.stderr.write(`ingest: ${printable(oneLine(e))}\n`);
    if (process.env.INGEST_DEBUG) console.error(e);
    return e instanceof CliError ? e.exitCode : 1;
  }
}

exitQuietlyOnEpipe(process.stdout);
const code = await main();
process.exitCode = code;
// Idle SDK sockets must not keep a finished command alive; stdout is flushed by then.
setTimeout(() => process.exit(code), 300).unref();
