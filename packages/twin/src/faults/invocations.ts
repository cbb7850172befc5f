/**
 * Handler crashes at random points. On Lambda a crash ends the execution environment: nothing after the crash point
 * happens, and the batch is not acknowledged. In the twin the handler runs in-process and cannot be killed, so a
 * crashed invocation is cut off from AWS instead: every HTTP request it starts after the crash is destroyed before
 * it is sent (node:http's `http.client.request.start` channel, in the invocation's async context), so it has no
 * further effect on the emulator, and the poller counts the batch as failed at the crash time. node 20 announces a
 * request only once it is written to its socket, so the cut-off also names the socket's local port: the proxy (same
 * process, a later I/O turn) drops whatever arrives from that port instead of forwarding it.
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

/** Local ports of the client sockets of cut-off requests; the proxy drops requests from them (and forgets the port). */
export const cutOffPorts = new Set<number>();

/** Installs the cut-off (once per process). */
export function installCrashCutoff(): void {
  if (subscribed) return;
  subscribed = true;
  subscribe("http.client.request.start", (message) => {
    const inv = invocationScope.getStore();
    if (!inv?.crashed) return;
    const { request } = message as { request: ClientRequest };
    const port = request.socket?.localPort;
    if (port !== undefined) cutOffPorts.add(port);
    request.destroy(new Error(`injected crash: the ${inv.principal} invocation is gone`));
  });
}
