/** The test IAM evaluator itself: the traffic and uploader tests rely on it to say allow/deny as IAM would. */
import { describe, expect, it } from "vitest";
import { evaluate, glob, type NamedPolicy } from "./helpers/evaluate";

const ROLE = "arn:aws:iam::1:role/app-batcher";
const identity = (...Statement: object[]): NamedPolicy[] => [
  { name: "inline", document: { Version: "2012-10-17", Statement: Statement as never } },
];
const bucketPolicy = (...Statement: object[]): NamedPolicy[] => [
  { name: "bucket", document: { Version: "2012-10-17", Statement: Statement as never } },
];
const get = (resource: string, context = {}) => ({ principalArn: ROLE, action: "s3:GetObject", resource, context });

describe("evaluate", () => {
  it("allows a named action on a matching resource pattern, and says which grant did", () => {
    const d = evaluate(
      identity({ Effect: "Allow", Action: ["s3:GetObject"], Resource: ["arn:aws:s3:::b/input/*"] }),
      [],
      get("arn:aws:s3:::b/input/a.csv"),
    );
    expect(d).toEqual({ decision: "allow", allowedBy: [{ policy: "inline", statement: 0 }], deniedBy: [] });
  });

  it("denies implicitly what no statement allows (another prefix, another action)", () => {
    const policies = identity({ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/input/*" });
    expect(evaluate(policies, [], get("arn:aws:s3:::b/processed/a.csv")).decision).toBe("implicit-deny");
    expect(evaluate(policies, [], { ...get("arn:aws:s3:::b/input/a"), action: "s3:PutObject" }).decision).toBe(
      "implicit-deny",
    );
  });

  it("matches actions case-insensitively with wildcards, resources case-sensitively", () => {
    expect(glob("s3:Get*", "S3:GETOBJECT", true)).toBe(true);
    expect(glob("arn:aws:s3:::b/Input/*", "arn:aws:s3:::b/input/a", false)).toBe(false);
    expect(glob("arn:aws:s3:::b/?.csv", "arn:aws:s3:::b/a.csv", false)).toBe(true);
  });

  it("lets an explicit Deny in the bucket policy win over an identity Allow (NotResource, ArnNotLike)", () => {
    const allowAll = identity({ Effect: "Allow", Action: "s3:PutObject", Resource: "arn:aws:s3:::b/*" });
    const deny = bucketPolicy({
      Effect: "Deny",
      Principal: "*",
      Action: ["s3:PutObject"],
      NotResource: ["arn:aws:s3:::b/input/*"],
      Condition: { ArnNotLike: { "aws:PrincipalArn": ["arn:aws:iam::1:role/app-glue"] } },
    });
    const put = (resource: string, principalArn = ROLE) => ({ principalArn, action: "s3:PutObject", resource });
    expect(evaluate(allowAll, deny, put("arn:aws:s3:::b/processed/x")).decision).toBe("explicit-deny");
    expect(evaluate(allowAll, deny, put("arn:aws:s3:::b/input/x")).decision).toBe("allow");
    expect(evaluate(allowAll, deny, put("arn:aws:s3:::b/processed/x", "arn:aws:iam::1:role/app-glue")).decision).toBe(
      "allow",
    );
  });

  it("allows by the resource policy alone when its principal names the caller", () => {
    const grant = bucketPolicy({
      Effect: "Allow",
      Principal: { AWS: [ROLE] },
      Action: "s3:GetObject",
      Resource: "arn:aws:s3:::b/*",
    });
    expect(evaluate([], grant, get("arn:aws:s3:::b/a")).decision).toBe("allow");
    const other = bucketPolicy({
      Effect: "Allow",
      Principal: { AWS: ["arn:aws:iam::1:role/x"] },
      Action: "s3:GetObject",
      Resource: "arn:aws:s3:::b/*",
    });
    expect(evaluate([], other, get("arn:aws:s3:::b/a")).decision).toBe("implicit-deny");
  });

  it("checks conditions: StringLike on s3:prefix, StringEquals, Bool, and a missing key", () => {
    const list = identity({
      Effect: "Allow",
      Action: "s3:ListBucket",
      Resource: "arn:aws:s3:::b",
      Condition: { StringLike: { "s3:prefix": ["input/*"] } },
    });
    const req = (prefix?: string) => ({
      principalArn: ROLE,
      action: "s3:ListBucket",
      resource: "arn:aws:s3:::b",
      context: prefix === undefined ? ({} as Record<string, string>) : { "s3:prefix": prefix },
    });
    expect(evaluate(list, [], req("input/a.csv")).decision).toBe("allow");
    expect(evaluate(list, [], req("processed/")).decision).toBe("implicit-deny");
    expect(evaluate(list, [], req()).decision).toBe("implicit-deny");
    const tls = bucketPolicy({
      Effect: "Deny",
      Principal: "*",
      Action: "s3:*",
      Resource: "arn:aws:s3:::b/*",
      Condition: { Bool: { "aws:SecureTransport": ["false"] } },
    });
    const getAll = identity({ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/*" });
    expect(evaluate(getAll, tls, get("arn:aws:s3:::b/a")).decision).toBe("allow");
    expect(evaluate(getAll, tls, get("arn:aws:s3:::b/a", { "aws:SecureTransport": "false" })).decision).toBe(
      "explicit-deny",
    );
    const metrics = identity({
      Effect: "Allow",
      Action: "cloudwatch:PutMetricData",
      Resource: "*",
      Condition: { StringEquals: { "cloudwatch:namespace": "Glue" } },
    });
    const put = (ns: string) => ({
      principalArn: ROLE,
      action: "cloudwatch:PutMetricData",
      resource: "*",
      context: { "cloudwatch:namespace": ns },
    });
    expect(evaluate(metrics, [], put("Glue")).decision).toBe("allow");
    expect(evaluate(metrics, [], put("Other")).decision).toBe("implicit-deny");
  });

  it("refuses a condition operator it does not know rather than guess", () => {
    const odd = identity({
      Effect: "Allow",
      Action: "s3:GetObject",
      Resource: "*",
      Condition: { DateLessThan: { "aws:CurrentTime": "2030-01-01" } },
    });
    expect(() => evaluate(odd, [], get("arn:aws:s3:::b/a", { "aws:CurrentTime": "2026" }))).toThrow(/DateLessThan/);
  });
});
