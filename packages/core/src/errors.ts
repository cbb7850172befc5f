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

/** Glue errors that say a StartJobRun was received and refused: nothing started (unless an earlier try did). */
const START_REFUSALS = new Set([
  "ConcurrentRunsExceededException",
  "ThrottlingException",
  "ResourceNumberLimitExceededException",
  "InvalidInputException",
  "AccessDeniedException",
  "EntityNotFoundException",
  "IllegalWorkflowStateException",
  "ValidationException",
]);

/**
 * Did a failed StartJobRun definitely not start a run? Only when Glue answered the first and only try with a refusal
 * (ConcurrentRunsExceeded, Throttling, ResourceNumberLimitExceeded, InvalidInput, AccessDenied...). Anything else is
 * "unknown": a 5xx, a timeout (OperationTimeoutException is a 4xx the SDK marks a client fault, yet the run may have
 * started), a dropped connection, or a refusal to a RETRY (`$metadata.attempts > 1`: the SDK retried because an
 * earlier try's answer was lost, and that try may have started the run; the retry's ConcurrentRunsExceeded is then
 * about our own run).
 */
export function startFailureKind(e: unknown): "no" | "unknown" {
  if (e instanceof StartRunError) return e.started;
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number; attempts?: number } } | null;
  if ((err?.$metadata?.attempts ?? 1) > 1) return "unknown";
  const status = err?.$metadata?.httpStatusCode;
  if (err?.name && START_REFUSALS.has(err.name)) return "no";
  if (status !== undefined && status >= 400 && status < 500 && err?.name !== "OperationTimeoutException") return "no";
  return "unknown";
}

/** Worth trying StartJobRun again after a pause: throttling, capacity, 5xx, timeouts and dropped connections. */
export function isRetryableStartError(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  const status = err?.$metadata?.httpStatusCode;
  if (err?.name === "ThrottlingException" || err?.name === "OperationTimeoutException" || status === 429) return true;
  if (err?.name && START_REFUSALS.has(err.name)) return false;
  return status === undefined || status >= 500;
}
