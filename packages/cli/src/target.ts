/**
 * Where the CLI's commands act: the local twin (from .twin/state.json) or a deployed stage (from the outputs SST
 * writes to .sst/outputs.json after `sst deploy`). Commands only see a Target.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { GlueClient } from "@aws-sdk/client-glue";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoLedger } from "@ingest/adapters";
import { APP_NAME, catalogDatabaseName, type PipelineConfig, pipelineConfig, TWIN_STAGE } from "@ingest/core";
import { clientConfig, projectPaths, readTwinState, TWIN_NAMES } from "@ingest/twin";
import { StageNotFoundError } from "./errors.js";

export interface TargetNames {
  readonly stage: string;
  readonly bucket: string;
  /** Where run manifests live (the handlers' CONTROL_BUCKET): a run the CLI starts or repairs reads and writes there. */
  readonly controlBucket: string;
  readonly ledgerTable: string;
  readonly glueJob: string;
  readonly ingestQueueUrl: string;
  readonly ingestDlqUrl: string;
  readonly recorderQueueUrl: string;
  readonly recorderDlqUrl: string;
  /** The Glue Data Catalog database over the job's outputs. */
  readonly catalogDatabase: string;
}

export interface Target extends TargetNames {
  readonly kind: "twin" | "stage";
  readonly config: PipelineConfig;
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly dynamo: DynamoDBClient;
  readonly glue: GlueClient;
  readonly ledger: DynamoLedger;
  close(): void;
}

/** The outputs `sst.config.ts` returns, as SST writes them to .sst/outputs.json. */
interface SstOutputs {
  readonly stage?: string;
  readonly bucketName?: string;
  readonly controlBucketName?: string;
  readonly ledgerTableName?: string;
  readonly glueJobName?: string;
  readonly ingestQueueUrl?: string;
  readonly ingestDlqUrl?: string;
  readonly recorderQueueUrl?: string;
  readonly recorderDlqUrl?: string;
  readonly catalogDatabaseName?: string;
}

/** Resolves a deployed stage's names from SST's outputs file; throws one clear line when they are not there. */
export function stageNames(stage: string, outputsFile: string): TargetNames {
  if (!existsSync(outputsFile)) {
    throw new StageNotFoundError(
      `no SST outputs at ${outputsFile}: deploy first with \`pnpm sst deploy --stage ${stage}\``,
    );
  }
  let o: SstOutputs;
  try {
    o = JSON.parse(readFileSync(outputsFile, "utf8")) as SstOutputs;
  } catch {
    throw new StageNotFoundError(`${outputsFile} is not JSON`);
  }
  if (o.stage !== undefined && o.stage !== stage) {
    throw new StageNotFoundError(
      `${outputsFile} is for stage ${o.stage}, not ${stage}: run \`pnpm sst deploy --stage ${stage}\` (it rewrites the outputs)`,
    );
  }
  const need = <K extends keyof SstOutputs>(k: K): string => {
    const v = o[k];
    if (typeof v !== "string" || v === "") throw new StageNotFoundError(`${outputsFile} has no output ${k}`);
    return v;
  };
  return {
    stage,
    bucket: need("bucketName"),
    controlBucket: need("controlBucketName"),
    ledgerTable: need("ledgerTableName"),
    glueJob: need("glueJobName"),
    ingestQueueUrl: need("ingestQueueUrl"),
    ingestDlqUrl: need("ingestDlqUrl"),
    recorderQueueUrl: need("recorderQueueUrl"),
    recorderDlqUrl: need("recorderDlqUrl"),
    // Outputs written before the catalog existed lack it: the name infra gives it.
    catalogDatabase: o.catalogDatabaseName || catalogDatabaseName(APP_NAME, stage),
  };
}

export interface TargetOptions {
  readonly stage?: string | undefined;
  readonly root?: string;
}

export function resolveTarget(opts: TargetOptions): Target {
  const paths = projectPaths(opts.root);
  if (!opts.stage || opts.stage === TWIN_STAGE) {
    const state = readTwinState(paths.stateFile);
    const aws = clientConfig(state.endpoints.aws);
    return withClients(
      "twin",
      {
        stage: TWIN_STAGE,
        bucket: state.names.bucket,
        controlBucket: state.names.controlBucket,
        ledgerTable: state.names.ledgerTable,
        glueJob: state.names.glueJob,
        ingestQueueUrl: state.queues.ingestUrl,
        ingestDlqUrl: state.queues.ingestDlqUrl,
        recorderQueueUrl: state.queues.recorderUrl,
        recorderDlqUrl: state.queues.recorderDlqUrl,
        catalogDatabase: state.names.catalogDatabase ?? TWIN_NAMES.catalogDatabase,
      },
      {
        s3: new S3Client({ ...aws, forcePathStyle: true }),
        sqs: new SQSClient(aws),
        dynamo: new DynamoDBClient(aws),
        glue: new GlueClient(clientConfig(state.endpoints.glue)),
      },
    );
  }
  // A deployed stage: the SDK's own credential and region chain (profile, env, SSO).
  const names = stageNames(opts.stage, join(paths.root, ".sst", "outputs.json"));
  return withClients("stage", names, {
    s3: new S3Client({}),
    sqs: new SQSClient({}),
    dynamo: new DynamoDBClient({}),
    glue: new GlueClient({}),
  });
}

export function withClients(
  kind: Target["kind"],
  names: TargetNames,
  clients: { s3: S3Client; sqs: SQSClient; dynamo: DynamoDBClient; glue: GlueClient },
): Target {
  return {
    kind,
    ...names,
    config: pipelineConfig(names.stage),
    ...clients,
    ledger: new DynamoLedger({ client: clients.dynamo, tableName: names.ledgerTable }),
    close() {
      clients.s3.destroy();
      clients.sqs.destroy();
      clients.dynamo.destroy();
      clients.glue.destroy();
    },
  };
}
