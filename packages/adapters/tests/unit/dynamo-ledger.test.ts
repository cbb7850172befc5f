/**
 * DynamoLedger's keys and reads against DynamoDB's documented limits (which the emulator does not enforce): sort
 * keys ≤ 1,024 bytes, partition keys ≤ 2,048 bytes, one page per Query, ALL_OLD on a failed condition.
 */
import { ConditionalCheckFailedException, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { newUploadRecord, toUpload } from "@ingest/core";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { DynamoLedger } from "../../src/dynamo-ledger.js";

const ddb = mockClient(DynamoDBDocumentClient);
const NOW = "2026-04-01T10:00:00.000Z";

function ledger() {
  return new DynamoLedger({ client: DynamoDBDocumentClient.from(new DynamoDBClient({})), tableName: "ledger" });
}

function upload(key: string, etag = "e1") {
  return toUpload({ bucket: "data-bucket", key, versionId: null, etag, lastModified: "2026-04-01T09:59:00Z", size: 1 });
}

/** S3's longest key: 1,024 bytes of UTF-8. */
const LONGEST_KEY = `input/${"é".repeat((1024 - "input/".length - ".csv".length) / 2)}.csv`;

const bytes = (v: unknown) => Buffer.byteLength(String(v), "utf8");

beforeEach(() => {
  ddb.reset();
  ddb.on(PutCommand).resolves({});
  ddb.on(UpdateCommand).resolves({});
});

describe("6. any legal S3 key fits DynamoDB's key limits", () => {
  it("recording and claiming an upload of a 1,024-byte key keep every key attribute within its limit", async () => {
    expect(bytes(LONGEST_KEY)).toBe(1024);
    const u = upload(LONGEST_KEY);
    await ledger().recordUpload(u, NOW);
    await ledger().claimUpload(u.uploadId, "20260401T100000Z-0123abcd", NOW);

    const item = ddb.commandCalls(PutCommand)[0]?.args[0].input.Item ?? {};
    expect(bytes(item.pk)).toBeLessThanOrEqual(2048);
    expect(bytes(item.sk)).toBeLessThanOrEqual(1024);
    expect(bytes(item.gsi1pk)).toBeLessThanOrEqual(2048);
    expect(bytes(item.gsi1sk)).toBeLessThanOrEqual(1024);
    const claim = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(bytes(claim?.Key?.pk)).toBeLessThanOrEqual(2048);
    expect(bytes(claim?.Key?.sk)).toBeLessThanOrEqual(1024);
    const values = claim?.ExpressionAttributeValues ?? {};
    for (const v of Object.values(values)) if (typeof v === "string") expect(bytes(v)).toBeLessThanOrEqual(1024);
  });
});

describe("9. uploadsOfKey reads every page", () => {
  it("returns the versions of both pages of a key with many versions", async () => {
    const [a, b] = [upload("input/a.csv", "e1"), upload("input/a.csv", "e2")];
    ddb
      .on(QueryCommand)
      .resolvesOnce({
        Items: [{ ...newUploadRecord(a, NOW), pk: "x", sk: "1" }],
        LastEvaluatedKey: { pk: "x", sk: "1" },
      })
      .resolvesOnce({ Items: [{ ...newUploadRecord(b, NOW), pk: "x", sk: "2" }] });

    const versions = await ledger().uploadsOfKey("data-bucket", "input/a.csv");

    expect(versions.map((v) => v.etag)).toEqual(["e1", "e2"]);
    expect(ddb.commandCalls(QueryCommand)[1]?.args[0].input.ExclusiveStartKey).toEqual({ pk: "x", sk: "1" });
  });
});

describe("11. a burst spreads over the index partitions", () => {
  it("pending uploads of one burst land in many index partitions, not one", async () => {
    const l = ledger();
    for (let i = 0; i < 200; i++) await l.recordUpload(upload(`input/f${i}.csv`), NOW);
    const partitions = new Set(ddb.commandCalls(PutCommand).map((c) => c.args[0].input.Item?.gsi1pk));
    expect(partitions.size).toBe(16);
  });
});

describe("2. a conditional write whose condition failed reads back what is there (ALL_OLD)", () => {
  const ccf = (item: Record<string, unknown>) =>
    new ConditionalCheckFailedException({ message: "failed", $metadata: {}, Item: marshall(item) });

  it("a claim retried after its answer was lost (the item is running in our run) reports success", async () => {
    const u = upload("input/a.csv");
    ddb
      .on(UpdateCommand)
      .rejects(ccf({ ...newUploadRecord(u, NOW), status: "running", runKey: "r1", lastRunKey: "r1" }));
    expect(await ledger().claimUpload(u.uploadId, "r1", NOW)).toBe(true);
    expect(await ledger().claimUpload(u.uploadId, "r2", NOW)).toBe(false);
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input.ReturnValuesOnConditionCheckFailure).toBe("ALL_OLD");
    expect(ddb.commandCalls(GetCommand)).toHaveLength(0); // the failed condition's answer was enough
  });

  it("a slot take retried after its answer was lost reports success to its holder only", async () => {
    ddb.on(UpdateCommand).rejects(ccf({ pk: "SLOT", sk: "SLOT", holder: "r1", wakeup: false }));
    expect(await ledger().takeSlot("r1", NOW)).toBe(true);
    expect(await ledger().takeSlot("r2", NOW)).toBe(false);
  });

  it("without ALL_OLD in the answer, reads the item consistently", async () => {
    ddb.on(UpdateCommand).rejects(new ConditionalCheckFailedException({ message: "failed", $metadata: {} }));
    ddb.on(GetCommand).resolves({ Item: { pk: "SLOT", sk: "SLOT", holder: "r1" } });
    expect(await ledger().takeSlot("r1", NOW)).toBe(true);
    expect(ddb.commandCalls(GetCommand)[0]?.args[0].input.ConsistentRead).toBe(true);
  });
});

describe("10. answers as other SDK copies and DynamoDB's edges give them", () => {
  it("a failed condition recognised by its name (an error class from another SDK copy) is read back, not thrown", async () => {
    const u = upload("input/a.csv");
    const foreign = Object.assign(new Error("The conditional request failed"), {
      name: "ConditionalCheckFailedException",
      Item: marshall({ ...newUploadRecord(u, NOW), status: "running", runKey: "r1" }),
    });
    ddb.on(UpdateCommand).rejects(foreign);
    expect(await ledger().claimUpload(u.uploadId, "r1", NOW)).toBe(true);
    expect(await ledger().claimUpload(u.uploadId, "r2", NOW)).toBe(false);
    ddb.on(UpdateCommand).rejects(Object.assign(new Error("slow down"), { name: "ThrottlingException" }));
    await expect(ledger().claimUpload(u.uploadId, "r1", NOW)).rejects.toThrow("slow down");
  });

  it("an upload whose record exists but cannot be read back fails the record with its id", async () => {
    const u = upload("input/a.csv");
    ddb.on(PutCommand).rejects(new ConditionalCheckFailedException({ message: "failed", $metadata: {} }));
    ddb.on(GetCommand).resolves({});
    await expect(ledger().recordUpload(u, NOW)).rejects.toThrow(
      new Error(`upload ${u.uploadId} exists but could not be read`),
    );
  });

  it("Query and Scan answers without Items list nothing", async () => {
    ddb.on(QueryCommand).resolves({});
    ddb.on(ScanCommand).resolves({});
    expect(await ledger().listRuns(5)).toEqual([]);
    expect(await ledger().uploadsOfKey("data-bucket", "input/a.csv")).toEqual([]);
    expect(await ledger().listPending(5)).toEqual([]);
    expect(await ledger().listUploads()).toEqual([]);
  });

  it("listUploads reads every page of the scan", async () => {
    const [a, b] = [upload("input/a.csv"), upload("input/b.csv")];
    ddb
      .on(ScanCommand)
      .resolvesOnce({
        Items: [{ ...newUploadRecord(a, NOW), pk: "x", sk: "1" }],
        LastEvaluatedKey: { pk: "x", sk: "1" },
      })
      .resolvesOnce({ Items: [{ ...newUploadRecord(b, NOW), pk: "y", sk: "2" }] });
    expect((await ledger().listUploads()).map((u) => u.key)).toEqual(["input/a.csv", "input/b.csv"]);
    expect(ddb.commandCalls(ScanCommand)[1]?.args[0].input.ExclusiveStartKey).toEqual({ pk: "x", sk: "1" });
  });
});
