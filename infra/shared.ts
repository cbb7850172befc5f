/**
 * What every infra module needs: the stage's pipeline config, physical names, the account context for ARNs, and
 * the small builders for least-privilege statements. The numbers and patterns themselves come from the config
 * module; nothing here restates them.
 */
import type { PipelineConfig } from "../packages/core/src/config/pipeline";

/** `pipelineConfig($app.stage)`, made once in sst.config.ts and handed to every module. */
export type { PipelineConfig };

/** `csv-ingest-<stage>-<what>`: names that say which app and stage own a resource. */
export function physicalName(what: string): string {
  return `${$app.name}-${$app.stage}-${what}`;
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
  readonly table: aws.dynamodb.Table;
  readonly pendingIndexArn: $util.Output<string>;
  readonly job: aws.glue.Job;
}
