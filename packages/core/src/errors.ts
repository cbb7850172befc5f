/** One base error for the package, one subclass per failure class; each names the thing that failed. */
export class IngestError extends Error {
  override name = "IngestError";
}

/** StartJobRun failed. `started` says whether Glue may have started the run anyway (no idempotency token exists). */
export class StartRunError extends IngestError {
  override name = "StartRunError";
  constructor(
    readonly runKey: string,
    readonly started: "no" | "unknown",
    cause: unknown,
  ) {
    super(
      `run ${runKey}: StartJobRun failed (${started === "no" ? "not started" : "may have started"}): ${messageOf(cause)}`,
      {
        cause,
      },
    );
  }
}

export function messageOf(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/**
 * Did a failed StartJobRun definitely not start a run? A 4xx answer from Glue (ConcurrentRunsExceeded, Throttling,
 * ResourceNumberLimitExceeded, InvalidInput, AccessDenied) means no; a 5xx, a timeout or a dropped connection
 * means we cannot know.
 */
export function startFailureKind(e: unknown): "no" | "unknown" {
  const err = e as { $fault?: string; $metadata?: { httpStatusCode?: number } } | null;
  const status = err?.$metadata?.httpStatusCode;
  if (err?.$fault === "client" || (status !== undefined && status >= 400 && status < 500)) return "no";
  return "unknown";
}
