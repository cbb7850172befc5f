/**
 * Handler crashes at random points. On Lambda a crash ends the execution environment: nothing after the crash point
 * happens, and the batch is not acknowledged. In the twin the handler runs in-process and cannot be killed, so a
 * crashed invocation is cut off from AWS instead: every HTTP request it starts after the crash is destroyed before
 * it is sent (node:http's `http.client.request.start` channel, in the invocation's async context), so it has no
 * further effect on the emulator, and the poller counts the batch as failed at the crash time.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { subscribe } from "node:diagnostics_channel";
import type { ClientRequest } from "node:http";

export interface Invocation {
  readonly principal: string;
  crashed: boolean;
}

export const invocationScope = new AsyncLocalStorage<Invocation>();

let subscribed = false;

/** Installs the cut-off (once per process). */
export function installCrashCutoff(): void {
  if (subscribed) return;
  subscribed = true;
  subscribe("http.client.request.start", (message) => {
    const inv = invocationScope.getStore();
    if (!inv?.crashed) return;
    const { request } = message as { request: ClientRequest };
    request.destroy(new Error(`injected crash: the ${inv.principal} invocation is gone`));
  });
}
