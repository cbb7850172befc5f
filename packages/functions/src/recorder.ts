/**
 * The completion recorder (Glue Job State Change → rule → recorder queue → here). Each record is one run's end;
 * a record that fails is returned to the queue (retries, then its DLQ), the others are acknowledged. Its first step
 * is the crash lease (core `queue/lease.ts`): if this invocation dies, its run ends come back ~90 s after it began
 * instead of after the queue's 360 s (the run slot stays with an ended run until they do).
 */
import { messageOf, parseRunEnded, recordRunEnd } from "@ingest/core";
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { crashLease, logger, metrics, runtime } from "./runtime.js";

export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  if (context) logger.addContext(context);
  const { deps, config, jobName } = runtime();
  const batchItemFailures: SQSBatchItemFailure[] = [];
  const lease = crashLease(event, context, config.recorder);
  try {
    for (const record of event.Records) {
      const parsed = parseRunEnded(record.body, jobName);
      if (parsed.kind === "ignored") {
        logger.info("message ignored", { messageId: record.messageId, reason: parsed.reason });
        continue;
      }
      try {
        const result = await recordRunEnd(deps, config, parsed.ended);
        logger.info("run end handled", { glueRunId: parsed.ended.glueRunId, state: parsed.ended.state, ...result });
      } catch (error) {
        logger.error("could not record run end", { glueRunId: parsed.ended.glueRunId, error: messageOf(error) });
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }
    await lease.giveBack(batchItemFailures.map((f) => f.itemIdentifier));
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
  return { batchItemFailures };
}
