import {
  BatchStopJobRunCommand,
  GetJobRunCommand,
  GetJobRunsCommand,
  type GlueClient,
  type JobRun,
  StartJobRunCommand,
} from "@aws-sdk/client-glue";
import {
  GLUE_ARGUMENTS,
  type GlueJobRun,
  type GlueRunner,
  isRetryableStartError,
  type RunCapacity,
  StartRunError,
  startFailureKind,
} from "@ingest/core";

function toRun(r: JobRun): GlueJobRun {
  return {
    id: r.Id ?? "",
    state: r.JobRunState ?? "UNKNOWN",
    arguments: r.Arguments ?? {},
    errorMessage: r.ErrorMessage ?? null,
    startedOn: r.StartedOn ?? null,
    usage: {
      workerType: r.WorkerType ?? null,
      numberOfWorkers: r.NumberOfWorkers ?? null,
      executionClass: r.ExecutionClass ?? null,
      executionSeconds: r.ExecutionTime ?? null,
      dpuSeconds: r.DPUSeconds ?? null,
    },
  };
}

export interface GlueJobsOptions {
  /**
   * The client StartJobRun goes through. Give it `maxAttempts: 1`: StartJobRun has no idempotency token, so an SDK
   * retry after a lost answer may meet the run its first try started (ConcurrentRunsExceeded) and hide that it did.
   * The adapter retries itself, and looks the run up by its run key between tries. Default: the main client.
   */
  readonly startClient?: GlueClient;
  /** Tries of StartJobRun (default 3). */
  readonly maxStartAttempts?: number;
  /** Pause before try n+1: `startBackoffMs * 2^(n-1)` (default 250 ms). */
  readonly startBackoffMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => Date;
  /**
   * GetJobRun is abandoned (SDK retries included) after this long (default 5,000 ms): the recorder reads each ended
   * run's figures before closing it, and a hanging endpoint must not keep the close past its Lambda's timeout.
   */
  readonly readTimeoutMs?: number;
}

/** How far back a lookup by run key reads the job's runs (a start's tries span seconds). */
const LOOKUP_WINDOW_MS = 60 * 60_000;

export class GlueJobs implements GlueRunner {
  private readonly startClient: GlueClient;
  private readonly maxStartAttempts: number;
  private readonly startBackoffMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => Date;
  private readonly readTimeoutMs: number;

  constructor(
    private readonly glue: GlueClient,
    private readonly jobName: string,
    options: GlueJobsOptions = {},
  ) {
    this.startClient = options.startClient ?? glue;
    this.maxStartAttempts = options.maxStartAttempts ?? 3;
    this.startBackoffMs = options.startBackoffMs ?? 250;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.now = options.now ?? (() => new Date());
    this.readTimeoutMs = options.readTimeoutMs ?? 5_000;
  }

  /**
   * StartJobRun, tried up to maxStartAttempts times. Once a try may have applied (5xx, timeout, dropped connection,
   * or an SDK retry underneath), Glue is asked for a run carrying our run key before anything else: found, it is the
   * answer. Throws StartRunError saying whether a run may exist ("unknown") or certainly does not ("no").
   * The command input is built by `startInput` (one place to add job-run overrides such as capacity).
   */
  async startRun(args: Readonly<Record<string, string>>, capacity?: RunCapacity): Promise<string> {
    const runKey = args[`--${GLUE_ARGUMENTS.runKey}`] ?? null;
    const since = new Date(this.now().getTime() - LOOKUP_WINDOW_MS);
    let ambiguous = false;
    for (let attempt = 1; ; attempt++) {
      let id: string | undefined;
      try {
        id = (await this.startClient.send(new StartJobRunCommand(this.startInput(args, capacity)))).JobRunId;
      } catch (e) {
        const kind = startFailureKind(e);
        if (kind === "unknown") ambiguous = true;
        if (ambiguous && runKey) {
          const found = await this.findByRunKey(runKey, since).catch(() => null);
          if (found) return found.id;
        }
        const concurrentAfterAmbiguity =
          ambiguous && (e as { name?: string }).name === "ConcurrentRunsExceededException";
        if (attempt >= this.maxStartAttempts || !(isRetryableStartError(e) || concurrentAfterAmbiguity)) {
          throw new StartRunError(runKey ?? "(no run key)", ambiguous ? "unknown" : kind, e);
        }
        await this.sleep(this.startBackoffMs * 2 ** (attempt - 1));
        continue;
      }
      if (!id) throw new Error(`StartJobRun for ${this.jobName} returned no JobRunId`);
      return id;
    }
  }

  /** StartJobRun's input for one run. */
  protected startInput(args: Readonly<Record<string, string>>, capacity?: RunCapacity) {
    return {
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
    };
  }

  /** The job's run carrying `runKey` in its arguments, among runs started since `since`. */
  async findByRunKey(runKey: string, since: Date): Promise<GlueJobRun | null> {
    const runs = await this.recentRuns(since);
    return runs.find((r) => r.arguments[`--${GLUE_ARGUMENTS.runKey}`] === runKey) ?? null;
  }

  async getRun(glueRunId: string): Promise<GlueJobRun | null> {
    try {
      const signal = AbortSignal.timeout(this.readTimeoutMs);
      const timedOut = new Promise<never>((_, reject) =>
        signal.addEventListener(
          "abort",
          () => reject(new Error(`GetJobRun ${glueRunId}: no answer within ${this.readTimeoutMs} ms`)),
          { once: true },
        ),
      );
      const r = await Promise.race([
        this.glue.send(new GetJobRunCommand({ JobName: this.jobName, RunId: glueRunId }), { abortSignal: signal }),
        timedOut,
      ]);
      return r.JobRun ? toRun(r.JobRun) : null;
    } catch (e) {
      if ((e as { name?: string }).name === "EntityNotFoundException") return null;
      throw e;
    }
  }

  /** BatchStopJobRun of one run; throws with Glue's reason when it refuses (e.g. the run has ended already). */
  async stopRun(glueRunId: string): Promise<void> {
    const r = await this.glue.send(new BatchStopJobRunCommand({ JobName: this.jobName, JobRunIds: [glueRunId] }));
    const error = r.Errors?.find((e) => e.JobRunId === glueRunId)?.ErrorDetail;
    if (error)
      throw new Error(`BatchStopJobRun ${glueRunId}: ${error.ErrorCode ?? "error"}: ${error.ErrorMessage ?? ""}`);
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
