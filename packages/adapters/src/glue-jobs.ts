import {
  GetJobRunCommand,
  GetJobRunsCommand,
  type GlueClient,
  type JobRun,
  StartJobRunCommand,
} from "@aws-sdk/client-glue";
import type { GlueJobRun, GlueRunner, RunCapacity } from "@ingest/core";

function toRun(r: JobRun): GlueJobRun {
  return {
    id: r.Id ?? "",
    state: r.JobRunState ?? "UNKNOWN",
    arguments: r.Arguments ?? {},
    errorMessage: r.ErrorMessage ?? null,
    startedOn: r.StartedOn ?? null,
  };
}

export class GlueJobs implements GlueRunner {
  constructor(
    private readonly glue: GlueClient,
    private readonly jobName: string,
  ) {}

  async startRun(args: Readonly<Record<string, string>>, capacity?: RunCapacity): Promise<string> {
    const r = await this.glue.send(
      new StartJobRunCommand({
        JobName: this.jobName,
        Arguments: { ...args },
        // Per-run overrides of the job's capacity (Timeout is in minutes, as on the job).
        ...(capacity
          ? {
              WorkerType: capacity.workerType,
              NumberOfWorkers: capacity.numberOfWorkers,
              Timeout: capacity.timeoutMinutes,
              ExecutionClass: capacity.executionClass,
            }
          : {}),
      }),
    );
    if (!r.JobRunId) throw new Error(`StartJobRun for ${this.jobName} returned no JobRunId`);
    return r.JobRunId;
  }

  async getRun(glueRunId: string): Promise<GlueJobRun | null> {
    try {
      const r = await this.glue.send(new GetJobRunCommand({ JobName: this.jobName, RunId: glueRunId }));
      return r.JobRun ? toRun(r.JobRun) : null;
    } catch (e) {
      if ((e as { name?: string }).name === "EntityNotFoundException") return null;
      throw e;
    }
  }

  async recentRuns(since: Date): Promise<GlueJobRun[]> {
    const out: GlueJobRun[] = [];
    let token: string | undefined;
    do {
      const r = await this.glue.send(
        new GetJobRunsCommand({ JobName: this.jobName, NextToken: token, MaxResults: 200 }),
      );
      for (const run of r.JobRuns ?? []) {
        if (run.StartedOn && run.StartedOn < since) return out;
        out.push(toRun(run));
      }
      token = r.NextToken;
    } while (token);
    return out;
  }
}
