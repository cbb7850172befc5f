import { afterAll, beforeAll } from "vitest";
import { ledgerContract } from "../../../core/tests/contract/ledger-contract.js";
import { DynamoLedger } from "../../src/dynamo-ledger.js";
import { clients, createLedgerTable, type Moto, startMoto } from "./moto.js";

let moto: Moto;
beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});

ledgerContract("DynamoLedger on moto", async () => {
  const { ddb } = clients(moto.endpoint);
  return new DynamoLedger({ client: ddb, tableName: await createLedgerTable(ddb) });
});
