/**
 * The local Glue service's AWS-shaped failures (the fault layer's hooks, driven here by scripted answers) through
 * the real Glue SDK client: errors before and after a run starts, WAITING → FAILED, an internal failure after the
 * job ran, a run that still holds its concurrency slot after its event; and GetJobRun's own arguments.
 */
import { GetJobRunCommand, GetJobRunsCommand, GlueClient, StartJobRunCommand } from "@aws-sdk/client-glue";
import { afterEach, describe, expect, it } from "vitest";
import { clientConfig } from "../../src/aws.js";
import { FaultDice, faultConfig } from "../../src/faults/config.js";
import { faultyPublisher } from "../../src/faults/glue.js";
import type { GlueJobStateChangeDetail } from "../../src/glue/events.js";
import { type GlueFaults, type GlueRunLogLine, LocalGlueService } from "../../src/glue/service.js";
import { eventually } from "../helpers/twin.js";

const JobName = "job";
const noFaults: GlueFaults = {
  startError: () => null,
  waitingThenFail: () => null,
  internalFailure: () => null,
  slotReleaseLagMs: () => 0,
};

let service: LocalGlueService | null = null;
let glue: GlueClient | null = null;
afterEach(async () => {
  glue?.destroy();
  await service?.stop();
  service = null;
});

async function start(faults: Partial<GlueFaults>, executed: string[] = [], events: GlueJobStateChangeDetail[] = []) {
  const runLog: GlueRunLogLine[] = [];
  service = new LocalGlueService({
    jobs: [
      {
        name: JobName,
        maxConcurrentRuns: 1,
        timeoutMinutes: 1,
        glueVersion: "5.0",
        workerType: "G.1X",
        numberOfWorkers: 2,
        defaultArguments: { "--job-bookmark-option": "job-bookmark-disable", "--run_key": "default" },
      },
    ],
    executor: async ({ id, arguments: args }) => {
      executed.push(`${id.slice(0, 6)} ${args["--job-bookmark-option"]} ${args["--run_key"]}`);
      return { ok: true };
    },
    publish: async (d) => {
      events.push(d);
    },
    faults: { ...noFaults, ...faults },
    runLog: (l) => runLog.push(l),
  });
  glue = new GlueClient({ ...clientConfig(await service.start()), maxAttempts: 1 });
  return { runLog, glue };
}

const runs = async (g: GlueClient) => (await g.send(new GetJobRunsCommand({ JobName }))).JobRuns ?? [];

describe("local Glue service: AWS's failures", () => {
  it("InternalServiceException before the start: no run exists", async () => {
    const { glue: g } = await start({
      startError: () => ({ when: "before", type: "InternalServiceException", message: "x" }),
    });
    await expect(g.send(new StartJobRunCommand({ JobName }))).rejects.toMatchObject({
      name: "InternalServiceException",
    });
    expect(await runs(g)).toEqual([]);
  });

  it("OperationTimeoutException AFTER the start: the caller saw an error, yet the run exists and runs", async () => {
    let first = true;
    const executed: string[] = [];
    const { glue: g } = await start(
      {
        startError: () => {
          if (!first) return null;
          first = false;
          return { when: "after", type: "OperationTimeoutException", message: "timed out" };
        },
      },
      executed,
    );
    await expect(g.send(new StartJobRunCommand({ JobName }))).rejects.toMatchObject({
      name: "OperationTimeoutException",
    });
    const listed = await runs(g);
    expect(listed).toHaveLength(1);
    await eventually("the run ran", () => executed.length === 1, 5_000, 20);
  });

  it("WAITING, then FAILED without running the job; the run log shows each state", async () => {
    const executed: string[] = [];
    const events: GlueJobStateChangeDetail[] = [];
    const { glue: g, runLog } = await start(
      { waitingThenFail: () => ({ waitMs: 300, message: "Resource unavailable" }) },
      executed,
      events,
    );
    const { JobRunId } = await g.send(new StartJobRunCommand({ JobName }));
    await eventually(
      "WAITING",
      async () => (await g.send(new GetJobRunCommand({ JobName, RunId: JobRunId }))).JobRun?.JobRunState === "WAITING",
      2_000,
      20,
    );
    await eventually(
      "FAILED",
      async () => (await g.send(new GetJobRunCommand({ JobName, RunId: JobRunId }))).JobRun?.JobRunState === "FAILED",
      3_000,
      20,
    );
    expect(executed).toEqual([]);
    expect(events.map((e) => `${e.state} ${e.message}`)).toEqual(["FAILED Resource unavailable"]);
    expect(runLog.map((l) => l.state)).toEqual(["STARTING", "WAITING", "FAILED"]);
  });

  it("an internal failure after the job ran ends the run FAILED with that error", async () => {
    const executed: string[] = [];
    const { glue: g } = await start({ internalFailure: () => "InternalServiceException: boom" }, executed);
    const { JobRunId } = await g.send(new StartJobRunCommand({ JobName }));
    await service?.idle();
    const run = (await g.send(new GetJobRunCommand({ JobName, RunId: JobRunId }))).JobRun;
    expect(executed).toHaveLength(1);
    expect(run).toMatchObject({ JobRunState: "FAILED", ErrorMessage: "InternalServiceException: boom" });
  });

  it("a run whose event is out can still hold the slot: the next StartJobRun races MaxConcurrentRuns", async () => {
    const events: GlueJobStateChangeDetail[] = [];
    const { glue: g } = await start({ slotReleaseLagMs: () => 400 }, [], events);
    await g.send(new StartJobRunCommand({ JobName }));
    await eventually("the end event", () => events.length === 1, 3_000, 10);
    await expect(g.send(new StartJobRunCommand({ JobName }))).rejects.toMatchObject({
      name: "ConcurrentRunsExceededException",
    });
    await eventually(
      "the slot freed",
      async () => Boolean((await g.send(new StartJobRunCommand({ JobName }))).JobRunId),
      3_000,
      50,
    );
  });

  it("GetJobRun returns the run's own arguments; the job sees the defaults overlaid with them", async () => {
    const executed: string[] = [];
    const { glue: g } = await start({}, executed);
    const { JobRunId } = await g.send(new StartJobRunCommand({ JobName, Arguments: { "--run_key": "r1" } }));
    await service?.idle();
    const run = (await g.send(new GetJobRunCommand({ JobName, RunId: JobRunId }))).JobRun;
    expect(run?.Arguments).toEqual({ "--run_key": "r1" });
    expect(executed.map((e) => e.split(" ").slice(1).join(" "))).toEqual(["job-bookmark-disable r1"]);
  });
});

describe("state-change events through the fault layer", () => {
  it("lost (never published) or published twice, as the dice say", async () => {
    const out: string[] = [];
    const detail = { jobName: "j", severity: "INFO", state: "SUCCEEDED", jobRunId: "jr_1", message: "ok" } as const;
    const publish = async (d: GlueJobStateChangeDetail) => {
      out.push(d.jobRunId);
    };
    await faultyPublisher(publish, new FaultDice(faultConfig({ rates: { glueEventLost: 1 } })))(detail);
    expect(out).toEqual([]);
    await faultyPublisher(publish, new FaultDice(faultConfig({ rates: { glueEventDuplicate: 1 } })))(detail);
    expect(out).toEqual(["jr_1", "jr_1"]);
  });
});
