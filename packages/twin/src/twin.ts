/**
 * The twin: the whole pipeline on one machine. moto for S3/EventBridge/SQS/DynamoDB, provisioned from the config
 * module; the SAME handlers run in-process behind pollers that behave like Lambda's SQS trigger; a local Glue
 * service runs the SAME Glue script on local Spark; the sweeper runs on a timer. One twin per process: the handlers
 * create their SDK clients once, from the environment the twin sets.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { GLUE_VERSION, pipelineConfig, TWIN_STAGE } from "@ingest/core";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { clientConfig, handlerEnv, sdkEnv, type TwinEndpoints } from "./aws.js";
import { GLUE_FAIL_KEYS_ENV, TWIN_NAMES } from "./constants.js";
import { messageOf } from "./errors.js";
import { eventBridgePublisher } from "./glue/events.js";
import { type JobExecutor, LocalGlueService } from "./glue/service.js";
import { sparkExecutor } from "./glue/spark.js";
import { type MotoServer, startMoto } from "./moto.js";
import { type ProjectPaths, projectPaths } from "./paths.js";
import { QueuePoller, type SqsHandler } from "./poller.js";
import { checkGlueJob, checkJava, checkVenv } from "./prerequisites.js";
import { type Provisioned, provision } from "./provision.js";
import { removeTwinState, type TwinState, writeTwinState } from "./state.js";

export interface TwinHandlers {
  readonly batcher: SqsHandler;
  readonly recorder: SqsHandler;
  readonly sweeper: () => Promise<unknown>;
  readonly reconciler: () => Promise<unknown>;
}

export interface TwinLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface TwinOptions {
  readonly paths?: ProjectPaths;
  readonly motoPort?: number;
  readonly gluePort?: number;
  /** Write `.twin/state.json` so the CLI finds this twin (default true). */
  readonly writeState?: boolean;
  readonly log?: TwinLog;
  /** Test-only: the ingest queue's visibility timeout (default: the config's). */
  readonly ingestVisibilityTimeoutSeconds?: number;
  /** Test-only: the Glue run timeout in ms (default: the config's timeoutMinutes). */
  readonly glueTimeoutMs?: number;
  /** Fault injection: runs whose manifest names a key containing one of these fail (default: $TWIN_GLUE_FAIL_KEYS). */
  readonly glueFailKeys?: readonly string[];
  /** How often the sweeper runs (default: the config's sweepIntervalMinutes); 0 = never on a timer. */
  readonly sweepIntervalMs?: number;
  /** How often the reconciler runs (default: the config's reconciler.intervalMinutes); 0 = never on a timer. */
  readonly reconcileIntervalMs?: number;
  /** Handlers to use instead of packages/functions (tests of the twin itself). */
  readonly handlers?: Partial<TwinHandlers>;
  /** Test-only: wraps the batching handler (e.g. to crash mid-batch). */
  readonly wrapBatcher?: (handler: SqsHandler) => SqsHandler;
  /** Instead of the real job on Spark (tests of the twin itself). */
  readonly executor?: JobExecutor;
  readonly keepStage?: boolean;
  /** Instead of glue/job.py (tests of the twin itself; the e2e tests use the real job). */
  readonly glueScript?: string;
  /** Powertools log level of the handlers unless POWERTOOLS_LOG_LEVEL is set (default WARN). */
  readonly handlerLogLevel?: "DEBUG" | "INFO" | "WARN" | "ERROR";
  /** Skip the Java / glue/job.py checks (only when `executor` replaces Spark). */
  readonly skipSparkChecks?: boolean;
}

const silent: TwinLog = { info: () => undefined, warn: () => undefined };

/** The SAME handlers as on AWS, from packages/functions, with their runtime reset to this twin's environment. */
async function loadHandlers(given: Partial<TwinHandlers>): Promise<TwinHandlers> {
  const fns = await import("@ingest/functions");
  fns.resetRuntime();
  return {
    batcher: given.batcher ?? fns.batcher,
    recorder: given.recorder ?? fns.recorder,
    sweeper: given.sweeper ?? (() => fns.sweeper()),
    reconciler: given.reconciler ?? (() => fns.reconciler()),
  };
}

export function failKeysFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env[GLUE_FAIL_KEYS_ENV] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

export class Twin {
  readonly config = pipelineConfig(TWIN_STAGE);
  readonly names = TWIN_NAMES;
  sweeps = 0;
  readonly startedAt = new Date().toISOString();
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;
  reconciles = 0;
  private reconcileTimer: NodeJS.Timeout | null = null;
  private reconciling: Promise<void> | null = null;
  private stopped = false;

  private constructor(
    readonly paths: ProjectPaths,
    readonly endpoints: TwinEndpoints,
    readonly queues: Provisioned,
    readonly moto: MotoServer,
    readonly glue: LocalGlueService,
    readonly ingestPoller: QueuePoller,
    readonly recorderPoller: QueuePoller,
    private readonly handlers: TwinHandlers,
    private readonly closers: (() => void)[],
    private readonly log: TwinLog,
    private readonly stateWritten: boolean,
  ) {}

  static async start(opts: TwinOptions = {}): Promise<Twin> {
    const paths = opts.paths ?? projectPaths();
    const log = opts.log ?? silent;
    const config = pipelineConfig(TWIN_STAGE);
    checkVenv(paths);
    if (!opts.executor && !opts.skipSparkChecks) {
      checkJava();
      if (!opts.glueScript) checkGlueJob(paths);
    }
    mkdirSync(paths.twinDir, { recursive: true });

    const moto = await startMoto({
      motoServer: paths.motoServer,
      logFile: join(paths.twinDir, "moto.log"),
      ...(opts.motoPort !== undefined ? { port: opts.motoPort } : {}),
    });
    const closers: (() => void)[] = [];
    let glue: LocalGlueService | null = null;
    try {
      log.info(`moto on ${moto.endpoint}`);
      const queues = await provision({
        endpoint: moto.endpoint,
        config,
        ingestVisibilityTimeoutSeconds: opts.ingestVisibilityTimeoutSeconds,
      });

      const s3 = new S3Client({ ...clientConfig(moto.endpoint), forcePathStyle: true });
      const publisher = eventBridgePublisher(moto.endpoint);
      closers.push(() => s3.destroy(), publisher.close);
      const executor =
        opts.executor ??
        sparkExecutor({
          s3,
          python: paths.venvPython,
          script: opts.glueScript ?? paths.glueJob,
          stageRoot: join(paths.twinDir, "glue"),
          failKeys: opts.glueFailKeys ?? failKeysFromEnv(),
          keepStage: opts.keepStage,
        });
      glue = new LocalGlueService({
        jobs: [
          {
            name: TWIN_NAMES.glueJob,
            maxConcurrentRuns: config.glue.maxConcurrentRuns,
            timeoutMinutes: config.glue.timeoutMinutes,
            glueVersion: GLUE_VERSION,
            workerType: config.glue.workerType,
            numberOfWorkers: config.glue.numberOfWorkers,
            defaultArguments: { "--job-bookmark-option": config.glue.jobBookmarks },
          },
        ],
        executor,
        publish: publisher.publish,
        timeoutMsOverride: opts.glueTimeoutMs,
        log,
      });
      const glueEndpoint = await glue.start(opts.gluePort ?? 0);
      log.info(`local Glue service on ${glueEndpoint}`);
      const endpoints: TwinEndpoints = { aws: moto.endpoint, glue: glueEndpoint };

      // The handlers read these when they first create their clients.
      Object.assign(process.env, sdkEnv(endpoints), handlerEnv());
      // Lambda's log level setting for Powertools; the CLI's `local up` asks for INFO, tests and the demo for WARN.
      process.env.POWERTOOLS_LOG_LEVEL ??= opts.handlerLogLevel ?? "WARN";
      process.env.POWERTOOLS_METRICS_DISABLED ??= "true";
      const loaded = await loadHandlers(opts.handlers ?? {});
      const handlers = { ...loaded, batcher: opts.wrapBatcher ? opts.wrapBatcher(loaded.batcher) : loaded.batcher };

      const sqs = new SQSClient(clientConfig(moto.endpoint));
      closers.push(() => sqs.destroy());
      const ingestPoller = new QueuePoller({
        name: "batcher",
        sqs,
        queueUrl: queues.ingest.url,
        queueArn: queues.ingest.arn,
        batchSize: config.queue.batchSize,
        batchingWindowSeconds: config.queue.batchingWindowSeconds,
        concurrency: config.queue.maximumConcurrency,
        timeoutSeconds: config.queue.consumerTimeoutSeconds,
        handler: (e: SQSEvent, c?: Context) => handlers.batcher(e, c) as Promise<SQSBatchResponse>,
        log,
      });
      const recorderPoller = new QueuePoller({
        name: "recorder",
        sqs,
        queueUrl: queues.recorder.url,
        queueArn: queues.recorder.arn,
        batchSize: config.recorder.batchSize,
        batchingWindowSeconds: config.recorder.batchingWindowSeconds,
        concurrency: config.recorder.maximumConcurrency,
        timeoutSeconds: config.recorder.timeoutSeconds,
        handler: handlers.recorder,
        log,
      });
      ingestPoller.start();
      recorderPoller.start();

      const writeState = opts.writeState ?? true;
      const twin = new Twin(
        paths,
        endpoints,
        queues,
        moto,
        glue,
        ingestPoller,
        recorderPoller,
        handlers,
        closers,
        log,
        writeState,
      );
      const interval = opts.sweepIntervalMs ?? config.runs.sweepIntervalMinutes * 60_000;
      if (interval > 0) {
        twin.sweepTimer = setInterval(() => void twin.sweepNow(), interval);
        twin.sweepTimer.unref();
      }
      const reconcileEvery = opts.reconcileIntervalMs ?? config.reconciler.intervalMinutes * 60_000;
      if (reconcileEvery > 0) {
        twin.reconcileTimer = setInterval(() => void twin.reconcileNow(), reconcileEvery);
        twin.reconcileTimer.unref();
      }
      if (writeState) writeTwinState(paths.stateFile, twin.state());
      return twin;
    } catch (e) {
      await glue?.stop().catch(() => undefined);
      for (const c of closers) c();
      await moto.stop();
      throw e;
    }
  }

  state(): TwinState {
    return {
      pid: process.pid,
      motoPid: this.moto.pid,
      startedAt: this.startedAt,
      endpoints: this.endpoints,
      names: TWIN_NAMES,
      queues: {
        ingestUrl: this.queues.ingest.url,
        ingestDlqUrl: this.queues.ingestDlq.url,
        recorderUrl: this.queues.recorder.url,
        recorderDlqUrl: this.queues.recorderDlq.url,
      },
      logFile: null,
    };
  }

  /** Runs the sweeper once now (the timer does the same); overlapping calls share one sweep. */
  async sweepNow(): Promise<void> {
    if (this.stopped) return;
    if (!this.sweeping) {
      this.sweeping = (async () => {
        try {
          const report = await this.handlers.sweeper();
          this.sweeps++;
          this.log.info(`sweeper: ${JSON.stringify(report)}`);
        } catch (e) {
          this.log.warn(`sweeper failed: ${messageOf(e)}`);
        } finally {
          this.sweeping = null;
        }
      })();
    }
    await this.sweeping;
  }

  /** Runs the reconciler once now (the timer does the same); overlapping calls share one pass. */
  async reconcileNow(): Promise<void> {
    if (this.stopped) return;
    if (!this.reconciling) {
      this.reconciling = (async () => {
        try {
          const report = await this.handlers.reconciler();
          this.reconciles++;
          this.log.info(`reconciler: ${JSON.stringify(report)}`);
        } catch (e) {
          this.log.warn(`reconciler failed: ${messageOf(e)}`);
        } finally {
          this.reconciling = null;
        }
      })();
    }
    await this.reconciling;
  }

  /** Stops the pollers (in-flight invocations finish), the Glue service (active runs end STOPPED), then moto. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    await this.sweeping;
    await this.reconciling;
    await Promise.all([this.ingestPoller.stop(), this.recorderPoller.stop()]);
    await this.glue.stop();
    for (const c of this.closers) c();
    await this.moto.stop();
    if (this.stateWritten) removeTwinState(this.paths.stateFile);
  }
}
