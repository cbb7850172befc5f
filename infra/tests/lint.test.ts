/**
 * Every IAM policy the app declares, linted by parliament (a maintained IAM policy linter, pinned in
 * packages/twin/requirements.txt; it ships AWS's action/resource tables, no network): an action given a resource of
 * the wrong type (an object action on a bucket ARN, an item action on an index…), unknown actions, malformed ARNs.
 * Our own evaluator (helpers/evaluate.ts) answers allow/deny; parliament checks the grants make sense to AWS.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type EvaluatedApp, evaluateApp } from "./helpers/app";
import { policyDocuments } from "./helpers/iam";

const PYTHON = path.resolve(import.meta.dirname, "../../.venv/bin/python");
const LINT = `
import json, sys
from parliament import analyze_policy_string
out = []
for item in json.load(sys.stdin):
    policy = analyze_policy_string(json.dumps(item["document"]), ignore_private_auditors=True)
    for f in policy.findings:
        out.append({"where": item["where"], "issue": f.issue, "detail": str(f.detail)})
print(json.dumps(out))
`;

function lint(documents: { where: string; document: unknown }[]): { where: string; issue: string; detail: string }[] {
  const r = spawnSync(PYTHON, ["-c", LINT], { input: JSON.stringify(documents), encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`parliament failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

let app: EvaluatedApp;
beforeAll(async () => {
  app = await evaluateApp("dev");
});

describe("parliament", () => {
  it("finds the mismatches it is here to find (a bucket ARN for GetObject, an object ARN for ListBucket)", () => {
    const findings = lint([
      {
        where: "bad",
        document: {
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Action: ["s3:GetObject"], Resource: ["arn:aws:s3:::b"] },
            { Effect: "Allow", Action: ["s3:ListBucket"], Resource: ["arn:aws:s3:::b/*"] },
          ],
        },
      },
    ]);
    expect(findings.map((f) => f.issue)).toEqual(["RESOURCE_MISMATCH", "RESOURCE_MISMATCH"]);
  });

  it("has nothing to say about any identity policy of the app (roles' inline policies, UploaderPolicy)", () => {
    const identity = policyDocuments(app.resources).filter(
      ({ where }) => where.includes(" inline ") || where.includes("aws:iam/policy:Policy"),
    );
    expect(identity.length).toBeGreaterThanOrEqual(5);
    expect(lint(identity)).toEqual([]);
  });
});
