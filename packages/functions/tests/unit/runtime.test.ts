/** The edge's reading of the security settings: the control bucket and an override of the per-file cap. */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resetRuntime, runtime } from "../../src/runtime.js";

const savedEnv = { ...process.env };
beforeEach(() => {
  process.env.PIPELINE_STAGE = "test";
  process.env.DATA_BUCKET = "data-bucket";
  process.env.LEDGER_TABLE = "ledger";
  process.env.GLUE_JOB_NAME = "job";
  delete process.env.CONTROL_BUCKET;
  delete process.env.PIPELINE_MAX_FILE_BYTES;
  resetRuntime();
});
afterEach(() => {
  process.env = { ...savedEnv };
  resetRuntime();
});

describe("runtime", () => {
  it("writes manifests to CONTROL_BUCKET when set, and to the data bucket otherwise", () => {
    expect(runtime().deps.controlBucket).toBeUndefined();
    resetRuntime();
    process.env.CONTROL_BUCKET = "control-bucket";
    expect(runtime().deps).toMatchObject({ bucket: "data-bucket", controlBucket: "control-bucket" });
  });

  it("keeps the config's cap, or takes PIPELINE_MAX_FILE_BYTES", () => {
    expect(runtime().config.limits.maxFileBytes).toBe(5 * 1024 ** 3);
    resetRuntime();
    process.env.PIPELINE_MAX_FILE_BYTES = "4096";
    expect(runtime().config.limits.maxFileBytes).toBe(4096);
  });

  it.each(["0", "-1", "12kb", "1.5"])("refuses PIPELINE_MAX_FILE_BYTES=%s with a clear message", (value) => {
    process.env.PIPELINE_MAX_FILE_BYTES = value;
    expect(() => runtime()).toThrow(`PIPELINE_MAX_FILE_BYTES must be a positive whole number of bytes, not ${value}`);
  });
});
