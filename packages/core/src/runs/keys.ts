import { randomBytes } from "node:crypto";

/** A run key: sortable by start time, unique without coordination. 20260401T100000Z-1a2b3c4d */
export function newRunKey(now: Date): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "")}-${randomBytes(4).toString("hex")}`;
}

/** A token unique to one settler's attempt (see RunRecord.closedBy). */
export function settlerToken(): string {
  return randomBytes(8).toString("hex");
}
