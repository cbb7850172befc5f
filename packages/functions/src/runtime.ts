/**
 * The edge: the only place that reads the environment and builds AWS clients. Handlers call `runtime()` once per
 * invocation; the clients are made on first use, so the twin can set the environment before the first call.
 * Endpoints come from the SDK's own settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_GLUE), which the twin sets.
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { GlueClient } from "@aws-sdk/client-glue";
import { S3Client } from "@aws-sdk/client-s3";
import { DynamoLedger, GlueJobs, S3Objects } from "@ingest/adapters";
import {
  type Deps,
  HANDLER_ENV,
  type Log,
  newRunKey,
  OBSERVABILITY,
  type PipelineConfig,
  pipelineConfig,
  type ReconcilerSources,
} from "@ingest/core";

export const logger = new Logger({ serviceName: OBSERVABILITY.service });
export const metrics = new Metrics({ namespace: OBSERVABILITY.metricsNamespace, serviceName: OBSERVABILITY.service });

export class ConfigError extends Error {
  override name = "ConfigError";
}

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new ConfigError(`environment variable ${name} is not set`);
  return v;
}

const log: Log = {
  info: (message, fields) => logger.info(message, fields ?? {}),
  warn: (message, fields) => logger.warn(message, fields ?? {}),
  error: (message, fields) => logger.error(message, fields ?? {}),
};

export interface Runtime {
  readonly deps: Deps;
  readonly config: PipelineConfig;
  readonly jobName: string;
  /** The reconciler's listing and position (the same S3 and DynamoDB clients as `deps`). */
  readonly reconcilerSources: ReconcilerSources;
}

/**
 * Off AWS only (the local twin runs every function in one process): the function calling now, with its own fake
 * credentials, so each function gets its own clients signed as itself, as each Lambda has its own role (the twin's
 * call record tells them apart by access key). On AWS nothing sets it: one runtime, the role's credentials.
 */
export interface FunctionCaller {
  readonly name: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
}
export const functionCaller = new AsyncLocalStorage<FunctionCaller>();

const cache = new Map<string, Runtime>();

export function runtime(): Runtime {
  const caller = functionCaller.getStore();
  const hit = cache.get(caller?.name ?? "");
  if (hit) return hit;
  const cached = build(caller?.credentials);
  cache.set(caller?.name ?? "", cached);
  return cached;
}

function build(caller: FunctionCaller["credentials"] | undefined): Runtime {
  const creds = caller ? { credentials: { ...caller } } : {};
  const bucket = env(HANDLER_ENV.dataBucket);
  const jobName = env(HANDLER_ENV.glueJobName);
  const config = withLimits(pipelineConfig(env(HANDLER_ENV.stage)));
  const ledger = new DynamoLedger({
    client: new DynamoDBClient({ ...creds }),
    tableName: env(HANDLER_ENV.ledgerTable),
  });
  const objects = new S3Objects(new S3Client({ ...creds, forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL) }));
  const deps: Deps = {
    ledger,
    objects,
    // StartJobRun without SDK retries: GlueJobs retries it itself, with a lookup by run key in between (no SDK retry
    // may hide that a first try whose answer was lost did start the run).
    glue: new GlueJobs(new GlueClient({ ...creds }), jobName, {
      startClient: new GlueClient({ ...creds, maxAttempts: 1 }),
    }),
    clock: { now: () => new Date(), sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
    log,
    metrics: { add: (name, value) => metrics.addMetric(name, MetricUnit.Count, value) },
    newRunKey,
    bucket,
    ...(process.env[HANDLER_ENV.controlBucket] ? { controlBucket: env(HANDLER_ENV.controlBucket) } : {}),
  };
  return { deps, config, jobName, reconcilerSources: { lister: objects, positions: ledger } };
}

/** The stage's config with the per-file cap from the environment, when it is set (the twin's tests use a small one). */
function withLimits(config: PipelineConfig): PipelineConfig {
  const raw = process.env[HANDLER_ENV.maxFileBytes];
  if (raw === undefined || raw === "") return config;
  const maxFileBytes = Number(raw);
  if (!Number.isSafeInteger(maxFileBytes) || maxFileBytes <= 0) {
    throw new ConfigError(`${HANDLER_ENV.maxFileBytes} must be a positive whole number of bytes, not ${raw}`);
  }
  return { ...config, limits: { ...config.limits, maxFileBytes } };
}

/** For tests and the twin: forget the cached clients (e.g. after changing the environment). */
export function resetRuntime(): void {
  cache.clear();
}
