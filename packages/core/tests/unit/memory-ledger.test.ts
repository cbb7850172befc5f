import { describe, expect, it } from "vitest";
import { MemoryLedger } from "../../src/ledger/memory.js";
import { ledgerContract } from "../contract/ledger-contract.js";

ledgerContract("MemoryLedger", async () => new MemoryLedger());

describe("MemoryLedger.failAtCall (the simulation's transient ledger faults)", () => {
  it("throws at the k-th call from now whatever its method, once, and says so", async () => {
    const ledger = new MemoryLedger();
    ledger.failAtCall = {
      calls: 3,
      error: new Error("ProvisionedThroughputExceededException (simulated)"),
      fired: false,
    };

    await ledger.getSlot();
    await ledger.getHealth();
    await expect(ledger.listRuns(5)).rejects.toThrow("ProvisionedThroughputExceededException (simulated) (listRuns)");
    expect(ledger.failAtCall?.fired).toBe(true);
    await expect(ledger.listRuns(5)).resolves.toEqual([]);
  });
});
