/** The prod stage: what prod keeps that other stages may throw away. Its own file: one stack per process. */
import { beforeAll, describe, expect, it } from "vitest";
import { pipelineConfig, STORAGE_LIFECYCLE } from "../../packages/core/src/config/pipeline";
import { type EvaluatedApp, evaluateApp } from "./helpers/app";
import { policyDocuments, trustedPrincipals, wildcardGrants } from "./helpers/iam";

const config = pipelineConfig("prod");
let app: EvaluatedApp;
beforeAll(async () => {
  app = await evaluateApp("prod");
});

describe("prod", () => {
  it("is retained and protected", () => {
    expect(app.app).toMatchObject({ removal: "retain", protect: true });
  });

  it("versions the data bucket and never force-destroys it", () => {
    const versioning = app.ofType("aws:s3/bucketVersioning:BucketVersioning");
    expect(versioning.map((v) => v.inputs.versioningConfiguration.status)).toEqual(["Enabled", "Enabled"]);
    const buckets = app.ofType("aws:s3/bucket:Bucket");
    expect(buckets.map((b) => [b.name, b.inputs.forceDestroy])).toEqual([
      ["DataBucketBucket", false],
      ["ControlBucketBucket", false],
    ]);
  });

  it("expires old versions and aborts incomplete multipart uploads in both buckets", () => {
    const lifecycles = app.ofType("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration");
    expect(lifecycles).toHaveLength(2);
    for (const lifecycle of lifecycles) {
      expect(lifecycle.inputs.rules).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            status: "Enabled",
            noncurrentVersionExpiration: { noncurrentDays: STORAGE_LIFECYCLE.noncurrentVersionDays },
          }),
          expect.objectContaining({
            status: "Enabled",
            abortIncompleteMultipartUpload: { daysAfterInitiation: STORAGE_LIFECYCLE.abortIncompleteMultipartDays },
          }),
        ]),
      );
    }
  });

  it("keeps point-in-time recovery and deletion protection on the ledger", () => {
    expect(app.one("aws:dynamodb/table:Table").inputs).toMatchObject({
      pointInTimeRecovery: { enabled: true },
      deletionProtectionEnabled: true,
    });
  });

  it("uses prod's window and workers", () => {
    const mapping = app
      .ofType("aws:lambda/eventSourceMapping:EventSourceMapping")
      .find((r) => r.inputs.batchSize === config.queue.batchSize);
    expect(mapping?.inputs.maximumBatchingWindowInSeconds).toBe(config.queue.batchingWindowSeconds);
    expect(app.one("aws:glue/job:Job").inputs).toMatchObject({
      numberOfWorkers: config.glue.numberOfWorkers,
      timeout: config.glue.timeoutMinutes,
    });
  });

  it("lets only Lambda assume the handler roles and only Glue the job role (no account root)", () => {
    const roles = app.ofType("aws:iam/role:Role");
    expect(roles.length).toBeGreaterThanOrEqual(4);
    for (const role of roles) {
      const service = role.name === "GlueJobRole" ? "glue.amazonaws.com" : "lambda.amazonaws.com";
      expect([role.name, trustedPrincipals(role.inputs.assumeRolePolicy)]).toEqual([role.name, [`Service:${service}`]]);
    }
  });

  it("gives the job prod's default capacity (literal: runs override it per manifest) with auto scaling off", () => {
    expect(app.one("aws:glue/job:Job").inputs).toMatchObject({
      workerType: "G.1X",
      numberOfWorkers: 10,
      timeout: 120,
      executionProperty: { maxConcurrentRuns: 1 },
    });
    expect(app.one("aws:glue/job:Job").inputs.defaultArguments).toMatchObject({ "--enable-auto-scaling": "false" });
  });

  // Literals, not the config module's values read back: changing a prod number must fail here until it is meant.
  it("pins prod's numbers: a 60 s window over 4,000 records, 420 s visibility, handler timeouts, schedules", () => {
    const ingestQueue = app.one("aws:sqs/queue:Queue", (r) => String(r.state.name).includes("-IngestQueueQueue-"));
    const mapping = app.one(
      "aws:lambda/eventSourceMapping:EventSourceMapping",
      (r) => r.inputs.eventSourceArn === ingestQueue.state.arn,
    );
    expect(mapping.inputs).toMatchObject({
      batchSize: 4_000,
      maximumBatchingWindowInSeconds: 60,
      scalingConfig: { maximumConcurrency: 2 },
    });
    expect(ingestQueue.inputs.visibilityTimeoutSeconds).toBe(420);
    const fn = (name: string) =>
      app.one("aws:lambda/function:Function", (r) => r.inputs.name === `csv-ingest-prod-${name}`);
    expect(["batcher", "recorder", "sweeper", "reconciler"].map((n) => fn(n).inputs.timeout)).toEqual([
      60, 60, 120, 120,
    ]);
    // one full vCPU each (Lambda: 1,769 MB); SST's default 1,024 MB is ~0.58 of one and the worst invocations are
    // CPU-bound (bench:batcher)
    expect(["batcher", "recorder", "sweeper", "reconciler"].map((n) => fn(n).inputs.memorySize)).toEqual([
      1769, 1769, 1769, 1769,
    ]);
    const schedule = (name: string) =>
      app.one("aws:cloudwatch/eventRule:EventRule", (r) => r.name === name).inputs.scheduleExpression;
    expect([schedule("SweeperRule"), schedule("ReconcilerRule")]).toEqual(["rate(5 minutes)", "rate(15 minutes)"]);
  });

  it("alarms when an upload's event waits over 900 s (2 x 420 s visibility + the 60 s window)", () => {
    const alarm = app.one("aws:cloudwatch/metricAlarm:MetricAlarm", (r) => r.name === "IngestQueueOldestMessage");
    expect(alarm.inputs).toMatchObject({ metricName: "ApproximateAgeOfOldestMessage", threshold: 900 });
  });

  it("grants no wildcards here either", () => {
    const problems = policyDocuments(app.resources).flatMap(({ where, document }) =>
      wildcardGrants(document).map((problem) => `${where}: ${problem}`),
    );
    expect(problems).toEqual([]);
  });
});
