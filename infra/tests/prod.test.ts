/** The prod stage: what prod keeps that other stages may throw away. Its own file: one stack per process. */
import { beforeAll, describe, expect, it } from "vitest";
import { pipelineConfig } from "../../packages/core/src/config/pipeline";
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

  it("lets only Lambda assume the handler roles and only Glue the job role (no account root)", () => {
    const roles = app.ofType("aws:iam/role:Role");
    expect(roles.length).toBeGreaterThanOrEqual(4);
    for (const role of roles) {
      const service = role.name === "GlueJobRole" ? "glue.amazonaws.com" : "lambda.amazonaws.com";
      expect([role.name, trustedPrincipals(role.inputs.assumeRolePolicy)]).toEqual([role.name, [`Service:${service}`]]);
    }
  });

  it("grants no wildcards here either", () => {
    const problems = policyDocuments(app.resources).flatMap(({ where, document }) =>
      wildcardGrants(document).map((problem) => `${where}: ${problem}`),
    );
    expect(problems).toEqual([]);
  });
});
