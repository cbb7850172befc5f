/**
 * The reconciler (scheduled): records uploads under input/ that the ledger lacks (lost S3 events), a bounded slice
 * of the bucket per invocation, and starts a run when it recorded any. A failure throws: the Errors alarm sees it.
 */
import { type ReconcileReport, reconcile } from "@ingest/core";
import type { Context } from "aws-lambda";
import { logger, metrics, runtime } from "./runtime.js";

export async function handler(_event?: unknown, context?: Context): Promise<ReconcileReport> {
  if (context) logger.addContext(context);
  const { deps, config, reconcilerSources } = runtime();
  try {
    const report = await reconcile(deps, config, reconcilerSources);
    logger.info("reconcile done", { ...report });
    return report;
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
