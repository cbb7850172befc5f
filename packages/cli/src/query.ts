/**
 * `ingest catalog` and `ingest query`: the Data Catalog's tables and SQL over them on the twin, as Athena answers it
 * on AWS. The tables come from the catalog itself (GetTables on the twin's Glue endpoint); `query` copies each
 * table's files out of the emulator's S3 into a local folder and runs the SQL with DuckDB (packages/twin/query.py),
 * one view per table with the catalog's columns and types. Nothing is fetched from the internet.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, relative } from "node:path";
import { type Column, GetTablesCommand, type GlueClient, type Table } from "@aws-sdk/client-glue";
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { CliError } from "./errors.js";
import { printable } from "./output.js";

export interface CatalogColumnView {
  readonly name: string;
  readonly type: string;
}

/** One catalog table as `ingest catalog` shows it and `ingest query` reads it. */
export interface CatalogTableView {
  readonly name: string;
  readonly format: string;
  readonly location: string;
  readonly columns: readonly CatalogColumnView[];
  readonly partitionKeys: readonly CatalogColumnView[];
  readonly description?: string;
}

/** What packages/twin/query.py answers. */
export interface QueryAnswer {
  readonly columns: readonly { readonly name: string; readonly type: string }[];
  readonly rows: readonly (readonly unknown[])[];
  readonly truncated: boolean;
}

const SERDE_FORMATS: Readonly<Record<string, string>> = {
  "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe": "parquet",
  "org.apache.hadoop.hive.serde2.OpenCSVSerde": "csv",
  "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe": "csv",
  "org.openx.data.jsonserde.JsonSerDe": "json",
  "org.apache.hive.hcatalog.data.JsonSerDe": "json",
};

/** A GetTables entry as the CLI's view: its format from the classification, else from the SerDe. */
export function tableView(t: Table): CatalogTableView {
  const name = t.Name ?? "";
  const classification = t.Parameters?.classification?.toLowerCase();
  const serde = t.StorageDescriptor?.SerdeInfo?.SerializationLibrary ?? "";
  const format = classification ?? SERDE_FORMATS[serde] ?? "unknown";
  const cols = (cs: readonly Column[] | undefined) =>
    (cs ?? []).map((c) => ({ name: c.Name ?? "", type: c.Type ?? "string" }));
  return {
    name,
    format,
    location: t.StorageDescriptor?.Location ?? "",
    columns: cols(t.StorageDescriptor?.Columns),
    partitionKeys: cols(t.PartitionKeys),
    ...(t.Description ? { description: t.Description } : {}),
  };
}

/** Every table of the database (GetTables, all pages), by name. */
export async function readCatalog(glue: GlueClient, database: string): Promise<CatalogTableView[]> {
  const tables: CatalogTableView[] = [];
  let token: string | undefined;
  do {
    const page = await glue.send(new GetTablesCommand({ DatabaseName: database, NextToken: token }));
    for (const t of page.TableList ?? []) tables.push(tableView(t));
    token = page.NextToken;
  } while (token);
  return tables.sort((a, b) => a.name.localeCompare(b.name));
}

export function renderCatalog(database: string, tables: readonly CatalogTableView[]): string {
  const rows = tables.map((t) => [
    t.name,
    t.format,
    t.partitionKeys.map((k) => k.name).join(", ") || "-",
    String(t.columns.length),
    t.location,
  ]);
  const header = ["table", "format", "partitioned by", "columns", "location"];
  return [`Database ${printable(database)}: ${tables.length} table(s)`, aligned(header, rows, [3])].join("\n");
}

/** `s3://bucket/prefix/` → bucket and prefix (the prefix ends with "/"). */
export function parseLocation(location: string): { bucket: string; prefix: string } {
  const m = /^s3a?:\/\/([^/]+)\/?(.*)$/.exec(location);
  if (!m?.[1]) throw new CliError(`table location ${printable(location)} is not an s3:// location`);
  const prefix = m[2] ?? "";
  return { bucket: m[1], prefix: prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/` };
}

const EXTENSION: Readonly<Record<string, string>> = { parquet: ".parquet", csv: ".csv", json: ".jsonl" };
const PARTITION_VALUE = /^[A-Za-z0-9_.:-]+$/;

/**
 * Where a table's object goes in the local copy, or null when the table does not read it: as Athena, files and
 * folders whose names start with `_` or `.` are skipped, and a partitioned table reads only `<key>=<value>/` folders
 * of its partition keys, in order. The local name is the table, the partition folders and a counter: an object's key
 * (untrusted text) never becomes a path.
 */
export function localPath(table: CatalogTableView, relativeKey: string, index: number): string[] | null {
  const parts = relativeKey.split("/");
  if (parts.some((p) => p === "" || p.startsWith("_") || p.startsWith("."))) return null;
  if (parts.length < table.partitionKeys.length + 1) return null;
  const partitions: string[] = [];
  for (const [i, key] of table.partitionKeys.entries()) {
    const part = parts[i] ?? "";
    const value = part.startsWith(`${key.name}=`) ? part.slice(key.name.length + 1) : null;
    if (value === null || !PARTITION_VALUE.test(value)) return null;
    partitions.push(part);
  }
  return [table.name, ...partitions, `${index}${EXTENSION[table.format] ?? ""}`];
}

/** One table and the local files that hold it. */
export interface LocalTable extends CatalogTableView {
  readonly files: readonly string[];
}

const TABLE_NAME = /^[a-z0-9_]+$/;

/** Copies each table's objects (under its location) from S3 into `dir`; returns the tables with their local files. */
export async function copyTables(
  s3: S3Client,
  tables: readonly CatalogTableView[],
  dir: string,
  wanted: (t: CatalogTableView) => boolean = () => true,
): Promise<LocalTable[]> {
  const out: LocalTable[] = [];
  for (const table of tables) {
    if (!TABLE_NAME.test(table.name))
      throw new CliError(`catalog table name ${printable(table.name)} is not a Glue name`);
    if (!wanted(table)) {
      out.push({ ...table, files: [] });
      continue;
    }
    const { bucket, prefix } = parseLocation(table.location);
    const files: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      const batch = (page.Contents ?? []).flatMap((o) => {
        const path = o.Key ? localPath(table, o.Key.slice(prefix.length), files.length) : null;
        if (!o.Key || !path) return [];
        const file = join(dir, ...path);
        files.push(file);
        return [{ key: o.Key, file }];
      });
      await inParallel(batch, 16, async ({ key, file }) => {
        const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, (await r.Body?.transformToByteArray()) ?? new Uint8Array());
      });
      token = page.NextContinuationToken;
    } while (token);
    out.push({ ...table, files });
  }
  return out;
}

async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The tables a statement names (a word match): only those are copied; the others are empty views. */
export function namedIn(sql: string): (t: CatalogTableView) => boolean {
  const text = sql.toLowerCase();
  return (t) => new RegExp(`(^|[^a-z0-9_])${t.name}($|[^a-z0-9_])`).test(text);
}

export interface QueryRunner {
  readonly python: string;
  readonly script: string;
}

/** Runs the SQL over the tables with DuckDB (packages/twin/query.py); a refused statement is a CliError. */
export async function runQuery(
  runner: QueryRunner,
  tables: readonly LocalTable[],
  sql: string,
  maxRows: number,
): Promise<QueryAnswer> {
  const request = JSON.stringify({
    sql,
    maxRows,
    tables: tables.map((t) => ({
      name: t.name,
      format: t.format,
      columns: t.columns,
      partitionKeys: t.partitionKeys,
      files: t.files,
    })),
  });
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(runner.python, [runner.script], { stdio: ["pipe", "pipe", "pipe"] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (c: Buffer) => out.push(c));
      child.stderr.on("data", (c: Buffer) => err.push(c));
      child.once("error", (e) => reject(new CliError(`cannot run ${runner.python}: ${e.message}`)));
      child.once("close", (c) =>
        resolve({ code: c, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }),
      );
      child.stdin.end(request);
    },
  );
  let answer: QueryAnswer & { error?: string };
  try {
    answer = JSON.parse(stdout) as QueryAnswer & { error?: string };
  } catch {
    const last = stderr.trim().split("\n").pop() ?? "";
    throw new CliError(`the query engine failed (exit ${code}): ${last || "no output"}`);
  }
  if (answer.error !== undefined) {
    throw new CliError(
      `query refused: ${answer.error
        .split("\n")
        .filter((l) => l.trim())
        .join(" ")}`,
    );
  }
  return answer;
}

const NUMERIC =
  /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL)/;

/** A cell as text: NULL for a missing value, JSON for maps and lists. */
export function cellText(v: unknown): string {
  if (v === null || v === undefined) return "NULL";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** The answer as an aligned table (untrusted cells escaped), with the row count. */
export function renderAnswer(a: QueryAnswer): string {
  const header = a.columns.map((c) => c.name);
  const right = a.columns.flatMap((c, i) => (NUMERIC.test(c.type) ? [i] : []));
  const rows = a.rows.map((r) => r.map(cellText));
  const count = a.truncated
    ? `(first ${a.rows.length} rows; ask for more with --max-rows)`
    : `(${a.rows.length} row${a.rows.length === 1 ? "" : "s"})`;
  return a.columns.length ? `${aligned(header, rows, right)}\n${count}` : "(no result)";
}

function aligned(header: readonly string[], rows: readonly string[][], rightAligned: readonly number[]): string {
  const cells = [header, ...rows].map((r) => r.map((c) => printable(c)));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]) =>
    r
      .map((v, i) => (rightAligned.includes(i) ? v.padStart(widths[i] ?? 0) : v.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  const [head, ...body] = cells;
  return [line(head ?? []), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/** A copy of the catalog and its tables' files kept on disk (the demo leaves one; `query` reads it later). */
export interface SavedCatalog {
  readonly database: string;
  readonly savedAt: string;
  readonly tables: readonly LocalTable[];
}

const SAVED_FILE = "catalog.json";

export async function saveCatalog(
  s3: S3Client,
  glue: GlueClient,
  database: string,
  dir: string,
  now = new Date(),
): Promise<SavedCatalog> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tables = await copyTables(s3, await readCatalog(glue, database), dir);
  const saved = {
    database,
    savedAt: now.toISOString(),
    tables: tables.map((t) => ({ ...t, files: t.files.map((f) => relative(dir, f)) })),
  };
  writeFileSync(join(dir, SAVED_FILE), `${JSON.stringify(saved, null, 2)}\n`);
  return { ...saved, tables };
}

/** The saved copy in `dir`, files as absolute paths; null when there is none. */
export function loadSavedCatalog(dir: string): SavedCatalog | null {
  const file = join(dir, SAVED_FILE);
  if (!existsSync(file)) return null;
  const saved = JSON.parse(readFileSync(file, "utf8")) as SavedCatalog;
  return {
    ...saved,
    tables: saved.tables.map((t) => ({
      ...t,
      files: t.files.map((f) => {
        if (isAbsolute(f) || f.split(/[\\/]/).includes(".."))
          throw new CliError(`${file}: file ${printable(f)} is outside ${dir}`);
        return join(dir, f);
      }),
    })),
  };
}

/** A private temporary folder for one query's copy, removed afterwards. */
export async function withScratch<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "ingest-query-"));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Where `ingest demo` leaves its copy of the catalog and tables (the demo's twin is gone when it ends). */
export function demoCatalogDir(twinDir: string): string {
  return join(twinDir, "demo", "catalog");
}
