/**
 * A real moto server for integration tests: started from the project's venv on a free port, stopped after.
 * Each test gets fresh resources (unique names), so tests do not need to reset the server.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { LEDGER_TABLE } from "@ingest/core";

const ROOT = join(import.meta.dirname, "..", "..", "..", "..");
export const CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

export interface Moto {
  endpoint: string;
  stop(): Promise<void>;
}

export async function startMoto(): Promise<Moto> {
  const bin = join(ROOT, ".venv", "bin", "moto_server");
  if (!existsSync(bin)) throw new Error(`moto not installed at ${bin}: run node packages/twin/bootstrap.mjs`);
  const port = await freePort();
  const child: ChildProcess = spawn(bin, ["-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${endpoint}/moto-api/`);
      if (r.ok) break;
    } catch {
      // not up yet
    }
    if (i === 99) throw new Error(`moto did not start on ${endpoint}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    },
  };
}

export function clients(endpoint: string) {
  const common = { endpoint, region: "us-east-1", credentials: CREDENTIALS };
  return { ddb: new DynamoDBClient(common), s3: new S3Client({ ...common, forcePathStyle: true }) };
}

let seq = 0;
export async function createLedgerTable(ddb: DynamoDBClient): Promise<string> {
  const name = `ledger-${process.pid}-${++seq}`;
  const { hashKey, rangeKey, pendingIndex } = LEDGER_TABLE;
  await ddb.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [hashKey, rangeKey, pendingIndex.hashKey, pendingIndex.rangeKey].map((n) => ({
        AttributeName: n,
        AttributeType: "S",
      })),
      KeySchema: [
        { AttributeName: hashKey, KeyType: "HASH" },
        { AttributeName: rangeKey, KeyType: "RANGE" },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: pendingIndex.name,
          KeySchema: [
            { AttributeName: pendingIndex.hashKey, KeyType: "HASH" },
            { AttributeName: pendingIndex.rangeKey, KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        },
      ],
    }),
  );
  return name;
}

export async function createBucket(s3: S3Client): Promise<string> {
  const name = `data-${process.pid}-${++seq}`;
  await s3.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}
