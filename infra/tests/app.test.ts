/**
 * The SST app for a non-prod stage, evaluated under Pulumi mocks: every number and pattern must be the config
 * module's, and every policy must name its actions and resources.
 */
import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  GLUE_ARGUMENTS,
  glueRunEndedPattern,
  HANDLER_ENV,
  LEDGER_TABLE,
  objectCreatedPattern,
  pipelineConfig,
} from "../../packages/core/src/config/pipeline";
import { glueSourceFiles } from "../storage";
import {
  ACCOUNT_ID,
  archiveFiles,
  type EvaluatedApp,
  evaluateApp,
  REGION,
  type RegisteredResource,
} from "./helpers/app";
import { type PolicyStatement, policyDocuments, statementsOf, trustedPrincipals, wildcardGrants } from "./helpers/iam";

const STAGE = "dev";
const config = pipelineConfig(STAGE);
const HANDLERS = ["batcher", "recorder", "sweeper"] as const;

let app: EvaluatedApp;
beforeAll(async () => {
  app = await evaluateApp(STAGE);
});

const lambda = (handler: string) =>
  app.one("aws:lambda/function:Function", (r) => r.inputs.name === `csv-ingest-${STAGE}-${handler}`);
const queueByPhysicalPrefix = (prefix: string) =>
  app.one("aws:sqs/queue:Queue", (r) => String(r.state.name).startsWith(`csv-ingest-${STAGE}-${prefix}-`));
const mappingFor = (queue: RegisteredResource) =>
  app.one("aws:lambda/eventSourceMapping:EventSourceMapping", (r) => r.inputs.eventSourceArn === queue.state.arn);
const ruleNamed = (name: string) => app.one("aws:cloudwatch/eventRule:EventRule", (r) => r.name === name);
const roleOf = (fn: RegisteredResource) => app.one("aws:iam/role:Role", (r) => r.state.arn === fn.inputs.role);
const inlineStatements = (role: RegisteredResource): PolicyStatement[] =>
  (role.inputs.inlinePolicies as { policy: string }[]).flatMap((p) => statementsOf(JSON.parse(p.policy)));

describe("app", () => {
  it("is csv-ingest on AWS, removable outside prod", () => {
    expect(app.app).toMatchObject({ name: "csv-ingest", home: "aws", removal: "remove", protect: false });
  });

  it("returns the names the CLI and operators need", () => {
    expect(app.outputs).toMatchObject({
      stage: STAGE,
      bucketName: app.one("aws:s3/bucket:Bucket", (r) => r.name === "DataBucketBucket").state.bucket,
      controlBucketName: app.one("aws:s3/bucket:Bucket", (r) => r.name === "ControlBucketBucket").state.bucket,
      uploaderPolicyArn: app.one("aws:iam/policy:Policy", (r) => r.name === "UploaderPolicy").state.arn,
      glueJobName: `csv-ingest-${STAGE}-ingest-job`,
      ledgerTableName: `csv-ingest-${STAGE}-ledger`,
    });
    for (const key of ["ingestQueueUrl", "ingestDlqUrl", "recorderQueueUrl", "recorderDlqUrl"]) {
      expect(app.outputs[key]).toMatch(/^https:\/\/sqs\./);
    }
  });
});

describe("storage", () => {
  it.each(["bucketName", "controlBucketName"])("%s: blocks public access and encrypts", (output) => {
    const of = (r: RegisteredResource) => r.inputs.bucket === app.outputs[output];
    const block = app.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", of);
    expect(block.inputs).toMatchObject({
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    const sse = app.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", of);
    expect(sse.inputs.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm).toBe("AES256");
  });

  it("sends the data bucket's events to EventBridge", () => {
    expect(app.one("aws:s3/bucketNotification:BucketNotification").inputs).toMatchObject({
      bucket: app.outputs.bucketName,
      eventbridge: true,
    });
  });

  it.each(["bucketName", "controlBucketName"])("%s: denies every request not made over TLS", (output) => {
    const policy = JSON.parse(
      app.one("aws:s3/bucketPolicy:BucketPolicy", (r) => r.inputs.bucket === app.outputs[output]).inputs.policy,
    );
    const arn = `arn:aws:s3:::${app.outputs[output]}`;
    expect(statementsOf(policy)).toContainEqual({
      Effect: "Deny",
      Principal: "*",
      Action: ["s3:*"],
      Resource: [arn, `${arn}/*`],
      Condition: { Bool: { "aws:SecureTransport": ["false"] } },
    });
  });

  it("keeps versions only in prod", () => {
    expect(app.ofType("aws:s3/bucketVersioning:BucketVersioning")).toHaveLength(0);
  });

  it("uploads the Glue script and its package as one zip, not the tests, caches or bench, to the control bucket", async () => {
    const objects = app.ofType("aws:s3/bucketObjectv2:BucketObjectv2");
    expect(objects.filter((r) => r.inputs.bucket === app.outputs.bucketName)).toEqual([]);
    const keys = objects.filter((r) => r.inputs.bucket === app.outputs.controlBucketName);
    expect(keys.map((r) => r.inputs.key).sort()).toEqual(["glue-assets/csv_ingest.zip", "glue-assets/job.py"]);
    const zip = app.one("aws:s3/bucketObjectv2:BucketObjectv2", (r) => r.inputs.key === "glue-assets/csv_ingest.zip");
    expect(await archiveFiles(zip.inputs.source)).toEqual(["csv_ingest/__init__.py", "csv_ingest/engine/transform.py"]);
  });
});

describe("ledger", () => {
  it("has the config module's keys and pending index, on demand, encrypted", () => {
    const table = app.one("aws:dynamodb/table:Table");
    const { hashKey, rangeKey, pendingIndex } = LEDGER_TABLE;
    expect(table.inputs).toMatchObject({
      name: app.outputs.ledgerTableName,
      billingMode: "PAY_PER_REQUEST",
      hashKey,
      rangeKey,
      serverSideEncryption: { enabled: true },
      pointInTimeRecovery: { enabled: false },
    });
    expect(table.inputs.globalSecondaryIndexes).toEqual([
      expect.objectContaining({
        name: pendingIndex.name,
        hashKey: pendingIndex.hashKey,
        rangeKey: pendingIndex.rangeKey,
        projectionType: "ALL",
      }),
    ]);
  });
});

describe("ingest", () => {
  it("routes Object Created events by the config module's pattern", () => {
    const rule = ruleNamed("ObjectCreatedRule");
    expect(JSON.parse(rule.inputs.eventPattern)).toEqual(objectCreatedPattern(app.outputs.bucketName));
    const target = app.one("aws:cloudwatch/eventTarget:EventTarget", (r) => r.name === "ObjectCreatedTarget");
    expect(target.inputs.arn).toBe(queueByPhysicalPrefix("IngestQueueQueue").state.arn);
  });

  it("batches by the config module's numbers, with partial batch responses", () => {
    const mapping = mappingFor(queueByPhysicalPrefix("IngestQueueQueue"));
    expect(mapping.inputs).toMatchObject({
      batchSize: config.queue.batchSize,
      maximumBatchingWindowInSeconds: config.queue.batchingWindowSeconds,
      functionResponseTypes: ["ReportBatchItemFailures"],
      scalingConfig: { maximumConcurrency: config.queue.maximumConcurrency },
      functionName: lambda("batcher").state.arn,
    });
  });

  it("redrives to a DLQ and outlasts the consumer six times over", () => {
    const queue = queueByPhysicalPrefix("IngestQueueQueue");
    const dlq = queueByPhysicalPrefix("IngestDlqQueue");
    const batcher = lambda("batcher");
    expect(batcher.inputs.timeout).toBe(config.queue.consumerTimeoutSeconds);
    expect(queue.inputs.visibilityTimeoutSeconds).toBe(config.queue.visibilityTimeoutSeconds);
    expect(queue.inputs.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(6 * batcher.inputs.timeout);
    expect(JSON.parse(queue.inputs.redrivePolicy)).toEqual({
      deadLetterTargetArn: dlq.state.arn,
      maxReceiveCount: config.queue.maxReceiveCount,
    });
    expect(dlq.inputs.messageRetentionSeconds).toBe(config.queue.dlqRetentionSeconds);
  });

  it("lets only the rule send to the queue", () => {
    const queue = queueByPhysicalPrefix("IngestQueueQueue");
    const policy = app.one("aws:sqs/queuePolicy:QueuePolicy", (r) => r.inputs.queueUrl === queue.state.url);
    expect(statementsOf(JSON.parse(policy.inputs.policy))).toEqual([
      {
        Sid: "OnlyTheRule",
        Effect: "Allow",
        Principal: { Service: ["events.amazonaws.com"] },
        Action: ["sqs:SendMessage"],
        Resource: [queue.state.arn],
        Condition: { ArnEquals: { "aws:SourceArn": [ruleNamed("ObjectCreatedRule").state.arn] } },
      },
    ]);
  });
});

describe("glue job", () => {
  it("runs the uploaded script with the config module's settings", () => {
    const job = app.one("aws:glue/job:Job");
    const root = `s3://${app.outputs.bucketName}/`;
    const control = `s3://${app.outputs.controlBucketName}/`;
    expect(job.inputs).toMatchObject({
      name: app.outputs.glueJobName,
      glueVersion: "5.0",
      command: { name: "glueetl", pythonVersion: "3", scriptLocation: `${control}glue-assets/job.py` },
      workerType: config.glue.workerType,
      numberOfWorkers: config.glue.numberOfWorkers,
      timeout: config.glue.timeoutMinutes,
      executionProperty: { maxConcurrentRuns: config.glue.maxConcurrentRuns },
      maxRetries: 0,
    });
    expect(job.inputs.glueVersion).toBe(config.glue.version);
    expect(job.inputs.defaultArguments).toMatchObject({
      [`--${GLUE_ARGUMENTS.dataRoot}`]: root,
      [`--${GLUE_ARGUMENTS.outputRoot}`]: root,
      "--extra-py-files": `${control}glue-assets/csv_ingest.zip`,
      "--job-bookmark-option": "job-bookmark-disable",
      "--enable-continuous-cloudwatch-log": "true",
    });
  });

  it("has a role that reads inputs, manifests and its code, and writes only its output prefixes", () => {
    const job = app.one("aws:glue/job:Job");
    const role = app.one("aws:iam/role:Role", (r) => r.state.arn === job.inputs.roleArn);
    expect(role.inputs.managedPolicyArns ?? []).toEqual([]);
    const bucket = `arn:aws:s3:::${app.outputs.bucketName}`;
    const control = `arn:aws:s3:::${app.outputs.controlBucketName}`;
    const grants = inlineStatements(role);
    expect(grants).toContainEqual({ Effect: "Allow", Action: ["s3:GetObject"], Resource: [`${bucket}/input/*`] });
    const outputs = ["processed", "parquet", "rejected", "stats/runs", "stats/files"].map((p) => `${bucket}/${p}/*`);
    expect(grants).toContainEqual({
      Effect: "Allow",
      Action: ["s3:GetObject"],
      Resource: [`${control}/manifests/*`, `${control}/glue-assets/*`],
    });
    expect(grants).toContainEqual({ Effect: "Allow", Action: ["s3:PutObject"], Resource: outputs });
    // Deletes and aborted multipart uploads only in the per-upload folders it clears, never stats/ (the calls:
    // infra/tests/fixtures/calls.glue-job.jsonl, traffic.test.ts).
    const folders = ["processed", "parquet", "rejected"].map((p) => `${bucket}/${p}/*`);
    expect(grants).toContainEqual({
      Effect: "Allow",
      Action: ["s3:DeleteObject", "s3:AbortMultipartUpload"],
      Resource: folders,
    });
    const writes = grants.filter((s) => [s.Action].flat().some((a) => /Put|Delete|Abort/.test(String(a))));
    expect(writes.flatMap((s) => [s.Resource].flat()).filter((r) => String(r).startsWith(bucket))).toEqual([
      ...outputs,
      ...folders,
    ]);
    expect(grants).toContainEqual({
      Effect: "Allow",
      Action: ["s3:ListBucket"],
      Resource: [bucket],
      Condition: { StringLike: { "s3:prefix": ["input/*", "processed/*", "parquet/*", "rejected/*"] } },
    });
    expect(JSON.stringify(grants)).not.toMatch(/"glue:/);
  });
});

describe("completion", () => {
  it("routes the job's terminal states to the recorder queue", () => {
    const rule = ruleNamed("GlueRunEndedRule");
    expect(JSON.parse(rule.inputs.eventPattern)).toEqual(glueRunEndedPattern(app.outputs.glueJobName));
    const queue = queueByPhysicalPrefix("RecorderQueueQueue");
    const target = app.one("aws:cloudwatch/eventTarget:EventTarget", (r) => r.name === "GlueRunEndedTarget");
    expect(target.inputs.arn).toBe(queue.state.arn);
    const policy = app.one("aws:sqs/queuePolicy:QueuePolicy", (r) => r.inputs.queueUrl === queue.state.url);
    expect(JSON.parse(policy.inputs.policy).Statement[0].Condition).toEqual({
      ArnEquals: { "aws:SourceArn": [rule.state.arn] },
    });
  });

  it("records with partial batch responses, behind a DLQ", () => {
    const queue = queueByPhysicalPrefix("RecorderQueueQueue");
    const recorder = lambda("recorder");
    expect(mappingFor(queue).inputs).toMatchObject({
      batchSize: config.recorder.batchSize,
      functionResponseTypes: ["ReportBatchItemFailures"],
      scalingConfig: { maximumConcurrency: config.recorder.maximumConcurrency },
      functionName: recorder.state.arn,
    });
    expect(recorder.inputs.timeout).toBe(config.recorder.timeoutSeconds);
    expect(queue.inputs.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(6 * recorder.inputs.timeout);
    expect(JSON.parse(queue.inputs.redrivePolicy)).toMatchObject({
      deadLetterTargetArn: queueByPhysicalPrefix("RecorderDlqQueue").state.arn,
    });
  });

  it("sweeps on the config module's interval", () => {
    const rule = ruleNamed("SweeperRule");
    expect(rule.inputs.scheduleExpression).toBe(`rate(${config.runs.sweepIntervalMinutes} minutes)`);
    expect(lambda("sweeper").inputs.timeout).toBe(config.sweeper.timeoutSeconds);
  });
});

describe("handlers", () => {
  it.each(HANDLERS)("%s is built from packages/functions and told where things are", (handler) => {
    expect(app.builds).toContain(`packages/functions/src/${handler}.handler`);
    expect(lambda(handler).inputs.environment.variables).toMatchObject({
      [HANDLER_ENV.stage]: STAGE,
      [HANDLER_ENV.dataBucket]: app.outputs.bucketName,
      [HANDLER_ENV.ledgerTable]: app.outputs.ledgerTableName,
      [HANDLER_ENV.glueJobName]: app.outputs.glueJobName,
    });
  });

  it.each(HANDLERS)("%s writes logs only to its own log group (no AWSLambdaBasicExecutionRole)", (handler) => {
    const fn = lambda(handler);
    const role = roleOf(fn);
    expect(role.inputs.managedPolicyArns).toEqual([]);
    expect(inlineStatements(role)).toContainEqual({
      Effect: "Allow",
      Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
      Resource: [`arn:aws:logs:${REGION}:${ACCOUNT_ID}:log-group:/aws/lambda/${fn.inputs.name}:*`],
    });
  });

  it("batcher may start runs but not read the outputs, and writes manifests only to the control bucket", () => {
    const statements = inlineStatements(roleOf(lambda("batcher")));
    const grants = JSON.stringify(statements);
    const job = `arn:aws:glue:${REGION}:${ACCOUNT_ID}:job/${app.outputs.glueJobName}`;
    expect(statements).toContainEqual({
      Effect: "Allow",
      Action: ["glue:StartJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"],
      Resource: [job],
    });
    expect(grants).not.toContain("processed/");
    // manifests: written by a start, read to undo a start revoked as stale
    expect(statements).toContainEqual({
      Effect: "Allow",
      Action: ["s3:PutObject", "s3:GetObject"],
      Resource: [`arn:aws:s3:::${app.outputs.controlBucketName}/manifests/*`],
    });
  });

  it.each(["recorder", "sweeper"])("%s reads manifests and stats, writes only manifests", (handler) => {
    const grants = inlineStatements(roleOf(lambda(handler)));
    const bucket = `arn:aws:s3:::${app.outputs.bucketName}`;
    const control = `arn:aws:s3:::${app.outputs.controlBucketName}`;
    expect(grants).toContainEqual({ Effect: "Allow", Action: ["s3:GetObject"], Resource: [`${control}/manifests/*`] });
    expect(grants).toContainEqual({
      Effect: "Allow",
      Action: ["s3:GetObject"],
      Resource: [`${bucket}/stats/runs/*`, `${bucket}/input/*`],
    });
    expect(grants).toContainEqual({ Effect: "Allow", Action: ["s3:PutObject"], Resource: [`${control}/manifests/*`] });
  });

  it.each([
    ["batcher", "Ingest"],
    ["recorder", "Recorder"],
  ])("%s leases its own queue's messages for its crash lease, and no other queue's", (handler, prefix) => {
    const queue = queueByPhysicalPrefix(`${prefix}QueueQueue`);
    const fn = lambda(handler);
    expect(fn.inputs.environment.variables[HANDLER_ENV.sourceQueueUrl]).toBe(queue.state.url);
    const statements = inlineStatements(roleOf(fn));
    expect(statements).toContainEqual({
      Effect: "Allow",
      Action: ["sqs:ChangeMessageVisibility"],
      Resource: [queue.state.arn],
    });
    for (const s of statements) {
      if (![s.Action].flat().includes("sqs:ChangeMessageVisibility")) continue;
      expect([s.Resource].flat()).toEqual([queue.state.arn]);
    }
  });

  it("the sweeper reads no queue: no source queue, no SQS grant", () => {
    const fn = lambda("sweeper");
    expect(fn.inputs.environment.variables[HANDLER_ENV.sourceQueueUrl]).toBeUndefined();
    const actions = inlineStatements(roleOf(fn)).flatMap((s) => [s.Action].flat());
    expect(actions.filter((a) => String(a).startsWith("sqs:"))).toEqual([]);
  });

  it("the batcher never reads a single Glue run; no handler may delete ledger items", () => {
    const actions = (handler: string) => inlineStatements(roleOf(lambda(handler))).flatMap((s) => [s.Action].flat());
    for (const handler of ["recorder", "sweeper"]) {
      expect(actions(handler)).toEqual(expect.arrayContaining(["glue:GetJobRun", "glue:GetJobRuns"]));
    }
    expect(actions("batcher")).not.toContain("glue:GetJobRun");
    for (const handler of HANDLERS) expect(actions(handler)).not.toContain("dynamodb:DeleteItem");
  });
});

describe("alarms", () => {
  it("alarm on any message in any DLQ (both queues' and both rule targets')", () => {
    const alarms = app
      .ofType("aws:cloudwatch/metricAlarm:MetricAlarm")
      .filter((r) => r.inputs.metricName === "ApproximateNumberOfMessagesVisible");
    const dlqNames = [
      "IngestDlqQueue",
      "RecorderDlqQueue",
      "ObjectCreatedTargetDlqQueue",
      "GlueRunEndedTargetDlqQueue",
    ].map((p) => queueByPhysicalPrefix(p).state.name);
    expect(alarms.map((a) => a.inputs.dimensions.QueueName).sort()).toEqual(dlqNames.sort());
    for (const alarm of alarms) {
      expect(alarm.inputs).toMatchObject({
        metricName: "ApproximateNumberOfMessagesVisible",
        comparisonOperator: "GreaterThanThreshold",
        threshold: 0,
      });
    }
  });

  it("alarm on failed runs and files as the recorder counts them", () => {
    const alarms = app
      .ofType("aws:cloudwatch/metricAlarm:MetricAlarm")
      .filter((r) => r.inputs.namespace === "CsvIngest");
    expect(alarms.map((a) => a.inputs.metricName).sort()).toEqual(["CircuitOpen", "FilesFailed", "RunsFailed"]);
    for (const alarm of alarms) expect(alarm.inputs.dimensions).toEqual({ service: "csv-ingest" });
  });
});

describe("IAM", () => {
  it("lets only the service that runs a role assume it (not the whole account, outside sst dev)", () => {
    const roles = app.ofType("aws:iam/role:Role");
    expect(roles.length).toBeGreaterThanOrEqual(4);
    for (const role of roles) {
      const service = role.name === "GlueJobRole" ? "glue.amazonaws.com" : "lambda.amazonaws.com";
      expect([role.name, trustedPrincipals(role.inputs.assumeRolePolicy)]).toEqual([role.name, [`Service:${service}`]]);
    }
  });

  it("finds the policies to check", () => {
    // 3 handler roles + the Glue role (inline + trust each), the bucket policy, 2 queue policies.
    expect(policyDocuments(app.resources).length).toBeGreaterThanOrEqual(11);
  });

  it('grants no wildcard action and no Resource "*" outside the allow-list, anywhere', () => {
    const problems = policyDocuments(app.resources).flatMap(({ where, document }) =>
      wildcardGrants(document).map((problem) => `${where}: ${problem}`),
    );
    expect(problems).toEqual([]);
  });
});

describe("the real glue/ folder", () => {
  const dir = path.resolve(import.meta.dirname, "../../glue");

  it("ships job.py as the script and the csv_ingest package's modules, no test", () => {
    const { script, packageFiles } = glueSourceFiles(dir);
    expect(script).toBe("job.py");
    expect(packageFiles).toContain("csv_ingest/engine/rules.py");
    for (const file of packageFiles) {
      expect(file).toMatch(/^csv_ingest\/([a-z0-9_]+\/)*[a-z0-9_]+\.py$/);
      expect(file).not.toMatch(/(^|\/)(test_[^/]*|[^/]*_test\.py|conftest\.py)$/);
    }
  });

  it("ships every module of the package the job imports (a missing one would fail the first run on Glue)", () => {
    const { script, packageFiles } = glueSourceFiles(dir);
    const shipped = new Set(packageFiles);
    const imported = [script, ...packageFiles].flatMap((file) =>
      [
        ...fs
          .readFileSync(path.join(dir, file), "utf8")
          .matchAll(/^\s*from\s+(csv_ingest(?:\.\w+)*)\s+import\s+([\w, ]+)|^\s*import\s+(csv_ingest(?:\.\w+)*)/gm),
      ].flatMap((m) => {
        const from = m[1];
        if (!from) return [(m[3] ?? "").replaceAll(".", "/")];
        // `from a.b import c`: c is a module of the package a/b when a/b/c.py exists, else a name in a/b.py.
        return (m[2] ?? "").split(",").map((name) => {
          const asModule = `${from.replaceAll(".", "/")}/${name.trim().split(" ")[0]}`;
          return fs.existsSync(path.join(dir, `${asModule}.py`)) ? asModule : from.replaceAll(".", "/");
        });
      }),
    );
    const moduleFile = (name: string) =>
      fs.existsSync(path.join(dir, name, "__init__.py")) ? `${name}/__init__.py` : `${name}.py`;
    expect(imported).toContain("csv_ingest/engine/rules");
    expect(imported.map(moduleFile).filter((file) => !shipped.has(file))).toEqual([]);
  });
});
