/**
 * Runs out: the "Glue Job State Change" rule for this job's terminal states → the recorder queue (+ DLQ) → the
 * recorder Lambda, which settles the run's uploads, frees the run slot and starts the next run. Plus the sweeper,
 * on a schedule, for lost events and stuck state.
 *
 * A queue between the rule and the recorder (not a Lambda target): retries with a visibility timeout, a DLQ to
 * inspect, partial batch failures, and the twin routes the event the same way (its emulator cannot target Lambdas).
 */
import { glueRunEndedPattern, INPUT_PREFIX, MANIFEST_PREFIX, STATS_PREFIX } from "../packages/core/src/config/pipeline";
import { glueJobArn, handlerFunction, handlerTargets, ledgerAccess } from "./functions";
import { batchSubscription, queueWithDlq, ruleTarget } from "./queues";
import {
  type AccountContext,
  listBucketUnder,
  objectArns,
  type Permission,
  type PipelineConfig,
  type PipelineResources,
} from "./shared";

export function createCompletion(config: PipelineConfig, account: AccountContext, inputs: PipelineResources) {
  const { bucket, controlBucket, table, pendingIndexArn, job } = inputs;
  const targets = handlerTargets(inputs);
  // The recorder and the sweeper do the same things: settle runs from their stats and start the next run.
  const permissions = (glueActions: string[], ledger: { queryTable?: boolean } = {}): Permission[] => [
    { actions: ["s3:GetObject"], resources: objectArns(controlBucket.arn, [MANIFEST_PREFIX]) },
    // Stats of the ended run; HeadObject of an upload when several versions of its key are pending (S3 says which
    // one is current) or when the sweeper settles one left running.
    { actions: ["s3:GetObject"], resources: objectArns(bucket.arn, [STATS_PREFIX, INPUT_PREFIX]) },
    // A run that failed writes no stats, a deleted upload has no head: ListBucket makes those a 404, not a 403.
    listBucketUnder(controlBucket.arn, [MANIFEST_PREFIX]),
    listBucketUnder(bucket.arn, [STATS_PREFIX, INPUT_PREFIX]),
    { actions: ["s3:PutObject"], resources: objectArns(controlBucket.arn, [MANIFEST_PREFIX]) },
    ...ledgerAccess(table.arn, pendingIndexArn, ledger),
    { actions: glueActions, resources: [glueJobArn(account, job.name)] },
  ];

  const { dlq, queue } = queueWithDlq("Recorder", config, config.recorder.visibilityTimeoutSeconds);
  const rule = new aws.cloudwatch.EventRule("GlueRunEndedRule", {
    description: "Terminal states of the ingest Glue job's runs",
    eventPattern: job.name.apply((name) => JSON.stringify(glueRunEndedPattern(name))),
  });
  const { dlq: eventsDlq } = ruleTarget("GlueRunEndedTarget", config, rule, queue, "RecorderQueuePolicy");

  const recorder = queue.subscribe(
    handlerFunction(config, account, targets, {
      name: "recorder",
      timeoutSeconds: config.recorder.timeoutSeconds,
      sourceQueue: { url: queue.url, arn: queue.arn },
      // GetJobRun: an ended run whose start answer was lost is identified by its --run_key argument, and every ended
      // run's capacity and time are read for the ledger's cost figures; GetJobRuns: a next run whose start answer is
      // lost is looked for before it is undone.
      // BatchStopJobRun: a Glue run whose start the ledger had already given up is stopped.
      permissions: permissions(["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"]),
    }),
    batchSubscription(config.recorder),
  );

  const minutes = config.runs.sweepIntervalMinutes;
  const sweeper = new sst.aws.Cron("Sweeper", {
    schedule: minutes === 1 ? "rate(1 minute)" : `rate(${minutes} minutes)`,
    function: handlerFunction(config, account, targets, {
      name: "sweeper",
      timeoutSeconds: config.sweeper.timeoutSeconds,
      // GetJobRun: a run whose end event was lost, and the capacity and time of a run closed without them (its cost).
      permissions: permissions(["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"], {
        queryTable: true,
      }),
    }),
  });

  return { queue, dlq, rule, recorder, sweeper, eventsDlq };
}
