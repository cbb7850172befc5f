/**
 * Issue 12 on a non-prod stage: who can write which bucket (evaluated with the test IAM evaluator against the
 * policies the app declares), the uploader policy, lifecycle rules, and role names. Its own file: one stack.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { pipelineConfig, STORAGE_LIFECYCLE } from "../../packages/core/src/config/pipeline";
import { ACCOUNT_ID, type EvaluatedApp, evaluateApp, REGION, type RegisteredResource } from "./helpers/app";
import { evaluate, type NamedPolicy } from "./helpers/evaluate";

const STAGE = "sec";
let app: EvaluatedApp;
beforeAll(async () => {
  app = await evaluateApp(STAGE);
});

const role = (name: string) => app.one("aws:iam/role:Role", (r) => String(r.inputs.name).includes(`-${name}-`));
const inlinePolicies = (r: RegisteredResource): NamedPolicy[] =>
  (r.inputs.inlinePolicies as { name: string; policy: string }[]).map((p) => ({
    name: `${r.name}/${p.name}`,
    document: JSON.parse(p.policy),
  }));
/** The policy of the bucket `resource` is in: S3 evaluates a bucket's policy only for requests on that bucket. */
const bucketPolicyOf = (resource: string): NamedPolicy[] =>
  app
    .ofType("aws:s3/bucketPolicy:BucketPolicy")
    .filter(
      (r) => resource.startsWith(`arn:aws:s3:::${r.inputs.bucket}/`) || resource === `arn:aws:s3:::${r.inputs.bucket}`,
    )
    .map((r) => ({ name: r.name, document: JSON.parse(r.inputs.policy) }));
const uploaderPolicy = (): NamedPolicy => {
  const policy = app.one("aws:iam/policy:Policy", (r) => r.name === "UploaderPolicy");
  return { name: "UploaderPolicy", document: JSON.parse(policy.inputs.policy) };
};
const data = () => `arn:aws:s3:::${app.outputs.bucketName}`;
const control = () => `arn:aws:s3:::${app.outputs.controlBucketName}`;
/** Someone else in the account who may do anything in S3 (an admin-ish user, a compromised tool). */
const S3_EVERYTHING: NamedPolicy = {
  name: "s3-everything",
  document: { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*" }] },
};
const OUTSIDER = `arn:aws:iam::${ACCOUNT_ID}:role/someone-else`;

function decide(principalArn: string, identity: NamedPolicy[], action: string, resource: string) {
  return evaluate(identity, bucketPolicyOf(resource), { principalArn, action, resource }).decision;
}

describe("an uploader (UploaderPolicy)", () => {
  const UPLOADER = `arn:aws:iam::${ACCOUNT_ID}:role/uploader`;

  it("is an output, and may write under input/ (single and multipart)", () => {
    expect(app.outputs.uploaderPolicyArn).toBe(app.one("aws:iam/policy:Policy").state.arn);
    for (const action of ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]) {
      expect(decide(UPLOADER, [uploaderPolicy()], action, `${data()}/input/sales/a.csv`)).toBe("allow");
    }
  });

  it.each([
    ["the job's outputs", () => `${data()}/processed/a/v=1/part-0.csv`],
    ["the run stats", () => `${data()}/processed/stats/r.json`],
    ["the job's staging", () => `${data()}/processed/_staging/r/x.csv`],
    ["a manifest", () => `${control()}/manifests/r.json`],
    ["the job's code", () => `${control()}/glue-assets/job.py`],
    ["the data bucket's root", () => `${data()}/a.csv`],
  ])("may not write %s", (_, resource) => {
    expect(decide(UPLOADER, [uploaderPolicy()], "s3:PutObject", resource())).not.toBe("allow");
  });

  it("may not read anything, delete, or write another bucket", () => {
    expect(decide(UPLOADER, [uploaderPolicy()], "s3:GetObject", `${data()}/input/a.csv`)).toBe("implicit-deny");
    expect(decide(UPLOADER, [uploaderPolicy()], "s3:DeleteObject", `${data()}/input/a.csv`)).toBe("implicit-deny");
    expect(decide(UPLOADER, [uploaderPolicy()], "s3:PutObject", "arn:aws:s3:::other/input/a.csv")).toBe(
      "implicit-deny",
    );
  });
});

describe("anyone else in the account, even with s3:* on *", () => {
  it.each([
    ["the job's outputs", () => `${data()}/processed/a/v=1/part-0.csv`, "s3:PutObject"],
    ["the run stats", () => `${data()}/processed/stats/r.json`, "s3:PutObject"],
    ["an output (delete)", () => `${data()}/processed/a/v=1/part-0.csv`, "s3:DeleteObject"],
    ["a manifest", () => `${control()}/manifests/r.json`, "s3:PutObject"],
    ["the job's code", () => `${control()}/glue-assets/job.py`, "s3:PutObject"],
    ["the job's code (delete a version)", () => `${control()}/glue-assets/job.py`, "s3:DeleteObjectVersion"],
  ])("is denied by the bucket policy: %s", (_, resource, action) => {
    expect(decide(OUTSIDER, [S3_EVERYTHING], action, resource())).toBe("explicit-deny");
  });

  it("may still upload under input/ if granted (the bucket policy does not widen anything)", () => {
    expect(decide(OUTSIDER, [S3_EVERYTHING], "s3:PutObject", `${data()}/input/a.csv`)).toBe("allow");
  });
});

describe("the pipeline's own roles pass the bucket policies", () => {
  it("the Glue role writes processed/ (its grant, not denied by the data bucket's policy)", () => {
    const glue = role("glue-job");
    expect(decide(glue.state.arn, inlinePolicies(glue), "s3:PutObject", `${data()}/processed/a/v=1/p.csv`)).toBe(
      "allow",
    );
    expect(decide(glue.state.arn, inlinePolicies(glue), "s3:PutObject", `${control()}/manifests/r.json`)).not.toBe(
      "allow",
    );
    expect(decide(glue.state.arn, inlinePolicies(glue), "s3:GetObject", `${control()}/glue-assets/job.py`)).toBe(
      "allow",
    );
  });

  it.each(["batcher", "recorder", "sweeper"])("the %s writes manifests to the control bucket", (name) => {
    const r = role(name);
    expect(decide(r.state.arn, inlinePolicies(r), "s3:PutObject", `${control()}/manifests/r.json`)).toBe("allow");
    expect(decide(r.state.arn, inlinePolicies(r), "s3:PutObject", `${data()}/manifests/r.json`)).not.toBe("allow");
    expect(decide(r.state.arn, inlinePolicies(r), "s3:PutObject", `${control()}/glue-assets/job.py`)).not.toBe("allow");
  });

  it("the deployer (the caller identity) may replace the job's code and empty the buckets", () => {
    const deployer = `arn:aws:iam::${ACCOUNT_ID}:user/test`;
    expect(decide(deployer, [S3_EVERYTHING], "s3:PutObject", `${control()}/glue-assets/job.py`)).toBe("allow");
    expect(decide(deployer, [S3_EVERYTHING], "s3:DeleteObject", `${data()}/processed/a/v=1/p.csv`)).toBe("allow");
  });
});

describe("storage hygiene", () => {
  it.each(["bucketName", "controlBucketName"])("%s: aborts incomplete multipart uploads, expires old versions", (o) => {
    const lifecycle = app.one(
      "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
      (r) => r.inputs.bucket === app.outputs[o],
    );
    expect(lifecycle.inputs.rules).toEqual([
      {
        id: "abort-incomplete-multipart-uploads",
        status: "Enabled",
        filter: { prefix: "" },
        abortIncompleteMultipartUpload: { daysAfterInitiation: STORAGE_LIFECYCLE.abortIncompleteMultipartDays },
      },
      {
        id: "expire-noncurrent-versions",
        status: "Enabled",
        filter: { prefix: "" },
        noncurrentVersionExpiration: { noncurrentDays: STORAGE_LIFECYCLE.noncurrentVersionDays },
      },
    ]);
  });

  it("names every role for its app, stage, purpose and region (role names are account-wide), within 64", () => {
    const names = app.ofType("aws:iam/role:Role").map((r) => String(r.inputs.name));
    expect(names.sort()).toEqual(
      ["batcher", "glue-job", "reconciler", "recorder", "sweeper"].map(
        (what) => `csv-ingest-${STAGE}-${what}-${REGION}`,
      ),
    );
    for (const name of names) expect(name.length).toBeLessThanOrEqual(64);
  });

  it("passes the Lambda handlers the control bucket", () => {
    for (const fn of app.ofType("aws:lambda/function:Function")) {
      expect(fn.inputs.environment.variables.CONTROL_BUCKET).toBe(app.outputs.controlBucketName);
    }
    expect(pipelineConfig(STAGE).limits.maxFileBytes).toBeGreaterThan(0);
  });
});
