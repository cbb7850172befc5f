/**
 * The Glue Data Catalog over the job's outputs (glue/CONTRACT.md): one database per stage and one table per kind of
 * output, each over its own top-level prefix. The partitioned tables use partition projection on `ingest_date`, so
 * a run's output is queryable in Athena as soon as the run ends: no crawler, no partitions to add.
 */
import {
  FILE_STATS_PREFIX,
  INGEST_DATE_PARTITION,
  PARQUET_PREFIX,
  PROCESSED_PREFIX,
  REJECTED_PREFIX,
} from "../packages/core/src/config/pipeline";

export interface CatalogInputs {
  readonly bucket: sst.aws.Bucket;
}

type Column = { name: string; type: string; comment?: string };

const str = (name: string, comment?: string): Column => ({ name, type: "string", ...(comment ? { comment } : {}) });

/** The processed rows, typed (the Parquet schema of glue/output.py). */
export const PROCESSED_ROWS_COLUMNS: Column[] = [
  str("id"),
  str("name"),
  str("email"),
  { name: "email_valid", type: "boolean" },
  { name: "date", type: "date" },
  { name: "amount", type: "decimal(24,9)" },
  str("amount_category"),
  str("status"),
  { name: "running_total_by_status", type: "decimal(38,9)" },
  str("data_quality_issues", "issue kinds joined by ';'"),
  { name: "processing_date", type: "timestamp", comment: "the run's timestamp, UTC" },
  str("source_file", "the upload's key"),
  { name: "line_number", type: "bigint" },
];

/** The processed CSV as written (text cells, formula cells neutralised: see CONTRACT.md). */
export const PROCESSED_CSV_COLUMNS: Column[] = [
  "id",
  "name",
  "email",
  "email_valid",
  "date",
  "amount",
  "amount_category",
  "status",
  "running_total_by_status",
  "data_quality_issues",
  "processing_date",
  "source_file",
].map((name) => str(name));

export const REJECTED_COLUMNS: Column[] = [
  str("source_file"),
  { name: "line_number", type: "bigint" },
  str("reason"),
  str("raw_line"),
];

/** One object per upload of a run (the stats' `files` entries plus the run's key and processing date). */
export const FILE_STATS_COLUMNS: Column[] = [
  str("runKey"),
  str("processingDate"),
  str("uploadId"),
  str("key"),
  str("status"),
  str("error"),
  { name: "rowsRead", type: "bigint" },
  { name: "rowsProcessed", type: "bigint" },
  { name: "rowsRejected", type: "bigint" },
  { name: "duplicatesRemoved", type: "bigint" },
  { name: "qualityIssues", type: "map<string,bigint>" },
  str("output"),
  str("rejectedOutput"),
  str("parquetOutput"),
];

/** A Glue database name: lower case letters, digits and underscores. */
export function catalogDatabaseName(app: string, stage: string): string {
  return `${app}_${stage}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
}

/** Partition projection on ingest_date (yyyy-MM-dd, from 2026-01-01 to today): the partitions need no registering. */
export function projectedIngestDate(location: $util.Input<string>): Record<string, $util.Input<string>> {
  return {
    "projection.enabled": "true",
    [`projection.${INGEST_DATE_PARTITION}.type`]: "date",
    [`projection.${INGEST_DATE_PARTITION}.format`]: "yyyy-MM-dd",
    [`projection.${INGEST_DATE_PARTITION}.range`]: "2026-01-01,NOW",
    [`projection.${INGEST_DATE_PARTITION}.interval`]: "1",
    [`projection.${INGEST_DATE_PARTITION}.interval.unit`]: "DAYS",
    "storage.location.template": $interpolate`${location}${INGEST_DATE_PARTITION}=\${${INGEST_DATE_PARTITION}}/`,
  };
}

const CSV_SERDE = {
  serializationLibrary: "org.apache.hadoop.hive.serde2.OpenCSVSerde",
  parameters: { separatorChar: ",", quoteChar: '"', escapeChar: "\\" },
};
const TEXT_FORMAT = {
  inputFormat: "org.apache.hadoop.mapred.TextInputFormat",
  outputFormat: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
};

export function createCatalog(inputs: CatalogInputs) {
  const { bucket } = inputs;
  const database = new aws.glue.CatalogDatabase("OutputCatalog", {
    name: catalogDatabaseName($app.name, $app.stage),
    description: "The CSV ingest job's outputs (glue/CONTRACT.md)",
  });
  const at = (prefix: string) => $interpolate`s3://${bucket.name}/${prefix}`;
  const partition = [{ name: INGEST_DATE_PARTITION, type: "string" }];

  const processedRows = new aws.glue.CatalogTable("ProcessedRowsTable", {
    databaseName: database.name,
    name: "processed_rows",
    tableType: "EXTERNAL_TABLE",
    parameters: { classification: "parquet", EXTERNAL: "TRUE", ...projectedIngestDate(at(PARQUET_PREFIX)) },
    partitionKeys: partition,
    storageDescriptor: {
      location: at(PARQUET_PREFIX),
      inputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
      outputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
      serDeInfo: { serializationLibrary: "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe" },
      columns: PROCESSED_ROWS_COLUMNS,
    },
  });

  const csvTable = (logical: string, name: string, prefix: string, columns: Column[]) =>
    new aws.glue.CatalogTable(logical, {
      databaseName: database.name,
      name,
      tableType: "EXTERNAL_TABLE",
      parameters: { classification: "csv", EXTERNAL: "TRUE", "skip.header.line.count": "1" },
      storageDescriptor: { location: at(prefix), ...TEXT_FORMAT, serDeInfo: CSV_SERDE, columns },
    });
  const processedCsv = csvTable("ProcessedCsvTable", "processed_csv", PROCESSED_PREFIX, PROCESSED_CSV_COLUMNS);
  const rejectedRows = csvTable("RejectedRowsTable", "rejected_rows", REJECTED_PREFIX, REJECTED_COLUMNS);

  const fileStats = new aws.glue.CatalogTable("FileStatsTable", {
    databaseName: database.name,
    name: "file_stats",
    tableType: "EXTERNAL_TABLE",
    parameters: { classification: "json", EXTERNAL: "TRUE", ...projectedIngestDate(at(FILE_STATS_PREFIX)) },
    partitionKeys: partition,
    storageDescriptor: {
      location: at(FILE_STATS_PREFIX),
      ...TEXT_FORMAT,
      serDeInfo: { serializationLibrary: "org.openx.data.jsonserde.JsonSerDe" },
      columns: FILE_STATS_COLUMNS,
    },
  });

  return { database, tables: { processedRows, processedCsv, rejectedRows, fileStats } };
}
