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
  type MessageVisibility,
  parseReceiveCount,
  startCrashLease,
  type VisibilityChange,
} from "../../src/queue/lease.js";

const PROD = { visibilityTimeoutSeconds: 420, marginSeconds: 30 };

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
  const port: MessageVisibility = {
    async change(changes) {
      n++;
      const me = n;
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      if (opts.failCall === me) throw Object.assign(new Error("socket hang up"), { name: "TimeoutError" });
      calls.push({ at: clock++, changes: [...changes] });
      return changes.filter((c) => opts.refuse?.includes(c.id)).map((c) => c.id);
    },
  };
  return { port, calls };
}

const msg = (i: number, receiveCount: DeliveredMessage["receiveCount"] = "1"): DeliveredMessage => ({
  messageId: `m${i}`,
  receiptHandle: `rh-${i}`,
  receiveCount,
});
const sixtySeconds = () => 60_000;

describe("crashLeaseSeconds", () => {
  it("is the remaining time + the margin on the first receive, doubling per receive, until the visibility", () => {
    expect(crashLeaseSeconds(1, 60_000, PROD)).toBe(90);
    expect(crashLeaseSeconds(2, 60_000, PROD)).toBe(180);
    expect(crashLeaseSeconds(3, 60_000, PROD)).toBe(360);
    // 720 s would be longer than the queue's own 420 s: no change at all
    expect(crashLeaseSeconds(4, 60_000, PROD)).toBeNull();
    expect(crashLeaseSeconds(40, 60_000, PROD)).toBeNull();
  });

  it("rounds the remaining time up to whole seconds, and never goes below the margin", () => {
    expect(crashLeaseSeconds(1, 59_001, PROD)).toBe(90);
    expect(crashLeaseSeconds(1, 58_999, PROD)).toBe(89);
    expect(crashLeaseSeconds(1, -5, PROD)).toBe(30);
  });

  it("never lengthens a message's wait: not below the queue's visibility → null", () => {
    expect(crashLeaseSeconds(1, 60_000, { visibilityTimeoutSeconds: 90, marginSeconds: 30 })).toBeNull();
    expect(crashLeaseSeconds(1, 60_000, { visibilityTimeoutSeconds: 91, marginSeconds: 30 })).toBe(90);
    expect(crashLeaseSeconds(1, 60_000, { visibilityTimeoutSeconds: 5, marginSeconds: 30 })).toBeNull();
  });
});

describe("parseReceiveCount", () => {
  it("reads SQS's attribute; anything unreadable is the first receive", () => {
    expect(parseReceiveCount("3")).toBe(3);
    expect(parseReceiveCount(2)).toBe(2);
    for (const bad of [undefined, "", "abc", "0", "-2", "1e400", 0, Number.NaN]) expect(parseReceiveCount(bad)).toBe(1);
  });
});

describe("startCrashLease", () => {
  it("leases every message for its own receive's lease, at most 10 per call", async () => {
    const { port, calls } = fakeQueue();
    const { log } = recordingLog();
    const messages = [...Array.from({ length: 23 }, (_, i) => msg(i)), msg(23, "2"), msg(24, "3")];
    const lease = startCrashLease(port, log, messages, sixtySeconds, PROD);
    const leased = await lease.leased;
    expect(calls.map((c) => c.changes.length)).toEqual([10, 10, 5]);
    const all = calls.flatMap((c) => c.changes);
    expect(all.find((c) => c.id === "m0")).toEqual({ id: "m0", receiptHandle: "rh-0", seconds: 90 });
    expect(all.find((c) => c.id === "m23")?.seconds).toBe(180);
    expect(all.find((c) => c.id === "m24")?.seconds).toBe(360);
    expect(leased.size).toBe(25);
  });

  it("leaves alone a message with no receipt handle and one whose lease would not be shorter than the visibility", async () => {
    const { port, calls } = fakeQueue();
    const { log } = recordingLog();
    const lease = startCrashLease(
      port,
      log,
      [msg(1), { messageId: "m2", receiptHandle: "", receiveCount: "1" }, msg(3, "4")],
      sixtySeconds,
      PROD,
    );
    expect([...(await lease.leased)]).toEqual(["m1"]);
    expect(calls.flatMap((c) => c.changes.map((x) => x.id))).toEqual(["m1"]);
  });

  it("sends nothing when nothing is to be leased", async () => {
    const { port, calls } = fakeQueue();
    const { log } = recordingLog();
    const lease = startCrashLease(port, log, [msg(1, "5")], sixtySeconds, PROD);
    expect((await lease.leased).size).toBe(0);
    await lease.giveBack(["m1"]);
    expect(calls).toEqual([]);
  });

  it("gives the queue's visibility back to the failed records it leased — after its lease calls, once each", async () => {
    const { port, calls } = fakeQueue({ delayMs: 5 });
    const { log } = recordingLog();
    const lease = startCrashLease(port, log, [msg(1), msg(2), msg(3)], sixtySeconds, PROD);
    // asked at once: must still come after the lease call, or the lease would overwrite it
    await lease.giveBack(["m2", "m3", "m2", "not-in-batch"]);
    expect(calls).toHaveLength(2);
    expect(calls[0]?.changes.map((c) => c.seconds)).toEqual([90, 90, 90]);
    expect(calls[1]?.changes).toEqual([
      { id: "m2", receiptHandle: "rh-2", seconds: 420 },
      { id: "m3", receiptHandle: "rh-3", seconds: 420 },
    ]);
  });

  it("a refused lease is logged; that record keeps the queue's visibility and is not given back", async () => {
    const { port, calls } = fakeQueue({ refuse: ["m2"] });
    const { log, warnings } = recordingLog();
    const lease = startCrashLease(port, log, [msg(1), msg(2)], sixtySeconds, PROD);
    expect([...(await lease.leased)]).toEqual(["m1"]);
    expect(warnings).toEqual([
      { message: "crash lease: SQS refused some visibility changes", fields: { messageIds: ["m2"] } },
    ]);
    await lease.giveBack(["m1", "m2"]);
    expect(calls[1]?.changes.map((c) => c.id)).toEqual(["m1"]);
  });

  it("a failed call is logged with its message ids and swallowed; the other calls still go", async () => {
    const { port, calls } = fakeQueue({ failCall: 1 });
    const { log, warnings } = recordingLog();
    const messages = Array.from({ length: 12 }, (_, i) => msg(i));
    const lease = startCrashLease(port, log, messages, sixtySeconds, PROD);
    const leased = await lease.leased;
    expect([...leased]).toEqual(["m10", "m11"]);
    expect(calls).toHaveLength(1);
    expect(warnings[0]?.message).toBe(
      "crash lease: visibility change failed; those messages keep the visibility they had",
    );
    expect(warnings[0]?.fields).toMatchObject({
      messageIds: messages.slice(0, 10).map((m) => m.messageId),
      error: "TimeoutError: socket hang up",
    });
    await expect(lease.giveBack(["m0", "m11"])).resolves.toBeUndefined();
    expect(calls[1]?.changes.map((c) => c.id)).toEqual(["m11"]);
  });

  it("starts no call with less than 5 s of the invocation left", async () => {
    const { port, calls } = fakeQueue();
    const { log, warnings } = recordingLog();
    const lease = startCrashLease(port, log, [msg(1)], () => 4_999, PROD);
    expect((await lease.leased).size).toBe(0);
    expect(calls).toEqual([]);
    expect(warnings[0]).toEqual({
      message: "crash lease: too little time left; those messages keep the visibility they had",
      fields: { messageIds: ["m1"] },
    });
    const enough = startCrashLease(port, log, [msg(1)], () => 5_000, PROD);
    expect((await enough.leased).size).toBe(1);
    // 5 s left + 30 s margin
    expect(calls[0]?.changes[0]?.seconds).toBe(35);
  });

  it("stops starting calls when the time runs out midway", async () => {
    const { port, calls } = fakeQueue();
    const { log } = recordingLog();
    let left = 60_000;
    const timeLeft = () => {
      const now = left;
      left -= 20_000;
      return now;
    };
    // 95 messages = 10 calls; the clock read at the start (lease 90 s) then before each call: 40 s, 20 s, 0 s left
    const lease = startCrashLease(
      port,
      log,
      Array.from({ length: 95 }, (_, i) => msg(i)),
      timeLeft,
      PROD,
    );
    await lease.leased;
    expect(calls).toHaveLength(2);
  });
});
