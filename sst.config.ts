/// <reference path="./.sst/platform/config.d.ts" />

export default $config({
  app(input) {
    return {
      name: "csv-ingest",
      removal: input?.stage === "prod" ? "retain" : "remove",
      protect: input?.stage === "prod",
      home: "aws",
    };
  },
  async run() {
    const { pipelineConfig } = await import("./packages/core/src/config/pipeline");
    const { accountContext } = await import("./infra/shared");
    const { createStorage } = await import("./infra/storage");
    const { createLedger } = await import("./infra/ledger");
    const { createGlueJob } = await import("./infra/glue");
    const { createIngest } = await import("./infra/ingest");
    const { createCompletion } = await import("./infra/completion");
    const { createAlarms } = await import("./infra/alarms");
    const { createCatalog } = await import("./infra/catalog");
    const { createReconciler } = await import("./infra/reconciler");

    const config = pipelineConfig($app.stage);
    const account = accountContext();
    const { bucket, controlBucket, glueAssets, uploaderPolicy } = createStorage(config, account);
    const { table, pendingIndexArn } = createLedger(config);
    const { job } = createGlueJob(config, account, { bucket, controlBucket, glueAssets });
    const ingest = createIngest(config, account, { bucket, controlBucket, table, pendingIndexArn, job });
    const completion = createCompletion(config, account, { bucket, controlBucket, table, pendingIndexArn, job });
    const { reconciler } = createReconciler(config, account, { bucket, controlBucket, table, pendingIndexArn, job });
    createAlarms({
      dlqs: {
        IngestDlq: ingest.dlq,
        RecorderDlq: completion.dlq,
        ObjectCreatedEventsDlq: ingest.eventsDlq,
        GlueRunEndedEventsDlq: completion.eventsDlq,
      },
      rules: { ObjectCreatedRule: ingest.rule, GlueRunEndedRule: completion.rule },
      ingestQueue: { queue: ingest.queue, oldestMessageSeconds: config.alarms.ingestOldestMessageSeconds },
      scheduled: {
        Sweeper: { cron: completion.sweeper, intervalMinutes: config.runs.sweepIntervalMinutes },
        Reconciler: { cron: reconciler, intervalMinutes: config.reconciler.intervalMinutes },
      },
    });
    const catalog = createCatalog({ bucket });

    return {
      stage: $app.stage,
      bucketName: bucket.name,
      controlBucketName: controlBucket.name,
      // Attach to whoever uploads: PutObject under input/ of the data bucket, nothing else.
      uploaderPolicyArn: uploaderPolicy.arn,
      ingestQueueUrl: ingest.queue.url,
      ingestDlqUrl: ingest.dlq.url,
      recorderQueueUrl: completion.queue.url,
      recorderDlqUrl: completion.dlq.url,
      objectCreatedEventsDlqUrl: ingest.eventsDlq.url,
      glueRunEndedEventsDlqUrl: completion.eventsDlq.url,
      glueJobName: job.name,
      ledgerTableName: table.name,
      catalogDatabaseName: catalog.database.name,
    };
  },
});
