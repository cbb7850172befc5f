/** The local Glue service through the real Glue SDK client: API shapes, MaxConcurrentRuns, end states, events. */
import {
  BatchStopJobRunCommand,
  GetJobRunCommand,
  GetJobRunsCommand,
  GlueClient,
  StartJobRunCommand,
} from "@aws-sdk/client-glue";
import { pipelineConfig, TWIN_STAGE } from "@ingest/core";
import type { SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientConfig } from "../../src/aws.js";
import { TWIN_NAMES } from "../../src/constants.js";
import type { ExecutionResult } from "../../src/glue/service.js";
import type { Twin } from "../../src/twin.js";
import { eventually, startTestTwin } from "../helpers/twin.js";

const JobName = TWIN_NAMES.glueJob;

describe("local Glue service", () => {
  let twin: Twin;
  let glue: GlueClient;
  const recorded: unknown[] = [];
  // each run waits for its own release (or abort)
  const release = new Map<string, (r: ExecutionResult) => void>();

  beforeAll(async () => {
    twin = await startTestTwin("glue-service", {
      handlers: {
        batcher: async () => ({ batchItemFailures: [] }),
        recorder: async (e: SQSEvent) => {
          for (const r of e.Records) recorded.push(JSON.parse(r.body));
          return { batchItemFailures: [] };
        },
        sweeper: async () => ({}),
      },
      executor: ({ id, signal }) =>
        new Promise<ExecutionResult>((resolve) => {
          release.set(id, resolve);
          signal.addEventListener("abort", () => resolve({ ok: false, error: "aborted" }));
        }),
      glueTimeoutMs: 3_000,
      sweepIntervalMs: 0,
    });
    glue = new GlueClient(clientConfig(twin.endpoints.glue));
  });
  afterAll(async () => {
    glue?.destroy();
    await twin?.stop();
  });

  const start = () => glue.send(new StartJobRunCommand({ JobName, Arguments: { "--run_key": "k1" } }));
  const state = async (RunId: string) =>
    (await glue.send(new GetJobRunCommand({ JobName, RunId }))).JobRun?.JobRunState;
  const eventOf = (id: string) =>
    recorded.find((e) => (e as { detail: { jobRunId: string } }).detail.jobRunId === id) as
      | { source: string; "detail-type": string; detail: Record<string, string> }
      | undefined;

  it("starts a run, refuses a second one while it is active (MaxConcurrentRuns), reports SUCCEEDED with an event", async () => {
    const { JobRunId } = await start();
    expect(JobRunId).toMatch(/^jr_[0-9a-f]{64}$/);
    const id = JobRunId ?? "";
    expect(await state(id)).toBe("RUNNING");
    await expect(start()).rejects.toMatchObject({
      name: "ConcurrentRunsExceededException",
      $metadata: { httpStatusCode: 400 },
    });
    expect(pipelineConfig(TWIN_STAGE).glue.maxConcurrentRuns).toBe(1);
    release.get(id)?.({ ok: true });
    await eventually("SUCCEEDED", async () => (await state(id)) === "SUCCEEDED");
    const event = await eventually("the state-change event at the recorder", () => eventOf(id));
    expect(event.source).toBe("aws.glue");
    expect(event["detail-type"]).toBe("Glue Job State Change");
    expect(event.detail).toEqual({
      jobName: JobName,
      severity: "INFO",
      state: "SUCCEEDED",
      jobRunId: id,
      message: "Job run succeeded",
    });
    const run = (await glue.send(new GetJobRunCommand({ JobName, RunId: id }))).JobRun;
    expect(run?.Arguments?.["--run_key"]).toBe("k1");
    expect(run?.StartedOn).toBeInstanceOf(Date);
    expect(run?.CompletedOn).toBeInstanceOf(Date);
  });

  it("reports FAILED with the executor's error as ErrorMessage and event message", async () => {
    const id = (await start()).JobRunId ?? "";
    release.get(id)?.({ ok: false, error: "ValueError: bad file" });
    await eventually("FAILED", async () => (await state(id)) === "FAILED");
    const run = (await glue.send(new GetJobRunCommand({ JobName, RunId: id }))).JobRun;
    expect(run?.ErrorMessage).toBe("ValueError: bad file");
    const event = await eventually("event", () => eventOf(id));
    expect(event.detail).toMatchObject({ state: "FAILED", severity: "ERROR", message: "ValueError: bad file" });
  });

  it("ends a run past its timeout as TIMEOUT", async () => {
    const id = (await start()).JobRunId ?? "";
    await eventually("TIMEOUT", async () => (await state(id)) === "TIMEOUT", 10_000);
    const event = await eventually("event", () => eventOf(id));
    expect(event.detail.state).toBe("TIMEOUT");
  });

  it("stops a run with BatchStopJobRun; lists runs newest first with GetJobRuns", async () => {
    const id = (await start()).JobRunId ?? "";
    const r = await glue.send(new BatchStopJobRunCommand({ JobName, JobRunIds: [id, "jr_unknown"] }));
    expect(r.SuccessfulSubmissions).toEqual([{ JobName, JobRunId: id }]);
    expect(r.Errors?.[0]?.JobRunId).toBe("jr_unknown");
    await eventually("STOPPED", async () => (await state(id)) === "STOPPED");
    const runs = (await glue.send(new GetJobRunsCommand({ JobName }))).JobRuns ?? [];
    expect(runs).toHaveLength(4);
    expect(runs[0]?.Id).toBe(id);
    expect(runs.map((x) => x.JobRunState)).toEqual(["STOPPED", "TIMEOUT", "FAILED", "SUCCEEDED"]);
  });

  it("answers unknown jobs and runs with EntityNotFoundException", async () => {
    await expect(glue.send(new GetJobRunCommand({ JobName: "nope", RunId: "x" }))).rejects.toMatchObject({
      name: "EntityNotFoundException",
    });
    await expect(glue.send(new GetJobRunCommand({ JobName, RunId: "jr_nope" }))).rejects.toMatchObject({
      name: "EntityNotFoundException",
    });
  });
});
