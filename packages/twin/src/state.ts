/** `.twin/state.json`: how `local env`, `upload`, `status`, `wait` and `local down` find a running twin. */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { TwinEndpoints } from "./aws.js";
import type { TWIN_NAMES } from "./constants.js";
import { TwinNotRunningError } from "./errors.js";

export interface TwinState {
  readonly pid: number;
  readonly motoPid: number;
  readonly startedAt: string;
  readonly endpoints: TwinEndpoints;
  readonly names: typeof TWIN_NAMES;
  readonly queues: {
    readonly ingestUrl: string;
    readonly ingestDlqUrl: string;
    readonly recorderUrl: string;
    readonly recorderDlqUrl: string;
  };
  readonly logFile: string | null;
}

export function writeTwinState(file: string, state: TwinState): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(state, null, 2)}\n`);
}

export function removeTwinState(file: string, pid: number = process.pid): void {
  const current = readStateFile(file);
  if (current && current.pid === pid) rmSync(file, { force: true });
}

function readStateFile(file: string): TwinState | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as TwinState;
  } catch {
    return null;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The running twin's state; throws TwinNotRunningError when there is none or its process is gone. */
export function readTwinState(file: string): TwinState {
  const state = readStateFile(file);
  if (!state) throw new TwinNotRunningError();
  if (!isAlive(state.pid)) throw new TwinNotRunningError(`process ${state.pid} from .twin/state.json is gone`);
  return state;
}

/** The state file even when its process is gone (for `local down` to clean up). */
export function peekTwinState(file: string): TwinState | null {
  return readStateFile(file);
}
