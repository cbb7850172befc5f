/**
 * The crash lease: a queue consumer (the batcher, the recorder) that dies mid-invocation — killed at its timeout,
 * out of memory, its runtime gone — cannot report anything, so SQS shows its whole batch again only when the
 * queue's visibility timeout ends: 420 s in prod (AWS asks for at least 6 × the function timeout + the batching
 * window, to cover Lambda's own retries of a throttled invocation before the function runs). Once the function IS
 * running, it knows better: it cannot live past its remaining time. So its first step leases its messages for just
 * that long plus a margin (ChangeMessageVisibility from now); a crash brings the batch back when the lease ends, a
 * minute and a half later instead of seven.
 *
 * The lease doubles with each receive (`ApproximateReceiveCount`), up to the queue's visibility: a batch that
 * crashes every time still reaches its DLQ after about the same number of minutes as before (prod ingest: 90 +
 * 180 + 360 + 420 + 420 s, ~25 min + windows, instead of 5 × 420 s). Records the function REPORTS failed (and a
 * whole batch it fails by throwing) are given the queue's full visibility back, from the moment they failed: a
 * failure that is reported keeps exactly its old retry cadence and DLQ horizon.
 *
 * Everything here is best effort and never throws: a refused or failed visibility call is logged, and that message
 * simply keeps the visibility it had (the queue's), as if there were no lease. Nothing is lost either way — a
 * message redelivered while its first invocation still runs is a duplicate event, which the ledger records once.
 */
import type { Log } from "../ledger/ports.js";

/** One message's new visibility timeout, counted from the moment SQS applies it. */
export interface VisibilityChange {
  readonly id: string;
  readonly receiptHandle: string;
  readonly seconds: number;
}

/** The port: ChangeMessageVisibilityBatch on the consumer's own queue (≤ 10 changes per call). */
export interface MessageVisibility {
  /** Applies the changes; returns the ids SQS refused (the rest were applied). Throws when the call itself failed. */
  change(changes: readonly VisibilityChange[]): Promise<readonly string[]>;
}

/** A message as the event source mapping delivered it. */
export interface DeliveredMessage {
  readonly messageId: string;
  readonly receiptHandle: string;
  /** `attributes.ApproximateReceiveCount` as delivered (a string); anything unreadable counts as the first receive. */
  readonly receiveCount: string | number | undefined;
}

export interface LeaseSettings {
  /** The queue's visibility timeout: the longest a lease can be (a lease never lengthens a message's wait). */
  readonly visibilityTimeoutSeconds: number;
  /** Added to the invocation's remaining time: Lambda deletes acknowledged messages after the function returns. */
  readonly marginSeconds: number;
}

/** SQS takes at most 10 entries per ChangeMessageVisibilityBatch. */
export const VISIBILITY_BATCH = 10;
/** Calls in flight at once (a full batch of 4,000 records is 400 calls). */
export const VISIBILITY_CONCURRENCY = 8;

/** The prod ingest queue's lease: 60 s timeout + 30 s margin = 90 s on the first receive. */
export const CRASH_LEASE_MARGIN_SECONDS = 30;
/**
 * No visibility call is started with less of the invocation left than this (the adapter abandons a call after 3 s):
 * a slow SQS must not keep the function past its timeout, which would fail the whole batch.
 */
export const VISIBILITY_MIN_TIME_LEFT_MS = 5_000;

export function parseReceiveCount(raw: string | number | undefined): number {
  const n = typeof raw === "number" ? raw : Number.parseInt(String(raw ?? ""), 10);
  return Number.isSafeInteger(n) && n >= 1 ? n : 1;
}

/**
 * The lease for a message on its n-th receive, or null when it would not be shorter than the queue's visibility
 * (then nothing is sent): (remaining time + margin) × 2^(n−1), rounded up to whole seconds.
 */
export function crashLeaseSeconds(receiveCount: number, remainingMs: number, settings: LeaseSettings): number | null {
  const n = Math.max(1, Math.min(32, Math.floor(receiveCount)));
  const base = Math.ceil(Math.max(0, remainingMs) / 1000) + settings.marginSeconds;
  const lease = base * 2 ** (n - 1);
  return lease < settings.visibilityTimeoutSeconds ? lease : null;
}

/** Sets the changes, ≤ 10 per call, a few calls at a time; returns the ids applied. Never throws. */
export async function changeVisibility(
  port: MessageVisibility,
  log: Log,
  changes: readonly VisibilityChange[],
  purpose: string,
  timeLeftMs: () => number = () => Number.POSITIVE_INFINITY,
): Promise<Set<string>> {
  const chunks: VisibilityChange[][] = [];
  for (let i = 0; i < changes.length; i += VISIBILITY_BATCH) chunks.push(changes.slice(i, i + VISIBILITY_BATCH));
  const applied = new Set<string>();
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      if (timeLeftMs() < VISIBILITY_MIN_TIME_LEFT_MS) {
        const left = chunks.slice(next).flat();
        next = chunks.length;
        log.warn(`${purpose}: too little time left; those messages keep the visibility they had`, {
          messageIds: left.map((c) => c.id),
        });
        return;
      }
      const chunk = chunks[next++] as VisibilityChange[];
      try {
        const refused = new Set(await port.change(chunk));
        for (const c of chunk) if (!refused.has(c.id)) applied.add(c.id);
        if (refused.size > 0) log.warn(`${purpose}: SQS refused some visibility changes`, { messageIds: [...refused] });
      } catch (error) {
        log.warn(`${purpose}: visibility change failed; those messages keep the visibility they had`, {
          messageIds: chunk.map((c) => c.id),
          error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(VISIBILITY_CONCURRENCY, chunks.length) }, worker));
  return applied;
}

export interface CrashLease {
  /** Resolves (never rejects) with the ids whose lease SQS applied. */
  readonly leased: Promise<ReadonlySet<string>>;
  /**
   * The last step when records failed (reported, or the whole batch when the handler throws): once the lease calls
   * are done, every leased one among them gets the queue's whole visibility back, from now — a reported failure
   * waits as long as it did before there was a lease. Never throws.
   */
  giveBack(failedIds: Iterable<string>): Promise<void>;
}

/**
 * The first step of a consumer invocation: lease every message for its crash lease (the calls run while the
 * handler works; `leased` tells when they are done). Messages without a receipt handle, or whose lease would not be
 * shorter than the queue's visibility, are left alone.
 */
export function startCrashLease(
  port: MessageVisibility,
  log: Log,
  messages: readonly DeliveredMessage[],
  /** The invocation's remaining time (Lambda's `context.getRemainingTimeInMillis`). */
  timeLeftMs: () => number,
  settings: LeaseSettings,
): CrashLease {
  const remainingMs = timeLeftMs();
  const byId = new Map<string, DeliveredMessage>();
  const changes: VisibilityChange[] = [];
  for (const m of messages) {
    if (!m.receiptHandle) continue;
    const seconds = crashLeaseSeconds(parseReceiveCount(m.receiveCount), remainingMs, settings);
    if (seconds === null) continue;
    byId.set(m.messageId, m);
    changes.push({ id: m.messageId, receiptHandle: m.receiptHandle, seconds });
  }
  const leased: Promise<ReadonlySet<string>> =
    changes.length === 0
      ? Promise.resolve(new Set<string>())
      : changeVisibility(port, log, changes, "crash lease", timeLeftMs);
  return {
    leased,
    async giveBack(failedIds) {
      const done = await leased;
      const back: VisibilityChange[] = [];
      for (const id of new Set(failedIds)) {
        const m = byId.get(id);
        if (m && done.has(id)) {
          back.push({ id, receiptHandle: m.receiptHandle, seconds: settings.visibilityTimeoutSeconds });
        }
      }
      if (back.length > 0)
        await changeVisibility(port, log, back, "failed records back to the queue's visibility", timeLeftMs);
    },
  };
}
