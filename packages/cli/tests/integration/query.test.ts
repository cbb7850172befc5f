/**
 * The catalog against the job's own writers, and `ingest query`'s engine (packages/twin/query.py, DuckDB) over files
 * those writers made: glue/csv_ingest/contract/output.py's Parquet and CSV, glue/csv_ingest/contract/documents.py's stats JSON Lines (from the stats vector).
 * The catalog (packages/core/src/catalog/tables.ts) and the writer list the columns separately; these tests hold
 * them equal.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CATALOG_TABLES,
  catalogTableInput,
  PROCESSED_CSV_COLUMNS,
  PROCESSED_ROWS_COLUMNS,
  REJECTED_COLUMNS,
} from "@ingest/core";
import { projectPaths } from "@ingest/twin";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalTable, runQuery, tableView } from "../../src/query.js";

const paths = projectPaths();
const runner = { python: paths.venvPython, script: paths.twinQuery };

// Written with the job's own functions; prints what the writer declares.
const WRITE = String.raw`
import datetime, decimal, json, sys
import pyarrow as pa
from csv_ingest.contract import documents as contract, output
root = sys.argv[1]
rows = pa.table({
    "id": ["1", "2", "3"],
    "name": ["Ann", "Bob \x1b[2J", None],
    "email": ["a@x.com", "b@x", None],
    "email_valid": [True, False, None],
    "date": [datetime.date(2025, 4, 1), None, datetime.date(2024, 2, 29)],
    "amount": [decimal.Decimal("12500000.5"), decimal.Decimal("0.0001"), None],
    "amount_category": ["high", "low", None],
    "status": ["active", "active", "pending"],
    "running_total_by_status": [decimal.Decimal("12500000.5"), decimal.Decimal("12500000.5001"), None],
    "data_quality_issues": [None, "invalid_email", "missing_amount"],
    "processing_date": [datetime.datetime(2026, 11, 30, 10, 0, 30)] * 3,
    "source_file": ["input/a.csv"] * 3,
    "line_number": [2, 3, 5],
}, schema=output.PARQUET_SCHEMA)
with open(f"{root}/processed_rows/ingest_date=2026-11-30/0.parquet", "wb") as f:
    output.write_parquet(rows, f)
rejected = pa.table({
    "source_file": ["input/a.csv", "input/a.csv"],
    "line_number": pa.array([4, 6], pa.int64()),
    "reason": ["expected 6 fields as in the header, found 4", "malformed CSV record (unbalanced quotes)"],
    "raw_line": ['=1+1,"x, y",z', 'a,"b\nc'],
})
with open(f"{root}/rejected_rows/0.csv", "wb") as f:
    output.write_csv(output.rejected_text(rejected), f)
stats = json.load(open(sys.argv[2], encoding="utf-8"))
with open(f"{root}/file_stats/ingest_date=2026-04-01/0.jsonl", "w", encoding="utf-8") as f:
    f.write(contract.file_stats_lines(stats))
print(json.dumps({
    "parquet": [[f.name, str(f.type)] for f in output.PARQUET_SCHEMA],
    "processed": list(output.PROCESSED_COLUMNS),
    "rejected": list(output.REJECTED_COLUMNS),
}))
`;

let dir: string;
let tables: LocalTable[];
let declared: { parquet: [string, string][]; processed: string[]; rejected: string[] };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "query-test-"));
  for (const d of ["processed_rows/ingest_date=2026-11-30", "rejected_rows", "file_stats/ingest_date=2026-04-01"]) {
    spawnSync("mkdir", ["-p", join(dir, d)]);
  }
  const stats = join(paths.root, "packages", "core", "src", "manifest", "examples", "stats.v1.json");
  const r = spawnSync(paths.venvPython, ["-c", WRITE, dir, stats], { cwd: join(paths.root, "glue"), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`writing the test files failed: ${r.stderr}`);
  declared = JSON.parse(r.stdout);
  const files: Record<string, string[]> = {
    processed_rows: [join(dir, "processed_rows/ingest_date=2026-11-30/0.parquet")],
    processed_csv: [],
    rejected_rows: [join(dir, "rejected_rows/0.csv")],
    file_stats: [join(dir, "file_stats/ingest_date=2026-04-01/0.jsonl")],
  };
  tables = CATALOG_TABLES.map((t) => ({
    ...tableView(catalogTableInput(t, "data")),
    files: files[t.name] ?? [],
  }));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const query = (sql: string, maxRows = 1000) => runQuery(runner, tables, sql, maxRows);

describe("the catalog and the job's writers agree", () => {
  it("processed_rows has the Parquet schema of glue/csv_ingest/contract/output.py, column for column", () => {
    const arrowToHive: Record<string, string> = {
      string: "string",
      bool: "boolean",
      "date32[day]": "date",
      "decimal128(24, 9)": "decimal(24,9)",
      "decimal128(38, 9)": "decimal(38,9)",
      "timestamp[ms]": "timestamp",
      int64: "bigint",
    };
    expect(declared.parquet.map(([name, type]) => [name, arrowToHive[type] ?? `unmapped ${type}`])).toEqual(
      PROCESSED_ROWS_COLUMNS.map((c) => [c.name, c.type]),
    );
  });

  it("processed_csv and rejected_rows have the CSV headers glue/csv_ingest/contract/output.py writes, in order", () => {
    expect(PROCESSED_CSV_COLUMNS.map((c) => c.name)).toEqual(declared.processed);
    expect(REJECTED_COLUMNS.map((c) => c.name)).toEqual(declared.rejected);
  });
});

describe("ingest query's engine (DuckDB, one view per catalog table)", () => {
  it("answers SELECT status, count(*) ... GROUP BY 1 over the Parquet table", async () => {
    const a = await query("SELECT status, count(*) FROM processed_rows GROUP BY 1 ORDER BY 1");
    expect(a).toEqual({
      columns: [
        { name: "status", type: "VARCHAR" },
        { name: "count_star()", type: "BIGINT" },
      ],
      rows: [
        ["active", 2],
        ["pending", 1],
      ],
      truncated: false,
    });
  });

  it("types the columns as the catalog does, exact decimals as text, the partition from the path", async () => {
    const a = await query(
      "SELECT name, email_valid, date, amount, running_total_by_status, processing_date, line_number, ingest_date FROM processed_rows ORDER BY line_number",
    );
    expect(a.columns.map((c) => c.type)).toEqual([
      "VARCHAR",
      "BOOLEAN",
      "DATE",
      "DECIMAL(24,9)",
      "DECIMAL(38,9)",
      "TIMESTAMP",
      "BIGINT",
      "VARCHAR",
    ]);
    expect(a.rows).toEqual([
      [
        "Ann",
        true,
        "2025-04-01",
        "12500000.500000000",
        "12500000.500000000",
        "2026-11-30 10:00:30.000",
        2,
        "2026-11-30",
      ],
      ["Bob \u001b[2J", false, null, "0.000100000", "12500000.500100000", "2026-11-30 10:00:30.000", 3, "2026-11-30"],
      [null, null, "2024-02-29", null, null, "2026-11-30 10:00:30.000", 5, "2026-11-30"],
    ]);
  });

  it("reads the rejected CSV by position with its header skipped, quoted commas and line breaks intact", async () => {
    const a = await query("SELECT line_number, reason, raw_line FROM rejected_rows ORDER BY 1");
    expect(a.columns.map((c) => c.type)).toEqual(["BIGINT", "VARCHAR", "VARCHAR"]);
    expect(a.rows).toEqual([
      [4, "expected 6 fields as in the header, found 4", '\'=1+1,"x, y",z'],
      [6, "malformed CSV record (unbalanced quotes)", 'a,"b\nc'],
    ]);
  });

  it("reads the per-file stats JSON Lines, qualityIssues as a map", async () => {
    const a = await query(
      "SELECT runKey, key, status, rowsRead, qualityIssues['invalid_email'] AS invalid_emails, ingest_date FROM file_stats ORDER BY key",
    );
    expect(a.rows).toEqual([
      ["20260401T100000Z-a1b2c3d4", "input/customers.csv", "failed", 0, null, "2026-04-01"],
      ["20260401T100000Z-a1b2c3d4", "input/sales 2025/é.csv", "processed", 12, 1, "2026-04-01"],
    ]);
  });

  it("a table with no files yet is an empty view with the catalog's columns", async () => {
    const a = await query("SELECT * FROM processed_csv");
    expect(a.rows).toEqual([]);
    expect(a.columns.map((c) => c.name)).toEqual(PROCESSED_CSV_COLUMNS.map((c) => c.name));
  });

  it("stops at --max-rows and says so", async () => {
    const a = await query("SELECT id FROM processed_rows ORDER BY id", 2);
    expect(a.rows).toEqual([["1"], ["2"]]);
    expect(a.truncated).toBe(true);
  });

  it("refuses a bad statement with DuckDB's reason on one line", async () => {
    await expect(query("SELEC 1")).rejects.toThrow(/^query refused: Parser Error: syntax error at or near "SELEC"/);
    await expect(query("SELECT nope FROM processed_rows")).rejects.toThrow(/^query refused: Binder Error: .*nope/);
  });
});
