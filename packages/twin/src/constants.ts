/**
 * The twin's own names and numbers. Everything that AWS also has (pattern, batch and queue numbers, Glue settings)
 * comes from the config module in `@ingest/core`; only what exists nowhere else lives here.
 */
import { APP_NAME, catalogDatabaseName, TWIN_STAGE } from "@ingest/core";

export const TWIN_REGION = "us-east-1";
/** moto accepts any credentials; these are what `local env` prints so no real profile is ever used. */
export const TWIN_CREDENTIALS = { accessKeyId: "twin", secretAccessKey: "twin" } as const;
export const TWIN_ACCOUNT = "123456789012";

const prefix = `${APP_NAME}-${TWIN_STAGE}`;

/** Resource names of the twin stage (on AWS the same roles get SST's names; the CLI resolves those from outputs). */
export const TWIN_NAMES = {
  bucket: `${prefix}-data`,
  /** Manifests (as on AWS: a bucket uploaders cannot write; the twin does not enforce bucket policies). */
  controlBucket: `${prefix}-control`,
  ledgerTable: `${prefix}-ledger`,
  ingestQueue: `${prefix}-ingest`,
  ingestDlq: `${prefix}-ingest-dlq`,
  recorderQueue: `${prefix}-recorder`,
  recorderDlq: `${prefix}-recorder-dlq`,
  objectCreatedRule: `${prefix}-object-created`,
  glueRunEndedRule: `${prefix}-glue-run-ended`,
  glueJob: `${prefix}-ingest-job`,
  /** The Data Catalog database over the job's outputs (its tables: packages/core/src/catalog/tables.ts). */
  catalogDatabase: catalogDatabaseName(APP_NAME, TWIN_STAGE),
  /** The fault layer's relay queue for S3 events (only when S3-event faults are on; no AWS counterpart). */
  s3EventRelayQueue: `${prefix}-s3-event-relay`,
} as const;

/** Lambda's invocation payload limit: a batch is cut before its bodies pass this. */
export const LAMBDA_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024;

/** Where the twin keeps its state, logs and Glue staging folders (relative to the workspace root; git-ignored). */
export const TWIN_DIR = ".twin";
export const STATE_FILE = "state.json";

/** Test/demo-only fault injection for the local Glue service (see README "Fault injection"). */
export const GLUE_FAIL_KEYS_ENV = "TWIN_GLUE_FAIL_KEYS";
