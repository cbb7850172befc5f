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
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoLedger, GlueJobs, S3Objects, SqsMessageVisibility } from "@ingest/adapters";
import {
  type CrashLease,
  type Deps,
  HANDLER_ENV,
  type Log,
  leaseSettingsOf,
  type MessageVisibility,
  newRunKey,
  noChanges,
  OBSERVABILITY,
  type PipelineConfig,
  pipelineConfig,
  type ReconcilerSources,
  startCrashLease,
} from "@ingest/core";
import type { Context, SQSEvent } from "aws-lambda";

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
  /** The consumer's own queue (SOURCE_QUEUE_URL), for its crash lease; null when the function reads no queue. */
  readonly visibility: MessageVisibility | null;
  /** The twin's override of the source queue's visibility timeout (its tests shorten it); null on AWS. */
  readonly sourceVisibilitySeconds: number | null;
}

/**
 * Off AWS only (the local twin runs every function in one process): the function calling now, with its own fake
 * credentials, so each function gets its own clients signed as itself, as each Lambda has its own role (the twin's
 * call record tells them apart by access key). On AWS nothing sets it: one runtime, the role's credentials.
 */
export interface FunctionCaller {
  readonly name: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** The queue this function consumes (one process serves every function, so one SOURCE_QUEUE_URL cannot). */
  readonly sourceQueue?: { readonly url: string; readonly visibilityTimeoutSeconds: number };
}
export const functionCaller = new AsyncLocalStorage<FunctionCaller>();

const cache = new Map<string, Runtime>();

export function runtime(): Runtime {
  const caller = functionCaller.getStore();
  const hit = cache.get(caller?.name ?? "");
  if (hit) return hit;
  const cached = build(caller?.credentials, caller?.sourceQueue);
  cache.set(caller?.name ?? "", cached);
  return cached;
}

function build(caller: FunctionCaller["credentials"] | undefined, sourceQueue: FunctionCaller["sourceQueue"]): Runtime {
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
  const queueUrl = sourceQueue?.url ?? process.env[HANDLER_ENV.sourceQueueUrl];
  // The configured endpoint, not the queue URL's host: on AWS the queue is in the function's own region; in the twin
  // the call must go through the fault layer's proxy (AWS_ENDPOINT_URL), not straight to moto.
  const visibility = queueUrl
    ? new SqsMessageVisibility(new SQSClient({ ...creds, useQueueUrlAsEndpoint: false }), queueUrl)
    : null;
  return {
    deps,
    config,
    jobName,
    reconcilerSources: { lister: objects, positions: ledger },
    visibility,
    sourceVisibilitySeconds: sourceQueue?.visibilityTimeoutSeconds ?? null,
  };
}

const NO_LEASE: CrashLease = {
  leased: Promise.resolve(noChanges()),
  giveBack: async () => undefined,
  sendBack: async () => false,
};

/**
 * A consumer's first step: its crash lease (core `queue/lease.ts`) on the messages of this invocation — a crash
 * brings them back when the lease ends instead of after the queue's whole visibility timeout. Without a source
 * queue (SOURCE_QUEUE_URL unset) it does nothing and says so once.
 */
export function crashLease(
  event: SQSEvent,
  context: Context | undefined,
  queue: {
    readonly visibilityTimeoutSeconds: number;
    readonly batchingWindowSeconds: number;
    readonly timeoutSeconds: number;
  },
): CrashLease {
  const rt = runtime();
  if (!rt.visibility) {
    if (!warnedNoQueue) logger.warn(`${HANDLER_ENV.sourceQueueUrl} is not set: no crash lease`);
    warnedNoQueue = true;
    return NO_LEASE;
  }
  const deadline = Date.now() + queue.timeoutSeconds * 1000;
  const timeLeftMs = context ? () => context.getRemainingTimeInMillis() : () => deadline - Date.now();
  return startCrashLease(
    rt.visibility,
    log,
    event.Records.map((r) => ({
      messageId: r.messageId,
      receiptHandle: r.receiptHandle,
      receiveCount: r.attributes?.ApproximateReceiveCount,
    })),
    timeLeftMs,
    leaseSettingsOf({
      visibilityTimeoutSeconds: rt.sourceVisibilitySeconds ?? queue.visibilityTimeoutSeconds,
      batchingWindowSeconds: queue.batchingWindowSeconds,
    }),
  );
}
let warnedNoQueue = false;

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
