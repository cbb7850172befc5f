/**
 * The Glue Data Catalog over the job's outputs (glue/CONTRACT.md), defined once: one database per stage and one
 * table per kind of output, each over its own top-level prefix. `infra/catalog.ts` creates these tables on AWS, the
 * twin creates the same ones on its emulator, and `ingest query` builds its DuckDB views from what the catalog
 * answers. The partitioned tables use partition projection on `ingest_date`, so a run's output is queryable as soon
 * as the run ends: no crawler, no partitions to add.
 */
import {
  FILE_STATS_PREFIX,
  INGEST_DATE_PARTITION,
  PARQUET_PREFIX,
  PROCESSED_PREFIX,
  REJECTED_PREFIX,
} from "../config/pipeline.js";

/** The app's name (sst.config.ts): the catalog database is `<app>_<stage>`. */
export const APP_NAME = "csv-ingest";

/** A column in Hive DDL types, as Glue and Athena take them. */
export interface CatalogColumn {
  readonly name: string;
  readonly type: string;
  readonly comment?: string;
}

export type CatalogFormat = "parquet" | "csv" | "json";

export interface CatalogTableDefinition {
  readonly name: string;
  /** Where its files are, under the data bucket (one of the job's output prefixes). */
  readonly prefix: string;
  readonly format: CatalogFormat;
  readonly columns: readonly CatalogColumn[];
  /** Partition keys, projected (partition projection): none or `ingest_date`. */
  readonly partitionKeys: readonly CatalogColumn[];
  readonly description: string;
}

const str = (name: string, comment?: string): CatalogColumn => ({
  name,
  type: "string",
  ...(comment ? { comment } : {}),
});
const INGEST_DATE: CatalogColumn = { name: INGEST_DATE_PARTITION, type: "string" };

/** The processed rows, typed: the Parquet schema of glue/csv_ingest/contract/output.py (PARQUET_SCHEMA; a test holds them equal). */
export const PROCESSED_ROWS_COLUMNS: readonly CatalogColumn[] = [
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

/** The processed CSV as written (text cells, formula cells neutralised: see CONTRACT.md): glue/csv_ingest/contract/output.py PROCESSED_COLUMNS. */
export const PROCESSED_CSV_COLUMNS: readonly CatalogColumn[] = [
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

/** glue/csv_ingest/contract/output.py REJECTED_COLUMNS. */
export const REJECTED_COLUMNS: readonly CatalogColumn[] = [
  str("source_file"),
  { name: "line_number", type: "bigint" },
  str("reason"),
  str("raw_line"),
];

/** One object per upload of a run: the stats' `files` entries (manifest/format.ts FileStats) plus run key and date. */
export const FILE_STATS_COLUMNS: readonly CatalogColumn[] = [
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

export const CATALOG_TABLES: readonly CatalogTableDefinition[] = [
  {
    name: "processed_rows",
    prefix: PARQUET_PREFIX,
    format: "parquet",
    columns: PROCESSED_ROWS_COLUMNS,
    partitionKeys: [INGEST_DATE],
    description: "processed rows, typed (Parquet)",
  },
  {
    name: "processed_csv",
    prefix: PROCESSED_PREFIX,
    format: "csv",
    columns: PROCESSED_CSV_COLUMNS,
    partitionKeys: [],
    description: "processed rows as the CSV the job writes",
  },
  {
    name: "rejected_rows",
    prefix: REJECTED_PREFIX,
    format: "csv",
    columns: REJECTED_COLUMNS,
    partitionKeys: [],
    description: "rejected rows with the reason",
  },
  {
    name: "file_stats",
    prefix: FILE_STATS_PREFIX,
    format: "json",
    columns: FILE_STATS_COLUMNS,
    partitionKeys: [INGEST_DATE],
    description: "per-file stats of each run (JSON Lines)",
  },
];

/** A Glue database name: lower case letters, digits and underscores. */
export function catalogDatabaseName(app: string, stage: string): string {
  return `${app}_${stage}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
}

export const CATALOG_DATABASE_DESCRIPTION = "The CSV ingest job's outputs (glue/CONTRACT.md)";

/** Storage of each format: Hive input/output formats and SerDe, as Athena reads them. */
export const CATALOG_STORAGE: Readonly<
  Record<
    CatalogFormat,
    {
      readonly inputFormat: string;
      readonly outputFormat: string;
      readonly serde: string;
      readonly serdeParameters?: Readonly<Record<string, string>>;
      /** Table parameters beyond classification and EXTERNAL. */
      readonly parameters?: Readonly<Record<string, string>>;
    }
  >
> = {
  parquet: {
    inputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    outputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    serde: "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
  },
  csv: {
    inputFormat: "org.apache.hadoop.mapred.TextInputFormat",
    outputFormat: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    serde: "org.apache.hadoop.hive.serde2.OpenCSVSerde",
    serdeParameters: { separatorChar: ",", quoteChar: '"', escapeChar: "\\" },
    parameters: { "skip.header.line.count": "1" },
  },
  json: {
    inputFormat: "org.apache.hadoop.mapred.TextInputFormat",
    outputFormat: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    serde: "org.openx.data.jsonserde.JsonSerDe",
  },
};

/** Partition projection on ingest_date (yyyy-MM-dd, from 2026-01-01 to today): the partitions need no registering. */
export function projectedIngestDate(location: string): Record<string, string> {
  return {
    "projection.enabled": "true",
    [`projection.${INGEST_DATE_PARTITION}.type`]: "date",
    [`projection.${INGEST_DATE_PARTITION}.format`]: "yyyy-MM-dd",
    [`projection.${INGEST_DATE_PARTITION}.range`]: "2026-01-01,NOW",
    [`projection.${INGEST_DATE_PARTITION}.interval`]: "1",
    [`projection.${INGEST_DATE_PARTITION}.interval.unit`]: "DAYS",
    "storage.location.template": `${location}${INGEST_DATE_PARTITION}=\${${INGEST_DATE_PARTITION}}/`,
  };
}

/** A Glue API column (`Column`). */
export interface GlueColumn {
  readonly Name: string;
  readonly Type: string;
  readonly Comment?: string;
}

/** A table as the Glue API takes it (CreateTable's `TableInput`) and answers it (GetTables' `Table`, a superset). */
export interface GlueTableInput {
  readonly Name: string;
  readonly Description: string;
  readonly TableType: "EXTERNAL_TABLE";
  readonly Parameters: Record<string, string>;
  readonly PartitionKeys: GlueColumn[];
  readonly StorageDescriptor: {
    readonly Location: string;
    readonly InputFormat: string;
    readonly OutputFormat: string;
    readonly SerdeInfo: { readonly SerializationLibrary: string; readonly Parameters?: Record<string, string> };
    readonly Columns: GlueColumn[];
  };
}

export const glueColumn = (c: CatalogColumn): GlueColumn => ({
  Name: c.name,
  Type: c.type,
  ...(c.comment ? { Comment: c.comment } : {}),
});

/** `s3://<bucket>/<prefix>`: a table's location. */
export const tableLocation = (bucket: string, t: CatalogTableDefinition) => `s3://${bucket}/${t.prefix}`;

/** One table of CATALOG_TABLES as the Glue API's TableInput, over the given data bucket. */
export function catalogTableInput(t: CatalogTableDefinition, bucket: string): GlueTableInput {
  const location = tableLocation(bucket, t);
  const storage = CATALOG_STORAGE[t.format];
  return {
    Name: t.name,
    Description: t.description,
    TableType: "EXTERNAL_TABLE",
    Parameters: {
      classification: t.format,
      EXTERNAL: "TRUE",
      ...storage.parameters,
      ...(t.partitionKeys.length > 0 ? projectedIngestDate(location) : {}),
    },
    PartitionKeys: t.partitionKeys.map(glueColumn),
    StorageDescriptor: {
      Location: location,
      InputFormat: storage.inputFormat,
      OutputFormat: storage.outputFormat,
      SerdeInfo: {
        SerializationLibrary: storage.serde,
        ...(storage.serdeParameters ? { Parameters: { ...storage.serdeParameters } } : {}),
      },
      Columns: t.columns.map(glueColumn),
    },
  };
}
