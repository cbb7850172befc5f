/**
 * Uploads in: the Object Created rule (pattern from the config module) → the ingest queue (+ DLQ) → the batching
 * Lambda, which records uploads in the ledger and starts at most one Glue run.
 */
import { INPUT_PREFIX, MANIFEST_PREFIX, objectCreatedPattern } from "../packages/core/src/config/pipeline";
import { glueJobArn, type HandlerTargets, handlerFunction, ledgerAccess } from "./functions";
import { allowRuleToSend, queueWithDlq } from "./queues";
import { type AccountContext, listBucketUnder, objectArns, type PipelineConfig } from "./shared";

export interface IngestInputs {
  readonly bucket: sst.aws.Bucket;
  readonly table: aws.dynamodb.Table;
  readonly pendingIndexArn: $util.Output<string>;
  readonly job: aws.glue.Job;
}

export function createIngest(config: PipelineConfig, account: AccountContext, inputs: IngestInputs) {
  const { bucket, table, pendingIndexArn, job } = inputs;
  const { dlq, queue } = queueWithDlq("Ingest", config, config.queue.visibilityTimeoutSeconds);

  const rule = new aws.cloudwatch.EventRule("ObjectCreatedRule", {
    description: "Uploads under the input prefix of the data bucket",
    eventPattern: bucket.name.apply((name) => JSON.stringify(objectCreatedPattern(name))),
  });
  new aws.cloudwatch.EventTarget("ObjectCreatedTarget", { rule: rule.name, arn: queue.arn });
  allowRuleToSend("IngestQueuePolicy", queue, rule);

  const targets: HandlerTargets = { bucketName: bucket.name, tableName: table.name, glueJobName: job.name };
  const subscriber = queue.subscribe(
    handlerFunction(config, account, targets, {
      name: "batcher",
      timeoutSeconds: config.queue.consumerTimeoutSeconds,
      permissions: [
        // HeadObject of the upload (authorised as GetObject); ListBucket so a deleted upload is a clean 404.
        { actions: ["s3:GetObject"], resources: objectArns(bucket.arn, [INPUT_PREFIX]) },
        listBucketUnder(bucket.arn, [INPUT_PREFIX]),
        { actions: ["s3:PutObject"], resources: objectArns(bucket.arn, [MANIFEST_PREFIX]) },
        ledgerAccess(table.arn, pendingIndexArn),
        { actions: ["glue:StartJobRun", "glue:GetJobRuns"], resources: [glueJobArn(account, job.name)] },
      ],
    }),
    {
      batch: {
        size: config.queue.batchSize,
        window: `${config.queue.batchingWindowSeconds} seconds`,
        // SST's default is false: without it a returned batchItemFailures list is ignored.
        partialResponses: true,
      },
      transform: {
        eventSourceMapping: (args) => {
          args.scalingConfig = { maximumConcurrency: config.queue.maximumConcurrency };
        },
      },
    },
  );
  return { queue, dlq, rule, subscriber };
}
