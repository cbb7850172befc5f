/**
 * Uploads in: the Object Created rule (pattern from the config module) → the ingest queue (+ DLQ) → the batching
 * Lambda, which records uploads in the ledger and starts at most one Glue run.
 */
import { INPUT_PREFIX, MANIFEST_PREFIX, objectCreatedPattern } from "../packages/core/src/config/pipeline";
import { glueJobArn, handlerFunction, handlerTargets, ledgerAccess } from "./functions";
import { batchSubscription, queueWithDlq, ruleTarget } from "./queues";
import {
  type AccountContext,
  listBucketUnder,
  objectArns,
  type PipelineConfig,
  type PipelineResources,
} from "./shared";

export function createIngest(config: PipelineConfig, account: AccountContext, inputs: PipelineResources) {
  const { bucket, table, pendingIndexArn, job } = inputs;
  const { dlq, queue } = queueWithDlq("Ingest", config, config.queue.visibilityTimeoutSeconds);

  const rule = new aws.cloudwatch.EventRule("ObjectCreatedRule", {
    description: "Uploads under the input prefix of the data bucket",
    eventPattern: bucket.name.apply((name) => JSON.stringify(objectCreatedPattern(name))),
  });
  const { dlq: eventsDlq } = ruleTarget("ObjectCreatedTarget", config, rule, queue, "IngestQueuePolicy");

  const { controlBucket } = inputs;
  const targets = handlerTargets(inputs);
  const subscriber = queue.subscribe(
    handlerFunction(config, account, targets, {
      name: "batcher",
      timeoutSeconds: config.queue.consumerTimeoutSeconds,
      sourceQueue: { url: queue.url, arn: queue.arn },
      permissions: [
        // HeadObject of the upload (authorised as GetObject); ListBucket so a deleted upload is a clean 404.
        { actions: ["s3:GetObject"], resources: objectArns(bucket.arn, [INPUT_PREFIX]) },
        listBucketUnder(bucket.arn, [INPUT_PREFIX]),
        // Manifests: written by a start; read to undo a start that died before launching (revoked as stale).
        { actions: ["s3:PutObject", "s3:GetObject"], resources: objectArns(controlBucket.arn, [MANIFEST_PREFIX]) },
        listBucketUnder(controlBucket.arn, [MANIFEST_PREFIX]),
        // Query on the table too: a late event for a deleted version is matched against the key's known versions.
        ...ledgerAccess(table.arn, pendingIndexArn, { queryTable: true }),
        // GetJobRuns: a start whose answer was lost is looked for by its --run_key before it is undone;
        // BatchStopJobRun: a Glue run whose start the ledger had already given up is stopped.
        {
          actions: ["glue:StartJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"],
          resources: [glueJobArn(account, job.name)],
        },
      ],
    }),
    batchSubscription(config.queue),
  );
  return { queue, dlq, rule, subscriber, eventsDlq };
}
