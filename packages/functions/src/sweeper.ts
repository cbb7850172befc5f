/** The sweeper (scheduled): repairs lost state-change events, lost starts, stale slots and stranded uploads. */
import { type SweepReport, sweep } from "@ingest/core";
import type { Context } from "aws-lambda";
import { logger, metrics, runtime } from "./runtime.js";

export async function handler(_event?: unknown, context?: Context): Promise<SweepReport> {
  if (context) logger.addContext(context);
  const { deps, config } = runtime();
  try {
    const report = await sweep(deps, config);
    logger.info("sweep done", { ...report });
    return report;
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
