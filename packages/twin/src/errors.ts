/** One base error for the twin, one subclass per failure class; messages are the one line a user sees. */
export class TwinError extends Error {
  override name = "TwinError";
}

/** Something the machine must provide is missing (Java 17, the project's .venv, glue/job.py). */
export class PrerequisiteError extends TwinError {
  override name = "PrerequisiteError";
}

export class PortInUseError extends TwinError {
  override name = "PortInUseError";
  constructor(readonly port: number) {
    super(`port ${port} is in use: stop what listens there or choose another port`);
  }
}

export class TwinNotRunningError extends TwinError {
  override name = "TwinNotRunningError";
  constructor(detail = "no .twin/state.json") {
    super(`the local twin is not running (${detail}): start it with \`pnpm ingest local up\``);
  }
}

export class TwinStartError extends TwinError {
  override name = "TwinStartError";
}

export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
