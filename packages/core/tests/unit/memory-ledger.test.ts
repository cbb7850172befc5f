import { MemoryLedger } from "../../src/ledger/memory.js";
import { ledgerContract } from "../contract/ledger-contract.js";

ledgerContract("MemoryLedger", async () => new MemoryLedger());
