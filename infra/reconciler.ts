/**
 * The reconciler, on a schedule: lists `input/` a bounded slice at a time and records the uploads the ledger lacks
 * (lost S3 events), then starts a run the way the batcher does. Its role: list and head `input/` only, write
 * manifests (a run start), the ledger, and start runs of this job.
 */
import { INPUT_PREFIX, MANIFEST_PREFIX } from "../packages/core/src/config/pipeline";
import { glueJobArn, handlerFunction, handlerTargets, ledgerAccess } from "./functions";
import {
  type AccountContext,
  listBucketUnder,
  objectArns,
  type PipelineConfig,
  type PipelineResources,
} from "./shared";

export function createReconciler(config: PipelineConfig, account: AccountContext, inputs: PipelineResources) {
  const { bucket, controlBucket, table, pendingIndexArn, job } = inputs;
  const targets = handlerTargets(inputs);
  const minutes = config.reconciler.intervalMinutes;
  const reconciler = new sst.aws.Cron("Reconciler", {
    schedule: minutes === 1 ? "rate(1 minute)" : `rate(${minutes} minutes)`,
    function: handlerFunction(config, account, targets, {
      name: "reconciler",
      timeoutSeconds: config.reconciler.timeoutSeconds,
      permissions: [
        // ListObjectsV2 under input/ only (the s3:prefix condition), and HeadObject (authorised as GetObject).
        listBucketUnder(bucket.arn, [INPUT_PREFIX]),
        { actions: ["s3:GetObject"], resources: objectArns(bucket.arn, [INPUT_PREFIX]) },
        // Starting a run: the manifest (read too, to undo a start revoked as stale), the ledger, StartJobRun (and
        // GetJobRuns to find a run by its run key, BatchStopJobRun to stop a run whose start was given up).
        { actions: ["s3:PutObject", "s3:GetObject"], resources: objectArns(controlBucket.arn, [MANIFEST_PREFIX]) },
        listBucketUnder(controlBucket.arn, [MANIFEST_PREFIX]),
        // Query on the table too: the key's known versions, as the batcher does.
        ...ledgerAccess(table.arn, pendingIndexArn, { queryTable: true }),
        {
          actions: ["glue:StartJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"],
          resources: [glueJobArn(account, job.name)],
        },
      ],
    }),
  });
  return { reconciler };
}
