/**
 * The crash lease: a queue consumer (the batcher, the recorder) that dies mid-invocation — killed at its timeout,
 * out of memory, its runtime gone — cannot report anything, so SQS shows its whole batch again only when the
 * queue's visibility timeout ends: 420 s in prod (AWS asks for at least 6 × the function timeout + the batching
 * window, to cover Lambda's own retries of a throttled invocation before the function runs). Once the function IS
 * running, it knows better: it cannot live past its remaining time. So its first step leases its messages for just
 * that long plus a margin (ChangeMessageVisibility, counted by SQS from the call); a crash brings the batch back when
 * the lease ends, a minute and a half later instead of seven.
 *
 * Never later than before. SQS counts the queue's visibility from the RECEIVE, and Lambda's poller receives a
 * message up to one batching window before it invokes; a lease counts from the call. So a lease is sent only when it
 * ends before the earliest the queue's own visibility could (visibility − window), and a record the function reports
 * failed — or every record, when it throws — is given back what is left of that (visibility − window − the time
 * since the lease began): it comes back no later than it did before the lease, and at most one window sooner. (A
 * Lambda invoke retried after a throttle can start later than one window after the receive: then a lease can end a
 * little after the queue's visibility would have, by the throttle's delay less the window; the message reappears
 * either way.)
 *
 * The lease doubles with each receive (`ApproximateReceiveCount`) while it stays below that bound: prod ingest 90,
 * 180 s, then the queue's 420 s. A batch that crashes every time reaches its DLQ sooner than before (90 + 180 + 3 ×
 * 420 s + windows, ~26 min instead of ~35); a batch that fails by reporting keeps its cadence to within a window.
 *
 * Everything here is best effort and never throws: a refused or failed visibility call is logged, and that message
 * keeps the visibility it had (unless SQS applied the change before its answer was lost: then it has the lease).
 * The lease calls are meant for the invocation's first seconds: none starts later than 10 s after the lease began
 * or with less than 5 s of the invocation left, so a slow SQS costs an invocation at most ~13 s. Nothing is lost
 * either way — a message redelivered while its first invocation still runs is a duplicate event, which the ledger
 * records once.
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
  /** The queue's visibility timeout, counted by SQS from each receive. */
  readonly visibilityTimeoutSeconds: number;
  /** How long Lambda's poller may hold a received message before invoking (the mapping's batching window). */
  readonly batchingWindowSeconds: number;
  /** Added to the invocation's remaining time: Lambda deletes acknowledged messages after the function returns. */
  readonly marginSeconds: number;
}

/** SQS takes at most 10 entries per ChangeMessageVisibilityBatch. */
export const VISIBILITY_BATCH = 10;
/** Calls in flight at once (a full batch of 4,000 records is 400 calls). */
export const VISIBILITY_CONCURRENCY = 8;
/** The lease's margin: prod's 60 s timeout + 30 s = 90 s on the first receive. */
export const CRASH_LEASE_MARGIN_SECONDS = 30;
/** No visibility call starts with less of the invocation left (the adapter abandons a call after 3 s). */
export const VISIBILITY_MIN_TIME_LEFT_MS = 5_000;
/** No lease call starts later than this after the lease began: it is the invocation's first step, not its work. */
export const LEASE_PHASE_MS = 10_000;

export function parseReceiveCount(raw: string | number | undefined): number {
  const n = Number.parseInt(String(raw ?? ""), 10);
  return Number.isSafeInteger(n) && n > 1 ? n : 1;
}

/** The soonest the queue's own visibility could end after an invocation began: visibility − window. */
function earliestQueueReturnSeconds(settings: LeaseSettings): number {
  return settings.visibilityTimeoutSeconds - settings.batchingWindowSeconds;
}

/**
 * The lease for a message on its n-th receive, or null when it would not end before the earliest the queue's own
 * visibility could (then nothing is sent): (remaining time + margin) × 2^(n−1), rounded up to whole seconds.
 */
export function crashLeaseSeconds(receiveCount: number, remainingMs: number, settings: LeaseSettings): number | null {
  const n = Math.max(1, Math.min(32, Math.floor(receiveCount)));
  const base = Math.ceil(Math.max(0, remainingMs) / 1000) + settings.marginSeconds;
  const lease = base * 2 ** (n - 1);
  return lease < earliestQueueReturnSeconds(settings) ? lease : null;
}

/**
 * What a failed record is given back, `elapsedMs` after its lease began: the rest of visibility − window (≥ 0), so
 * it reappears no later than the queue's visibility would have shown it, and at most one window sooner.
 */
export function giveBackSeconds(elapsedMs: number, settings: LeaseSettings): number {
  return Math.max(0, earliestQueueReturnSeconds(settings) - Math.ceil(Math.max(0, elapsedMs) / 1000));
}

/** What became of each change: applied, refused by SQS, or unknown (the call failed; it may have applied). */
export interface ChangeOutcome {
  readonly applied: Set<string>;
  readonly refused: Set<string>;
  readonly unknown: Set<string>;
  /** Not sent: too little time left, or past the phase's end. */
  readonly skipped: Set<string>;
}

/** An outcome with nothing in it (nothing sent yet, or nothing to send). */
export function noChanges(): ChangeOutcome {
  return { applied: new Set(), refused: new Set(), unknown: new Set(), skipped: new Set() };
}

/** What a consumer's lease is computed from: its queue's visibility and window, and the margin. */
export function leaseSettingsOf(queue: {
  readonly visibilityTimeoutSeconds: number;
  readonly batchingWindowSeconds: number;
}): LeaseSettings {
  return {
    visibilityTimeoutSeconds: queue.visibilityTimeoutSeconds,
    batchingWindowSeconds: queue.batchingWindowSeconds,
    marginSeconds: CRASH_LEASE_MARGIN_SECONDS,
  };
}

/**
 * Sets the changes, ≤ 10 per call, a few calls at a time, none started once `mayStart()` says no. Never throws.
 */
export async function changeVisibility(
  port: MessageVisibility,
  log: Log,
  changes: readonly VisibilityChange[],
  purpose: string,
  mayStart: () => boolean,
): Promise<ChangeOutcome> {
  const chunks: VisibilityChange[][] = [];
  for (let i = 0; i < changes.length; i += VISIBILITY_BATCH) chunks.push(changes.slice(i, i + VISIBILITY_BATCH));
  const out = noChanges();
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      if (!mayStart()) {
        const left = chunks.slice(next).flat();
        next = chunks.length;
        for (const c of left) out.skipped.add(c.id);
        log.warn(`${purpose}: no time left to send; those messages keep the visibility they had`, {
          messageIds: left.map((c) => c.id),
        });
        return;
      }
      const chunk = chunks[next++] as VisibilityChange[];
      try {
        const refused = new Set(await port.change(chunk));
        for (const c of chunk) (refused.has(c.id) ? out.refused : out.applied).add(c.id);
        if (refused.size > 0) log.warn(`${purpose}: SQS refused some visibility changes`, { messageIds: [...refused] });
      } catch (error) {
        for (const c of chunk) out.unknown.add(c.id);
        log.warn(
          `${purpose}: visibility change failed; unless SQS applied it before the answer was lost, those messages keep the visibility they had`,
          {
            messageIds: chunk.map((c) => c.id),
            error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
          },
        );
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(VISIBILITY_CONCURRENCY, chunks.length) }, worker));
  return out;
}

export interface CrashLease {
  /** Resolves (never rejects) when the lease calls are done, with what became of each. */
  readonly leased: Promise<ChangeOutcome>;
  /**
   * The last step when records failed (reported, or the whole batch when the handler throws): once the lease calls
   * are done, each of them whose lease may have applied (not refused, not skipped) gets what is left of the queue's
   * visibility (`giveBackSeconds`) — no later than before the lease. Never throws.
   */
  giveBack(failedIds: Iterable<string>): Promise<void>;
  /**
   * The burst hold's wake-up (RunSettings.burstHoldSeconds): once the lease calls are done, message `id` is given
   * `seconds` of visibility from now, so that, reported failed, it comes back then and its batch starts the held
   * run. true when SQS applied it, or may have (the call failed or its answer was lost: the message then comes back
   * at `seconds` or when its lease or the queue's visibility ends — later, never lost); the caller then reports it
   * failed. false when SQS refused it or it was not sent (too little time left, unknown id): the caller acknowledges
   * it as usual, and the next batch, a run's end or the sweeper starts the run. Unlike a given-back record, a message
   * sent back may reappear later than the queue's visibility would have shown it: it is a wake-up, its upload is
   * already in the ledger. A lease call abandoned after 3 s that lands after this one overwrites it (the message then
   * comes back when its lease ends, ~90 s: about the hold). Never throws.
   */
  sendBack(id: string, seconds: number): Promise<boolean>;
}

/**
 * Which message a held batch sends back: the first of `candidates` (messages whose upload is pending) on its FIRST
 * receive, so the return costs one receive of a fresh message and never brings one nearer the queue's DLQ than a
 * second delivery would. null when there is none (the sweeper, the next batch or a run's end starts the run).
 */
export function messageToSendBack(
  candidates: readonly string[],
  messages: readonly Pick<DeliveredMessage, "messageId" | "receiveCount">[],
): string | null {
  const wanted = new Set(candidates);
  for (const m of messages) {
    if (wanted.has(m.messageId) && parseReceiveCount(m.receiveCount) === 1) return m.messageId;
  }
  return null;
}

/**
 * The first step of a consumer invocation: lease every message for its crash lease (the calls run while the
 * handler works; `leased` tells when they are done). Messages without a receipt handle, or whose lease would not end
 * before the queue's visibility could, are left alone.
 */
export function startCrashLease(
  port: MessageVisibility,
  log: Log,
  messages: readonly DeliveredMessage[],
  /** The invocation's remaining time (Lambda's `context.getRemainingTimeInMillis`). */
  timeLeftMs: () => number,
  settings: LeaseSettings,
): CrashLease {
  const remainingAtStart = timeLeftMs();
  const elapsedMs = () => remainingAtStart - timeLeftMs();
  const enoughTime = () => timeLeftMs() >= VISIBILITY_MIN_TIME_LEFT_MS;
  const byId = new Map<string, DeliveredMessage>();
  const handles = new Map<string, string>();
  const changes: VisibilityChange[] = [];
  for (const m of messages) {
    if (!m.receiptHandle) continue;
    handles.set(m.messageId, m.receiptHandle);
    const seconds = crashLeaseSeconds(parseReceiveCount(m.receiveCount), remainingAtStart, settings);
    if (seconds === null) continue;
    byId.set(m.messageId, m);
    changes.push({ id: m.messageId, receiptHandle: m.receiptHandle, seconds });
  }
  const leased: Promise<ChangeOutcome> =
    changes.length === 0
      ? Promise.resolve(noChanges())
      : changeVisibility(port, log, changes, "crash lease", () => enoughTime() && elapsedMs() <= LEASE_PHASE_MS);
  return {
    leased,
    async giveBack(failedIds) {
      const done = await leased;
      const seconds = giveBackSeconds(elapsedMs(), settings);
      const back: VisibilityChange[] = [];
      for (const id of new Set(failedIds)) {
        const m = byId.get(id);
        if (m && (done.applied.has(id) || done.unknown.has(id)))
          back.push({ id, receiptHandle: m.receiptHandle, seconds });
      }
      if (back.length > 0) {
        await changeVisibility(port, log, back, "failed records given back the queue's visibility", enoughTime);
      }
    },
    async sendBack(id, seconds) {
      const receiptHandle = handles.get(id);
      if (!receiptHandle) return false;
      await leased;
      const change = { id, receiptHandle, seconds: Math.max(0, Math.ceil(seconds)) };
      const done = await changeVisibility(port, log, [change], "held burst: one message sent back", enoughTime);
      return done.applied.has(id) || done.unknown.has(id);
    },
  };
}
