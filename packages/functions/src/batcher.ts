/**
 * The batching Lambda (ingest queue → ledger → at most one Glue run). The batch is handled as a whole — its
 * uploads are recorded, then one run start is tried for all of them — and failures are reported per record
 * (ReportBatchItemFailures), so SQS redelivers exactly the messages whose upload is not safely recorded or whose
 * run could not be started. It never waits on Glue.
 */
import { handleUploadBatch } from "@ingest/core";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { logger, metrics, runtime } from "./runtime.js";

export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  if (context) logger.addContext(context);
  const { deps, config } = runtime();
  try {
    const result = await handleUploadBatch(
      deps,
      config,
      event.Records.map((r) => ({ messageId: r.messageId, body: r.body })),
    );
    logger.info("batch handled", {
      records: event.Records.length,
      recorded: result.recorded,
      duplicates: result.duplicates,
      ignored: result.ignored,
      failed: result.failedMessageIds.length,
      run: result.run,
    });
    return { batchItemFailures: result.failedMessageIds.map((itemIdentifier) => ({ itemIdentifier })) };
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
