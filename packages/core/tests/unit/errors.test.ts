/** Reading AWS errors (errors.ts): did a failed StartJobRun certainly not start a run, is it worth retrying. */
import { describe, expect, it } from "vitest";
import { IngestError, isRetryableStartError, messageOf, StartRunError, startFailureKind } from "../../src/errors.js";

/** An SDK-shaped service error: a name, the HTTP status and how many tries the SDK made. */
function awsError(name: string, httpStatusCode?: number, attempts?: number) {
  return Object.assign(new Error(`${name} happened`), {
    name,
    $metadata: { ...(httpStatusCode === undefined ? {} : { httpStatusCode }), ...(attempts ? { attempts } : {}) },
  });
}

describe("startFailureKind", () => {
  it.each([
    ["ConcurrentRunsExceeded on the first try", awsError("ConcurrentRunsExceededException", 400, 1), "no"],
    ["a refusal without a status", awsError("ThrottlingException"), "no"],
    ["each named refusal", awsError("ResourceNumberLimitExceededException"), "no"],
    ["InvalidInput", awsError("InvalidInputException"), "no"],
    ["AccessDenied", awsError("AccessDeniedException"), "no"],
    ["EntityNotFound", awsError("EntityNotFoundException"), "no"],
    ["IllegalWorkflowState", awsError("IllegalWorkflowStateException"), "no"],
    ["Validation", awsError("ValidationException"), "no"],
    ["any other 4xx", awsError("SomethingElse", 403), "no"],
    ["a 400 boundary", awsError("X", 400), "no"],
    ["a 499 boundary", awsError("X", 499), "no"],
    [
      "a refusal to a retry (an earlier try may have started it)",
      awsError("ConcurrentRunsExceededException", 400, 2),
      "unknown",
    ],
    ["OperationTimeout (a 4xx the SDK marks a client fault)", awsError("OperationTimeoutException", 400), "unknown"],
    ["a 500", awsError("InternalServiceException", 500), "unknown"],
    ["a 399", awsError("X", 399), "unknown"],
    ["no status at all (dropped connection)", awsError("TimeoutError"), "unknown"],
    ["not an object", null, "unknown"],
    ["an error without SDK metadata (socket hang up)", new Error("socket hang up"), "unknown"],
    ["a StartRunError says it itself", new StartRunError("r", "no", new Error("x")), "no"],
  ] as const)("%s → %s", (_, error, want) => {
    expect(startFailureKind(error)).toBe(want);
  });
});

describe("isRetryableStartError", () => {
  it.each([
    ["Throttling", awsError("ThrottlingException", 400), true],
    ["OperationTimeout", awsError("OperationTimeoutException", 400), true],
    ["a 429", awsError("TooManyRequests", 429), true],
    ["a 500", awsError("InternalServiceException", 500), true],
    ["no status (dropped connection)", awsError("TimeoutError"), true],
    ["ConcurrentRunsExceeded (a refusal)", awsError("ConcurrentRunsExceededException", 500), false],
    ["AccessDenied", awsError("AccessDeniedException", 403), false],
    ["another 4xx", awsError("BadRequest", 400), false],
    ["a 499 boundary", awsError("X", 499), false],
    ["not an object", null, true],
    ["an error without SDK metadata", new Error("socket hang up"), true],
  ] as const)("%s → %s", (_, error, want) => {
    expect(isRetryableStartError(error)).toBe(want);
  });
});

describe("error classes", () => {
  it("StartRunError names the run, whether it may have started, and the cause", () => {
    const cause = awsError("InternalServiceException", 500);
    const unknown = new StartRunError("run-1", "unknown", cause);
    expect(unknown).toMatchObject({
      name: "StartRunError",
      runKey: "run-1",
      started: "unknown",
      message:
        "run run-1: StartJobRun failed (may have started): InternalServiceException: InternalServiceException happened",
      cause,
    });
    expect(new StartRunError("run-2", "no", "refused").message).toBe(
      "run run-2: StartJobRun failed (not started): refused",
    );
    expect(new IngestError("x").name).toBe("IngestError");
  });

  it("messageOf: an Error's name and message, anything else as text", () => {
    expect(messageOf(new TypeError("bad"))).toBe("TypeError: bad");
    expect(messageOf(42)).toBe("42");
  });
});
