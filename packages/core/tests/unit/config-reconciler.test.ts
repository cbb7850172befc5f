import { describe, expect, it } from "vitest";
import { pipelineConfig, TWIN_STAGE } from "../../src/config/pipeline.js";

describe("pipeline config: the reconciler", () => {
  it("pins prod's reconciler: every 15 min, 10,000 keys, 15 min grace, 120 s, listing", () => {
    expect(pipelineConfig("prod").reconciler).toEqual({
      intervalMinutes: 15,
      maxKeysPerInvocation: 10_000,
      graceSeconds: 900,
      timeoutSeconds: 120,
      inventory: null,
    });
  });

  it.each(["dev", TWIN_STAGE])("gives %s a 60 s grace period (events arrive in seconds there)", (stage) => {
    expect(pipelineConfig(stage).reconciler).toEqual({
      intervalMinutes: 15,
      maxKeysPerInvocation: 10_000,
      graceSeconds: 60,
      timeoutSeconds: 120,
      inventory: null,
    });
  });

  it.each(["dev", "prod", TWIN_STAGE])("starts runs, so a start outlives it before counting as stale (%s)", (stage) => {
    const c = pipelineConfig(stage);
    expect(c.runs.startTimeoutSeconds).toBeGreaterThan(c.reconciler.timeoutSeconds);
  });
});
