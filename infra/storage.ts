/**
 * The data bucket: uploads under `input/`, manifests under `manifests/`, output under `processed/`, and the Glue
 * job's code under `glue-assets/`. S3 tells EventBridge about every object; the ingest rule picks the uploads.
 */
import fs from "node:fs";
import path from "node:path";
import type { PipelineConfig } from "./shared";

/** Where the Glue job's script and its flat modules live in the data bucket (the job role may read them). */
export const GLUE_ASSETS_PREFIX = "glue-assets/";
/** The job's entry script inside `glue/`; every other `glue/*.py` that is not a test ships as `--extra-py-files`. */
export const GLUE_SCRIPT = "job.py";

export function createStorage(config: PipelineConfig) {
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
    },
  });

  new aws.s3.BucketServerSideEncryptionConfiguration("DataBucketEncryption", {
    bucket: bucket.name,
    rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }],
  });

  // SST 4.17's Bucket has no switch for EventBridge delivery; S3 then sends every object event to the default bus.
  new aws.s3.BucketNotification("DataBucketEventBridge", { bucket: bucket.name, eventbridge: true });

  const glueAssets = uploadGlueAssets(bucket);
  return { bucket, glueAssets };
}

/** The `.py` files under `glue/` that ship to Glue: everything except tests and pytest config. */
export function glueSourceFiles(glueDir: string): { script: string; modules: string[] } {
  const files = fs
    .readdirSync(glueDir)
    .filter((file) => file.endsWith(".py"))
    .filter((file) => !file.startsWith("test_") && !file.endsWith("_test.py") && file !== "conftest.py")
    .sort();
  if (!files.includes(GLUE_SCRIPT)) {
    throw new Error(`The Glue job script ${path.join(glueDir, GLUE_SCRIPT)} does not exist; nothing to deploy.`);
  }
  return { script: GLUE_SCRIPT, modules: files.filter((file) => file !== GLUE_SCRIPT) };
}

function uploadGlueAssets(bucket: sst.aws.Bucket) {
  // Globbed at deploy time, so a module the job starts importing ships without an infra change.
  const glueDir = path.join($cli.paths.root, "glue");
  const { script, modules } = glueSourceFiles(glueDir);
  const upload = (file: string) => {
    const key = `${GLUE_ASSETS_PREFIX}${file}`;
    const object = new aws.s3.BucketObjectv2(`GlueAsset${logicalSuffix(file)}`, {
      bucket: bucket.name,
      key,
      source: new $util.asset.FileAsset(path.join(glueDir, file)),
      contentType: "text/x-python",
    });
    return $interpolate`s3://${object.bucket}/${object.key}`;
  };
  return {
    scriptUri: upload(script),
    moduleUris: modules.map(upload),
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
