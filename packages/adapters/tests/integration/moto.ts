/**
 * A real moto server for integration tests (the twin's launcher, from the project's venv, on a free port), and fresh
 * resources per test (unique names), so tests do not need to reset the server.
 */
import { join } from "node:path";
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { type MotoServer, startMoto as startTwinMoto } from "../../../twin/src/moto.js";
import { projectPaths } from "../../../twin/src/paths.js";
import { ledgerTableInput } from "../../src/dynamo-ledger.js";

export const CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };
export type Moto = MotoServer;

export function startMoto(): Promise<Moto> {
  const paths = projectPaths();
  return startTwinMoto({ motoServer: paths.motoServer, logFile: join(paths.twinDir, "test-moto.log") });
}

export function clients(endpoint: string) {
  const common = { endpoint, region: "us-east-1", credentials: CREDENTIALS };
  return { ddb: new DynamoDBClient(common), s3: new S3Client({ ...common, forcePathStyle: true }) };
}

let seq = 0;
export async function createLedgerTable(ddb: DynamoDBClient): Promise<string> {
  const name = `ledger-${process.pid}-${++seq}`;
  await ddb.send(new CreateTableCommand(ledgerTableInput(name)));
  return name;
}

export async function createBucket(s3: S3Client): Promise<string> {
  const name = `data-${process.pid}-${++seq}`;
  await s3.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}
