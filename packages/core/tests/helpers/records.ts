import type { RunRecord } from "../../src/ledger/types.js";

/** A run record for tests: a one-file run created at `createdAt`, still starting unless `overrides` say otherwise. */
export function runRecord(runKey: string, createdAt: string, overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    runKey,
    state: "starting",
    glueRunId: null,
    manifestKey: `manifests/${runKey}.json`,
    fileCount: 1,
    bytes: 10,
    createdAt,
    startedAt: null,
    endedAt: null,
    error: null,
    rowsRead: null,
    rowsProcessed: null,
    rowsRejected: null,
    filesProcessed: null,
    filesFailed: null,
    ...overrides,
  };
}
