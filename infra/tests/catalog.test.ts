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

  const columnsOf = (name: string) =>
    (table(name).inputs.storageDescriptor.columns as { name: string; type: string }[]).map(
      (c) => `${c.name} ${c.type}`,
    );

  it("declares every column of every table, in the files' order (glue/CONTRACT.md)", () => {
    expect(columnsOf("processed_rows")).toEqual([
      "id string",
      "name string",
      "email string",
      "email_valid boolean",
      "date date",
      "amount decimal(24,9)",
      "amount_category string",
      "status string",
      "running_total_by_status decimal(38,9)",
      "data_quality_issues string",
      "processing_date timestamp",
      "source_file string",
      "line_number bigint",
    ]);
    expect(columnsOf("processed_csv")).toEqual([
      "id string",
      "name string",
      "email string",
      "email_valid string",
      "date string",
      "amount string",
      "amount_category string",
      "status string",
      "running_total_by_status string",
      "data_quality_issues string",
      "processing_date string",
      "source_file string",
    ]);
    expect(columnsOf("rejected_rows")).toEqual([
      "source_file string",
      "line_number bigint",
      "reason string",
      "raw_line string",
    ]);
    expect(columnsOf("file_stats")).toEqual([
      "runKey string",
      "processingDate string",
      "uploadId string",
      "key string",
      "status string",
      "error string",
      "rowsRead bigint",
      "rowsProcessed bigint",
      "rowsRejected bigint",
      "duplicatesRemoved bigint",
      "qualityIssues map<string,bigint>",
      "output string",
      "rejectedOutput string",
      "parquetOutput string",
    ]);
  });

  it("reads each table in its files' format: Parquet, CSV with a header, JSON Lines", () => {
    const storage = (name: string) => {
      const t = table(name).inputs;
      return {
        tableType: t.tableType,
        classification: t.parameters.classification,
        external: t.parameters.EXTERNAL,
        skipHeader: t.parameters["skip.header.line.count"],
        serde: t.storageDescriptor.serDeInfo.serializationLibrary,
        serdeParameters: t.storageDescriptor.serDeInfo.parameters,
        inputFormat: t.storageDescriptor.inputFormat,
        partitionKeys: t.partitionKeys,
      };
    };
    const text = {
      inputFormat: "org.apache.hadoop.mapred.TextInputFormat",
      tableType: "EXTERNAL_TABLE",
      external: "TRUE",
    };
    const csv = {
      ...text,
      classification: "csv",
      skipHeader: "1",
      serde: "org.apache.hadoop.hive.serde2.OpenCSVSerde",
      serdeParameters: { separatorChar: ",", quoteChar: '"', escapeChar: "\\" },
      partitionKeys: undefined,
    };
    expect(storage("processed_rows")).toEqual({
      tableType: "EXTERNAL_TABLE",
      external: "TRUE",
      classification: "parquet",
      skipHeader: undefined,
      serde: "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
      serdeParameters: undefined,
      inputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
      partitionKeys: [{ name: "ingest_date", type: "string" }],
    });
    expect(storage("processed_csv")).toEqual(csv);
    expect(storage("rejected_rows")).toEqual(csv);
    expect(storage("file_stats")).toEqual({
      ...text,
      classification: "json",
      skipHeader: undefined,
      serde: "org.openx.data.jsonserde.JsonSerDe",
      serdeParameters: undefined,
      partitionKeys: [{ name: "ingest_date", type: "string" }],
    });
  });

  it("outputs the database's name for the CLI (`ingest catalog --stage`)", () => {
    expect(app.outputs.catalogDatabaseName).toBe("csv_ingest_dev");
  });
});
