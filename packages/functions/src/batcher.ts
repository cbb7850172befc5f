/**
 * The batching Lambda (ingest queue → ledger → at most one Glue run). The batch is handled as a whole — its
 * uploads are recorded, then one run start is tried for all of them — and failures are reported per record
 * (ReportBatchItemFailures), so SQS redelivers exactly the messages whose upload is not safely recorded or whose
 * run could not be started. It never waits on Glue. Its first step is the crash lease (core `queue/lease.ts`): if
 * this invocation dies, its batch comes back ~90 s after it began instead of up to the queue's 420 s later.
 */
import { handleUploadBatch, messageToSendBack } from "@ingest/core";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { crashLease, logger, metrics, runtime } from "./runtime.js";

export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  if (context) logger.addContext(context);
  const { deps, config } = runtime();
  const lease = crashLease(event, context, {
    visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
    batchingWindowSeconds: config.queue.batchingWindowSeconds,
    timeoutSeconds: config.queue.consumerTimeoutSeconds,
  });
  try {
    let result: Awaited<ReturnType<typeof handleUploadBatch>>;
    try {
      result = await handleUploadBatch(
        deps,
        config,
        event.Records.map((r) => ({ messageId: r.messageId, body: r.body })),
      );
    } catch (error) {
      // The whole batch fails: given back what is left of the queue's visibility, as a reported failure is.
      await lease.giveBack(event.Records.map((r) => r.messageId));
      throw error;
    }
    logger.info("batch handled", {
      records: event.Records.length,
      recorded: result.recorded,
      duplicates: result.duplicates,
      ignored: result.ignored,
      failed: result.failedMessageIds.length,
      run: result.run,
    });
    await lease.giveBack(result.failedMessageIds);
    const failures = [...result.failedMessageIds];
    if (result.heldBurst) {
      // The burst hold: one message comes back when the hold ends and its batch starts the run, so a burst whose last
      // batch was full does not wait for the sweeper. Reported failed only when SQS took (or may have taken) its new
      // visibility.
      const back = messageToSendBack(
        result.heldBurst.messageIds,
        event.Records.map((r) => ({ messageId: r.messageId, receiveCount: r.attributes?.ApproximateReceiveCount })),
      );
      const sent = back !== null && (await lease.sendBack(back, result.heldBurst.seconds));
      if (back !== null && sent) failures.push(back);
      logger.info("burst held", { sentBack: sent ? back : null, inSeconds: result.heldBurst.seconds });
    }
    return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
