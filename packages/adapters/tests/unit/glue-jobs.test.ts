/**
 * 1. StartJobRun has no idempotency token: a try whose answer was lost may have started the run. GlueJobs retries
 * itself (no SDK retry underneath) and asks Glue for the run by its run key between tries.
 */
import {
  ConcurrentRunsExceededException,
  GetJobRunsCommand,
  GlueClient,
  InternalServiceException,
  StartJobRunCommand,
} from "@aws-sdk/client-glue";
import { StartRunError } from "@ingest/core";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { GlueJobs } from "../../src/glue-jobs.js";

const glue = mockClient(GlueClient);
const ARGS = { "--manifest_uri": "s3://b/manifests/r1.json", "--run_key": "r1" };
const ours = {
  Id: "jr_ours",
  JobRunState: "RUNNING" as const,
  Arguments: ARGS,
  StartedOn: new Date("2026-04-01T10:00:00Z"),
};
const other = { ...ours, Id: "jr_other", Arguments: { ...ARGS, "--run_key": "r0" } };

const internal = () => new InternalServiceException({ message: "internal", $metadata: { httpStatusCode: 500 } });
const concurrent = () =>
  new ConcurrentRunsExceededException({ message: "busy", $metadata: { httpStatusCode: 400, attempts: 1 } });

const sleeps: number[] = [];
function jobs() {
  return new GlueJobs(new GlueClient({}), "job", {
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    now: () => new Date("2026-04-01T10:00:05Z"),
  });
}

beforeEach(() => {
  glue.reset();
  sleeps.length = 0;
});

describe("GlueJobs.startRun", () => {
  it("answers with the run Glue started although StartJobRun's answer was lost (5xx)", async () => {
    glue.on(StartJobRunCommand).rejects(internal());
    glue.on(GetJobRunsCommand).resolves({ JobRuns: [other, ours] });

    expect(await jobs().startRun(ARGS)).toBe("jr_ours");
    expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(1);
  });

  it("a retry refused as ConcurrentRunsExceeded after an ambiguous try looks again, and finds its own run", async () => {
    glue.on(StartJobRunCommand).rejectsOnce(internal()).rejects(concurrent());
    glue
      .on(GetJobRunsCommand)
      .resolvesOnce({ JobRuns: [] })
      .resolves({ JobRuns: [ours] });

    expect(await jobs().startRun(ARGS)).toBe("jr_ours");
    expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(2);
    expect(sleeps).toEqual([250]);
  });

  it("a refusal of the first try means not started: no lookup, no retry", async () => {
    glue.on(StartJobRunCommand).rejects(concurrent());
    const error = await jobs()
      .startRun(ARGS)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StartRunError);
    expect((error as StartRunError).started).toBe("no");
    expect(glue.commandCalls(GetJobRunsCommand)).toHaveLength(0);
    expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(1);
  });

  it("an SDK retry underneath (attempts > 1) makes a refusal ambiguous", async () => {
    glue
      .on(StartJobRunCommand)
      .rejects(
        new ConcurrentRunsExceededException({ message: "busy", $metadata: { httpStatusCode: 400, attempts: 2 } }),
      );
    glue.on(GetJobRunsCommand).resolves({ JobRuns: [ours] });
    expect(await jobs().startRun(ARGS)).toBe("jr_ours");
  });

  it("gives up after its tries as 'unknown' when Glue never lists the run (the sweeper looks again later)", async () => {
    glue.on(StartJobRunCommand).rejects(internal());
    glue.on(GetJobRunsCommand).resolves({ JobRuns: [other] });
    const error = await jobs()
      .startRun(ARGS)
      .catch((e: unknown) => e);
    expect((error as StartRunError).started).toBe("unknown");
    expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(3);
    expect(sleeps).toEqual([250, 500]);
  });

  it("a refusal as ConcurrentRunsExceeded after an ambiguous try is retried while the run is not listed yet", async () => {
    // try 1 lost its answer (it started the run), try 2 meets that run, Glue's listing catches up only later
    glue.on(StartJobRunCommand).rejectsOnce(internal()).rejectsOnce(concurrent()).resolves({ JobRunId: "jr_third" });
    glue.on(GetJobRunsCommand).resolves({ JobRuns: [other] });
    expect(await jobs().startRun(ARGS)).toBe("jr_third");
    expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(3);
    expect(sleeps).toEqual([250, 500]);
  });

  it("after an ambiguous try, a plain refusal (access denied) ends the tries as 'may have started', for run r1", async () => {
    const denied = Object.assign(new Error("denied"), {
      name: "AccessDeniedException",
      $metadata: { httpStatusCode: 400 },
    });
    glue.on(StartJobRunCommand).rejectsOnce(internal()).rejects(denied);
    glue.on(GetJobRunsCommand).resolves({ JobRuns: [] });
    const error = await jobs()
      .startRun(ARGS)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StartRunError);
    expect(error).toMatchObject({ runKey: "r1", started: "unknown" });
    expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(2);
  });

  it("without a run key: no lookup, and the error names no run key", async () => {
    glue.on(StartJobRunCommand).rejects(internal());
    const error = await new GlueJobs(new GlueClient({}), "job", { sleep: async () => {}, maxStartAttempts: 1 })
      .startRun({ "--manifest_uri": "s3://b/m.json" })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ runKey: "(no run key)", started: "unknown" });
    expect(glue.commandCalls(GetJobRunsCommand)).toHaveLength(0);
  });

  it("an answer without a JobRunId is an error naming the job", async () => {
    glue.on(StartJobRunCommand).resolves({});
    await expect(jobs().startRun(ARGS)).rejects.toThrow(new Error("StartJobRun for job returned no JobRunId"));
  });

  it("by default pauses on the (fake) clock between tries: 250 ms, then 500 ms", async () => {
    vi.useFakeTimers();
    try {
      glue.on(StartJobRunCommand).rejectsOnce(internal()).rejectsOnce(internal()).resolves({ JobRunId: "jr_3" });
      glue.on(GetJobRunsCommand).resolves({ JobRuns: [] });
      const started = new GlueJobs(new GlueClient({}), "job").startRun(ARGS);
      await vi.advanceTimersByTimeAsync(249);
      expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(499);
      expect(glue.commandCalls(StartJobRunCommand)).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(1);
      expect(await started).toBe("jr_3");
    } finally {
      vi.useRealTimers();
    }
  });

  it("retries throttling (nothing started) and starts", async () => {
    glue
      .on(StartJobRunCommand)
      .rejectsOnce(
        Object.assign(new Error("slow down"), { name: "ThrottlingException", $metadata: { httpStatusCode: 400 } }),
      )
      .resolves({ JobRunId: "jr_new" });
    expect(await jobs().startRun(ARGS)).toBe("jr_new");
    expect(glue.commandCalls(GetJobRunsCommand)).toHaveLength(0);
  });
});
