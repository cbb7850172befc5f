import { describe, expect, it } from "vitest";
import { reconcile } from "../../src/runs/reconciler.js";
import { toUpload } from "../../src/upload/identity.js";
import { BUCKET, makeWorld } from "../helpers/world.js";

describe("reconciler: races with the batcher", () => {
  it("an upload the batcher recorded while the ledger read lagged is not counted as reconciled", async () => {
    const w = makeWorld();
    const v = w.objects.put(BUCKET, "input/a.csv", "id\n1\n");
    await w.ledger.recordUpload(toUpload(v), w.clock.now().toISOString());
    w.clock.advance(120_000);
    w.ledger.uploadsOfKey = async () => [];

    const report = await reconcile(w.deps, w.config, { lister: w.objects, positions: w.ledger });

    expect(report).toMatchObject({ checked: 1, recorded: 0, run: null });
    expect(w.metrics.totals.has("UploadsReconciled")).toBe(false);
  });

  it("a failed run start: logged, and the invocation fails with that error", async () => {
    const w = makeWorld();
    w.objects.put(BUCKET, "input/a.csv", "id\n1\n");
    w.clock.advance(120_000);
    w.ledger.failNext = { method: "takeSlot", error: new Error("slot table unavailable") };

    await expect(reconcile(w.deps, w.config, { lister: w.objects, positions: w.ledger })).rejects.toThrow(
      "slot table unavailable",
    );
    expect(w.log.lines).toContainEqual({
      level: "error",
      message: "reconciler could not start a run; the sweeper will",
      fields: { error: "Error: slot table unavailable" },
    });
  });
});
