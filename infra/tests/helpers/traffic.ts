/**
 * Least privilege proven by traffic: every AWS call in a call record (the twin's fault layer writes one line per call;
 * contract in packages/twin's record.ts) is checked against the policies the app gives that caller's role (the app
 * evaluated under Pulumi mocks), and every Allow grant no call used is listed.
 *
 * The twin's resource names are mapped to the app's (the twin's bucket → the stage's data bucket, …); a call is
 * authorised on AWS by the same role whether it succeeded, failed its condition or met an injected fault.
 */
import { TWIN_NAMES } from "../../../packages/twin/src/constants";
import type { EvaluatedApp, RegisteredResource } from "./app";
import { evaluate, glob, type NamedPolicy } from "./evaluate";
import { type PolicyDocument, type PolicyStatement, statementsOf } from "./iam";

/** One line of the call record (see packages/twin/src/faults/record.ts). */
export interface CallLine {
  readonly t: string;
  readonly principal: string;
  readonly service: string;
  readonly action: string;
  readonly resources: readonly string[];
  readonly outcome: string;
  /** The API operation (`UploadPart`, `DeleteObjects`): the job's own record (calls.glue-job.jsonl) names it. */
  readonly api?: string;
  /** Condition keys of the request as AWS sees them: a listing's `s3:prefix` (the job's record has it). */
  readonly context?: Readonly<Record<string, string>>;
}

export function parseCalls(text: string): CallLine[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line, i) => {
      try {
        return JSON.parse(line) as CallLine;
      } catch (error) {
        throw new Error(`call record line ${i + 1} is not JSON: ${(error as Error).message}`);
      }
    });
}

/**
 * Calls the twin makes that have no counterpart under any role on AWS, each with why. Everything else must be
 * allowed by the caller's role.
 */
export const TWIN_ONLY_CALLS: readonly { principal: string; action: string; why: string }[] = [
  {
    principal: "glue-service",
    action: "events:PutEvents",
    why: "the twin's Glue service emits the Glue Job State Change event; on AWS Glue itself does, under no role of ours",
  },
  {
    principal: "glue-service",
    action: "s3:GetObjectVersion",
    why: "the twin stages a run's uploads by version id for local Spark; on AWS the job reads the key (GetObject) and checks its etag",
  },
];

/**
 * Grants no record can use, each with the call on AWS that needs it. The records: the twin's (the handlers, and the
 * twin's Glue service standing in for the job's reads and writes) and the Glue job's own S3 calls, recorded on moto
 * by glue/tests/test_job_s3_calls.py (fixtures/calls.glue-job.jsonl). Neither has CloudWatch Logs or metrics, nor
 * Glue loading the job's code; a HeadObject/GetObject of a deleted key needs ListBucket only to answer 404 instead
 * of 403. A key is `<role> <action>` (`*`: any role), or `<role> <action> <tail>` for only the grants whose resource
 * ends with `<tail>`.
 */
export const GRANTS_NOT_SEEN: Record<string, string> = {
  "* logs:CreateLogStream": "Lambda/Glue write their logs (no CloudWatch Logs in the twin)",
  "* logs:PutLogEvents": "Lambda/Glue write their logs",
  "glue-job logs:CreateLogGroup": "Glue continuous logging creates /aws-glue/jobs/logs-v2 on first use",
  "glue-job cloudwatch:PutMetricData": "--enable-metrics: Glue's job metrics (namespace Glue only)",
  "* s3:ListBucket": "HeadObject/GetObject of a missing key answers 404 (not 403) only with ListBucket",
  "glue-job s3:GetObject /glue-assets/*": "Glue loads the job's script and --extra-py-files modules as the role",
  "glue-job s3:AbortMultipartUpload":
    "s3transfer aborts a multipart upload whose part failed (the job's record has its multipart calls, no failure)",
  "* sqs:GetQueueAttributes": "Lambda's SQS event source mapping reads the queue's attributes",
  "* sqs:GetQueueUrl": "added by SST's queue subscriber",
  "* glue:BatchStopJobRun":
    "a Glue run whose start the ledger had already given up (its starter paused past the start timeout between its launch fence and Glue's answer) is stopped; no twin run pauses a starter that long (packages/core/tests/unit/launch-fence.test.ts)",
  "batcher s3:GetObject /manifests/*":
    "undoing a start that died before launching, revoked as stale by the next batch; the twin's record has no crashed start (launch-fence.test.ts)",
  "reconciler s3:GetObject /manifests/*":
    "undoing a start that died before launching, revoked as stale by the reconciler's start (as the batcher)",
};

export function explained(grant: { role: string; action: string; resource?: string }): boolean {
  return Object.keys(GRANTS_NOT_SEEN).some((key) => {
    const [role, action, tail] = key.split(" ");
    return (
      (role === "*" || role === grant.role) &&
      action === grant.action &&
      (tail === undefined || (grant.resource ?? "").endsWith(tail))
    );
  });
}

/** Which role each recorded principal stands for (`unknown`: the test harness or CLI, not the pipeline). */
export function roleOfPrincipal(app: EvaluatedApp, principal: string): RegisteredResource | null {
  const stage = app.outputs.stage as string;
  if (principal === "glue-job" || principal === "glue-service") {
    const job = app.one("aws:glue/job:Job");
    return app.one("aws:iam/role:Role", (r) => r.state.arn === job.inputs.roleArn);
  }
  const fn = app
    .ofType("aws:lambda/function:Function")
    .find((r) => r.inputs.name === `csv-ingest-${stage}-${principal}`);
  return fn ? app.one("aws:iam/role:Role", (r) => r.state.arn === fn.inputs.role) : null;
}

export function policiesOf(role: RegisteredResource): NamedPolicy[] {
  return (role.inputs.inlinePolicies as { name: string; policy: string }[]).map((p) => ({
    name: `${role.name}/${p.name}`,
    document: JSON.parse(p.policy),
  }));
}

/** The twin's names in an ARN replaced by the app's. */
export function toAppArn(app: EvaluatedApp, arn: string): string {
  const o = app.outputs;
  const queue = (url: string) => url.split("/").pop() ?? url;
  const names: [string, string][] = [
    [`:::${TWIN_NAMES.bucket}`, `:::${o.bucketName}`],
    [`:::${TWIN_NAMES.controlBucket}`, `:::${o.controlBucketName}`],
    [`:table/${TWIN_NAMES.ledgerTable}`, `:table/${o.ledgerTableName}`],
    [`:job/${TWIN_NAMES.glueJob}`, `:job/${o.glueJobName}`],
    [`:${TWIN_NAMES.ingestDlq}`, `:${queue(o.ingestDlqUrl)}`],
    [`:${TWIN_NAMES.recorderDlq}`, `:${queue(o.recorderDlqUrl)}`],
    [`:${TWIN_NAMES.ingestQueue}`, `:${queue(o.ingestQueueUrl)}`],
    [`:${TWIN_NAMES.recorderQueue}`, `:${queue(o.recorderQueueUrl)}`],
  ];
  for (const [twin, real] of names) {
    if (arn.includes(twin) && (arn.endsWith(twin) || /^[/:]/.test(arn.slice(arn.indexOf(twin) + twin.length)))) {
      return arn.replace(twin, real);
    }
  }
  return arn;
}

export interface Denied {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly decision: string;
}

export interface Grant {
  readonly role: string;
  readonly action: string;
  readonly resource: string;
}

export interface TrafficReport {
  readonly checked: number;
  readonly twinOnly: number;
  readonly notPipeline: number;
  /** Calls the role's policies would refuse on AWS (distinct). */
  readonly denied: Denied[];
  /** Principals the record names that the app has no role for. */
  readonly unmapped: string[];
  /** Allow grants (role, action, resource pattern) of the recorded principals' roles that no call used. */
  readonly unused: Grant[];
  /** Per role: each used grant with one call that needed it. */
  readonly used: (Grant & { readonly call: string })[];
}

export function checkTraffic(app: EvaluatedApp, calls: readonly CallLine[]): TrafficReport {
  const denied = new Map<string, Denied>();
  const unmapped = new Set<string>();
  const usedBy = new Map<string, string>();
  const roles = new Map<string, RegisteredResource>();
  let checked = 0;
  let twinOnly = 0;
  let notPipeline = 0;
  for (const call of calls) {
    if (call.principal === "unknown") {
      notPipeline++;
      continue;
    }
    if (TWIN_ONLY_CALLS.some((c) => c.principal === call.principal && c.action === call.action)) {
      twinOnly++;
      continue;
    }
    const role = roleOfPrincipal(app, call.principal);
    if (!role) {
      unmapped.add(call.principal);
      continue;
    }
    roles.set(role.name, role);
    const policies = policiesOf(role);
    for (const twinArn of call.resources.length ? call.resources : ["*"]) {
      const resource = toAppArn(app, twinArn);
      checked++;
      const decision = evaluate(policies, bucketPolicyOf(app, resource), {
        principalArn: role.state.arn,
        action: call.action,
        resource,
        context: contextOf(call, twinArn),
      });
      if (decision.decision !== "allow") {
        const key = `${call.principal} ${call.action} ${resource}`;
        denied.set(key, { principal: call.principal, action: call.action, resource, decision: decision.decision });
        continue;
      }
      for (const ref of decision.allowedBy) {
        const policy = policies.find((p) => p.name === ref.policy);
        const statement = policy ? statementsOf(policy.document)[ref.statement] : undefined;
        for (const pattern of [statement?.Resource ?? []].flat()) {
          if (!glob(pattern, resource, false)) continue;
          for (const action of [statement?.Action ?? []].flat()) {
            if (action.toLowerCase() !== call.action.toLowerCase()) continue;
            const key = `${role.name}\u0000${action}\u0000${pattern}`;
            if (!usedBy.has(key)) usedBy.set(key, `${call.principal} ${call.action} ${twinArn}`);
          }
        }
      }
    }
  }
  const unused: Grant[] = [];
  const used: (Grant & { call: string })[] = [];
  for (const role of roles.values()) {
    for (const policy of policiesOf(role)) {
      for (const statement of statementsOf(policy.document)) {
        if (statement.Effect !== "Allow") continue;
        for (const action of [statement.Action ?? []].flat()) {
          for (const pattern of [statement.Resource ?? []].flat()) {
            const call = usedBy.get(`${role.name}\u0000${action}\u0000${pattern}`);
            const grant = { role: roleLabel(app, role), action, resource: pattern };
            if (call) used.push({ ...grant, call });
            else unused.push(grant);
          }
        }
      }
    }
  }
  return { checked, twinOnly, notPipeline, denied: [...denied.values()], unmapped: [...unmapped], unused, used };
}

/** `batcher`, `glue-job`: the role's purpose as its name says (`csv-ingest-<stage>-<what>-<region>`). */
export function roleLabel(app: EvaluatedApp, role: RegisteredResource): string {
  const name = String(role.inputs.name);
  const prefix = `csv-ingest-${app.outputs.stage}-`;
  return name.startsWith(prefix) ? name.slice(prefix.length).replace(/-[a-z]{2}(-[a-z]+)+-\d+$/, "") : name;
}

/** Condition keys of a call: as recorded, else implied (a listing without a recorded prefix counts as from the root). */
function contextOf(call: CallLine, _arn: string): Record<string, string> {
  if (call.context) return { ...call.context };
  if (call.action === "s3:ListBucket") return { "s3:prefix": "" };
  if (call.action === "cloudwatch:PutMetricData") return { "cloudwatch:namespace": "Glue" };
  return {};
}

function bucketPolicyOf(app: EvaluatedApp, resource: string): NamedPolicy[] {
  return app
    .ofType("aws:s3/bucketPolicy:BucketPolicy")
    .filter(
      (r) => resource === `arn:aws:s3:::${r.inputs.bucket}` || resource.startsWith(`arn:aws:s3:::${r.inputs.bucket}/`),
    )
    .map((r) => ({ name: r.name, document: JSON.parse(r.inputs.policy) }));
}

export interface UnusedPrefix {
  readonly role: string;
  readonly bucket: string;
  /** The `s3:prefix` pattern of a ListBucket grant (`processed/*`). */
  readonly prefix: string;
}

/**
 * The `s3:prefix` patterns of the recorded principals' ListBucket grants that no recorded listing matched (a
 * ListBucket grant is one resource, the bucket: checkTraffic's unused grants cannot see a prefix nothing lists).
 * Only listings whose record carries their prefix (`context`) count.
 */
export function unusedListPrefixes(app: EvaluatedApp, calls: readonly CallLine[]): UnusedPrefix[] {
  const listed = new Map<string, { bucket: string; prefix: string }[]>();
  const roles = new Map<string, RegisteredResource>();
  for (const call of calls) {
    if (call.principal === "unknown") continue;
    const role = roleOfPrincipal(app, call.principal);
    if (!role) continue;
    roles.set(role.name, role);
    const prefix = call.context?.["s3:prefix"];
    if (call.action !== "s3:ListBucket" || prefix === undefined) continue;
    for (const arn of call.resources) {
      listed.set(role.name, [...(listed.get(role.name) ?? []), { bucket: toAppArn(app, arn), prefix }]);
    }
  }
  const unused: UnusedPrefix[] = [];
  for (const role of roles.values()) {
    for (const policy of policiesOf(role)) {
      for (const statement of statementsOf(policy.document)) {
        if (statement.Effect !== "Allow" || ![statement.Action ?? []].flat().includes("s3:ListBucket")) continue;
        const patterns = [statement.Condition?.StringLike?.["s3:prefix"] ?? []].flat();
        for (const bucket of [statement.Resource ?? []].flat()) {
          for (const prefix of patterns) {
            const seen = (listed.get(role.name) ?? []).some(
              (l) => l.bucket === bucket && glob(prefix, l.prefix, false),
            );
            if (!seen) unused.push({ role: roleLabel(app, role), bucket, prefix });
          }
        }
      }
    }
  }
  return unused;
}

/** The app with one role's inline policy statements edited (a test's "what if this grant were missing / extra"). */
export function withRoleStatements(
  app: EvaluatedApp,
  principal: string,
  edit: (statements: PolicyStatement[]) => PolicyStatement[],
): EvaluatedApp {
  const role = roleOfPrincipal(app, principal);
  if (!role) throw new Error(`no role for ${principal}`);
  const policies = (role.inputs.inlinePolicies as { name: string; policy: string }[]).map((p) => {
    const document = JSON.parse(p.policy) as PolicyDocument;
    return { ...p, policy: JSON.stringify({ ...document, Statement: edit(statementsOf(document)) }) };
  });
  const edited: RegisteredResource = { ...role, inputs: { ...role.inputs, inlinePolicies: policies } };
  const resources = app.resources.map((r) => (r === role ? edited : r));
  return {
    ...app,
    resources,
    ofType: (type) => resources.filter((r) => r.type === type),
    one(type, predicate = () => true) {
      const found = resources.filter((r) => r.type === type && predicate(r));
      if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
      return found[0] as RegisteredResource;
    },
  };
}
