/**
 * DynamoLedger's own shapes, pinned with literal values: the table CreateTable gets, an upload's keys and index
 * partition (SHA-256 of its id, computed independently), the breaker and the reconciler's position on the fake
 * DynamoDB of tests/helpers/fake-aws.ts.
 */
import { HEALTHY, LEDGER_TABLE } from "@ingest/core";
import { describe, expect, it } from "vitest";
import { DynamoLedger, indexShardOf, ledgerTableInput, uploadKey } from "../../src/dynamo-ledger.js";
import { FakeAws } from "../helpers/fake-aws.js";

function fakeLedger() {
  const fake = new FakeAws({
    now: () => Date.parse("2026-04-01T10:00:00Z"),
    random: () => 0.5,
    tableName: "ledger",
    schema: { hashKey: LEDGER_TABLE.hashKey, rangeKey: LEDGER_TABLE.rangeKey, indexes: [LEDGER_TABLE.pendingIndex] },
    job: { name: "job", maxConcurrentRuns: 1, workerType: "G.1X", numberOfWorkers: 10, timeoutMinutes: 120 },
  });
  return new DynamoLedger({ client: fake.clients().dynamodb, tableName: "ledger" });
}

describe("DynamoLedger shapes", () => {
  it("creates the table on pk/sk with the sparse 'pending' index on gsi1pk/gsi1sk, on demand", () => {
    expect(ledgerTableInput("t")).toEqual({
      TableName: "t",
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: ["pk", "sk", "gsi1pk", "gsi1sk"].map((AttributeName) => ({
        AttributeName,
        AttributeType: "S",
      })),
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: "pending",
          KeySchema: [
            { AttributeName: "gsi1pk", KeyType: "HASH" },
            { AttributeName: "gsi1sk", KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        },
      ],
    });
  });

  it("keys an upload by bucket/key and version tag, split at the last '@'; refuses an id without one", () => {
    expect(uploadKey("b/input/a@b.csv@20260401T100000Z-e1")).toEqual({
      pk: "UPLOAD#b/input/a@b.csv",
      sk: "20260401T100000Z-e1",
    });
    expect(() => uploadKey("no-tag")).toThrow(new RangeError("not an upload id: no-tag"));
  });

  it("spreads uploads over the 16 index partitions by the first 32 bits of the SHA-256 of their id", () => {
    // sha256("data-bucket/input/a.csv@t1") starts 5c428444 (→ 4), sha256("data-bucket/input/b.csv@t2") 93a3053c (→ 12)
    expect(indexShardOf("data-bucket/input/a.csv@t1")).toBe(4);
    expect(indexShardOf("data-bucket/input/b.csv@t2")).toBe(12);
  });
});

describe("DynamoLedger: the breaker and the reconciler's position", () => {
  it("a fresh table is healthy; failures count per run; a healthy run resets the count and keeps the last failure time", async () => {
    const l = fakeLedger();
    expect(await l.getHealth()).toEqual(HEALTHY);

    await l.recordRunHealth("r1", "system-failure", "2026-04-01T10:00:00.000Z");
    expect(await l.recordRunHealth("r2", "system-failure", "2026-04-01T10:05:00.000Z")).toEqual({
      consecutiveSystemFailures: 2,
      lastRunKey: "r2",
      lastFailureAt: "2026-04-01T10:05:00.000Z",
    });
    expect(await l.recordRunHealth("r3", "healthy", "2026-04-01T10:09:00.000Z")).toEqual({
      consecutiveSystemFailures: 0,
      lastRunKey: "r3",
      lastFailureAt: "2026-04-01T10:05:00.000Z",
    });
    expect(await l.getHealth()).toEqual({
      consecutiveSystemFailures: 0,
      lastRunKey: "r3",
      lastFailureAt: "2026-04-01T10:05:00.000Z",
    });
  });

  it("no position until one is saved; a saved position reads back as it was, nulls included", async () => {
    const l = fakeLedger();
    expect(await l.getReconcilerPosition()).toBeNull();

    const mid = {
      afterKey: "input/k.csv",
      savedAt: "2026-04-01T10:00:00.000Z",
      passStartedAt: "2026-04-01T09:45:00.000Z",
      lastPassEndedAt: null,
    };
    await l.saveReconcilerPosition(mid);
    expect(await l.getReconcilerPosition()).toEqual(mid);

    const ended = { ...mid, afterKey: null, lastPassEndedAt: "2026-04-01T10:00:00.000Z" };
    await l.saveReconcilerPosition(ended);
    expect(await l.getReconcilerPosition()).toEqual(ended);
  });
});
