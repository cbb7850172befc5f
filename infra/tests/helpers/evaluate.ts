/**
 * A small IAM policy evaluator for the tests: does a set of identity policies plus a resource (bucket) policy allow
 * one request, and which Allow grants did it use? The subset of IAM this app's policies use, evaluated as IAM does
 * within one account (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
 * an explicit Deny anywhere wins; otherwise an Allow in either the identity's policies or the resource's policy
 * allows; otherwise the request is implicitly denied.
 *
 * Supported: Action/NotAction (case-insensitive, `*` and `?`), Resource/NotResource (`*` and `?`), Principal `*` or
 * by ARN, and the condition operators String(Not)Equals, String(Not)Like, Arn(Not)Equals, Arn(Not)Like, Bool, with
 * IAM's rule that a negated operator on a missing key matches. Anything else throws: no silent "allow".
 */
import { type PolicyDocument, type PolicyStatement, statementsOf } from "./iam";

export interface Request {
  /** The role (or user) ARN the call is made as: `aws:PrincipalArn`. */
  readonly principalArn: string;
  /** As IAM spells it: `s3:GetObject`. */
  readonly action: string;
  readonly resource: string;
  /** Condition keys (`s3:prefix`, `cloudwatch:namespace`, …). `aws:PrincipalArn` and `aws:SecureTransport` are set. */
  readonly context?: Readonly<Record<string, string | readonly string[]>>;
}

/** One Allow statement of one identity policy, by where it is and its index. */
export interface GrantRef {
  readonly policy: string;
  readonly statement: number;
}

export interface Decision {
  readonly decision: "allow" | "explicit-deny" | "implicit-deny";
  /** The identity Allow statements that match the request (what a "used grant" is). */
  readonly allowedBy: GrantRef[];
  /** The Deny statements that matched. */
  readonly deniedBy: string[];
}

export interface NamedPolicy {
  readonly name: string;
  readonly document: PolicyDocument;
}

export function evaluate(
  identity: readonly NamedPolicy[],
  resource: readonly NamedPolicy[],
  request: Request,
): Decision {
  const context = contextOf(request);
  const allowedBy: GrantRef[] = [];
  const deniedBy: string[] = [];
  let resourceAllows = false;
  for (const policy of identity) {
    statementsOf(policy.document).forEach((statement, i) => {
      if (!matches(statement, request, context)) return;
      if (statement.Effect === "Deny") deniedBy.push(`${policy.name}#${statement.Sid ?? i}`);
      else allowedBy.push({ policy: policy.name, statement: i });
    });
  }
  for (const policy of resource) {
    statementsOf(policy.document).forEach((statement, i) => {
      if (!principalMatches(statement.Principal, request.principalArn)) return;
      if (!matches(statement, request, context)) return;
      if (statement.Effect === "Deny") deniedBy.push(`${policy.name}#${statement.Sid ?? i}`);
      else resourceAllows = true;
    });
  }
  const decision =
    deniedBy.length > 0 ? "explicit-deny" : allowedBy.length > 0 || resourceAllows ? "allow" : "implicit-deny";
  return { decision, allowedBy, deniedBy };
}

const list = (value: string | readonly string[] | undefined): string[] =>
  value === undefined ? [] : typeof value === "string" ? [value] : [...value];

function contextOf(request: Request): Map<string, string[]> {
  const context = new Map<string, string[]>([
    ["aws:principalarn", [request.principalArn]],
    ["aws:securetransport", ["true"]],
  ]);
  for (const [key, value] of Object.entries(request.context ?? {})) context.set(key.toLowerCase(), list(value));
  return context;
}

function matches(statement: PolicyStatement, request: Request, context: Map<string, string[]>): boolean {
  const actionOk =
    statement.Action !== undefined
      ? list(statement.Action).some((p) => glob(p, request.action, true))
      : !list(statement.NotAction).some((p) => glob(p, request.action, true));
  if (!actionOk) return false;
  const resourceOk =
    statement.Resource !== undefined
      ? list(statement.Resource).some((p) => glob(p, request.resource, false))
      : !list(statement.NotResource).some((p) => glob(p, request.resource, false));
  if (!resourceOk) return false;
  return conditionsHold(statement.Condition ?? {}, context);
}

function principalMatches(principal: unknown, principalArn: string): boolean {
  if (principal === undefined) return false;
  if (principal === "*") return true;
  const aws = (principal as Record<string, string | string[]>).AWS;
  return list(aws).some((p) => p === "*" || p === principalArn);
}

function conditionsHold(condition: NonNullable<PolicyStatement["Condition"]>, context: Map<string, string[]>): boolean {
  return Object.entries(condition).every(([operator, byKey]) =>
    Object.entries(byKey).every(([key, expected]) =>
      operatorHolds(operator, context.get(key.toLowerCase()), list(expected)),
    ),
  );
}

function operatorHolds(operator: string, actual: string[] | undefined, expected: string[]): boolean {
  const negated = /^(String|Arn)Not/.test(operator);
  if (actual === undefined) return negated;
  const positive: Record<string, (a: string, e: string) => boolean> = {
    StringEquals: (a, e) => a === e,
    StringLike: (a, e) => glob(e, a, false),
    ArnEquals: (a, e) => a === e,
    ArnLike: (a, e) => glob(e, a, false),
    Bool: (a, e) => a.toLowerCase() === e.toLowerCase(),
  };
  const base = negated ? operator.replace("Not", "") : operator;
  const test = positive[base];
  if (!test) throw new Error(`the test evaluator does not know the condition operator ${operator}`);
  const any = actual.some((a) => expected.some((e) => test(a, e)));
  return negated ? !any : any;
}

/** IAM's wildcard match: `*` any run of characters, `?` one character; actions compare case-insensitively. */
export function glob(pattern: string, value: string, ignoreCase: boolean): boolean {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${source}$`, ignoreCase ? "is" : "s").test(value);
}
