/**
 * `ingest demo` (the README's main command, after bootstrap): start a twin, upload the sample CSV files at once,
 * wait, show the runs (the bulk upload is ONE Glue run), the status table and where the outputs are, stop the twin.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { GlueClient } from "@aws-sdk/client-glue";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { PROCESSED_PREFIX, TWIN_STAGE } from "@ingest/core";
import { clientConfig, projectPaths, Twin } from "@ingest/twin";
import { CliError } from "./errors.js";
import { stderrLog } from "./local.js";
import { printable } from "./output.js";
import { demoCatalogDir, type QueryAnswer, renderAnswer, renderCatalog, runQuery, saveCatalog } from "./query.js";
import { filesTable, glueCostLine, runsTable, type Snapshot, waitUntilIdle } from "./status.js";
import { type Target, withClients } from "./target.js";
import { planUploads, uploadFiles } from "./upload.js";

export interface DemoOptions {
  readonly samples?: string | undefined;
  readonly timeoutSeconds: number;
  readonly json: boolean;
  readonly verbose: boolean;
}

export interface DemoReport {
  readonly files: number;
  readonly glueRuns: number;
  readonly snapshot: Snapshot;
  readonly outputDir: string;
  readonly outputs: { key: string; file: string }[];
  /** The Data Catalog's tables and DEMO_QUERY's answer over them (DuckDB over the twin's outputs). */
  readonly catalog: { readonly database: string; readonly tables: readonly string[]; readonly dir: string };
  readonly query: { readonly sql: string; readonly answer: QueryAnswer };
  readonly seconds: number;
}

/** What the demo asks the catalog at the end (README: `pnpm ingest query "<SQL>"`). */
export const DEMO_QUERY = "SELECT status, count(*) FROM processed_rows GROUP BY 1 ORDER BY 1";

/** The `ingest` commands' target for a running twin (its names, queues and endpoints). */
export function twinTarget(twin: Twin): Target {
  const aws = clientConfig(twin.endpoints.aws);
  return withClients(
    "twin",
    {
      stage: TWIN_STAGE,
      bucket: twin.names.bucket,
      controlBucket: twin.names.controlBucket,
      ledgerTable: twin.names.ledgerTable,
      glueJob: twin.names.glueJob,
      ingestQueueUrl: twin.queues.ingest.url,
      ingestDlqUrl: twin.queues.ingestDlq.url,
      recorderQueueUrl: twin.queues.recorder.url,
      recorderDlqUrl: twin.queues.recorderDlq.url,
      catalogDatabase: twin.names.catalogDatabase,
    },
    {
      s3: new S3Client({ ...aws, forcePathStyle: true }),
      sqs: new SQSClient(aws),
      dynamo: new DynamoDBClient(aws),
      glue: new GlueClient(clientConfig(twin.endpoints.glue)),
    },
  );
}

/** Copies processed/ out of the twin (its bucket lives only as long as the twin) into a local folder. */
async function downloadOutputs(target: Target, dir: string): Promise<{ key: string; file: string }[]> {
  rmSync(dir, { recursive: true, force: true });
  const out: { key: string; file: string }[] = [];
  let token: string | undefined;
  do {
    const page = await target.s3.send(
      new ListObjectsV2Command({ Bucket: target.bucket, Prefix: PROCESSED_PREFIX, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) {
      if (!o.Key) continue;
      const r = await target.s3.send(new GetObjectCommand({ Bucket: target.bucket, Key: o.Key }));
      const file = join(dir, ...o.Key.split("/"));
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, (await r.Body?.transformToByteArray()) ?? new Uint8Array());
      out.push({ key: o.Key, file });
    }
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

export async function demo(opts: DemoOptions): Promise<DemoReport> {
  const started = Date.now();
  const base = projectPaths();
  const samples = opts.samples ?? base.glueSamples;
  let csvs: string[];
  try {
    csvs = readdirSync(samples)
      .filter((f) => f.endsWith(".csv"))
      .map((f) => join(samples, f));
  } catch {
    csvs = [];
  }
  if (csvs.length === 0) throw new CliError(`no sample CSV files in ${samples}`);
  const say = (m: string) => {
    if (!opts.json) process.stderr.write(`==> ${m}\n`);
  };

  const paths = { ...projectPaths(base.root, join(base.twinDir, "demo")) };
  say("starting the local twin (moto, handlers, local Glue on Spark)");
  const twin = await Twin.start({ paths, writeState: false, log: stderrLog(opts.verbose) });
  const target = twinTarget(twin);
  // Ctrl-C during the demo still stops the twin (and its emulator and Spark) before exiting.
  const onInterrupt = () => {
    process.stderr.write("\ninterrupted: stopping the local twin\n");
    void twin.stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", onInterrupt);
  process.once("SIGTERM", onInterrupt);
  try {
    const planned = await planUploads(csvs);
    say(`uploading ${planned.length} sample files from ${relative(process.cwd(), samples) || samples} at once`);
    await uploadFiles(target, planned, { progress: !opts.json });
    say("waiting until every upload is processed");
    const snap = await waitUntilIdle(target, {
      timeoutSeconds: opts.timeoutSeconds,
      progress: !opts.json,
      keys: planned.map((p) => p.key),
    });
    const outputDir = join(paths.twinDir, "output");
    const outputs = await downloadOutputs(target, outputDir);
    // The twin goes away with the demo: its catalog and tables are kept so `ingest query` answers afterwards.
    const saved = await saveCatalog(target.s3, target.glue, target.catalogDatabase, demoCatalogDir(base.twinDir));
    const answer = await runQuery({ python: base.venvPython, script: base.twinQuery }, saved.tables, DEMO_QUERY, 1000);
    const report: DemoReport = {
      files: planned.length,
      glueRuns: snap.runs.length,
      snapshot: snap,
      outputDir,
      outputs,
      catalog: { database: saved.database, tables: saved.tables.map((t) => t.name), dir: demoCatalogDir(base.twinDir) },
      query: { sql: DEMO_QUERY, answer },
      seconds: Math.round((Date.now() - started) / 1000),
    };
    if (!opts.json) printDemo(report, target.bucket, saved.tables);
    if (report.glueRuns !== 1) {
      throw new CliError(`the bulk upload of ${report.files} files took ${report.glueRuns} Glue runs, not one`);
    }
    return report;
  } finally {
    process.removeListener("SIGINT", onInterrupt);
    process.removeListener("SIGTERM", onInterrupt);
    say("stopping the local twin");
    target.close();
    await twin.stop();
  }
}

function printDemo(r: DemoReport, bucket: string, tables: Parameters<typeof renderCatalog>[1]): void {
  const s = r.snapshot;
  const processed = s.uploads.filter((u) => u.status === "processed").length;
  const failed = s.uploads.filter((u) => u.status === "failed").length;
  const costLine = glueCostLine(s.runs);
  const lines = [
    "",
    `Glue runs for the bulk upload of ${r.files} files: ${r.glueRuns}`,
    runsTable(s.runs),
    // The twin's Glue service reports capacity and time as Glue does; priced as if on AWS (local Spark costs nothing).
    ...(costLine ? [`${costLine} (what these runs would cost on AWS)`] : []),
    "",
    `Files: ${processed} processed, ${failed} failed`,
    filesTable([...s.uploads].sort((a, b) => a.key.localeCompare(b.key))),
    "",
    `Outputs: s3://${bucket}/${PROCESSED_PREFIX} in the twin, copied to ${relative(process.cwd(), r.outputDir) || r.outputDir}/`,
    ...s.uploads
      .filter((u) => u.output)
      .map(
        (u) =>
          `  ${printable(u.key)} → ${printable(relative(process.cwd(), join(r.outputDir, ...(u.output ?? "").replace(`s3://${bucket}/`, "").split("/"))))}`,
      ),
    "",
    `Data Catalog (kept in ${relative(process.cwd(), r.catalog.dir) || r.catalog.dir}/ for \`pnpm ingest catalog\` and \`pnpm ingest query\`)`,
    renderCatalog(r.catalog.database, tables),
    "",
    `pnpm ingest query "${r.query.sql}"`,
    renderAnswer(r.query.answer),
    "",
    `done in ${r.seconds} s`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}
