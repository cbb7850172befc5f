/** The Data Catalog's one definition (catalog/tables.ts): what infra and the twin both create from it. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  CATALOG_TABLES,
  catalogDatabaseName,
  catalogTableInput,
  FILE_STATS_COLUMNS,
} from "../../src/catalog/tables.js";

const statsVector = JSON.parse(
  readFileSync(new URL("../../src/manifest/examples/stats.v1.json", import.meta.url), "utf8"),
) as { files: Record<string, unknown>[] };

describe("catalog tables", () => {
  it("file_stats has the run's key and date, then every field of a stats `files` entry, in the job's order", () => {
    expect(FILE_STATS_COLUMNS.map((c) => c.name)).toEqual([
      "runKey",
      "processingDate",
      ...Object.keys(statsVector.files[0] ?? {}),
    ]);
  });

  it("names the database for the app and stage", () => {
    expect(catalogDatabaseName("csv-ingest", "local")).toBe("csv_ingest_local");
    expect(catalogDatabaseName("csv-ingest", "pr-12.x")).toBe("csv_ingest_pr_12_x");
  });

  it("gives each table the Glue API's TableInput over the bucket, with projection only where partitioned", () => {
    const inputs = CATALOG_TABLES.map((t) => catalogTableInput(t, "b"));
    expect(
      inputs.map((t) => [t.Name, t.StorageDescriptor.Location, t.Parameters["projection.enabled"] ?? "-"]),
    ).toEqual([
      ["processed_rows", "s3://b/parquet/", "true"],
      ["processed_csv", "s3://b/processed/", "-"],
      ["rejected_rows", "s3://b/rejected/", "-"],
      ["file_stats", "s3://b/stats/files/", "true"],
    ]);
    expect(inputs[0]?.Parameters).toEqual({
      classification: "parquet",
      EXTERNAL: "TRUE",
      "projection.enabled": "true",
      "projection.ingest_date.type": "date",
      "projection.ingest_date.format": "yyyy-MM-dd",
      "projection.ingest_date.range": "2026-01-01,NOW",
      "projection.ingest_date.interval": "1",
      "projection.ingest_date.interval.unit": "DAYS",
      "storage.location.template": `s3://b/parquet/ingest_date=\${ingest_date}/`,
    });
    expect(inputs[2]?.Parameters).toEqual({ classification: "csv", EXTERNAL: "TRUE", "skip.header.line.count": "1" });
  });
});
