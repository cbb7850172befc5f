/**
 * Lost events and silent failures, dev stage: the reconciler (schedule, least-privilege role), DLQs and retry
 * policies on both EventBridge rule targets, and the alarms. Expected numbers are literals, not read back from the
 * config module: a changed number must fail here until this file is changed on purpose.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ACCOUNT_ID, type EvaluatedApp, evaluateApp, REGION, type RegisteredResource } from "./helpers/app";
import { type PolicyStatement, statementsOf } from "./helpers/iam";

const STAGE = "dev";
let app: EvaluatedApp;
beforeAll(async () => {
  app = await evaluateApp(STAGE);
});

const lambda = (handler: string) =>
  app.one("aws:lambda/function:Function", (r) => r.inputs.name === `csv-ingest-${STAGE}-${handler}`);
const queue = (prefix: string) =>
  app.one("aws:sqs/queue:Queue", (r) => String(r.state.name).startsWith(`csv-ingest-${STAGE}-${prefix}-`));
const rule = (name: string) => app.one("aws:cloudwatch/eventRule:EventRule", (r) => r.name === name);
const target = (name: string) => app.one("aws:cloudwatch/eventTarget:EventTarget", (r) => r.name === name);
const alarm = (name: string) => app.one("aws:cloudwatch/metricAlarm:MetricAlarm", (r) => r.name === name);
const roleOf = (fn: RegisteredResource) => app.one("aws:iam/role:Role", (r) => r.state.arn === fn.inputs.role);
const inlineStatements = (role: RegisteredResource): PolicyStatement[] =>
  (role.inputs.inlinePolicies as { policy: string }[]).flatMap((p) => statementsOf(JSON.parse(p.policy)));
const topicArn = `arn:aws:sns:${REGION}:${ACCOUNT_ID}:csv-ingest-${STAGE}-alerts`;

describe("reconciler", () => {
  it("runs every 15 minutes with a 120 s timeout, built from packages/functions", () => {
    const fn = lambda("reconciler");
    expect(rule("ReconcilerRule").inputs.scheduleExpression).toBe("rate(15 minutes)");
    expect(target("ReconcilerTarget").inputs.arn).toBe(fn.state.arn);
    expect(fn.inputs.timeout).toBe(120);
    expect(app.builds).toContain("packages/functions/src/reconciler.handler");
    expect(fn.inputs.environment.variables).toMatchObject({
      PIPELINE_STAGE: STAGE,
      DATA_BUCKET: app.outputs.bucketName,
      LEDGER_TABLE: app.outputs.ledgerTableName,
      GLUE_JOB_NAME: app.outputs.glueJobName,
    });
  });

  it("may list and head input/ only, write and read manifests, use the ledger and start this job's runs — nothing else", () => {
    const bucket = `arn:aws:s3:::${app.outputs.bucketName}`;
    const table = `arn:aws:dynamodb:${REGION}:${ACCOUNT_ID}:table/${app.outputs.ledgerTableName}`;
    const role = roleOf(lambda("reconciler"));
    expect(role.inputs.managedPolicyArns).toEqual([]);
    const grants = inlineStatements(role);
    expect(grants).toEqual([
      {
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: [bucket],
        Condition: { StringLike: { "s3:prefix": ["input/*"] } },
      },
      { Effect: "Allow", Action: ["s3:GetObject"], Resource: [`${bucket}/input/*`] },
      {
        Effect: "Allow",
        Action: ["s3:PutObject", "s3:GetObject"],
        Resource: [`arn:aws:s3:::${app.outputs.controlBucketName}/manifests/*`],
      },
      {
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: [`arn:aws:s3:::${app.outputs.controlBucketName}`],
        Condition: { StringLike: { "s3:prefix": ["manifests/*"] } },
      },
      { Effect: "Allow", Action: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], Resource: [table] },
      { Effect: "Allow", Action: ["dynamodb:Query"], Resource: [`${table}/index/pending`, table] },
      {
        Effect: "Allow",
        Action: ["glue:StartJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"],
        Resource: [`arn:aws:glue:${REGION}:${ACCOUNT_ID}:job/${app.outputs.glueJobName}`],
      },
      {
        Effect: "Allow",
        Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
        Resource: [`arn:aws:logs:${REGION}:${ACCOUNT_ID}:log-group:/aws/lambda/csv-ingest-${STAGE}-reconciler:*`],
      },
    ]);
    const ledger = grants[4]?.Action as string[];
    expect(ledger.every((a) => a.startsWith("dynamodb:") && !a.includes("*"))).toBe(true);
    expect(ledger).not.toContain("dynamodb:Scan");
  });
});

describe("EventBridge targets", () => {
  it.each([
    ["ObjectCreatedTarget", "ObjectCreatedRule", "IngestQueueQueue", "ObjectCreatedTargetDlqQueue"],
    ["GlueRunEndedTarget", "GlueRunEndedRule", "RecorderQueueQueue", "GlueRunEndedTargetDlqQueue"],
  ])("%s retries for 24 h (185 attempts), then keeps the event 14 days in its own DLQ", (name, ruleName, q, d) => {
    const dlq = queue(d);
    expect(target(name).inputs).toMatchObject({
      rule: rule(ruleName).state.name,
      arn: queue(q).state.arn,
      deadLetterConfig: { arn: dlq.state.arn },
      retryPolicy: { maximumRetryAttempts: 185, maximumEventAgeInSeconds: 86_400 },
    });
    expect(dlq.inputs).toMatchObject({ messageRetentionSeconds: 1_209_600, sqsManagedSseEnabled: true });
    const policy = app.one("aws:sqs/queuePolicy:QueuePolicy", (r) => r.inputs.queueUrl === dlq.state.url);
    expect(statementsOf(JSON.parse(policy.inputs.policy))).toEqual([
      {
        Sid: "OnlyTheRule",
        Effect: "Allow",
        Principal: { Service: ["events.amazonaws.com"] },
        Action: ["sqs:SendMessage"],
        Resource: [dlq.state.arn],
        Condition: { ArnEquals: { "aws:SourceArn": [rule(ruleName).state.arn] } },
      },
    ]);
  });
});

describe("alarms", () => {
  const any = { comparisonOperator: "GreaterThanThreshold", evaluationPeriods: 1, alarmActions: [topicArn] };

  it.each(["ObjectCreatedRule", "GlueRunEndedRule"])("%s: failed deliveries, and failures to reach its DLQ", (r) => {
    for (const metricName of ["FailedInvocations", "InvocationsFailedToBeSentToDlq"]) {
      expect(alarm(`${r}${metricName}`).inputs).toMatchObject({
        ...any,
        namespace: "AWS/Events",
        metricName,
        dimensions: { RuleName: rule(r).state.name },
        statistic: "Sum",
        period: 300,
        threshold: 0,
      });
    }
  });

  it("the ingest queue's oldest message past 726 s (2 visibility timeouts of 362 s + the 2 s window)", () => {
    expect(alarm("IngestQueueOldestMessage").inputs).toMatchObject({
      ...any,
      namespace: "AWS/SQS",
      metricName: "ApproximateAgeOfOldestMessage",
      dimensions: { QueueName: queue("IngestQueueQueue").state.name },
      statistic: "Maximum",
      period: 300,
      threshold: 726,
    });
  });

  it("the run-start circuit breaker tripping (CircuitOpen >= 1)", () => {
    expect(alarm("CircuitOpenAlarm").inputs).toMatchObject({
      ...any,
      namespace: "CsvIngest",
      metricName: "CircuitOpen",
      dimensions: { service: "csv-ingest" },
      statistic: "Sum",
      period: 300,
      threshold: 0,
    });
  });

  it("any message in any of the four DLQs", () => {
    const watched = app
      .ofType("aws:cloudwatch/metricAlarm:MetricAlarm")
      .filter((a) => a.inputs.metricName === "ApproximateNumberOfMessagesVisible")
      .map((a) => a.inputs.dimensions.QueueName)
      .sort();
    const dlqs = ["IngestDlqQueue", "RecorderDlqQueue", "ObjectCreatedTargetDlqQueue", "GlueRunEndedTargetDlqQueue"];
    expect(watched).toEqual(dlqs.map((d) => queue(d).state.name).sort());
  });

  it.each([
    ["SweeperErrors", "sweeper", 300],
    ["ReconcilerErrors", "reconciler", 900],
  ])("%s: any failed invocation, one period per scheduled run", (name, fn, period) => {
    expect(alarm(name).inputs).toMatchObject({
      ...any,
      namespace: "AWS/Lambda",
      metricName: "Errors",
      dimensions: { FunctionName: `csv-ingest-${STAGE}-${fn}` },
      statistic: "Sum",
      period,
      threshold: 0,
    });
  });
});

describe("dev's numbers, pinned", () => {
  it("ingest: 4,000 records, 2 s window, concurrency 2, 60 s batcher, 362 s visibility, 5 receives", () => {
    const q = queue("IngestQueueQueue");
    const mapping = app.one(
      "aws:lambda/eventSourceMapping:EventSourceMapping",
      (r) => r.inputs.eventSourceArn === q.state.arn,
    );
    expect(mapping.inputs).toMatchObject({
      batchSize: 4_000,
      maximumBatchingWindowInSeconds: 2,
      scalingConfig: { maximumConcurrency: 2 },
    });
    expect(lambda("batcher").inputs.timeout).toBe(60);
    expect(q.inputs.visibilityTimeoutSeconds).toBe(362);
    expect(JSON.parse(q.inputs.redrivePolicy).maxReceiveCount).toBe(5);
    expect(queue("IngestDlqQueue").inputs.messageRetentionSeconds).toBe(1_209_600);
  });

  it("recorder: 10 records, no window, 60 s, 360 s visibility; sweeper every 5 minutes, 120 s", () => {
    const q = queue("RecorderQueueQueue");
    const mapping = app.one(
      "aws:lambda/eventSourceMapping:EventSourceMapping",
      (r) => r.inputs.eventSourceArn === q.state.arn,
    );
    expect(mapping.inputs).toMatchObject({ batchSize: 10, scalingConfig: { maximumConcurrency: 2 } });
    expect(lambda("recorder").inputs.timeout).toBe(60);
    expect(q.inputs.visibilityTimeoutSeconds).toBe(360);
    expect(rule("SweeperRule").inputs.scheduleExpression).toBe("rate(5 minutes)");
    expect(lambda("sweeper").inputs.timeout).toBe(120);
  });

  it("glue: 2 G.1X workers, 30 minutes, one run at a time", () => {
    expect(app.one("aws:glue/job:Job").inputs).toMatchObject({
      workerType: "G.1X",
      numberOfWorkers: 2,
      timeout: 30,
      executionProperty: { maxConcurrentRuns: 1 },
    });
  });
});
