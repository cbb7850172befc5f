import { afterAll, expect, it } from "vitest";
import type { Twin } from "../../src/twin.js";
import { eventually, startTestTwin } from "../helpers/twin.js";

let twin: Twin | undefined;
afterAll(async () => {
  await twin?.stop();
});

it("runs the reconciler on its timer, one pass at a time, and not after stop()", async () => {
  let calls = 0;
  let active = 0;
  let overlapped = false;
  twin = await startTestTwin("reconciler-timer", {
    handlers: {
      batcher: async () => ({ batchItemFailures: [] }),
      recorder: async () => ({ batchItemFailures: [] }),
      sweeper: async () => ({}),
      reconciler: async () => {
        active++;
        if (active > 1) overlapped = true;
        calls++;
        await new Promise((r) => setTimeout(r, 400));
        active--;
        return {};
      },
    },
    executor: async () => ({ ok: true }),
    sweepIntervalMs: 0,
    reconcileIntervalMs: 100,
  });
  await eventually("three reconciler passes", () => calls >= 3, 10_000, 50);
  expect(overlapped).toBe(false);
  expect(twin.reconciles).toBeGreaterThanOrEqual(2);
  await twin.stop();
  const after = calls;
  await new Promise((r) => setTimeout(r, 500));
  expect(calls).toBe(after);
});
