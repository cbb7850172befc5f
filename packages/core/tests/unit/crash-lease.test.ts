/**
 * The crash lease (queue/lease.ts): a consumer's first step leases its messages for its remaining time + a margin,
 * doubling per receive, never longer than the queue's visibility; failed records get the queue's visibility back;
 * nothing here ever throws.
 */
import { describe, expect, it } from "vitest";
import type { Log } from "../../src/ledger/ports.js";
import {
  crashLeaseSeconds,
  type DeliveredMessage,
  giveBackSeconds,
  type MessageVisibility,
  messageToSendBack,
  parseReceiveCount,
  startCrashLease,
  type VisibilityChange,
} from "../../src/queue/lease.js";

/** prod's ingest queue: visibility 420 s counted from the receive, a 60 s batching window, the 30 s margin. */
const PROD = { visibilityTimeoutSeconds: 420, batchingWindowSeconds: 60, marginSeconds: 30 };
/** the recorder queue: 360 s, no window. */
const RECORDER = { visibilityTimeoutSeconds: 360, batchingWindowSeconds: 0, marginSeconds: 30 };

function recordingLog() {
  const warnings: { message: string; fields: Record<string, unknown> | undefined }[] = [];
  const log: Log = {
    info: () => undefined,
    warn: (message, fields) => warnings.push({ message, fields }),
    error: () => undefined,
  };
  return { log, warnings };
}

/** A fake SQS: records each call; `refuse` ids are refused, `failCall` makes the n-th call (1-based) throw. */
function fakeQueue(opts: { refuse?: string[]; failCall?: number; delayMs?: number } = {}) {
  const calls: { at: number; changes: VisibilityChange[] }[] = [];
  let n = 0;
  let clock = 0;
  let inFlight = 0;
  const seen = { maxInFlight: 0 };
  const port: MessageVisibility = {
    async change(changes) {
      n++;
      const me = n;
      inFlight++;
      seen.maxInFlight = Math.max(seen.maxInFlight, inFlight);
      try {
        if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
        if (opts.failCall === me) throw Object.assign(new Error("socket hang up"), { name: "TimeoutError" });
        calls.push({ at: clock++, changes: [...changes] });
        return changes.filter((c) => opts.refuse?.includes(c.id)).map((c) => c.id);
      } finally {
        inFlight--;
      }
    },
  };
  return { port, calls, seen };
}

const msg = (i: number, receiveCount: DeliveredMessage["receiveCount"] = "1"): DeliveredMessage => ({
  messageId: `m${i}`,
  receiptHandle: `rh-${i}`,
  receiveCount,
});
/** n messages m0…m(n−1), first receive. */
const msgs = (n: number): DeliveredMessage[] => Array.from({ length: n }, (_, i) => msg(i));
const sixtySeconds = () => 60_000;

describe("crashLeaseSeconds", () => {
  it("is the remaining time + the margin on the first receive, doubling per receive", () => {
    expect(crashLeaseSeconds(1, 60_000, PROD)).toBe(90);
    expect(crashLeaseSeconds(2, 60_000, PROD)).toBe(180);
    expect(crashLeaseSeconds(2, 60_000, RECORDER)).toBe(180);
  });

  it("is sent only when it ends before the queue's visibility could: visibility − window (prod 360 s), strictly", () => {
    // 360 s is not shorter than 420 − 60: a message received a window before the invocation would come back no later
    expect(crashLeaseSeconds(3, 60_000, PROD)).toBeNull();
    expect(crashLeaseSeconds(3, 60_000, RECORDER)).toBeNull();
    expect(crashLeaseSeconds(40, 60_000, PROD)).toBeNull();
    expect(
      crashLeaseSeconds(1, 60_000, { visibilityTimeoutSeconds: 150, batchingWindowSeconds: 60, marginSeconds: 30 }),
    ).toBeNull();
    expect(
      crashLeaseSeconds(1, 60_000, { visibilityTimeoutSeconds: 151, batchingWindowSeconds: 60, marginSeconds: 30 }),
    ).toBe(90);
    expect(
      crashLeaseSeconds(1, 60_000, { visibilityTimeoutSeconds: 90, batchingWindowSeconds: 0, marginSeconds: 30 }),
    ).toBeNull();
    expect(
      crashLeaseSeconds(1, 60_000, { visibilityTimeoutSeconds: 5, batchingWindowSeconds: 2, marginSeconds: 30 }),
    ).toBeNull();
  });

  it("rounds the remaining time up to whole seconds, and never goes below the margin", () => {
    expect(crashLeaseSeconds(1, 59_001, PROD)).toBe(90);
    expect(crashLeaseSeconds(1, 58_999, PROD)).toBe(89);
    expect(crashLeaseSeconds(1, -5, PROD)).toBe(30);
  });
});

describe("giveBackSeconds", () => {
  it("is what is left of visibility − window since the lease began, never below 0", () => {
    expect(giveBackSeconds(0, PROD)).toBe(360);
    expect(giveBackSeconds(12_500, PROD)).toBe(347);
    expect(giveBackSeconds(12_500, RECORDER)).toBe(347);
    expect(giveBackSeconds(-1_000, PROD)).toBe(360);
    expect(giveBackSeconds(400_000, PROD)).toBe(0);
  });
});

describe("parseReceiveCount", () => {
  it("reads SQS's attribute; anything unreadable is the first receive", () => {
    expect(parseReceiveCount("3")).toBe(3);
    expect(parseReceiveCount(2)).toBe(2);
    for (const bad of [undefined, "", "abc", "0", "-2", 0, Number.NaN, "99999999999999999999"]) {
      expect(parseReceiveCount(bad)).toBe(1);
    }
  });
});

describe("startCrashLease", () => {
  it("leases every message for its own receive's lease, at most 10 per call, and logs nothing when all applied", async () => {
    const { port, calls } = fakeQueue();
    const { log, warnings } = recordingLog();
    const messages = [...msgs(23), msg(23, "2"), msg(24, "3")];
    const lease = startCrashLease(port, log, messages, sixtySeconds, PROD);
    const done = await lease.leased;
    // m24 (3rd receive: 360 s) is left to the queue's visibility
    expect(calls.map((c) => c.changes.length)).toEqual([10, 10, 4]);
    const all = calls.flatMap((c) => c.changes);
    expect(all.find((c) => c.id === "m0")).toEqual({ id: "m0", receiptHandle: "rh-0", seconds: 90 });
    expect(all.find((c) => c.id === "m23")?.seconds).toBe(180);
    expect(all.find((c) => c.id === "m24")).toBeUndefined();
    expect(done.applied.size).toBe(24);
    expect(warnings).toEqual([]);
  });

  it("ten messages are one call; eleven are two", async () => {
    for (const [n, expected] of [
      [10, [10]],
      [11, [10, 1]],
    ] as const) {
      const { port, calls } = fakeQueue();
      await startCrashLease(port, recordingLog().log, msgs(n), sixtySeconds, PROD).leased;
      expect(calls.map((c) => c.changes.length)).toEqual(expected);
    }
  });

  it("sends at most 8 calls at once", async () => {
    const { port, calls, seen } = fakeQueue({ delayMs: 2 });
    await startCrashLease(port, recordingLog().log, msgs(400), sixtySeconds, PROD).leased;
    expect(calls).toHaveLength(40);
    expect(seen.maxInFlight).toBe(8);
  });

  it("leaves alone a message with no receipt handle and one whose lease would not end sooner", async () => {
    const { port, calls } = fakeQueue();
    const { log } = recordingLog();
    const lease = startCrashLease(
      port,
      log,
      [msg(1), { messageId: "m2", receiptHandle: "", receiveCount: "1" }, msg(3, "3")],
      sixtySeconds,
      PROD,
    );
    expect([...(await lease.leased).applied]).toEqual(["m1"]);
    expect(calls.flatMap((c) => c.changes.map((x) => x.id))).toEqual(["m1"]);
  });

  it("sends nothing when nothing is to be leased, and gives nothing back", async () => {
    const { port, calls } = fakeQueue();
    const { log } = recordingLog();
    const lease = startCrashLease(port, log, [msg(1, "5")], sixtySeconds, PROD);
    expect((await lease.leased).applied.size).toBe(0);
    await lease.giveBack(["m1"]);
    expect(calls).toEqual([]);
  });

  it("gives failed records what is left of visibility − window — after its lease calls, once each", async () => {
    const { port, calls } = fakeQueue({ delayMs: 5 });
    const { log } = recordingLog();
    let left = 60_000;
    const lease = startCrashLease(port, log, [msg(1), msg(2), msg(3)], () => left, PROD);
    left = 47_500; // 12.5 s of work later
    // asked at once: must still come after the lease call, or the lease would overwrite it
    await lease.giveBack(["m2", "m3", "m2", "not-in-batch"]);
    expect(calls).toHaveLength(2);
    expect(calls[0]?.changes.map((c) => c.seconds)).toEqual([90, 90, 90]);
    expect(calls[1]?.changes).toEqual([
      { id: "m2", receiptHandle: "rh-2", seconds: 347 },
      { id: "m3", receiptHandle: "rh-3", seconds: 347 },
    ]);
  });

  it("a refused lease is logged; that record keeps the queue's visibility and is not given back", async () => {
    const { port, calls } = fakeQueue({ refuse: ["m2"] });
    const { log, warnings } = recordingLog();
    const lease = startCrashLease(port, log, [msg(1), msg(2)], sixtySeconds, PROD);
    const done = await lease.leased;
    expect([...done.applied]).toEqual(["m1"]);
    expect([...done.refused]).toEqual(["m2"]);
    expect(warnings).toEqual([
      { message: "crash lease: SQS refused some visibility changes", fields: { messageIds: ["m2"] } },
    ]);
    await lease.giveBack(["m1", "m2"]);
    expect(calls[1]?.changes.map((c) => c.id)).toEqual(["m1"]);
  });

  it("a failed call is logged and swallowed; its records may have been leased, so a failed one is given back too", async () => {
    const { port, calls } = fakeQueue({ failCall: 1 });
    const { log, warnings } = recordingLog();
    const messages = msgs(12);
    const lease = startCrashLease(port, log, messages, sixtySeconds, PROD);
    const done = await lease.leased;
    expect([...done.applied]).toEqual(["m10", "m11"]);
    expect(done.unknown).toEqual(new Set(messages.slice(0, 10).map((m) => m.messageId)));
    expect(calls).toHaveLength(1);
    expect(warnings[0]?.message).toBe(
      "crash lease: visibility change failed; unless SQS applied it before the answer was lost, those messages keep the visibility they had",
    );
    expect(warnings[0]?.fields).toMatchObject({
      messageIds: messages.slice(0, 10).map((m) => m.messageId),
      error: "TimeoutError: socket hang up",
    });
    await expect(lease.giveBack(["m0", "m11"])).resolves.toBeUndefined();
    expect(calls[1]?.changes.map((c) => [c.id, c.seconds])).toEqual([
      ["m0", 360],
      ["m11", 360],
    ]);
  });

  it("starts no call with less than 5 s of the invocation left; those are not given back", async () => {
    const { port, calls } = fakeQueue();
    const { log, warnings } = recordingLog();
    const lease = startCrashLease(port, log, [msg(1)], () => 4_999, PROD);
    expect((await lease.leased).skipped).toEqual(new Set(["m1"]));
    await lease.giveBack(["m1"]);
    expect(calls).toEqual([]);
    expect(warnings[0]).toEqual({
      message: "crash lease: no time left to send; those messages keep the visibility they had",
      fields: { messageIds: ["m1"] },
    });
    const enough = startCrashLease(port, log, [msg(1)], () => 5_000, PROD);
    expect((await enough.leased).applied.size).toBe(1);
    // 5 s left + 30 s margin
    expect(calls[0]?.changes[0]?.seconds).toBe(35);
  });

  it("a lease call may still start exactly 10 s after the lease began", async () => {
    const { port, calls } = fakeQueue();
    const reads = [60_000, 50_000, 50_000, 49_000, 49_000];
    const timeLeft = () => reads.shift() ?? 0;
    // two calls' worth: the first starts at 10.0 s elapsed, the second would at 11 s
    await startCrashLease(port, recordingLog().log, msgs(20), timeLeft, PROD).leased;
    expect(calls).toHaveLength(1);
  });

  it("starts no lease call later than 10 s after the lease began; the warning names only what was not sent", async () => {
    const { port, calls } = fakeQueue();
    const { log, warnings } = recordingLog();
    let left = 60_000;
    // each read of the clock: 4 s later (the lease's own read, then one per call it might start)
    const timeLeft = () => {
      const now = left;
      left -= 4_000;
      return now;
    };
    const messages = msgs(95);
    const lease = startCrashLease(port, log, messages, timeLeft, PROD);
    await lease.leased;
    // each check reads the clock twice: the first finds 8 s elapsed (go), the second 16 s (stop)
    expect(calls).toHaveLength(1);
    expect(warnings[0]?.fields).toEqual({ messageIds: messages.slice(10).map((m) => m.messageId) });
  });
});

describe("the burst hold's wake-up: one message sent back", () => {
  it("messageToSendBack picks a candidate on its first receive, never a redelivered one (nearer the DLQ)", () => {
    const messages = [
      { messageId: "a", receiveCount: "3" },
      { messageId: "b", receiveCount: "2" },
      { messageId: "c", receiveCount: "1" },
      { messageId: "d", receiveCount: "1" },
    ];
    expect(messageToSendBack(["a", "b", "c", "d"], messages)).toBe("c");
    expect(messageToSendBack(["d", "a"], messages)).toBe("d");
    expect(messageToSendBack(["a", "b"], messages)).toBeNull();
    // only the candidates (messages whose upload is pending), and none when there are none
    expect(messageToSendBack([], messages)).toBeNull();
    // an unreadable count is a first receive, as for the lease
    expect(messageToSendBack(["x"], [{ messageId: "x", receiveCount: undefined }])).toBe("x");
  });

  it("sendBack sets that message's visibility only after the lease calls have landed, and says whether SQS applied it", async () => {
    // The lease call is slow, the send-back call fast: sent at once, the send-back would land first and the lease
    // would then overwrite it.
    const landed: number[][] = [];
    let n = 0;
    const port: MessageVisibility = {
      async change(changes) {
        const slow = ++n === 1;
        if (slow) await new Promise((r) => setTimeout(r, 30));
        landed.push(changes.map((c) => c.seconds));
        return [];
      },
    };
    const lease = startCrashLease(port, recordingLog().log, [msg(1), msg(2)], sixtySeconds, PROD);

    expect(await lease.sendBack("m2", 59.2)).toBe(true);

    expect(landed).toEqual([[90, 90], [60]]);
  });

  it("sendBack is false when SQS refuses it or it is not sent (the message is then acknowledged as usual), and never throws", async () => {
    const refused = fakeQueue({ refuse: ["m1"] });
    const lease = startCrashLease(refused.port, recordingLog().log, [msg(1, "6")], sixtySeconds, PROD);
    expect(await lease.sendBack("m1", 30)).toBe(false);

    // a failed call may have applied: the message is reported failed and comes back then or when its visibility ends
    const failing = fakeQueue({ failCall: 1 });
    const noLease = startCrashLease(failing.port, recordingLog().log, [msg(1, "6")], sixtySeconds, PROD);
    await expect(noLease.sendBack("m1", 30)).resolves.toBe(true);

    // not sent at all with less than 5 s of the invocation left
    const late = fakeQueue();
    let left = 60_000;
    const lateLease = startCrashLease(late.port, recordingLog().log, [msg(1, "6")], () => left, PROD);
    left = 4_000;
    expect(await lateLease.sendBack("m1", 30)).toBe(false);
    expect(late.calls).toHaveLength(0);

    const none = fakeQueue();
    const unknown = startCrashLease(none.port, recordingLog().log, [msg(1)], sixtySeconds, PROD);
    expect(await unknown.sendBack("not-in-batch", 30)).toBe(false);
    expect(none.calls).toHaveLength(1); // the lease only
  });
});
