/**
 * The local Glue service: the part of the Glue API the pipeline uses (AWS JSON 1.1 over HTTP: StartJobRun,
 * GetJobRun, GetJobRuns, BatchStopJobRun, GetJob), so the handlers' Glue SDK client talks to it through
 * AWS_ENDPOINT_URL_GLUE. It enforces MaxConcurrentRuns, runs each job run through an executor (the real job on local
 * Spark), applies the job timeout, and publishes a "Glue Job State Change" event when a run ends. Data Catalog calls
 * (databases, tables, partitions) are passed to the emulator, which keeps the catalog (moto's Glue Data Catalog), so
 * a client pointed at AWS_ENDPOINT_URL_GLUE sees one Glue API, as on AWS.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import { messageOf } from "../errors.js";
import { freePort } from "../moto.js";
import { type StateChangePublisher, stateChangeDetail, type TerminalRunState } from "./events.js";

/** The Glue Data Catalog's operations: the local Glue service passes them to the emulator (`GlueServiceOptions.catalog`). */
export const DATA_CATALOG_OPERATIONS: ReadonlySet<string> = new Set([
  "CreateDatabase",
  "GetDatabase",
  "GetDatabases",
  "UpdateDatabase",
  "DeleteDatabase",
  "CreateTable",
  "GetTable",
  "GetTables",
  "UpdateTable",
  "DeleteTable",
  "BatchDeleteTable",
  "GetTableVersion",
  "GetTableVersions",
  "DeleteTableVersion",
  "BatchDeleteTableVersion",
  "SearchTables",
  "CreatePartition",
  "BatchCreatePartition",
  "GetPartition",
  "GetPartitions",
  "BatchGetPartition",
  "UpdatePartition",
  "BatchUpdatePartition",
  "DeletePartition",
  "BatchDeletePartition",
]);

export type JobRunState = "STARTING" | "WAITING" | "RUNNING" | "STOPPING" | TerminalRunState;
const ACTIVE: readonly JobRunState[] = ["STARTING", "WAITING", "RUNNING", "STOPPING"];

export interface GlueJobDefinition {
  readonly name: string;
  readonly maxConcurrentRuns: number;
  readonly timeoutMinutes: number;
  readonly glueVersion: string;
  readonly workerType: string;
  readonly numberOfWorkers: number;
  readonly defaultArguments?: Readonly<Record<string, string>>;
}

export interface JobRunRecord {
  readonly id: string;
  readonly jobName: string;
  state: JobRunState;
  /** The run's own arguments, as StartJobRun got them (what GetJobRun returns, as on AWS). */
  readonly arguments: Record<string, string>;
  /** The job's default arguments overlaid with the run's: what the script sees. */
  readonly effectiveArguments: Record<string, string>;
  errorMessage: string | null;
  readonly startedOn: Date;
  lastModifiedOn: Date;
  completedOn: Date | null;
  readonly timeoutMinutes: number;
  /** The capacity the run asked for (StartJobRun's overrides), else the job's: recorded, not emulated. */
  readonly workerType: string;
  readonly numberOfWorkers: number;
  readonly executionClass: string;
}

export type ExecutionResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

/** Runs one job run to its end; must stop promptly when `signal` aborts. */
export type JobExecutor = (run: {
  readonly id: string;
  readonly jobName: string;
  readonly arguments: Readonly<Record<string, string>>;
  readonly signal: AbortSignal;
}) => Promise<ExecutionResult>;

/** The fault layer's hooks into the service (see src/faults/glue.ts); absent = no faults. */
export interface GlueFaults {
  /** For one StartJobRun: answer this error before the run starts, or after starting it, or nothing. */
  startError(): { readonly when: "before" | "after"; readonly type: string; readonly message: string } | null;
  /** For one run: wait this long in WAITING, then end FAILED without running the job (null: run normally). */
  waitingThenFail(): { readonly waitMs: number; readonly message: string } | null;
  /** For one run that ran: end FAILED with this internal error instead of its own result (null: its own result). */
  internalFailure(): string | null;
  /** For one run: keep counting it against MaxConcurrentRuns this long after its end (its event is already out). */
  slotReleaseLagMs(): number;
}

/** One line of the service's own run log (`glue-runs.jsonl`): each start and each state change of each run. */
export interface GlueRunLogLine {
  readonly t: string;
  readonly jobRunId: string;
  readonly state: JobRunState;
  readonly message?: string;
}

export interface GlueServiceOptions {
  readonly jobs: readonly GlueJobDefinition[];
  readonly executor: JobExecutor;
  readonly publish: StateChangePublisher;
  /** Test-only: a run timeout in milliseconds instead of the job's timeoutMinutes. */
  readonly timeoutMsOverride?: number | undefined;
  readonly log?: { info(m: string): void; warn(m: string): void } | undefined;
  readonly faults?: GlueFaults | undefined;
  /** Every state change of every run (the soak checks "never two runs active at once" from it). */
  readonly runLog?: ((line: GlueRunLogLine) => void) | undefined;
  /** The emulator's endpoint: Data Catalog calls (DATA_CATALOG_OPERATIONS) are passed to it (absent: refused). */
  readonly catalog?: string | undefined;
}

class GlueApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

const epochSeconds = (d: Date | null) => (d ? d.getTime() / 1000 : undefined);

export class LocalGlueService {
  private server: Server | null = null;
  private readonly runs = new Map<string, JobRunRecord>();
  private readonly controllers = new Map<string, { abort: AbortController; reason: "timeout" | "stop" | null }>();
  private readonly finished = new Set<Promise<void>>();
  /** Ended runs that still hold a concurrency slot (GlueFaults.slotReleaseLagMs), until the time given. */
  private readonly lingering = new Map<string, number>();
  private readonly jobs: Map<string, GlueJobDefinition>;
  endpoint = "";

  constructor(private readonly opts: GlueServiceOptions) {
    this.jobs = new Map(opts.jobs.map((j) => [j.name, j]));
  }

  async start(port = 0): Promise<string> {
    const p = await freePort(port);
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server?.once("error", reject);
      this.server?.listen(p, "127.0.0.1", () => resolve());
    });
    this.endpoint = `http://127.0.0.1:${p}`;
    return this.endpoint;
  }

  /** Stops every active run (STOPPED, with its event) and closes the server. */
  async stop(): Promise<void> {
    for (const [id, c] of this.controllers) {
      const run = this.runs.get(id);
      if (run && ACTIVE.includes(run.state)) {
        c.reason = "stop";
        c.abort.abort();
      }
    }
    await Promise.allSettled([...this.finished]);
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server?.closeAllConnections();
    this.server = null;
  }

  listRuns(): JobRunRecord[] {
    return [...this.runs.values()].sort((a, b) => b.startedOn.getTime() - a.startedOn.getTime());
  }

  /** Resolves when no run is active. */
  async idle(): Promise<void> {
    while (this.finished.size > 0) await Promise.allSettled([...this.finished]);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const target = String(req.headers["x-amz-target"] ?? "");
    const op = target.startsWith("AWSGlue.") ? target.slice("AWSGlue.".length) : target;
    if (this.opts.catalog && DATA_CATALOG_OPERATIONS.has(op)) {
      await this.passToCatalog(this.opts.catalog, req, Buffer.concat(chunks), res);
      return;
    }
    let status = 200;
    let body: unknown;
    try {
      const input = chunks.length
        ? (JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>)
        : {};
      body = this.dispatch(op, input);
    } catch (e) {
      status = 400;
      body =
        e instanceof GlueApiError
          ? { __type: e.type, message: e.message }
          : { __type: "InvalidInputException", message: messageOf(e) };
    }
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/x-amz-json-1.1",
      "content-length": Buffer.byteLength(text),
      "x-amzn-requestid": randomBytes(16).toString("hex"),
      ...(status !== 200 ? { "x-amzn-errortype": (body as { __type: string }).__type } : {}),
    });
    res.end(text);
  }

  /** The request as it came (the emulator ignores signatures), the emulator's answer as it is. */
  private async passToCatalog(endpoint: string, req: IncomingMessage, body: Buffer, res: ServerResponse) {
    const target = new URL(endpoint);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && k !== "connection") headers[k] = v;
    headers.host = target.host;
    headers["content-length"] = String(body.length);
    try {
      const answer = await new Promise<{ status: number; headers: Record<string, string>; body: Buffer }>(
        (resolve, reject) => {
          const up = request(
            { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
            (r) => {
              const got: Buffer[] = [];
              r.on("data", (c: Buffer) => got.push(c));
              r.on("error", reject);
              r.on("end", () => {
                const h: Record<string, string> = {};
                for (const k of ["content-type", "x-amzn-requestid", "x-amzn-errortype"]) {
                  const v = r.headers[k];
                  if (typeof v === "string") h[k] = v;
                }
                resolve({ status: r.statusCode ?? 502, headers: h, body: Buffer.concat(got) });
              });
            },
          );
          up.on("error", reject);
          up.end(body);
        },
      );
      res.writeHead(answer.status, { ...answer.headers, "content-length": answer.body.length });
      res.end(answer.body);
    } catch (e) {
      const text = JSON.stringify({ __type: "InternalServiceException", message: `Data Catalog: ${messageOf(e)}` });
      res.writeHead(500, {
        "content-type": "application/x-amz-json-1.1",
        "content-length": Buffer.byteLength(text),
        "x-amzn-errortype": "InternalServiceException",
      });
      res.end(text);
    }
  }

  private dispatch(op: string, input: Record<string, unknown>): unknown {
    switch (op) {
      case "StartJobRun":
        return this.startJobRun(input);
      case "GetJobRun":
        return { JobRun: this.view(this.runOf(input.JobName, input.RunId)) };
      case "GetJobRuns":
        return this.getJobRuns(input);
      case "BatchStopJobRun":
        return this.batchStop(input);
      case "GetJob":
        return { Job: this.jobView(this.job(input.JobName)) };
      default:
        throw new GlueApiError("UnknownOperationException", `the local Glue service does not implement ${op || "?"}`);
    }
  }

  private job(name: unknown): GlueJobDefinition {
    const job = typeof name === "string" ? this.jobs.get(name) : undefined;
    if (!job) throw new GlueApiError("EntityNotFoundException", `Job ${String(name)} not found`);
    return job;
  }

  private runOf(jobName: unknown, runId: unknown): JobRunRecord {
    const job = this.job(jobName);
    const run = typeof runId === "string" ? this.runs.get(runId) : undefined;
    if (!run || run.jobName !== job.name) {
      throw new GlueApiError("EntityNotFoundException", `Job run ${String(runId)} not found`);
    }
    return run;
  }

  private startJobRun(input: Record<string, unknown>): unknown {
    const job = this.job(input.JobName);
    const injected = this.opts.faults?.startError() ?? null;
    if (injected?.when === "before") throw new GlueApiError(injected.type, injected.message);
    const now = new Date();
    for (const [id, until] of this.lingering) if (until <= now.getTime()) this.lingering.delete(id);
    const active = [...this.runs.values()].filter(
      (r) => r.jobName === job.name && (ACTIVE.includes(r.state) || this.lingering.has(r.id)),
    );
    if (active.length >= job.maxConcurrentRuns) {
      throw new GlueApiError(
        "ConcurrentRunsExceededException",
        `Concurrent runs exceeded for ${job.name}: ${active.length} active, MaxConcurrentRuns ${job.maxConcurrentRuns}`,
      );
    }
    const own = { ...((input.Arguments as Record<string, string>) ?? {}) };
    const run: JobRunRecord = {
      id: `jr_${randomBytes(32).toString("hex")}`,
      jobName: job.name,
      state: "STARTING",
      arguments: own,
      effectiveArguments: { ...(job.defaultArguments ?? {}), ...own },
      errorMessage: null,
      startedOn: now,
      lastModifiedOn: now,
      completedOn: null,
      timeoutMinutes: typeof input.Timeout === "number" ? input.Timeout : job.timeoutMinutes,
      workerType: typeof input.WorkerType === "string" ? input.WorkerType : job.workerType,
      numberOfWorkers: typeof input.NumberOfWorkers === "number" ? input.NumberOfWorkers : job.numberOfWorkers,
      executionClass: typeof input.ExecutionClass === "string" ? input.ExecutionClass : "STANDARD",
    };
    this.runs.set(run.id, run);
    this.logRun(run);
    const done = this.execute(run).finally(() => this.finished.delete(done));
    this.finished.add(done);
    // The run is started; the answer may still be an error (the caller must find out, not assume).
    if (injected?.when === "after") throw new GlueApiError(injected.type, injected.message);
    return { JobRunId: run.id };
  }

  private async execute(run: JobRunRecord): Promise<void> {
    const control = { abort: new AbortController(), reason: null as "timeout" | "stop" | null };
    this.controllers.set(run.id, control);
    const timeoutMs = this.opts.timeoutMsOverride ?? run.timeoutMinutes * 60_000;
    const timer = setTimeout(() => {
      control.reason = "timeout";
      control.abort.abort();
    }, timeoutMs);
    let result: ExecutionResult;
    try {
      await Promise.resolve();
      const waiting = this.opts.faults?.waitingThenFail() ?? null;
      if (waiting && run.state === "STARTING") {
        this.setState(run, "WAITING");
        await abortableSleep(waiting.waitMs, control.abort.signal);
        result = { ok: false, error: waiting.message };
      } else {
        if (run.state === "STARTING") this.setState(run, "RUNNING");
        result = await this.opts.executor({
          id: run.id,
          jobName: run.jobName,
          arguments: run.effectiveArguments,
          signal: control.abort.signal,
        });
        const internal = this.opts.faults?.internalFailure() ?? null;
        if (internal && !control.reason) result = { ok: false, error: internal };
      }
    } catch (e) {
      result = { ok: false, error: messageOf(e) };
    } finally {
      clearTimeout(timer);
      this.controllers.delete(run.id);
    }
    let end: TerminalRunState;
    if (control.reason === "timeout") {
      end = "TIMEOUT";
      run.errorMessage = `Job run timed out after ${Math.round(timeoutMs / 1000)} s`;
    } else if (control.reason === "stop") {
      end = "STOPPED";
    } else if (result.ok) {
      end = "SUCCEEDED";
    } else {
      end = "FAILED";
      run.errorMessage = result.error;
    }
    run.completedOn = new Date();
    const lag = this.opts.faults?.slotReleaseLagMs() ?? 0;
    if (lag > 0) this.lingering.set(run.id, run.completedOn.getTime() + lag);
    this.setState(run, end);
    this.opts.log?.info(`glue: run ${run.id.slice(0, 12)}… ${end}${run.errorMessage ? `: ${run.errorMessage}` : ""}`);
    try {
      await this.opts.publish(stateChangeDetail({ ...run, state: end }));
    } catch (e) {
      // On AWS a lost event is what the sweeper repairs; here it is only logged.
      this.opts.log?.warn(`glue: could not publish the state change of ${run.id}: ${messageOf(e)}`);
    }
  }

  private setState(run: JobRunRecord, state: JobRunState): void {
    run.state = state;
    run.lastModifiedOn = new Date();
    this.logRun(run);
  }

  private logRun(run: JobRunRecord): void {
    this.opts.runLog?.({
      t: run.lastModifiedOn.toISOString(),
      jobRunId: run.id,
      state: run.state,
      ...(run.errorMessage ? { message: run.errorMessage } : {}),
    });
  }

  private getJobRuns(input: Record<string, unknown>): unknown {
    const job = this.job(input.JobName);
    const all = this.listRuns().filter((r) => r.jobName === job.name);
    const start = typeof input.NextToken === "string" ? Number(input.NextToken) : 0;
    const max = typeof input.MaxResults === "number" ? input.MaxResults : 100;
    const page = all.slice(start, start + max);
    const next = start + max < all.length ? String(start + max) : undefined;
    return { JobRuns: page.map((r) => this.view(r)), ...(next ? { NextToken: next } : {}) };
  }

  private batchStop(input: Record<string, unknown>): unknown {
    const job = this.job(input.JobName);
    const ids = Array.isArray(input.JobRunIds) ? (input.JobRunIds as string[]) : [];
    const ok: unknown[] = [];
    const errors: unknown[] = [];
    for (const id of ids) {
      const run = this.runs.get(id);
      const control = this.controllers.get(id);
      if (!run || run.jobName !== job.name || !ACTIVE.includes(run.state) || !control) {
        errors.push({
          JobName: job.name,
          JobRunId: id,
          ErrorDetail: { ErrorCode: "InvalidInputException", ErrorMessage: `Job run ${id} is not running` },
        });
        continue;
      }
      this.setState(run, "STOPPING");
      control.reason = "stop";
      control.abort.abort();
      ok.push({ JobName: job.name, JobRunId: id });
    }
    return { SuccessfulSubmissions: ok, Errors: errors };
  }

  private view(r: JobRunRecord): unknown {
    const job = this.jobs.get(r.jobName);
    const end = r.completedOn ?? new Date();
    return {
      Id: r.id,
      Attempt: 0,
      JobName: r.jobName,
      JobMode: "SCRIPT",
      StartedOn: epochSeconds(r.startedOn),
      LastModifiedOn: epochSeconds(r.lastModifiedOn),
      ...(r.completedOn ? { CompletedOn: epochSeconds(r.completedOn) } : {}),
      JobRunState: r.state,
      Arguments: r.arguments,
      ...(r.errorMessage ? { ErrorMessage: r.errorMessage } : {}),
      ExecutionTime: Math.round((end.getTime() - r.startedOn.getTime()) / 1000),
      Timeout: r.timeoutMinutes,
      GlueVersion: job?.glueVersion,
      WorkerType: r.workerType,
      NumberOfWorkers: r.numberOfWorkers,
      ExecutionClass: r.executionClass,
    };
  }

  private jobView(j: GlueJobDefinition): unknown {
    return {
      Name: j.name,
      ExecutionProperty: { MaxConcurrentRuns: j.maxConcurrentRuns },
      Timeout: j.timeoutMinutes,
      GlueVersion: j.glueVersion,
      WorkerType: j.workerType,
      NumberOfWorkers: j.numberOfWorkers,
      DefaultArguments: j.defaultArguments ?? {},
      Command: { Name: "glueetl", PythonVersion: "3", ScriptLocation: "glue/job.py" },
    };
  }
}
