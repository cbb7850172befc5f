/**
 * The Data Catalog over the job's outputs (infra/catalog.ts), evaluated under Pulumi mocks: one database, one table
 * per output kind at its own prefix, partition projection where the layout is partitioned.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { catalogDatabaseName } from "../catalog";
import { type EvaluatedApp, evaluateApp } from "./helpers/app";

let app: EvaluatedApp;
beforeAll(async () => {
  app = await evaluateApp("dev");
});

const table = (name: string) => app.one("aws:glue/catalogTable:CatalogTable", (r) => r.inputs.name === name);

describe("catalog", () => {
  it("has one database named for the stage", () => {
    const db = app.one("aws:glue/catalogDatabase:CatalogDatabase");
    expect(db.inputs.name).toBe("csv_ingest_dev");
    expect(catalogDatabaseName("csv-ingest", "pr-12.x")).toBe("csv_ingest_pr_12_x");
  });

  it("has one table per output kind, each over its own top-level prefix", () => {
    const bucket = `s3://${app.outputs.bucketName}/`;
    const tables = app.ofType("aws:glue/catalogTable:CatalogTable");
    const locations = Object.fromEntries(tables.map((t) => [t.inputs.name, t.inputs.storageDescriptor.location]));
    expect(locations).toEqual({
      processed_rows: `${bucket}parquet/`,
      processed_csv: `${bucket}processed/`,
      rejected_rows: `${bucket}rejected/`,
      file_stats: `${bucket}stats/files/`,
    });
    for (const t of tables) expect(t.inputs.databaseName).toBe("csv_ingest_dev");
  });

  it("types the Parquet table as the job writes it", () => {
    const columns = table("processed_rows").inputs.storageDescriptor.columns as { name: string; type: string }[];
    expect(Object.fromEntries(columns.map((c) => [c.name, c.type]))).toMatchObject({
      email_valid: "boolean",
      date: "date",
      amount: "decimal(24,9)",
      running_total_by_status: "decimal(38,9)",
      processing_date: "timestamp",
      line_number: "bigint",
    });
  });

  it.each(["processed_rows", "file_stats"])("projects %s's ingest_date partitions (no crawler)", (name) => {
    const t = table(name);
    expect(t.inputs.partitionKeys).toEqual([{ name: "ingest_date", type: "string" }]);
    expect(t.inputs.parameters).toMatchObject({
      "projection.enabled": "true",
      "projection.ingest_date.type": "date",
      "projection.ingest_date.format": "yyyy-MM-dd",
      "projection.ingest_date.range": "2026-01-01,NOW",
      "storage.location.template": `${t.inputs.storageDescriptor.location}ingest_date=\${ingest_date}/`,
    });
  });
});
