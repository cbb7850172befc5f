/**
 * The CLI as a user runs it, against a twin it starts itself (`local up --detach`), and an upload through a client
 * nobody here wrote: boto3, configured only by `eval "$(ingest local env)"`. The sample files (glue/samples) go up
 * with the rest, so the catalog and `ingest query` are asked about rows whose content is known.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TWIN_DIR_ENV, workspaceRoot } from "../../src/paths.js";
import { isAlive, type TwinState } from "../../src/state.js";
import { customersCsv } from "../helpers/csv.js";

const root = workspaceRoot();
const twinDir = join(root, ".twin", "tests", `cli-${process.pid}`);
const env = { ...process.env, [TWIN_DIR_ENV]: twinDir };
const tsx = join(root, "node_modules", ".bin", "tsx");
const main = join(root, "packages", "cli", "src", "main.ts");
const cliCommand = `${tsx} ${main}`;
const samples = join(root, "glue", "samples");

function ingest(...args: string[]) {
  const r = spawnSync(tsx, [main, ...args], { cwd: root, env, encoding: "utf8", timeout: 400_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("the ingest CLI against a twin it started", () => {
  let state: TwinState;
  const files = join(twinDir, "files");

  beforeAll(() => {
    rmSync(twinDir, { recursive: true, force: true });
    mkdirSync(join(files, "sub"), { recursive: true });
    writeFileSync(join(files, "a.csv"), customersCsv([1, 2]));
    writeFileSync(join(files, "sub", "b.csv"), customersCsv([3]));
    mkdirSync(join(files, "samples"));
    for (const f of readdirSync(samples)) copyFileSync(join(samples, f), join(files, "samples", f));
    const r = ingest("local", "up", "--detach", "--json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    state = JSON.parse(r.stdout) as TwinState;
  });
  afterAll(() => {
    if (state && isAlive(state.pid)) ingest("local", "down");
  });

  it("local up --detach writes the state; a second up is refused with one line", () => {
    expect(existsSync(join(twinDir, "state.json"))).toBe(true);
    expect(isAlive(state.pid)).toBe(true);
    const again = ingest("local", "up", "--detach");
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split("\n")).toHaveLength(1);
    expect(again.stderr).toContain("already running");
  });

  it("boto3 uploads through `local env`; `upload` sends a folder; `wait` and `status` report them processed", () => {
    const boto = spawnSync(
      "bash",
      [
        "-c",
        `set -e; eval "$(${cliCommand} local env)"; ${join(root, ".venv", "bin", "python")} -c '
import os, boto3
boto3.client("s3").put_object(Bucket=os.environ["INGEST_BUCKET"], Key="input/boto3/hello.csv", Body=b"${customersCsv([9]).replaceAll("\n", "\\n")}")
'`,
      ],
      { cwd: root, env, encoding: "utf8" },
    );
    expect(boto.stderr).toBe("");
    expect(boto.status).toBe(0);

    const up = ingest("upload", files, "--prefix", "cli", "--json");
    expect(up.code).toBe(0);
    expect((JSON.parse(up.stdout) as { key: string }[]).map((u) => u.key).sort()).toEqual([
      "input/cli/a.csv",
      "input/cli/samples/customers_north.csv",
      "input/cli/samples/customers_south.csv",
      "input/cli/samples/orders_east.csv",
      "input/cli/samples/orders_west.csv",
      "input/cli/sub/b.csv",
    ]);

    const wait = ingest("wait", "--timeout", "300", "--json");
    expect(wait.code).toBe(0);
    const snap = JSON.parse(wait.stdout) as { uploads: { key: string; status: string }[] };
    expect(snap.uploads.map((u) => [u.key, u.status]).sort()).toEqual([
      ["input/boto3/hello.csv", "processed"],
      ["input/cli/a.csv", "processed"],
      ["input/cli/samples/customers_north.csv", "processed"],
      ["input/cli/samples/customers_south.csv", "processed"],
      ["input/cli/samples/orders_east.csv", "processed"],
      ["input/cli/samples/orders_west.csv", "processed"],
      ["input/cli/sub/b.csv", "processed"],
    ]);

    const one = ingest("status", "--file", "boto3/hello.csv", "--json");
    const filtered = JSON.parse(one.stdout) as { uploads: { rowsProcessed: number }[]; runs: unknown[] };
    expect(filtered.uploads).toHaveLength(1);
    expect(filtered.uploads[0]?.rowsProcessed).toBe(1);
    expect(filtered.runs).toHaveLength(1);

    const table = ingest("status");
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/input\/cli\/sub\/b\.csv\s+processed/);
    expect(table.stdout).toContain("Runs (");

    const redrive = ingest("redrive", "--json");
    expect(JSON.parse(redrive.stdout)).toMatchObject({
      dlqMessagesMoved: { ingest: 0, recorder: 0 },
      uploadsRequeued: [],
    });
  });

  it("`catalog` lists the Data Catalog's tables; `query` answers SQL over the processed files; boto3 sees the catalog", () => {
    const catalog = ingest("catalog", "--json");
    expect(catalog.code).toBe(0);
    const doc = JSON.parse(catalog.stdout) as { database: string; tables: { name: string; location: string }[] };
    expect(doc.database).toBe("csv_ingest_local");
    expect(doc.tables.map((t) => [t.name, t.location])).toEqual([
      ["file_stats", "s3://csv-ingest-local-data/stats/files/"],
      ["processed_csv", "s3://csv-ingest-local-data/processed/"],
      ["processed_rows", "s3://csv-ingest-local-data/parquet/"],
      ["rejected_rows", "s3://csv-ingest-local-data/rejected/"],
    ]);
    expect(ingest("catalog").stdout).toMatch(
      /processed_rows\s+parquet\s+ingest_date\s+13\s+s3:\/\/csv-ingest-local-data\/parquet\//,
    );

    // glue/samples by hand: 17 rows kept (statuses lower-cased and trimmed, e.g. "  Inactive"), the exact
    // duplicate of 103 removed, orders_east's line 4 (4 fields) rejected.
    const counts = ingest(
      "query",
      "--json",
      "SELECT status, count(*) AS n FROM processed_rows WHERE source_file LIKE 'input/cli/samples/%' GROUP BY 1 ORDER BY 1",
    );
    expect(counts.stderr).toBe("");
    expect(JSON.parse(counts.stdout)).toEqual({
      columns: [
        { name: "status", type: "VARCHAR" },
        { name: "n", type: "BIGINT" },
      ],
      rows: [
        ["active", 10],
        ["inactive", 3],
        ["pending", 4],
      ],
      truncated: false,
    });
    const rejected = ingest("query", "--json", "SELECT source_file, line_number FROM rejected_rows");
    expect(JSON.parse(rejected.stdout).rows).toEqual([["input/cli/samples/orders_east.csv", 4]]);
    const stats = ingest(
      "query",
      "--json",
      "SELECT sum(rowsRead), sum(rowsProcessed), sum(rowsRejected), sum(duplicatesRemoved) FROM file_stats WHERE key LIKE 'input/cli/samples/%'",
    );
    expect(JSON.parse(stats.stdout).rows).toEqual([[19, 17, 1, 1]]);

    const table = ingest("query", "SELECT status, count(*) FROM processed_rows GROUP BY 1 ORDER BY 1");
    expect(table.code).toBe(0);
    expect(table.stdout.split("\n")).toEqual([
      "status    count_star()",
      "--------  ------------",
      "active              14",
      "inactive             3",
      "pending              4",
      "(3 rows)",
      "",
    ]);
    const bad = ingest("query", "SELECT nope FROM processed_rows");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^ingest: query refused: Binder Error: .*nope/);

    // A client nobody here wrote, pointed at the twin only by `local env`, reads the same catalog.
    const boto = spawnSync(
      "bash",
      [
        "-c",
        `set -e; eval "$(${cliCommand} local env)"; ${join(root, ".venv", "bin", "python")} -c '
import boto3
print(sorted(t["Name"] for t in boto3.client("glue").get_tables(DatabaseName="csv_ingest_local")["TableList"]))
'`,
      ],
      { cwd: root, env, encoding: "utf8" },
    );
    expect(boto.stderr).toBe("");
    expect(boto.stdout.trim()).toBe("['file_stats', 'processed_csv', 'processed_rows', 'rejected_rows']");
  });

  it("local down stops the twin and its emulator; commands then fail with one clear line", () => {
    const down = ingest("local", "down");
    expect(down.code).toBe(0);
    expect(isAlive(state.pid)).toBe(false);
    expect(isAlive(state.motoPid)).toBe(false);
    expect(existsSync(join(twinDir, "state.json"))).toBe(false);
    const status = ingest("status");
    expect(status.code).toBe(1);
    expect(status.stderr.trim()).toMatch(/^ingest: the local twin is not running/);
    expect(status.stderr.trim().split("\n")).toHaveLength(1);
    // no twin, and no copy left by a demo in this twin folder: the same one line
    const query = ingest("query", "SELECT 1");
    expect(query.code).toBe(1);
    expect(query.stderr.trim()).toMatch(/^ingest: the local twin is not running/);
  });
});
