import { GetJobRunCommand, GlueClient, StartJobRunCommand } from "@aws-sdk/client-glue";
import { afterEach, describe, expect, it } from "vitest";
import { LocalGlueService } from "../../src/glue/service.js";

let service: LocalGlueService | null = null;
afterEach(async () => {
  await service?.stop();
  service = null;
});

async function startService() {
  service = new LocalGlueService({
    jobs: [
      {
        name: "job",
        maxConcurrentRuns: 2,
        timeoutMinutes: 30,
        glueVersion: "5.0",
        workerType: "G.1X",
        numberOfWorkers: 10,
      },
    ],
    // Runs until stopped: only what StartJobRun recorded matters here.
    executor: ({ signal }) =>
      new Promise((resolve) => signal.addEventListener("abort", () => resolve({ ok: false, error: "stopped" }))),
    publish: async () => {},
  });
  const endpoint = await service.start();
  return new GlueClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "x", secretAccessKey: "x" },
  });
}

describe("local Glue service: capacity per run", () => {
  it("records the capacity each run asked for, and the job's when it asked for none", async () => {
    const glue = await startService();

    const asked = await glue.send(
      new StartJobRunCommand({
        JobName: "job",
        WorkerType: "G.2X",
        NumberOfWorkers: 3,
        Timeout: 45,
        ExecutionClass: "FLEX",
      }),
    );
    const plain = await glue.send(new StartJobRunCommand({ JobName: "job" }));

    const runOf = async (id: string | undefined) =>
      (await glue.send(new GetJobRunCommand({ JobName: "job", RunId: id }))).JobRun;
    expect(await runOf(asked.JobRunId)).toMatchObject({
      WorkerType: "G.2X",
      NumberOfWorkers: 3,
      Timeout: 45,
      ExecutionClass: "FLEX",
    });
    expect(await runOf(plain.JobRunId)).toMatchObject({
      WorkerType: "G.1X",
      NumberOfWorkers: 10,
      Timeout: 30,
      ExecutionClass: "STANDARD",
    });
    expect(service?.listRuns().map((r) => r.numberOfWorkers)).toEqual(expect.arrayContaining([3, 10]));
  });
});
