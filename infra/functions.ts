/**
 * The handler Lambdas' shared shape: plain environment variables (HANDLER_ENV), explicit per-function permissions
 * and logs to the function's own log group only. No SST `link`: linking a bucket grants s3:* on it.
 */
import { HANDLER_ENV, HANDLER_MEMORY_MB } from "../packages/core/src/config/pipeline";
import {
  type AccountContext,
  type Permission,
  type PipelineConfig,
  type PipelineResources,
  physicalName,
  roleName,
} from "./shared";

export interface HandlerTargets {
  readonly bucketName: $util.Input<string>;
  readonly controlBucketName: $util.Input<string>;
  readonly tableName: $util.Input<string>;
  readonly glueJobName: $util.Input<string>;
}

/** What every handler is pointed at: the pipeline's buckets, ledger table and Glue job. */
export function handlerTargets(inputs: PipelineResources): HandlerTargets {
  return {
    bucketName: inputs.bucket.name,
    controlBucketName: inputs.controlBucket.name,
    tableName: inputs.table.name,
    glueJobName: inputs.job.name,
  };
}

export interface HandlerFunctionArgs {
  /** Short name: `batcher` → function `csv-ingest-<stage>-batcher`, handler `packages/functions/src/batcher.handler`. */
  readonly name: string;
  readonly timeoutSeconds: number;
  readonly permissions: Permission[];
  /**
   * The queue the function consumes: SOURCE_QUEUE_URL and ChangeMessageVisibility on it, for the crash lease (core
   * `queue/lease.ts`). SST's subscription grants that action too (among others); this states the handler's own need.
   */
  readonly sourceQueue?: { readonly url: $util.Input<string>; readonly arn: $util.Input<string> };
}

export function handlerFunction(
  config: PipelineConfig,
  account: AccountContext,
  targets: HandlerTargets,
  fn: HandlerFunctionArgs,
): sst.aws.FunctionArgs {
  const functionName = physicalName(fn.name, 64);
  // SST creates /aws/lambda/<function name> itself; the role may write there and nowhere else.
  const logGroupArn = $interpolate`arn:${account.partition}:logs:${account.region}:${account.accountId}:log-group:/aws/lambda/${functionName}`;
  return {
    name: functionName,
    handler: `packages/functions/src/${fn.name}.handler`,
    runtime: "nodejs22.x",
    architecture: "arm64",
    timeout: `${fn.timeoutSeconds} seconds`,
    memory: `${HANDLER_MEMORY_MB} MB`,
    environment: {
      [HANDLER_ENV.stage]: config.stage,
      [HANDLER_ENV.dataBucket]: targets.bucketName,
      [HANDLER_ENV.controlBucket]: targets.controlBucketName,
      [HANDLER_ENV.ledgerTable]: targets.tableName,
      [HANDLER_ENV.glueJobName]: targets.glueJobName,
      ...(fn.sourceQueue ? { [HANDLER_ENV.sourceQueueUrl]: fn.sourceQueue.url } : {}),
    },
    permissions: [
      ...fn.permissions,
      ...(fn.sourceQueue ? [{ actions: ["sqs:ChangeMessageVisibility"], resources: [fn.sourceQueue.arn] }] : []),
      { actions: ["logs:CreateLogStream", "logs:PutLogEvents"], resources: [$interpolate`${logGroupArn}:*`] },
    ],
    transform: {
      role: (args) => {
        // SST attaches AWSLambdaBasicExecutionRole (logs:* on Resource "*"); the statement above replaces it.
        args.managedPolicyArns = [];
        // A known name: the control bucket's policy lets only these roles write manifests.
        args.name = roleName(fn.name, account.region);
        // SST 4.17.1 chooses the trust policy with `!dev` where `dev` is a Pulumi Output (always truthy), so every
        // stage got its `sst dev` trust: Lambda AND the account root (any principal allowed sts:AssumeRole on *).
        // Outside `sst dev` only Lambda may assume the role; under `sst dev` SST's own trust stays (the live bridge
        // runs the handler locally as this role).
        if (!$dev) args.assumeRolePolicy = aws.iam.assumeRolePolicyForPrincipal({ Service: "lambda.amazonaws.com" });
      },
    },
  };
}

/**
 * The ledger operations every handler performs: single-item reads and conditional writes on the table, and queries
 * of the pending index. No DeleteItem: nothing in the ledger is ever deleted (the adapter sends none). The sweeper
 * also queries the table itself (every version of a key, to tell a superseded upload).
 */
export function ledgerAccess(
  tableArn: $util.Input<string>,
  pendingIndexArn: $util.Input<string>,
  options: { queryTable?: boolean } = {},
): Permission[] {
  return [
    { actions: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], resources: [tableArn] },
    { actions: ["dynamodb:Query"], resources: options.queryTable ? [pendingIndexArn, tableArn] : [pendingIndexArn] },
  ];
}

/** The Glue job's ARN, from its name (glue:StartJobRun and friends are authorised on the job resource). */
export function glueJobArn(account: AccountContext, jobName: $util.Input<string>) {
  return $interpolate`arn:${account.partition}:glue:${account.region}:${account.accountId}:job/${jobName}`;
}
