/**
 * A real moto server for integration tests (the twin's launcher, from the project's venv, on a free port), and fresh
 * resources per test (unique names), so tests do not need to reset the server.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { inject } from "vitest";
import { type MotoServer, startMoto as startTwinMoto } from "../../../twin/src/moto.js";
import { projectPaths } from "../../../twin/src/paths.js";
import { ledgerTableInput } from "../../src/dynamo-ledger.js";

export const CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };
export type Moto = MotoServer;

export function startMoto(): Promise<Moto> {
  // Under `pnpm run mutation` the global setup runs one server for all files (see vitest.mutation.config.ts).
  const shared = sharedEndpoint();
  if (shared)
    return Promise.resolve({ endpoint: shared, port: Number(new URL(shared).port), pid: -1, stop: async () => {} });
  const paths = projectPaths();
  // The twin's patched moto: its DynamoDB requests are atomic, as DynamoDB's are (plain moto can let two concurrent
  // conditional writes both pass, which made the slot contract test flaky).
  return startTwinMoto({
    motoServer: paths.venvPython,
    script: paths.twinMotoServer,
    logFile: join(paths.twinDir, "test-moto.log"),
  });
}

function sharedEndpoint(): string | undefined {
  try {
    return (inject as (key: string) => string | undefined)("sharedMotoEndpoint");
  } catch {
    return undefined; // not inside a vitest worker
  }
}

export function clients(endpoint: string) {
  const common = { endpoint, region: "us-east-1", credentials: CREDENTIALS };
  return { ddb: new DynamoDBClient(common), s3: new S3Client({ ...common, forcePathStyle: true }) };
}

// Unique across re-runs of a file against one shared server (mutation runs), not only within a process.
let seq = 0;
const run = `${process.pid}-${randomUUID().slice(0, 8)}`;
export async function createLedgerTable(ddb: DynamoDBClient): Promise<string> {
  const name = `ledger-${run}-${++seq}`;
  await ddb.send(new CreateTableCommand(ledgerTableInput(name)));
  return name;
}

export async function createBucket(s3: S3Client): Promise<string> {
  const name = `data-${run}-${++seq}`;
  await s3.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}
