/**
 * Issue 10, point 2, on the wire: DynamoDB applies a conditional write, its answer is lost (a reset connection), the
 * SDK's own retry strategy sends it again and the retry fails its condition. DynamoLedger must read back what is
 * there and report the write as done. The emulator is real; only the answer of chosen requests is dropped.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { settledRecord, toUpload, type UploadRecord } from "@ingest/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRecord } from "../../../core/tests/helpers/records.js";
import { DynamoLedger } from "../../src/dynamo-ledger.js";
import { CREDENTIALS, clients, createLedgerTable, type Moto, startMoto } from "./moto.js";

let moto: Moto;
beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});

const NOW = "2026-04-01T10:00:00.000Z";

interface Handler {
  handle(request: { headers: Record<string, string> }, options?: unknown): Promise<{ response: { body?: unknown } }>;
  [k: string]: unknown;
}

/**
 * A DynamoDB client whose `operation` requests (e.g. "UpdateItem") reach the emulator and apply, but whose first
 * answer is lost: the SDK sees a reset connection and retries (its standard retry strategy).
 */
function losingFirstAnswer(operation: string) {
  const seen = { sent: 0, lost: 0 };
  const base = new DynamoDBClient({ endpoint: moto.endpoint, region: "us-east-1", credentials: CREDENTIALS });
  const inner = base.config.requestHandler as unknown as Handler;
  const handler: Handler = {
    metadata: inner.metadata,
    updateHttpClientConfig: (...a: unknown[]) => (inner.updateHttpClientConfig as (...x: unknown[]) => void)(...a),
    httpHandlerConfigs: () => (inner.httpHandlerConfigs as () => unknown)(),
    destroy: () => (inner.destroy as () => void)(),
    async handle(request, options) {
      const out = await inner.handle(request, options);
      if (request.headers["x-amz-target"] === `DynamoDB_20120810.${operation}`) {
        seen.sent++;
        if (seen.lost === 0) {
          seen.lost++;
          (out.response.body as { resume?: () => void } | undefined)?.resume?.();
          throw Object.assign(new Error("socket hang up (the request was applied)"), { code: "ECONNRESET" });
        }
      }
      return out;
    },
  };
  const client = new DynamoDBClient({
    endpoint: moto.endpoint,
    region: "us-east-1",
    credentials: CREDENTIALS,
    requestHandler: handler as never,
  });
  return { client, seen };
}

async function ledgers(operation: string) {
  const { ddb } = clients(moto.endpoint);
  const tableName = await createLedgerTable(ddb);
  const losing = losingFirstAnswer(operation);
  return {
    clean: new DynamoLedger({ client: ddb, tableName }),
    losing: new DynamoLedger({ client: losing.client, tableName }),
    seen: losing.seen,
  };
}

const VERSION = {
  bucket: "data-bucket",
  key: "input/a.csv",
  versionId: null,
  etag: "e1",
  lastModified: "2026-04-01T09:59:00Z",
  size: 1,
};
const upload = toUpload(VERSION);

describe("DynamoLedger when the SDK retries a write whose answer was lost", () => {
  it("claimUpload reports the claim it made", async () => {
    const { clean, losing, seen } = await ledgers("UpdateItem");
    await clean.recordUpload(upload, NOW);
    expect(await losing.claimUpload(upload.uploadId, "r1", NOW)).toBe(true);
    expect(seen).toEqual({ sent: 2, lost: 1 }); // applied, answer lost, retried by the SDK
    expect(await clean.getUpload(upload.uploadId)).toMatchObject({ status: "running", runKey: "r1", runs: 1 });
  });

  it("takeSlot tells its holder it holds the slot", async () => {
    const { losing, seen } = await ledgers("UpdateItem");
    expect(await losing.takeSlot("r1", NOW)).toBe(true);
    expect(seen.sent).toBe(2);
  });

  it("releaseSlot reports the wake-up it consumed", async () => {
    const { clean, losing, seen } = await ledgers("UpdateItem");
    await clean.takeSlot("r1", NOW);
    await clean.requestWakeup();
    expect(await losing.releaseSlot("r1")).toEqual({ released: true, wakeup: true });
    expect(seen.sent).toBe(2);
    expect((await clean.getSlot()).holder).toBeNull();
  });

  it("settleUpload and createRun report what they wrote", async () => {
    const { clean, losing, seen } = await ledgers("PutItem");
    await losing.createRun(runRecord("20260401T100000Z-1", NOW)); // the first PutItem: its answer is lost
    expect(seen.sent).toBe(2);
    await clean.recordUpload(upload, NOW);
    await clean.claimUpload(upload.uploadId, "r1", NOW);
    // processed: one conditional UpdateItem (no read first); its answer is lost and the SDK's retry fails the condition
    const { losing: again, seen: seenAgain } = await ledgersOn(clean, "UpdateItem");
    const processed = {
      status: "processed",
      output: "s3://x/",
      rejectedOutput: null,
      rowsRead: 1,
      rowsProcessed: 1,
      rowsRejected: 0,
    } as const;
    const read = await clean.getUpload(upload.uploadId);
    expect(await again.settleUpload(upload.uploadId, "r1", processed, NOW)).toBe(true);
    expect(seenAgain).toEqual({ sent: 2, lost: 1 });
    expect(await clean.getUpload(upload.uploadId)).toEqual(settledRecord(read as UploadRecord, processed, NOW));

    // back to pending: a conditional put built from the record read; its answer is lost and the retry fails too
    const other = toUpload({ ...VERSION, key: "input/b.csv" });
    await clean.recordUpload(other, NOW);
    await clean.claimUpload(other.uploadId, "r1", NOW);
    const { losing: third, seen: seenThird } = await ledgersOn(clean, "PutItem");
    const back = { status: "pending", error: "run failed", attempts: 0, retryGroupSize: 1 } as const;
    const readB = (await clean.getUpload(other.uploadId)) as UploadRecord;
    expect(await third.settleUpload(other.uploadId, "r1", back, NOW, readB)).toBe(true);
    expect(seenThird).toEqual({ sent: 2, lost: 1 });
    expect(await clean.getUpload(other.uploadId)).toEqual(settledRecord(readB, back, NOW));
  });

  /** A second losing ledger on the same table (a fresh "first answer lost" for `operation`). */
  async function ledgersOn(clean: DynamoLedger, operation: string) {
    const losing = losingFirstAnswer(operation);
    const tableName = (clean as unknown as { table: string }).table;
    return { losing: new DynamoLedger({ client: losing.client, tableName }), seen: losing.seen };
  }
});
