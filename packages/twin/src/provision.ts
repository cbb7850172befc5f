/**
 * Creates the twin's AWS side on the emulator from the config module: the data bucket (versioned, as prod's) with EventBridge
 * notifications, the "Object Created" rule (same pattern object as infra) → ingest queue (+ DLQ, same redrive),
 * the "Glue Job State Change" rule → recorder queue (+ DLQ), the ledger table, and the Data Catalog database and
 * tables over the job's outputs (the same definition infra/catalog.ts creates on AWS).
 */
import { CreateTableCommand, DynamoDBClient, waitUntilTableExists } from "@aws-sdk/client-dynamodb";
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from "@aws-sdk/client-eventbridge";
import { CreateDatabaseCommand, CreateTableCommand as CreateGlueTableCommand, GlueClient } from "@aws-sdk/client-glue";
import {
  CreateBucketCommand,
  PutBucketNotificationConfigurationCommand,
  PutBucketVersioningCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { ledgerTableInput } from "@ingest/adapters";
import {
  CATALOG_DATABASE_DESCRIPTION,
  CATALOG_TABLES,
  catalogTableInput,
  glueRunEndedPattern,
  objectCreatedPattern,
  type PipelineConfig,
} from "@ingest/core";
import { clientConfig } from "./aws.js";
import { TWIN_NAMES } from "./constants.js";

export interface QueueRef {
  readonly url: string;
  readonly arn: string;
}

export interface Provisioned {
  readonly ingest: QueueRef;
  readonly ingestDlq: QueueRef;
  readonly recorder: QueueRef;
  readonly recorderDlq: QueueRef;
  /** Only with `relayS3Events`: the queue the "Object Created" rule targets instead of the ingest queue. */
  readonly s3Events?: QueueRef;
}

export interface ProvisionOptions {
  readonly endpoint: string;
  readonly config: PipelineConfig;
  /** Test-only: a shorter visibility timeout for the ingest and recorder queues (default: the config's). */
  readonly queueVisibilityTimeoutSeconds?: number | undefined;
  /**
   * The fault layer's S3-event faults: the rule (same pattern) targets a relay queue, and the twin's relay moves each
   * event on to the ingest queue late, twice, out of order or never (src/faults/s3-events.ts).
   */
  readonly relayS3Events?: boolean | undefined;
  /** Versioning on the data bucket, as prod has it (infra/storage.ts); default true. */
  readonly versionedBucket?: boolean | undefined;
}

async function createQueue(sqs: SQSClient, name: string, attributes: Record<string, string>): Promise<QueueRef> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  if (!QueueUrl) throw new Error(`CreateQueue ${name} returned no URL`);
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["QueueArn"] }));
  const arn = Attributes?.QueueArn;
  if (!arn) throw new Error(`queue ${name} has no ARN`);
  return { url: QueueUrl, arn };
}

function redrive(dlq: QueueRef, maxReceiveCount: number): string {
  return JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount });
}

/** The catalog database and its tables on the emulator's Glue Data Catalog, as infra/catalog.ts creates them. */
export async function provisionCatalog(endpoint: string, database: string, bucket: string): Promise<void> {
  const glue = new GlueClient(clientConfig(endpoint));
  try {
    await glue.send(
      new CreateDatabaseCommand({ DatabaseInput: { Name: database, Description: CATALOG_DATABASE_DESCRIPTION } }),
    );
    for (const t of CATALOG_TABLES) {
      await glue.send(new CreateGlueTableCommand({ DatabaseName: database, TableInput: catalogTableInput(t, bucket) }));
    }
  } finally {
    glue.destroy();
  }
}

export async function provision(opts: ProvisionOptions): Promise<Provisioned> {
  const cfg = clientConfig(opts.endpoint);
  const s3 = new S3Client({ ...cfg, forcePathStyle: true });
  const sqs = new SQSClient(cfg);
  const events = new EventBridgeClient(cfg);
  const dynamo = new DynamoDBClient(cfg);
  const { queue, recorder } = opts.config;
  try {
    await s3.send(new CreateBucketCommand({ Bucket: TWIN_NAMES.bucket }));
    await s3.send(new CreateBucketCommand({ Bucket: TWIN_NAMES.controlBucket }));
    if (opts.versionedBucket ?? true) {
      await s3.send(
        new PutBucketVersioningCommand({ Bucket: TWIN_NAMES.bucket, VersioningConfiguration: { Status: "Enabled" } }),
      );
    }
    await s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: TWIN_NAMES.bucket,
        NotificationConfiguration: { EventBridgeConfiguration: {} },
      }),
    );

    const retention = String(queue.dlqRetentionSeconds);
    const ingestDlq = await createQueue(sqs, TWIN_NAMES.ingestDlq, { MessageRetentionPeriod: retention });
    const ingest = await createQueue(sqs, TWIN_NAMES.ingestQueue, {
      VisibilityTimeout: String(opts.queueVisibilityTimeoutSeconds ?? queue.visibilityTimeoutSeconds),
      RedrivePolicy: redrive(ingestDlq, queue.maxReceiveCount),
    });
    const recorderDlq = await createQueue(sqs, TWIN_NAMES.recorderDlq, { MessageRetentionPeriod: retention });
    const recorderQueue = await createQueue(sqs, TWIN_NAMES.recorderQueue, {
      VisibilityTimeout: String(opts.queueVisibilityTimeoutSeconds ?? recorder.visibilityTimeoutSeconds),
      RedrivePolicy: redrive(recorderDlq, queue.maxReceiveCount),
    });

    await events.send(
      new PutRuleCommand({
        Name: TWIN_NAMES.objectCreatedRule,
        EventPattern: JSON.stringify(objectCreatedPattern(TWIN_NAMES.bucket)),
        State: "ENABLED",
      }),
    );
    const s3Events = opts.relayS3Events ? await createQueue(sqs, TWIN_NAMES.s3EventRelayQueue, {}) : undefined;
    await events.send(
      new PutTargetsCommand({
        Rule: TWIN_NAMES.objectCreatedRule,
        Targets: [{ Id: "ingest", Arn: (s3Events ?? ingest).arn }],
      }),
    );
    await events.send(
      new PutRuleCommand({
        Name: TWIN_NAMES.glueRunEndedRule,
        EventPattern: JSON.stringify(glueRunEndedPattern(TWIN_NAMES.glueJob)),
        State: "ENABLED",
      }),
    );
    await events.send(
      new PutTargetsCommand({
        Rule: TWIN_NAMES.glueRunEndedRule,
        Targets: [{ Id: "recorder", Arn: recorderQueue.arn }],
      }),
    );

    await dynamo.send(new CreateTableCommand(ledgerTableInput(TWIN_NAMES.ledgerTable)));
    await waitUntilTableExists({ client: dynamo, maxWaitTime: 30 }, { TableName: TWIN_NAMES.ledgerTable });
    await provisionCatalog(opts.endpoint, TWIN_NAMES.catalogDatabase, TWIN_NAMES.bucket);
    return { ingest, ingestDlq, recorder: recorderQueue, recorderDlq, ...(s3Events ? { s3Events } : {}) };
  } finally {
    s3.destroy();
    sqs.destroy();
    events.destroy();
    dynamo.destroy();
  }
}
