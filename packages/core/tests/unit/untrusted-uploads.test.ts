/**
 * Untrusted uploads (issue 12): a file over the per-file cap is failed at intake with the reason, never put in a
 * run; manifests are written to (and read from) the control bucket, which uploaders cannot write.
 */
import { describe, expect, it } from "vitest";
import { handleUploadBatch, tooLarge } from "../../src/runs/intake.js";
import { readManifest } from "../../src/runs/start.js";
import { BUCKET, makeWorld } from "../helpers/world.js";

const CONTROL = "control-bucket";

describe("per-file size cap", () => {
  it("fails an upload over the cap with a clear reason and starts no run for it", async () => {
    const w = makeWorld();
    const config = { ...w.config, limits: { maxFileBytes: 20 } };
    const big = w.upload("input/big.csv", `id,name\n${"1,x\n".repeat(10)}`);
    const small = w.upload("input/small.csv", "id\n1\n");

    const result = await handleUploadBatch(w.deps, config, [big.message, small.message]);

    const records = [...w.ledger.uploads.values()];
    const bigRecord = records.find((u) => u.key === "input/big.csv");
    expect(bigRecord?.status).toBe("failed");
    expect(bigRecord?.error).toBe(tooLarge(big.version.size, 20));
    expect(bigRecord?.error).toMatch(/^too large: 48 bytes is over the per-file cap of 20 bytes/);
    expect(result.run?.started && result.run.files).toBe(1);
    const run = result.run?.started ? result.run : null;
    const manifest = await w.manifestOf(run?.runKey ?? "");
    expect(manifest.uploads.map((u) => u.key)).toEqual(["input/small.csv"]);
  });

  it("takes a file of exactly the cap", async () => {
    const w = makeWorld();
    const body = "id\n1\n";
    const config = { ...w.config, limits: { maxFileBytes: body.length } };
    await handleUploadBatch(w.deps, config, [w.upload("input/a.csv", body).message]);
    expect([...w.ledger.uploads.values()][0]?.status).toBe("running");
  });

  it("pins the default cap: 5 GiB in every stage", () => {
    expect(makeWorld().config.limits.maxFileBytes).toBe(5 * 1024 ** 3);
  });
});

describe("control bucket", () => {
  it("writes the manifest to the control bucket and points the job there, never the data bucket", async () => {
    const w = makeWorld();
    const deps = { ...w.deps, controlBucket: CONTROL };
    const result = await handleUploadBatch(deps, w.config, [w.upload("input/a.csv").message]);
    const runKey = result.run?.started ? result.run.runKey : "";

    expect(await w.objects.getText(CONTROL, `manifests/${runKey}.json`)).not.toBeNull();
    expect(await w.objects.getText(BUCKET, `manifests/${runKey}.json`)).toBeNull();
    const [glueRun] = [...w.glue.runs.values()];
    expect(glueRun?.arguments["--manifest_uri"]).toBe(`s3://${CONTROL}/manifests/${runKey}.json`);
    const manifest = await readManifest(deps, { manifestKey: `manifests/${runKey}.json` });
    // The manifest still names the data bucket: that is where the uploads are read and the outputs written.
    expect(manifest?.bucket).toBe(BUCKET);
    expect(manifest?.uploads.map((u) => u.key)).toEqual(["input/a.csv"]);
  });
});
