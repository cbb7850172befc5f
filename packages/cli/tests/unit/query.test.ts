/**
 * `ingest catalog` / `ingest query` without a twin: how a catalog table is read, which of its objects a query reads
 * (as Athena: no `_`/`.` files, only its partition folders; never a path chosen by a key) and how answers print.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CATALOG_TABLES, catalogTableInput } from "@ingest/core";
import { describe, expect, it } from "vitest";
import {
  type CatalogTableView,
  demoCatalogDir,
  loadSavedCatalog,
  localPath,
  namedIn,
  parseLocation,
  renderAnswer,
  renderCatalog,
  tableView,
} from "../../src/query.js";

const views = CATALOG_TABLES.map((t) => tableView(catalogTableInput(t, "data-bucket")));
const view = (name: string) => views.find((t) => t.name === name) as CatalogTableView;

describe("tableView (a GetTables entry)", () => {
  it("takes the format, location, columns and partition keys from the catalog's own answer", () => {
    expect(views.map((t) => [t.name, t.format, t.location, t.partitionKeys.map((k) => k.name)])).toEqual([
      ["processed_rows", "parquet", "s3://data-bucket/parquet/", ["ingest_date"]],
      ["processed_csv", "csv", "s3://data-bucket/processed/", []],
      ["rejected_rows", "csv", "s3://data-bucket/rejected/", []],
      ["file_stats", "json", "s3://data-bucket/stats/files/", ["ingest_date"]],
    ]);
    expect(view("rejected_rows").columns).toEqual([
      { name: "source_file", type: "string" },
      { name: "line_number", type: "bigint" },
      { name: "reason", type: "string" },
      { name: "raw_line", type: "string" },
    ]);
  });

  it("reads the format from the SerDe when a table has no classification", () => {
    const t = tableView({
      Name: "x",
      StorageDescriptor: {
        Location: "s3://b/x/",
        SerdeInfo: { SerializationLibrary: "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe" },
      },
    });
    expect(t.format).toBe("parquet");
  });
});

describe("localPath (which objects a table reads, and where they go locally)", () => {
  const rows = view("processed_rows");
  const csv = view("processed_csv");

  it("keeps a partitioned table's objects under its partition folders, named by a counter", () => {
    expect(localPath(rows, "ingest_date=2026-11-30/orders/v=abc/part-00000.parquet", 7)).toEqual([
      "processed_rows",
      "ingest_date=2026-11-30",
      "7.parquet",
    ]);
    expect(localPath(csv, "dir with space/ünï/v=1/part-00000.csv", 0)).toEqual(["processed_csv", "0.csv"]);
  });

  it.each([
    ["a/v=1/_SUCCESS", "a marker file"],
    ["a/v=1/.part-00000.csv.crc", "a hidden file"],
    ["_staging/a/part-00000.csv", "a folder starting with _"],
    ["a//part-00000.csv", "an empty segment"],
  ])("skips %s (%s)", (key) => {
    expect(localPath(csv, key, 0)).toBeNull();
  });

  it.each([
    ["orders/v=1/part-00000.parquet", "no partition folder"],
    ["ingest_date=../../x/part.parquet", "a partition value that is not a plain value"],
    ["other=2026-11-30/part.parquet", "another key's folder"],
  ])("a partitioned table skips %s (%s)", (key) => {
    expect(localPath(rows, key, 0)).toBeNull();
  });
});

describe("parseLocation and namedIn", () => {
  it("splits s3:// locations", () => {
    expect(parseLocation("s3://b/parquet/")).toEqual({ bucket: "b", prefix: "parquet/" });
    expect(parseLocation("s3://b/stats/files")).toEqual({ bucket: "b", prefix: "stats/files/" });
    expect(() => parseLocation("/local/dir")).toThrow(/is not an s3:\/\/ location/);
  });

  it("copies only the tables a statement names (as whole words)", () => {
    const named = namedIn("SELECT * FROM Processed_Rows r JOIN file_stats s ON true");
    expect(views.filter(named).map((t) => t.name)).toEqual(["processed_rows", "file_stats"]);
    expect(views.filter(namedIn("SELECT 1 AS processed_rowsx")).map((t) => t.name)).toEqual([]);
  });
});

describe("rendering", () => {
  it("aligns the answer, numbers to the right, NULL for missing, maps as JSON, the row count last", () => {
    const text = renderAnswer({
      columns: [
        { name: "status", type: "VARCHAR" },
        { name: "count_star()", type: "BIGINT" },
        { name: "issues", type: "MAP(VARCHAR, BIGINT)" },
      ],
      rows: [
        ["active", 10, { missing_id: 1 }],
        [null, 4, null],
      ],
      truncated: false,
    });
    expect(text).toBe(
      [
        "status  count_star()  issues",
        "------  ------------  ----------------",
        'active            10  {"missing_id":1}',
        "NULL               4  NULL",
        "(2 rows)",
      ].join("\n"),
    );
  });

  it("escapes untrusted cells and column names (no escape sequence reaches the terminal; one row per line)", () => {
    const text = renderAnswer({
      columns: [{ name: "name\u001b[2J", type: "VARCHAR" }],
      rows: [["\u001b]8;;http://evil\u0007x\nFAKE ROW"]],
      truncated: true,
    });
    expect(text.split("\n")).toEqual([
      "name\\x1b[2J",
      "-".repeat(34),
      "\\x1b]8;;http://evil\\x07x\\nFAKE ROW",
      "(first 1 rows; ask for more with --max-rows)",
    ]);
  });

  it("lists the catalog's tables", () => {
    expect(renderCatalog("csv_ingest_local", views).split("\n")).toEqual([
      "Database csv_ingest_local: 4 table(s)",
      "table           format   partitioned by  columns  location",
      "--------------  -------  --------------  -------  -----------------------------",
      "processed_rows  parquet  ingest_date          13  s3://data-bucket/parquet/",
      "processed_csv   csv      -                    12  s3://data-bucket/processed/",
      "rejected_rows   csv      -                     4  s3://data-bucket/rejected/",
      "file_stats      json     ingest_date          14  s3://data-bucket/stats/files/",
    ]);
  });
});

describe("the copy a demo leaves (.twin/demo/catalog)", () => {
  const saved = (files: string[]) => {
    const dir = mkdtempSync(join(tmpdir(), "saved-catalog-"));
    const table = { ...view("rejected_rows"), files };
    writeFileSync(
      join(dir, "catalog.json"),
      JSON.stringify({ database: "d", savedAt: "2026-11-30T12:00:00.000Z", tables: [table] }),
    );
    return dir;
  };

  it("is found in the demo's folder and gives its files as paths inside it", () => {
    expect(demoCatalogDir("/w/.twin")).toBe("/w/.twin/demo/catalog");
    const dir = saved(["rejected_rows/0.csv"]);
    expect(loadSavedCatalog(dir)?.tables[0]?.files).toEqual([join(dir, "rejected_rows", "0.csv")]);
    expect(loadSavedCatalog(join(dir, "none"))).toBeNull();
  });

  it.each([["../../etc/passwd"], ["/etc/passwd"]])("refuses a file outside the folder: %s", (f) => {
    expect(() => loadSavedCatalog(saved([f]))).toThrow(/is outside/);
  });
});
