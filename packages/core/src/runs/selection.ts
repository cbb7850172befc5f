/**
 * Which pending uploads go into the next run. Pure.
 *  - Fresh uploads go together, oldest first, up to the manifest caps (files and bytes; at least one file).
 *  - Uploads of a failed run are retried apart from fresh ones, in groups of at most half the failed run's size,
 *    so a file that breaks its run is isolated in log2(n) steps and the others get through.
 */
import type { RunSettings } from "../config/pipeline.js";
import type { UploadRecord } from "../ledger/types.js";

export function selectRunUploads(
  pendingOldestFirst: readonly UploadRecord[],
  caps: Pick<RunSettings, "maxFilesPerRun" | "maxBytesPerRun">,
): UploadRecord[] {
  const head = pendingOldestFirst[0];
  if (!head) return [];
  const retrying = head.retryGroupSize !== null;
  const maxFiles = Math.min(caps.maxFilesPerRun, head.retryGroupSize ?? caps.maxFilesPerRun);
  const chosen: UploadRecord[] = [];
  let bytes = 0;
  for (const u of pendingOldestFirst) {
    if ((u.retryGroupSize !== null) !== retrying) continue;
    if (chosen.length >= maxFiles) break;
    if (chosen.length > 0 && bytes + u.size > caps.maxBytesPerRun) break;
    chosen.push(u);
    bytes += u.size;
  }
  return chosen;
}
