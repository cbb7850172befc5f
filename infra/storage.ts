/**
 * Two buckets. The data bucket: uploads under `input/` (the only prefix an uploader may write) and the job's output
 * under `processed/`. The control bucket: the Glue job's code under `glue-assets/` and the manifests under
 * `manifests/`, which no uploader can write (a PutObject there would replace the code the job runs as its role, or
 * forge a manifest). S3 tells EventBridge about every data-bucket object; the ingest rule picks the uploads.
 */
import fs from "node:fs";
import path from "node:path";
import { INPUT_PREFIX, MANIFEST_PREFIX, STORAGE_LIFECYCLE } from "../packages/core/src/config/pipeline";
import { type AccountContext, type PipelineConfig, roleArn } from "./shared";

/** Where the Glue job's script and its flat modules live in the control bucket (the job role may read them). */
export const GLUE_ASSETS_PREFIX = "glue-assets/";
/** The job's entry script inside `glue/`; every other `glue/*.py` that is not a test ships as `--extra-py-files`. */
export const GLUE_SCRIPT = "job.py";

/** Object writes a bucket policy keeps to named principals. */
const OBJECT_WRITES = ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectAcl"];

export function createStorage(config: PipelineConfig, account: AccountContext) {
  // Whoever deploys (and, outside prod, empties the buckets on `sst remove`) keeps write access; so do the roles.
  const deployer = deployerArnPatterns();
  const glueRole = roleArn(account, "glue-job");
  const handlerRoles = ["batcher", "recorder", "sweeper"].map((name) => roleArn(account, name));

  const bucket = new sst.aws.Bucket("DataBucket", {
    // Prod keeps every version of an upload (a re-upload is a new upload, and the old one stays readable).
    versioning: config.isProd,
    // SST's default: a Deny on aws:SecureTransport=false for every principal (TLS only). Stated to make it visible.
    enforceHttps: true,
    // Nothing reads this bucket from a browser.
    cors: false,
    transform: {
      // The name stays SST's (app-stage-…-random): S3 names are global. The CLI reads it from the outputs.
      // Only non-prod stages may be deleted with their data.
      bucket: { forceDestroy: !config.isProd },
      publicAccessBlock: {
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      },
      // Anyone in the account may be an adversary: outside input/, only the Glue job writes (processed/, stats,
      // staging). An uploader's own grants (UploaderPolicy, or any broader one) cannot reach the job's outputs.
      policy: (args) => {
        args.policy = appendStatements(args.policy, [
          {
            Sid: "OnlyTheJobWritesOutsideInput",
            Effect: "Deny",
            Principal: "*",
            Action: OBJECT_WRITES,
            NotResource: [$interpolate`${bucketArnOf(account, args.bucket)}/${INPUT_PREFIX}*`],
            Condition: { ArnNotLike: { "aws:PrincipalArn": [glueRole, ...deployer] } },
          },
        ]);
      },
    },
  });

  const controlBucket = new sst.aws.Bucket("ControlBucket", {
    // Versions in prod: a replaced script or manifest can be seen and restored.
    versioning: config.isProd,
    enforceHttps: true,
    cors: false,
    transform: {
      bucket: { forceDestroy: !config.isProd },
      publicAccessBlock: {
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      },
      // Manifests are written by the handlers only, the job's code by the deployer only.
      policy: (args) => {
        const arn = bucketArnOf(account, args.bucket);
        args.policy = appendStatements(args.policy, [
          {
            Sid: "OnlyTheHandlersWriteManifests",
            Effect: "Deny",
            Principal: "*",
            Action: OBJECT_WRITES,
            Resource: [$interpolate`${arn}/${MANIFEST_PREFIX}*`],
            Condition: { ArnNotLike: { "aws:PrincipalArn": [...handlerRoles, ...deployer] } },
          },
          {
            Sid: "OnlyTheDeployerWritesTheJobCode",
            Effect: "Deny",
            Principal: "*",
            Action: OBJECT_WRITES,
            NotResource: [$interpolate`${arn}/${MANIFEST_PREFIX}*`],
            Condition: { ArnNotLike: { "aws:PrincipalArn": deployer } },
          },
        ]);
      },
    },
  });

  for (const [name, b] of [
    ["DataBucket", bucket],
    ["ControlBucket", controlBucket],
  ] as const) {
    new aws.s3.BucketServerSideEncryptionConfiguration(`${name}Encryption`, {
      bucket: b.name,
      rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }],
    });
    new aws.s3.BucketLifecycleConfiguration(`${name}Lifecycle`, { bucket: b.name, rules: lifecycleRules() });
  }

  // SST 4.17's Bucket has no switch for EventBridge delivery; S3 then sends every object event to the default bus.
  new aws.s3.BucketNotification("DataBucketEventBridge", { bucket: bucket.name, eventbridge: true });

  const glueAssets = uploadGlueAssets(controlBucket);
  const uploaderPolicy = createUploaderPolicy(bucket);
  return { bucket, controlBucket, glueAssets, uploaderPolicy };
}

/**
 * What an uploader needs and nothing more: write (single or multipart) under input/ of the data bucket. Attach it
 * to the users or roles that upload (its ARN is an output); the data bucket's policy denies them everything else
 * they might write, whatever else they are granted.
 */
function createUploaderPolicy(bucket: sst.aws.Bucket) {
  return new aws.iam.Policy("UploaderPolicy", {
    description: "csv-ingest: upload CSV files under input/ of the data bucket, nothing else",
    policy: aws.iam.getPolicyDocumentOutput({
      statements: [
        {
          sid: "UploadUnderInput",
          effect: "Allow",
          actions: ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
          resources: [$interpolate`${bucket.arn}/${INPUT_PREFIX}*`],
        },
      ],
    }).json,
  });
}

/** Multipart uploads never completed are aborted; overwritten/deleted versions expire (both buckets, whole bucket). */
function lifecycleRules() {
  return [
    {
      id: "abort-incomplete-multipart-uploads",
      status: "Enabled",
      filter: { prefix: "" },
      abortIncompleteMultipartUpload: { daysAfterInitiation: STORAGE_LIFECYCLE.abortIncompleteMultipartDays },
    },
    {
      id: "expire-noncurrent-versions",
      status: "Enabled",
      filter: { prefix: "" },
      noncurrentVersionExpiration: { noncurrentDays: STORAGE_LIFECYCLE.noncurrentVersionDays },
    },
  ];
}

/**
 * The deploying principal as `aws:PrincipalArn` sees it: an IAM user's ARN as is; for an assumed role, the role's
 * ARN with or without a path, since the caller identity names the session (`arn:…:sts::acct:assumed-role/Name/s`).
 */
function deployerArnPatterns(): $util.Output<string>[] {
  const caller = aws.getCallerIdentityOutput().arn;
  const role = (withPath: boolean) =>
    caller.apply((arn) => {
      const m = /^arn:([^:]+):sts::(\d+):assumed-role\/([^/]+)\//.exec(arn);
      if (!m) return arn;
      return `arn:${m[1]}:iam::${m[2]}:role/${withPath ? "*/" : ""}${m[3]}`;
    });
  return [role(false), role(true)];
}

/** A bucket policy's JSON with `extra` statements appended (SST renders its TLS-only statement; we add ours). */
function appendStatements(
  policy: $util.Input<string | aws.iam.PolicyDocument>,
  extra: Record<string, unknown>[],
): $util.Output<string> {
  return $util.all([policy, $util.output(extra)]).apply(([current, statements]) => {
    const doc = (typeof current === "string" ? JSON.parse(current) : current) as { Statement: unknown[] };
    return JSON.stringify({ ...doc, Statement: [...doc.Statement, ...statements] });
  });
}

function bucketArnOf(account: AccountContext, bucketName: $util.Input<string>): $util.Output<string> {
  return $interpolate`arn:${account.partition}:s3:::${bucketName}`;
}

/** The job's package (`glue/csv_ingest/`), shipped to Glue as one zip in `--extra-py-files`. */
export const GLUE_PACKAGE = "csv_ingest";

const isTestFile = (file: string) => /^test_|_test\.py$|^conftest\.py$/.test(path.basename(file));

/**
 * What ships to Glue from `glue/`: the entry script, and every `.py` file of the job's package (paths relative to
 * `glue/`, e.g. `csv_ingest/engine/rules.py`) except tests, pytest config and caches. Nothing else under `glue/`
 * (tests, bench) ships.
 */
export function glueSourceFiles(glueDir: string): { script: string; packageFiles: string[] } {
  if (!fs.existsSync(path.join(glueDir, GLUE_SCRIPT))) {
    throw new Error(`The Glue job script ${path.join(glueDir, GLUE_SCRIPT)} does not exist; nothing to deploy.`);
  }
  const packageDir = path.join(glueDir, GLUE_PACKAGE);
  const packageFiles = fs.existsSync(packageDir)
    ? fs
        .readdirSync(packageDir, { recursive: true, encoding: "utf8" })
        .map((file) => path.join(GLUE_PACKAGE, file).split(path.sep).join("/"))
        .filter((file) => file.endsWith(".py") && !file.includes("__pycache__") && !isTestFile(file))
        .sort()
    : [];
  return { script: GLUE_SCRIPT, packageFiles };
}

function uploadGlueAssets(bucket: sst.aws.Bucket) {
  // Read at deploy time, so a module the job starts importing ships without an infra change.
  const glueDir = path.join($cli.paths.root, "glue");
  const { script, packageFiles } = glueSourceFiles(glueDir);
  const uri = (object: aws.s3.BucketObjectv2) => $interpolate`s3://${object.bucket}/${object.key}`;
  const scriptObject = new aws.s3.BucketObjectv2(`GlueAsset${logicalSuffix(script)}`, {
    bucket: bucket.name,
    key: `${GLUE_ASSETS_PREFIX}${script}`,
    source: new $util.asset.FileAsset(path.join(glueDir, script)),
    contentType: "text/x-python",
  });
  const packageObject =
    packageFiles.length > 0
      ? new aws.s3.BucketObjectv2("GlueAssetPackage", {
          bucket: bucket.name,
          key: `${GLUE_ASSETS_PREFIX}${GLUE_PACKAGE}.zip`,
          // Glue puts a zip in --extra-py-files on the driver's and the executors' Python path: `import csv_ingest`.
          source: new $util.asset.AssetArchive(
            Object.fromEntries(packageFiles.map((file) => [file, new $util.asset.FileAsset(path.join(glueDir, file))])),
          ),
          contentType: "application/zip",
        })
      : undefined;
  return {
    scriptUri: uri(scriptObject),
    moduleUris: packageObject ? [uri(packageObject)] : [],
  };
}

/** `transform.py` → `Transform`, `my_utils.py` → `MyUtils`: logical names must be alphanumeric. */
function logicalSuffix(file: string): string {
  return path
    .basename(file, ".py")
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
}
