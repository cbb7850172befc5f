/** How SDK clients reach the twin: the standard endpoint settings, a region and dummy credentials. */
import { HANDLER_ENV, TWIN_STAGE } from "@ingest/core";
import { TWIN_CREDENTIALS, TWIN_NAMES, TWIN_REGION } from "./constants.js";

export interface TwinEndpoints {
  /** moto: S3, EventBridge, SQS, DynamoDB. */
  readonly aws: string;
  /** The local Glue service. */
  readonly glue: string;
  /** The fault layer's proxy in front of both (what the handlers, the Glue service and the job use). */
  readonly proxy?: string;
}

/** Options for any AWS SDK v3 client constructor (S3 also wants `forcePathStyle`). */
export function clientConfig(endpoint: string) {
  return { endpoint, region: TWIN_REGION, credentials: { ...TWIN_CREDENTIALS } };
}

/**
 * The environment that points any AWS SDK or CLI at the twin: the SDKs' standard `AWS_ENDPOINT_URL` (and the
 * per-service `AWS_ENDPOINT_URL_GLUE`), a region, dummy credentials, and no profile or IMDS lookups.
 */
export function sdkEnv(endpoints: Pick<TwinEndpoints, "aws" | "glue">): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: endpoints.aws,
    AWS_ENDPOINT_URL_GLUE: endpoints.glue,
    AWS_REGION: TWIN_REGION,
    AWS_DEFAULT_REGION: TWIN_REGION,
    AWS_ACCESS_KEY_ID: TWIN_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TWIN_CREDENTIALS.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: "true",
  };
}

/** What the handlers read (names from HANDLER_ENV), set by infra on AWS and by the twin here. */
export function handlerEnv(): Record<string, string> {
  return {
    [HANDLER_ENV.stage]: TWIN_STAGE,
    [HANDLER_ENV.dataBucket]: TWIN_NAMES.bucket,
    [HANDLER_ENV.controlBucket]: TWIN_NAMES.controlBucket,
    [HANDLER_ENV.ledgerTable]: TWIN_NAMES.ledgerTable,
    [HANDLER_ENV.glueJobName]: TWIN_NAMES.glueJob,
  };
}

/** What `ingest local env` prints: the SDK environment plus the bucket's name. */
export function shellEnv(endpoints: TwinEndpoints, bucket: string = TWIN_NAMES.bucket): Record<string, string> {
  return { ...sdkEnv(endpoints), INGEST_BUCKET: bucket };
}

export function exportLines(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `export ${k}=${v}`)
    .join("\n");
}
