/**
 * The twin: the whole pipeline on one machine. moto for S3/EventBridge/SQS/DynamoDB, provisioned from the config
 * module; the SAME handlers run in-process behind pollers that behave like Lambda's SQS trigger; a local Glue
 * service runs the SAME Glue script on local Spark; the sweeper runs on a timer. One twin per process: the handlers
 * create their SDK clients once, from the environment the twin sets.
 */
import { createWriteStream, mkdirSync } from "node:fs";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { GLUE_VERSION, pipelineConfig, type ReconcileReport, TWIN_STAGE } from "@ingest/core";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { clientConfig, handlerEnv, sdkEnv, type TwinEndpoints } from "./aws.js";
import { GLUE_FAIL_KEYS_ENV, TWIN_NAMES } from "./constants.js";
import { messageOf } from "./errors.js";
import {
  asPrincipal,
  type CallerScope,
  CallRecorder,
  callRecordPath,
  credentialsOf,
  DynamoKeyLimits,
  type FaultConfig,
  FaultDice,
  type FaultProfileName,
  FaultProxy,
  faultConfig,
  faultyPublisher,
  GsiLag,
  glueFaults,
  installCrashCutoff,
  motoGsiBackend,
  type Principal,
  S3EventRelay,
  s3EventFaultsOn,
} from "./faults/index.js";
import { bulkGetClient, bulkPutClient } from "./glue/bulk.js";
import { eventBridgePublisher } from "./glue/events.js";
import { type JobExecutor, LocalGlueService } from "./glue/service.js";
import { sparkExecutor } from "./glue/spark.js";
import { captureMetrics, MetricsRecorder } from "./metrics.js";
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
  /** Versioning on the data bucket (default true: prod's shape). */
  readonly versionedBucket?: boolean;
  /** Test-only: the ingest and recorder queues' visibility timeout (default: the config's). */
  readonly queueVisibilityTimeoutSeconds?: number;
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
  /**
   * The fault layer (README "Fault layer"): a profile name (`none` | `aws` | `chaos`, seeded with `faultSeed`) or a
   * full config `{ seed, rates: { <kind>: 0..1 }, ...durations }`. Default: `none` — every call still goes through
   * the proxy and is recorded, nothing is injected.
   */
  readonly faults?: FaultConfig | FaultProfileName;
  /** The seed of a profile given by name (default 1). */
  readonly faultSeed?: number;
  readonly proxyPort?: number;
}

const silent: TwinLog = { info: () => undefined, warn: () => undefined };

/** The SAME handlers as on AWS, from packages/functions, with their runtime reset to this twin's environment. */
async function loadHandlers(
  given: Partial<TwinHandlers>,
  metrics: MetricsRecorder,
): Promise<TwinHandlers & { scope: CallerScope }> {
  const fns = await import("@ingest/functions");
  fns.resetRuntime();
  captureMetrics(fns.metrics, metrics);
  return {
    batcher: given.batcher ?? fns.batcher,
    recorder: given.recorder ?? fns.recorder,
    sweeper: given.sweeper ?? (() => fns.sweeper()),
    reconciler: given.reconciler ?? (() => fns.reconciler()),
    scope: (caller, fn) => fns.functionCaller.run(caller, fn),
  };
}

function describeFaults(c: FaultConfig): string {
  const on = Object.entries(c.rates).filter(([, r]) => r);
  return on.length ? `seed ${c.seed}, ${on.map(([k, r]) => `${k} ${r}`).join(", ")}` : "none";
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
  private reconciling: Promise<ReconcileReport | null> | null = null;
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
    private readonly stoppers: (() => Promise<void>)[],
    private readonly log: TwinLog,
    private readonly stateWritten: boolean,
    /** The fault layer's dice: its config (`faults.config`) and what it injected so far (`faults.counts`). */
    readonly faults: FaultDice,
    readonly proxy: FaultProxy,
    /** The AWS call record (JSON lines, see README "Call record"). */
    readonly callRecordFile: string,
    /** The handlers' metrics, as CloudWatch would get them from their EMF output (README "Metrics"). */
    readonly metrics: MetricsRecorder,
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
      motoServer: paths.venvPython,
      script: paths.twinMotoServer,
      logFile: join(paths.twinDir, "moto.log"),
      ...(opts.motoPort !== undefined ? { port: opts.motoPort } : {}),
    });
    const closers: (() => void)[] = [];
    const stoppers: (() => Promise<void>)[] = [];
    let glue: LocalGlueService | null = null;
    try {
      log.info(`moto on ${moto.endpoint}`);
      const dice = new FaultDice(
        typeof opts.faults === "object"
          ? faultConfig(opts.faults, opts.faults.seed)
          : faultConfig(opts.faults ?? "none", opts.faultSeed ?? 1),
      );
      const relayed = s3EventFaultsOn(dice);
      const queues = await provision({
        endpoint: moto.endpoint,
        config,
        queueVisibilityTimeoutSeconds: opts.queueVisibilityTimeoutSeconds,
        relayS3Events: relayed,
        versionedBucket: opts.versionedBucket,
      });

      // The fault layer: every AWS client below (not the CLI, not the twin's own plumbing) goes through the proxy.
      installCrashCutoff();
      const record = new CallRecorder(callRecordPath(paths.twinDir));
      stoppers.push(() => record.close());
      const proxy = new FaultProxy({
        aws: moto.endpoint,
        glue: "",
        dice,
        record,
        gsiLag: new GsiLag(dice, motoGsiBackend(moto.endpoint), Date.now, log),
        keyLimits: new DynamoKeyLimits(motoGsiBackend(moto.endpoint)),
        log,
      });
      const proxyEndpoint = await proxy.start(opts.proxyPort ?? 0);
      stoppers.unshift(() => proxy.stop());
      log.info(`fault layer proxy on ${proxyEndpoint} (faults: ${describeFaults(dice.config)})`);
      const as = (p: Principal) => ({ ...clientConfig(proxyEndpoint), credentials: credentialsOf(p) });

      const s3 = new S3Client({ ...as("glue-service"), forcePathStyle: true });
      const publisher = eventBridgePublisher(proxyEndpoint, credentialsOf("glue-service"));
      closers.push(() => s3.destroy(), publisher.close);
      const runLog = createWriteStream(join(paths.twinDir, "glue-runs.jsonl"), { flags: "w" });
      stoppers.push(() => new Promise((r) => runLog.end(() => r())));
      const executor =
        opts.executor ??
        sparkExecutor({
          s3,
          python: paths.venvPython,
          script: opts.glueScript ?? paths.glueJob,
          stageRoot: join(paths.twinDir, "glue"),
          failKeys: opts.glueFailKeys ?? failKeysFromEnv(),
          keepStage: opts.keepStage,
          log,
          // Small uploads and outputs go many per request (through the proxy, recorded as one GET / PUT each).
          bulkGet: bulkGetClient(proxyEndpoint, credentialsOf("glue-service").accessKeyId),
          bulkPut: bulkPutClient(proxyEndpoint, credentialsOf("glue-service").accessKeyId),
          // The job's own boto3 calls (if any) go through the fault layer as the job's role.
          env: {
            AWS_ENDPOINT_URL: proxyEndpoint,
            AWS_ACCESS_KEY_ID: credentialsOf("glue-job").accessKeyId,
            AWS_SECRET_ACCESS_KEY: credentialsOf("glue-job").secretAccessKey,
          },
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
        publish: faultyPublisher(publisher.publish, dice),
        timeoutMsOverride: opts.glueTimeoutMs,
        log,
        faults: glueFaults(dice),
        runLog: (line) => runLog.write(`${JSON.stringify(line)}\n`),
        catalog: moto.endpoint,
      });
      const glueEndpoint = await glue.start(opts.gluePort ?? 0);
      proxy.glueEndpoint = glueEndpoint;
      log.info(`local Glue service on ${glueEndpoint}`);
      const endpoints: TwinEndpoints = { aws: moto.endpoint, glue: glueEndpoint, proxy: proxyEndpoint };

      // The handlers read these when they first create their clients: they reach AWS through the fault layer.
      Object.assign(process.env, sdkEnv({ aws: proxyEndpoint, glue: proxyEndpoint }), handlerEnv());
      // Lambda's log level setting for Powertools; the CLI's `local up` asks for INFO, tests and the demo for WARN.
      process.env.POWERTOOLS_LOG_LEVEL ??= opts.handlerLogLevel ?? "WARN";
      const metrics = new MetricsRecorder(join(paths.twinDir, "metrics.jsonl"));
      stoppers.push(() => metrics.close());
      const loaded = await loadHandlers(opts.handlers ?? {}, metrics);
      const batcher = opts.wrapBatcher ? opts.wrapBatcher(loaded.batcher) : loaded.batcher;
      const handlers: TwinHandlers = {
        batcher: asPrincipal("batcher", batcher, loaded.scope, dice, {
          url: queues.ingest.url,
          visibilityTimeoutSeconds: opts.queueVisibilityTimeoutSeconds ?? config.queue.visibilityTimeoutSeconds,
        }),
        recorder: asPrincipal("recorder", loaded.recorder, loaded.scope, dice, {
          url: queues.recorder.url,
          visibilityTimeoutSeconds: opts.queueVisibilityTimeoutSeconds ?? config.recorder.visibilityTimeoutSeconds,
        }),
        sweeper: asPrincipal("sweeper", loaded.sweeper, loaded.scope, dice),
        reconciler: asPrincipal("reconciler", loaded.reconciler, loaded.scope, dice),
      };

      if (relayed && queues.s3Events) {
        const relaySqs = new SQSClient(clientConfig(moto.endpoint));
        const relay = new S3EventRelay({
          sqs: relaySqs,
          fromUrl: queues.s3Events.url,
          toUrl: queues.ingest.url,
          dice,
          log,
        });
        relay.start();
        stoppers.unshift(async () => {
          await relay.stop();
          relaySqs.destroy();
        });
      }

      const restartSometimes = (p: QueuePoller) => {
        if (dice.roll("consumerRestart")) void p.restart();
      };
      // Lambda's SQS trigger polls with the function's own role.
      const batcherSqs = new SQSClient(as("batcher"));
      const recorderSqs = new SQSClient(as("recorder"));
      closers.push(
        () => batcherSqs.destroy(),
        () => recorderSqs.destroy(),
      );
      const ingestPoller = new QueuePoller({
        name: "batcher",
        sqs: batcherSqs,
        queueUrl: queues.ingest.url,
        queueArn: queues.ingest.arn,
        batchSize: config.queue.batchSize,
        batchingWindowSeconds: config.queue.batchingWindowSeconds,
        concurrency: config.queue.maximumConcurrency,
        timeoutSeconds: config.queue.consumerTimeoutSeconds,
        handler: (e: SQSEvent, c?: Context) => handlers.batcher(e, c) as Promise<SQSBatchResponse>,
        log,
        afterInvoke: restartSometimes,
      });
      const recorderPoller = new QueuePoller({
        name: "recorder",
        sqs: recorderSqs,
        queueUrl: queues.recorder.url,
        queueArn: queues.recorder.arn,
        batchSize: config.recorder.batchSize,
        batchingWindowSeconds: config.recorder.batchingWindowSeconds,
        concurrency: config.recorder.maximumConcurrency,
        timeoutSeconds: config.recorder.timeoutSeconds,
        handler: handlers.recorder,
        log,
        afterInvoke: restartSometimes,
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
        stoppers,
        log,
        writeState,
        dice,
        proxy,
        record.file,
        metrics,
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
      for (const st of stoppers) await st().catch(() => undefined);
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

  /**
   * Runs the reconciler once now (the timer does the same); overlapping calls share one invocation. Its report, or
   * null when the invocation failed (logged).
   */
  async reconcileNow(): Promise<ReconcileReport | null> {
    if (this.stopped) return null;
    if (!this.reconciling) {
      this.reconciling = (async () => {
        try {
          const report = (await this.handlers.reconciler()) as ReconcileReport;
          this.reconciles++;
          this.log.info(`reconciler: ${JSON.stringify(report)}`);
          return report;
        } catch (e) {
          this.log.warn(`reconciler failed: ${messageOf(e)}`);
          return null;
        } finally {
          this.reconciling = null;
        }
      })();
    }
    return await this.reconciling;
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
    for (const st of this.stoppers) await st().catch(() => undefined);
    await this.moto.stop();
    if (this.stateWritten) removeTwinState(this.paths.stateFile);
  }
}
