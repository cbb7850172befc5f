/** The twin's scheduled handlers (sweeper, reconciler) each run on their own timer, one pass at a time, not after stop(). */
import { afterEach, expect, it } from "vitest";
import type { Twin, TwinOptions } from "../../src/twin.js";
import { eventually, startTestTwin } from "../helpers/twin.js";

let twin: Twin | undefined;
afterEach(async () => {
  await twin?.stop();
  twin = undefined;
});

const CASES = [
  { handler: "sweeper", timers: { sweepIntervalMs: 100 } },
  { handler: "reconciler", timers: { sweepIntervalMs: 0, reconcileIntervalMs: 100 } },
] as const satisfies readonly { handler: "sweeper" | "reconciler"; timers: Partial<TwinOptions> }[];

it.each(CASES)(
  "runs the $handler on its timer, one pass at a time, and not after stop()",
  async ({ handler, timers }) => {
    let calls = 0;
    let active = 0;
    let overlapped = false;
    const timed = async () => {
      active++;
      if (active > 1) overlapped = true;
      calls++;
      await new Promise((r) => setTimeout(r, 400));
      active--;
      return {};
    };
    const started = await startTestTwin(`${handler}-timer`, {
      handlers: {
        batcher: async () => ({ batchItemFailures: [] }),
        recorder: async () => ({ batchItemFailures: [] }),
        sweeper: async () => ({}),
        [handler]: timed,
      },
      executor: async () => ({ ok: true }),
      ...timers,
    });
    twin = started;
    await eventually(`three ${handler} passes`, () => calls >= 3, 10_000, 50);
    expect(overlapped).toBe(false);
    if (handler === "reconciler") expect(started.reconciles).toBeGreaterThanOrEqual(2);
    await started.stop();
    const after = calls;
    await new Promise((r) => setTimeout(r, 500));
    expect(calls).toBe(after);
  },
);
