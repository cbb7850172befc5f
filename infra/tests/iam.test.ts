/** The wildcard checker itself: it must flag what the app test relies on it to flag. */
import { describe, expect, it } from "vitest";
import { type PolicyDocument, renderPolicyDocument, wildcardGrants } from "./helpers/iam";

const doc = (...Statement: PolicyDocument["Statement"][]): PolicyDocument => ({
  Version: "2012-10-17",
  Statement: Statement.flat(),
});

describe("wildcardGrants", () => {
  it("passes named actions on named resources", () => {
    expect(
      wildcardGrants(doc({ Effect: "Allow", Action: ["s3:GetObject"], Resource: ["arn:aws:s3:::b/input/*"] })),
    ).toEqual([]);
  });

  it.each([
    ["a service wildcard", { Effect: "Allow", Action: ["glue:*"], Resource: ["arn:aws:glue:us-east-1:1:job/j"] }],
    ["a partial wildcard", { Effect: "Allow", Action: "s3:Get*", Resource: "arn:aws:s3:::b/*" }],
    ["everything", { Effect: "Allow", Action: "*", Resource: "arn:aws:s3:::b" }],
    ["Resource * for a resource-level action", { Effect: "Allow", Action: ["s3:GetObject"], Resource: "*" }],
    ["NotAction", { Effect: "Allow", NotAction: ["iam:*"], Resource: ["arn:aws:s3:::b"] }],
    ["NotResource", { Effect: "Allow", Action: ["s3:GetObject"], NotResource: ["arn:aws:s3:::b"] }],
    [
      "an allow-listed action without its condition",
      { Effect: "Allow", Action: ["cloudwatch:PutMetricData"], Resource: ["*"] },
    ],
  ] as const)("flags %s", (_, statement) => {
    expect(wildcardGrants(doc(statement as PolicyDocument["Statement"]))).not.toEqual([]);
  });

  it("accepts the allow-listed Resource * when its condition narrows it", () => {
    const statement = {
      Effect: "Allow" as const,
      Action: ["cloudwatch:PutMetricData"],
      Resource: ["*"],
      Condition: { StringEquals: { "cloudwatch:namespace": "Glue" } },
    };
    expect(wildcardGrants(doc(statement))).toEqual([]);
  });

  it("ignores Deny statements (the TLS-only deny names s3:* on purpose)", () => {
    expect(wildcardGrants(doc({ Effect: "Deny", Action: ["s3:*"], Resource: ["*"] }))).toEqual([]);
  });

  it("reads documents rendered from getPolicyDocument statements", () => {
    const rendered = renderPolicyDocument([{ actions: ["dynamodb:*"], resources: ["arn:aws:dynamodb:::table/t"] }]);
    expect(wildcardGrants(rendered)).toEqual(["dynamodb:*: wildcard action dynamodb:*"]);
  });
});
