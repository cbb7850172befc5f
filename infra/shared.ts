/**
 * What every infra module needs: the stage's pipeline config, physical names, the account context for ARNs, and
 * the small builders for least-privilege statements. The numbers and patterns themselves come from the config
 * module; nothing here restates them.
 */
import type { PipelineConfig } from "../packages/core/src/config/pipeline";

/** `pipelineConfig($app.stage)`, made once in sst.config.ts and handed to every module. */
export type { PipelineConfig };

/**
 * `csv-ingest-<stage>-<what>`: names that say which app and stage own a resource. `maxLength` is the service's
 * limit (255, the default, for tables, jobs, alarms, topics; 64 for Lambda functions): a longer name is refused
 * here, naming the limit, rather than by AWS halfway through a deploy.
 */
export function physicalName(what: string, maxLength = 255): string {
  return checkedName(`${$app.name}-${$app.stage}-${what}`, maxLength, "resource");
}

/** IAM's limit on role names. */
export const ROLE_NAME_MAX = 64;

/**
 * `csv-ingest-<stage>-<what>-<region>`: role names are account-wide, so the same stage deployed to two regions
 * must not share one; capped at IAM's 64 characters with a clear message.
 */
export function roleName(what: string, region: $util.Input<string>): $util.Output<string> {
  return $util
    .output(region)
    .apply((r) => checkedName(`${$app.name}-${$app.stage}-${what}-${r}`, ROLE_NAME_MAX, "IAM role"));
}

/** The ARN of the role `roleName(what)` names (known before the role exists: bucket policies refer to it). */
export function roleArn(account: AccountContext, what: string): $util.Output<string> {
  return $interpolate`arn:${account.partition}:iam::${account.accountId}:role/${roleName(what, account.region)}`;
}

/** `name` when it fits `maxLength`; otherwise an error saying how long the stage name may be. */
export function checkedName(name: string, maxLength: number, kind: string): string {
  if (name.length <= maxLength) return name;
  const over = name.length - maxLength;
  const stage = $app.stage;
  throw new Error(
    `The ${kind} name ${name} is ${name.length} characters; AWS allows ${maxLength}. Use a stage name of at most ${Math.max(1, stage.length - over)} characters (${stage} has ${stage.length}).`,
  );
}

/** Partition, region and account, for ARNs of resources that are named before they exist (log groups, the job). */
export function accountContext() {
  return {
    partition: aws.getPartitionOutput().partition,
    region: aws.getRegionOutput().region,
    accountId: aws.getCallerIdentityOutput().accountId,
  };
}

export type AccountContext = ReturnType<typeof accountContext>;

/** A statement in SST's `permissions` shape (lower-case keys; SST renders the policy document). */
export interface Permission {
  effect?: "allow" | "deny";
  actions: string[];
  resources: $util.Input<$util.Input<string>[]>;
  conditions?: { test: string; variable: string; values: string[] }[];
}

/** `arn:…:s3:::bucket/<prefix>*` for each key prefix. */
export function objectArns(bucketArn: $util.Input<string>, prefixes: readonly string[]): $util.Output<string>[] {
  return prefixes.map((prefix) => $interpolate`${bucketArn}/${prefix}*`);
}

/**
 * s3:ListBucket limited to key prefixes. Without ListBucket, GetObject/HeadObject on a missing key answers 403
 * instead of 404, so a deleted upload or a run without stats would look like a permissions fault.
 */
export function listBucketUnder(bucketArn: $util.Input<string>, prefixes: readonly string[]): Permission {
  return {
    actions: ["s3:ListBucket"],
    resources: [bucketArn],
    conditions: [{ test: "StringLike", variable: "s3:prefix", values: prefixes.map((prefix) => `${prefix}*`) }],
  };
}

/** What the queue consumers (ingest, completion) are wired to. */
export interface PipelineResources {
  readonly bucket: sst.aws.Bucket;
  /** Manifests and the job's code; uploaders cannot write it. */
  readonly controlBucket: sst.aws.Bucket;
  readonly table: aws.dynamodb.Table;
  readonly pendingIndexArn: $util.Output<string>;
  readonly job: aws.glue.Job;
}
