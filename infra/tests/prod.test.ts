/** The prod stage: what prod keeps that other stages may throw away. Its own file: one stack per process. */
import { beforeAll, describe, expect, it } from "vitest";
import { pipelineConfig } from "../../packages/core/src/config/pipeline";
import { type EvaluatedApp, evaluateApp } from "./helpers/app";
import { policyDocuments, wildcardGrants } from "./helpers/iam";

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
    expect(app.one("aws:s3/bucketVersioning:BucketVersioning").inputs.versioningConfiguration.status).toBe("Enabled");
    expect(app.one("aws:s3/bucket:Bucket").inputs.forceDestroy).toBe(false);
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

  it("gives the job prod's default capacity (literal: runs override it per manifest) with auto scaling off", () => {
    expect(app.one("aws:glue/job:Job").inputs).toMatchObject({
      workerType: "G.1X",
      numberOfWorkers: 10,
      timeout: 120,
      executionProperty: { maxConcurrentRuns: 1 },
    });
    expect(app.one("aws:glue/job:Job").inputs.defaultArguments).toMatchObject({ "--enable-auto-scaling": "false" });
  });

  it("grants no wildcards here either", () => {
    const problems = policyDocuments(app.resources).flatMap(({ where, document }) =>
      wildcardGrants(document).map((problem) => `${where}: ${problem}`),
    );
    expect(problems).toEqual([]);
  });
});
