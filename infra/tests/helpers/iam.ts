/**
 * IAM documents as the tests see them: `renderPolicyDocument` turns aws.iam.getPolicyDocument's statement inputs
 * into policy JSON (as the provider would), `policyDocuments` finds every policy in a registered program, and
 * `wildcardGrants` lists Allow statements that grant more than named actions on named resources.
 */
import type { RegisteredResource } from "./app";

export interface PolicyStatement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Principal?: unknown;
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version?: string;
  Statement: PolicyStatement | PolicyStatement[];
}

/**
 * The only Allow statements that may say `Resource: "*"`: actions AWS does not authorise per resource. Each needs a
 * condition that narrows it instead.
 */
export const RESOURCE_STAR_ALLOWED: Readonly<Record<string, { reason: string; conditionKey: string }>> = {
  "cloudwatch:PutMetricData": {
    reason: "CloudWatch has no resource-level permissions for PutMetricData; the Glue job (--enable-metrics) needs it",
    conditionKey: "cloudwatch:namespace",
  },
};

interface StatementInput {
  sid?: string;
  effect?: string;
  actions?: string[];
  notActions?: string[];
  resources?: string[];
  notResources?: string[];
  principals?: { type: string; identifiers: string[] }[];
  conditions?: { test: string; variable: string; values: string[] }[];
}

export function renderPolicyDocument(statements: StatementInput[]): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: statements.map((s) => {
      const out: PolicyStatement = { Effect: s.effect === "Deny" ? "Deny" : "Allow" };
      if (s.sid) out.Sid = s.sid;
      if (s.actions) out.Action = s.actions;
      if (s.notActions) out.NotAction = s.notActions;
      if (s.resources) out.Resource = s.resources;
      if (s.notResources) out.NotResource = s.notResources;
      if (s.principals) {
        out.Principal = s.principals.some((p) => p.type === "*")
          ? "*"
          : Object.fromEntries(s.principals.map((p) => [p.type, p.identifiers]));
      }
      if (s.conditions) {
        const condition: Record<string, Record<string, string[]>> = {};
        for (const c of s.conditions) {
          condition[c.test] ??= {};
          (condition[c.test] as Record<string, string[]>)[c.variable] = c.values;
        }
        out.Condition = condition;
      }
      return out;
    }),
  };
}

const list = (value: string | string[] | undefined): string[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

export function statementsOf(document: PolicyDocument): PolicyStatement[] {
  return Array.isArray(document.Statement) ? document.Statement : [document.Statement];
}

/** Why each Allow statement of `document` is too broad; empty when it is not. */
export function wildcardGrants(document: PolicyDocument): string[] {
  const problems: string[] = [];
  for (const statement of statementsOf(document)) {
    if (statement.Effect !== "Allow") continue;
    const actions = list(statement.Action);
    const label = statement.Sid ?? actions.join(",");
    if (statement.NotAction !== undefined) problems.push(`${label}: NotAction in an Allow`);
    if (statement.NotResource !== undefined) problems.push(`${label}: NotResource in an Allow`);
    for (const action of actions) if (action.includes("*")) problems.push(`${label}: wildcard action ${action}`);
    if (list(statement.Resource).includes("*")) {
      for (const action of actions) {
        const allowed = RESOURCE_STAR_ALLOWED[action];
        const conditioned = Object.values(statement.Condition ?? {}).some(
          (byKey) => allowed !== undefined && allowed.conditionKey in byKey,
        );
        if (!allowed) problems.push(`${label}: Resource "*" for ${action}`);
        else if (!conditioned) problems.push(`${label}: Resource "*" for ${action} without ${allowed.conditionKey}`);
      }
    }
  }
  return problems;
}

/** Every IAM document the program declares: role inline and trust policies, bucket/queue/topic/managed policies. */
export function policyDocuments(
  resources: readonly RegisteredResource[],
): { where: string; document: PolicyDocument }[] {
  const found: { where: string; document: PolicyDocument }[] = [];
  const parse = (value: unknown): PolicyDocument =>
    typeof value === "string" ? JSON.parse(value) : (value as PolicyDocument);
  for (const r of resources) {
    if (r.type === "aws:iam/role:Role") {
      for (const inline of r.inputs.inlinePolicies ?? []) {
        found.push({ where: `${r.name} inline ${inline.name}`, document: parse(inline.policy) });
      }
      if (r.inputs.assumeRolePolicy)
        found.push({ where: `${r.name} trust`, document: parse(r.inputs.assumeRolePolicy) });
    }
    if (
      [
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:sqs/queuePolicy:QueuePolicy",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:iam/policy:Policy",
        "aws:iam/rolePolicy:RolePolicy",
      ].includes(r.type)
    ) {
      found.push({ where: `${r.name} (${r.type})`, document: parse(r.inputs.policy) });
    }
  }
  return found;
}

/** The principals a trust policy lets assume the role: `Service:glue.amazonaws.com`, `AWS:arn:…:root`, … sorted. */
export function trustedPrincipals(trustPolicy: unknown): string[] {
  const document: PolicyDocument =
    typeof trustPolicy === "string" ? JSON.parse(trustPolicy) : (trustPolicy as PolicyDocument);
  const found: string[] = [];
  for (const statement of statementsOf(document)) {
    if (statement.Effect !== "Allow") continue;
    const principal = statement.Principal;
    if (principal === "*") found.push("*");
    else if (principal && typeof principal === "object") {
      for (const [type, ids] of Object.entries(principal as Record<string, string | string[]>)) {
        for (const id of list(ids)) found.push(`${type}:${id}`);
      }
    }
  }
  return found.sort();
}
