/**
 * The completion recorder (Glue Job State Change → rule → recorder queue → here). Each record is one run's end;
 * a record that fails is returned to the queue (retries, then its DLQ), the others are acknowledged.
 */
import { messageOf, parseRunEnded, recordRunEnd } from "@ingest/core";
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { logger, metrics, runtime } from "./runtime.js";

export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  if (context) logger.addContext(context);
  const { deps, config, jobName } = runtime();
  const batchItemFailures: SQSBatchItemFailure[] = [];
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
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
  return { batchItemFailures };
}
