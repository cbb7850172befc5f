/**
 * The Glue job: reads exactly the uploads its manifest names, writes under its output prefixes. Its role reaches only
 * those prefixes; it gets no Data Catalog access at all (the job uses none).
 */
import {
  GLUE_ARGUMENTS,
  INPUT_PREFIX,
  JOB_OUTPUT_PREFIXES,
  MANIFEST_PREFIX,
  PARQUET_PREFIX,
  PROCESSED_PREFIX,
  REJECTED_PREFIX,
} from "../packages/core/src/config/pipeline";
import {
  type AccountContext,
  listBucketUnder,
  objectArns,
  type Permission,
  type PipelineConfig,
  physicalName,
  roleName,
} from "./shared";
import { GLUE_ASSETS_PREFIX } from "./storage";

export interface GlueJobInputs {
  readonly bucket: sst.aws.Bucket;
  readonly controlBucket: sst.aws.Bucket;
  readonly glueAssets: { scriptUri: $util.Output<string>; moduleUris: $util.Output<string>[] };
}

export function createGlueJob(config: PipelineConfig, account: AccountContext, inputs: GlueJobInputs) {
  const { bucket, controlBucket, glueAssets } = inputs;
  const role = new aws.iam.Role("GlueJobRole", {
    // A known name: the data bucket's policy lets only this role write outside input/.
    name: roleName("glue-job", account.region),
    assumeRolePolicy: aws.iam.assumeRolePolicyForPrincipal({ Service: "glue.amazonaws.com" }),
    inlinePolicies: [
      {
        name: "glue-job",
        policy: aws.iam.getPolicyDocumentOutput({
          statements: glueJobStatements(bucket.arn, controlBucket.arn, account),
        }).json,
      },
    ],
  });

  const bucketRoot = $interpolate`s3://${bucket.name}/`;
  const job = new aws.glue.Job("IngestJob", {
    name: physicalName("ingest-job", 255),
    roleArn: role.arn,
    glueVersion: config.glue.version,
    command: { name: "glueetl", pythonVersion: "3", scriptLocation: glueAssets.scriptUri },
    workerType: config.glue.workerType,
    numberOfWorkers: config.glue.numberOfWorkers,
    timeout: config.glue.timeoutMinutes,
    executionProperty: { maxConcurrentRuns: config.glue.maxConcurrentRuns },
    // A retry would be a Glue run the ledger never started; the ledger retries uploads (runs.maxAttempts) instead.
    maxRetries: 0,
    defaultArguments: {
      [`--${GLUE_ARGUMENTS.dataRoot}`]: bucketRoot,
      [`--${GLUE_ARGUMENTS.outputRoot}`]: bucketRoot,
      // Bookmarks stay off: the ledger decides what a run reads (the manifest lists files explicitly). Bookmarks
      // judge files by last-modified only and would skip a late or redriven upload that the manifest names.
      "--job-bookmark-option": config.glue.jobBookmarks,
      "--job-language": "python",
      // Auto scaling stays OFF: each run already asks for the workers its manifest needs (runs/capacity.ts), and the
      // job sizes its Arrow task groups from Spark's defaultParallelism at start, which under auto scaling counts
      // only the executors up by then: a run would stay small and slow rather than scale out.
      "--enable-auto-scaling": "false",
      "--enable-continuous-cloudwatch-log": "true",
      "--enable-metrics": "true",
      // Glue rejects an empty --extra-py-files, so it is there only when glue/ has modules besides the script.
      ...(glueAssets.moduleUris.length > 0
        ? { "--extra-py-files": $util.all(glueAssets.moduleUris).apply((uris) => uris.join(",")) }
        : {}),
    },
  });
  return { job, role };
}

/** The per-upload output trees, whose folders the job clears before writing (glue/csv_ingest/engine/worker.py, glue/csv_ingest/engine/split.py). */
export const UPLOAD_FOLDER_PREFIXES = [PROCESSED_PREFIX, PARQUET_PREFIX, REJECTED_PREFIX] as const;

/**
 * The job role's whole policy (in place of AWSGlueServiceRole, which allows glue:* and s3 on every aws-glue-*
 * bucket). Exported so the tests can read the statements as written.
 */
export function glueJobStatements(
  bucketArn: $util.Input<string>,
  controlBucketArn: $util.Input<string>,
  account: AccountContext,
): Permission[] {
  const logGroups = $interpolate`arn:${account.partition}:logs:${account.region}:${account.accountId}:log-group:/aws-glue/*`;
  return [
    // The uploads the manifest names (data bucket); the manifest itself and the job's own code (control bucket).
    { actions: ["s3:GetObject"], resources: objectArns(bucketArn, [INPUT_PREFIX]) },
    { actions: ["s3:GetObject"], resources: objectArns(controlBucketArn, [MANIFEST_PREFIX, GLUE_ASSETS_PREFIX]) },
    // Each call below is in the job's own S3 traffic, recorded on moto (glue/tests/test_job_s3_calls.py →
    // infra/tests/fixtures/calls.glue-job.jsonl, checked by infra/tests/traffic.test.ts); it never reads its outputs.
    // Parts, _SUCCESS markers and the run's stats (a big part as a multipart upload: s3:PutObject too).
    { actions: ["s3:PutObject"], resources: objectArns(bucketArn, JOB_OUTPUT_PREFIXES) },
    // An upload's folders are listed and cleared (DeleteObjects) before its parts are written: what an earlier attempt
    // left. A multipart part whose upload fails is aborted (s3transfer; the lifecycle rule aborts any left over).
    // The stats are single PUTs that replace, never listed nor deleted: no grant under stats/.
    {
      actions: ["s3:DeleteObject", "s3:AbortMultipartUpload"],
      resources: objectArns(bucketArn, UPLOAD_FOLDER_PREFIXES),
    },
    // Listing the folders it clears; under input/, a GET of an upload deleted since the run was planned answers 404
    // NoSuchKey (the job says "object not found") rather than 403 (no call of its own).
    listBucketUnder(bucketArn, [INPUT_PREFIX, ...UPLOAD_FOLDER_PREFIXES]),
    // Continuous logging creates /aws-glue/jobs/logs-v2 (and the error/output groups) on first use.
    {
      actions: ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
      resources: [logGroups, $interpolate`${logGroups}:*`],
    },
    // --enable-metrics: PutMetricData has no resource-level permissions (Resource must be "*"); the namespace
    // condition keeps the role to Glue's own metrics.
    {
      actions: ["cloudwatch:PutMetricData"],
      resources: ["*"],
      conditions: [{ test: "StringEquals", variable: "cloudwatch:namespace", values: ["Glue"] }],
    },
  ];
}
