/** Starting twins in tests: a private state folder per test file, never the user's .twin/state.json. */
import { join } from "node:path";
import { projectPaths, workspaceRoot } from "../../src/paths.js";
import { Twin, type TwinOptions } from "../../src/twin.js";

export function testPaths(name: string) {
  const root = workspaceRoot();
  return projectPaths(root, join(root, ".twin", "tests", `${name}-${process.pid}`));
}

export async function startTestTwin(name: string, opts: TwinOptions = {}): Promise<Twin> {
  const log = process.env.TWIN_TEST_VERBOSE
    ? { info: (m: string) => console.log(`[twin] ${m}`), warn: (m: string) => console.warn(`[twin] ${m}`) }
    : { info: () => undefined, warn: (m: string) => console.warn(`[twin] ${m}`) };
  return Twin.start({ paths: testPaths(name), writeState: false, log, ...opts });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value (not undefined/false) or the time is up. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 60_000,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(everyMs);
  }
}
