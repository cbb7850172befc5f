import { GlueClient, StartJobRunCommand } from "@aws-sdk/client-glue";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { GlueJobs } from "../../src/glue-jobs.js";

const glueMock = mockClient(GlueClient);
afterEach(() => glueMock.reset());

describe("GlueJobs.startRun", () => {
  it("sends the run's capacity as StartJobRun overrides (Timeout in minutes)", async () => {
    glueMock.on(StartJobRunCommand).resolves({ JobRunId: "jr_1" });
    const jobs = new GlueJobs(new GlueClient({ region: "eu-west-1" }), "ingest-job");

    const id = await jobs.startRun(
      { "--run_key": "r1" },
      { workerType: "G.2X", numberOfWorkers: 7, timeoutMinutes: 45, executionClass: "FLEX" },
    );

    expect(id).toBe("jr_1");
    expect(glueMock.commandCalls(StartJobRunCommand).map((c) => c.args[0].input)).toEqual([
      {
        JobName: "ingest-job",
        Arguments: { "--run_key": "r1" },
        WorkerType: "G.2X",
        NumberOfWorkers: 7,
        Timeout: 45,
        ExecutionClass: "FLEX",
      },
    ]);
  });

  it("sends no overrides without a capacity (the job's own applies)", async () => {
    glueMock.on(StartJobRunCommand).resolves({ JobRunId: "jr_2" });
    const jobs = new GlueJobs(new GlueClient({ region: "eu-west-1" }), "ingest-job");

    await jobs.startRun({ "--run_key": "r2" });

    expect(glueMock.commandCalls(StartJobRunCommand)[0]?.args[0].input).toEqual({
      JobName: "ingest-job",
      Arguments: { "--run_key": "r2" },
    });
  });
});
