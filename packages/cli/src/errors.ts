/** The CLI's errors: each is the one line a user sees (`ingest: <message>`), with a non-zero exit. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** A deployed stage cannot be resolved (no SST outputs for it). */
export class StageNotFoundError extends CliError {
  override name = "StageNotFoundError";
}

export class WaitTimeoutError extends CliError {
  override name = "WaitTimeoutError";
  constructor(seconds: number, detail: string) {
    super(`still busy after ${seconds} s (${detail})`, 2);
  }
}

/** The one line for any error: our own messages as they are; AWS SDK errors with their name. */
export function oneLine(e: unknown): string {
  if (e instanceof CliError) return e.message;
  if (e instanceof Error) {
    const aws = e as Error & { $metadata?: unknown; code?: string };
    // AWS SDK errors are named by their service error code; ours carry the whole story in the message.
    const text = aws.$metadata !== undefined ? `${e.name}: ${e.message}` : e.message;
    if (aws.code === "ECONNREFUSED") return `cannot reach the endpoint (${e.message}): is the twin running?`;
    return text.split("\n")[0] ?? text;
  }
  return String(e);
}
