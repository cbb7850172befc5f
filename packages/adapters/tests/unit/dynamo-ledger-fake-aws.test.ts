/**
 * The ledger contract on DynamoLedger over the fake DynamoDB of the coalescing simulation (tests/helpers/fake-aws.ts):
 * the SDK's real serialization and retries against the fake's expressions, keys and index. With no faults, the fake
 * must behave like DynamoDB for every call the contract makes, or the simulation's figures mean nothing.
 */
import { LEDGER_TABLE } from "@ingest/core";
import { vi } from "vitest";
import { ledgerContract } from "../../../core/tests/contract/ledger-contract.js";
import { DynamoLedger } from "../../src/dynamo-ledger.js";
import { FakeAws } from "../helpers/fake-aws.js";

// Each contract test makes dozens of SDK round trips (16 index shards per listing); on a loaded 2-core machine that
// can pass vitest's 5 s default.
vi.setConfig({ testTimeout: 30_000 });

let seq = 0;
ledgerContract("DynamoLedger on the simulation's fake DynamoDB", async () => {
  const fake = new FakeAws({
    now: () => Date.parse("2026-04-01T10:00:00Z"),
    random: () => {
      seq = (seq * 1103515245 + 12345) % 2 ** 31;
      return seq / 2 ** 31;
    },
    tableName: "ledger",
    schema: {
      hashKey: LEDGER_TABLE.hashKey,
      rangeKey: LEDGER_TABLE.rangeKey,
      indexes: [LEDGER_TABLE.pendingIndex],
    },
    job: { name: "job", maxConcurrentRuns: 1, workerType: "G.1X", numberOfWorkers: 10, timeoutMinutes: 120 },
  });
  return new DynamoLedger({ client: fake.clients().dynamodb, tableName: "ledger" });
});
