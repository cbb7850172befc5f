/** GlueJobs' reading of runs (GetJobRun, GetJobRuns), with the SDK client mocked: what it sends, reads back, when it stops. */
import {
  BatchStopJobRunCommand,
  GetJobRunCommand,
  GetJobRunsCommand,
  GlueClient,
  type JobRun,
} from "@aws-sdk/client-glue";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { GlueJobs } from "../../src/glue-jobs.js";

const glue = mockClient(GlueClient);
const jobs = () => new GlueJobs(new GlueClient({ region: "us-east-1" }), "csv-ingest-dev-ingest-job");

function run(id: string, startedOn: string | null, extra: Partial<JobRun> = {}): JobRun {
  return { Id: id, JobRunState: "SUCCEEDED", ...(startedOn ? { StartedOn: new Date(startedOn) } : {}), ...extra };
}

beforeEach(() => {
  glue.reset();
});

describe("GlueJobs", () => {
  it("reads a run: id, state, arguments, error, start time, and the capacity and time Glue reports", async () => {
    glue.on(GetJobRunCommand).resolves({
      JobRun: run("jr_1", "2026-04-01T10:00:00Z", {
        JobRunState: "FAILED",
        Arguments: { "--run_key": "r1" },
        ErrorMessage: "boom",
        WorkerType: "G.2X",
        NumberOfWorkers: 6,
        ExecutionClass: "FLEX",
        ExecutionTime: 312,
        DPUSeconds: 3744,
      }),
    });

    expect(await jobs().getRun("jr_1")).toEqual({
      id: "jr_1",
      state: "FAILED",
      arguments: { "--run_key": "r1" },
      errorMessage: "boom",
      startedOn: new Date("2026-04-01T10:00:00Z"),
      usage: {
        workerType: "G.2X",
        numberOfWorkers: 6,
        executionClass: "FLEX",
        executionSeconds: 312,
        dpuSeconds: 3744,
      },
    });
    expect(glue.commandCalls(GetJobRunCommand)[0]?.args[0].input).toEqual({
      JobName: "csv-ingest-dev-ingest-job",
      RunId: "jr_1",
    });
  });

  it("fills what Glue leaves out with empty values, never undefined", async () => {
    glue.on(GetJobRunCommand).resolves({ JobRun: {} });

    expect(await jobs().getRun("jr_1")).toEqual({
      id: "",
      state: "UNKNOWN",
      arguments: {},
      errorMessage: null,
      startedOn: null,
      usage: {
        workerType: null,
        numberOfWorkers: null,
        executionClass: null,
        executionSeconds: null,
        dpuSeconds: null,
      },
    });
  });

  it("abandons a GetJobRun that gets no answer in time (a hanging endpoint must not hold a run's close)", async () => {
    glue.on(GetJobRunCommand).callsFake(() => new Promise(() => undefined));
    const quick = new GlueJobs(new GlueClient({ region: "us-east-1" }), "csv-ingest-dev-ingest-job", {
      readTimeoutMs: 30,
    });
    const started = Date.now();
    await expect(quick.getRun("jr_1")).rejects.toThrow("GetJobRun jr_1: no answer within 30 ms");
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("answers null for a run Glue does not know (or an empty answer), and throws any other error", async () => {
    glue
      .on(GetJobRunCommand, { RunId: "gone" })
      .rejects(Object.assign(new Error("no"), { name: "EntityNotFoundException" }));
    glue.on(GetJobRunCommand, { RunId: "empty" }).resolves({});
    glue
      .on(GetJobRunCommand, { RunId: "denied" })
      .rejects(Object.assign(new Error("denied"), { name: "AccessDeniedException" }));

    expect(await jobs().getRun("gone")).toBeNull();
    expect(await jobs().getRun("empty")).toBeNull();
    await expect(jobs().getRun("denied")).rejects.toThrow("denied");
  });

  it("lists recent runs newest first across pages, and stops at the first run older than `since`", async () => {
    glue
      .on(GetJobRunsCommand, { NextToken: undefined })
      .resolves({ JobRuns: [run("jr_4", "2026-04-01T10:04:00Z"), run("jr_3", null)], NextToken: "t2" });
    glue.on(GetJobRunsCommand, { NextToken: "t2" }).resolves({
      JobRuns: [run("jr_2", "2026-04-01T10:02:00Z"), run("jr_1", "2026-04-01T09:59:59Z")],
      NextToken: "t3",
    });
    glue.on(GetJobRunsCommand, { NextToken: "t3" }).resolves({ JobRuns: [run("jr_0", "2026-04-01T09:00:00Z")] });

    const runs = await jobs().recentRuns(new Date("2026-04-01T10:00:00Z"));

    expect(runs.map((r) => r.id)).toEqual(["jr_4", "jr_3", "jr_2"]);
    expect(glue.commandCalls(GetJobRunsCommand).map((c) => c.args[0].input)).toEqual([
      { JobName: "csv-ingest-dev-ingest-job", NextToken: undefined, MaxResults: 200 },
      { JobName: "csv-ingest-dev-ingest-job", NextToken: "t2", MaxResults: 200 },
    ]);
  });

  it("keeps a run that started exactly at `since`, and reads every page when none is older", async () => {
    glue
      .on(GetJobRunsCommand, { NextToken: undefined })
      .resolves({ JobRuns: [run("jr_2", "2026-04-01T10:00:01Z")], NextToken: "t2" });
    glue.on(GetJobRunsCommand, { NextToken: "t2" }).resolves({ JobRuns: [run("jr_1", "2026-04-01T10:00:00Z")] });
    glue.on(GetJobRunsCommand, { NextToken: "t3" }).resolves({ JobRuns: [] });

    const runs = await jobs().recentRuns(new Date("2026-04-01T10:00:00Z"));

    expect(runs.map((r) => r.id)).toEqual(["jr_2", "jr_1"]);
    expect(glue.commandCalls(GetJobRunsCommand)).toHaveLength(2);
  });

  it("a job that never ran: GetJobRuns answers without JobRuns, and no run is listed", async () => {
    glue.on(GetJobRunsCommand).resolves({});
    expect(await jobs().recentRuns(new Date("2026-04-01T10:00:00Z"))).toEqual([]);
  });

  it("stops a run with BatchStopJobRun (the job and the one run id)", async () => {
    glue.on(BatchStopJobRunCommand).resolves({ SuccessfulSubmissions: [{ JobRunId: "jr_1" }], Errors: [] });
    await jobs().stopRun("jr_1");
    expect(glue.commandCalls(BatchStopJobRunCommand)[0]?.args[0].input).toEqual({
      JobName: "csv-ingest-dev-ingest-job",
      JobRunIds: ["jr_1"],
    });
    expect(glue.commandCalls(GetJobRunCommand)).toHaveLength(0);
  });

  it("a stop Glue refuses (the run has ended, or is unknown) throws with Glue's reason", async () => {
    glue.on(BatchStopJobRunCommand).resolves({
      Errors: [{ JobRunId: "jr_1", ErrorDetail: { ErrorCode: "InvalidInputException", ErrorMessage: "not running" } }],
    });
    await expect(jobs().stopRun("jr_1")).rejects.toThrow(/BatchStopJobRun jr_1: InvalidInputException: not running/);
    // an error about another run id is not this run's
    glue.on(BatchStopJobRunCommand).resolves({
      SuccessfulSubmissions: [{ JobRunId: "jr_1" }],
      Errors: [{ JobRunId: "jr_9", ErrorDetail: { ErrorCode: "InvalidInputException", ErrorMessage: "unknown" } }],
    });
    await jobs().stopRun("jr_1");
    glue.on(BatchStopJobRunCommand).resolves({ Errors: [{ JobRunId: "jr_1", ErrorDetail: {} }] });
    await expect(jobs().stopRun("jr_1")).rejects.toThrow(/^BatchStopJobRun jr_1: error: $/);
  });
});
