/** Physical names: a stage name that would break a service's length limit is refused with a clear message. */
import { afterEach, describe, expect, it } from "vitest";
import { checkedName, physicalName } from "../shared";

const g = globalThis as Record<string, unknown>;
const withStage = (stage: string) => {
  g.$app = { name: "csv-ingest", stage };
};
afterEach(() => {
  delete g.$app;
});

describe("physicalName", () => {
  it("is csv-ingest-<stage>-<what>", () => {
    withStage("dev");
    expect(physicalName("batcher")).toBe("csv-ingest-dev-batcher");
  });

  it("refuses a Lambda name over 64 characters, saying how long the stage may be", () => {
    const stage = "feature-a-very-long-branch-name-for-a-stage-x";
    withStage(stage);
    expect(() => physicalName("recorder", 64)).toThrow(
      `The resource name csv-ingest-${stage}-recorder is 65 characters; AWS allows 64. Use a stage name of at most ${stage.length - 1} characters (${stage} has ${stage.length}).`,
    );
  });

  it("allows the longer limit where the service has one (tables, jobs, alarms)", () => {
    withStage("feature-a-very-long-branch-name-for-a-stage-x");
    expect(physicalName("recorder")).toHaveLength(65);
  });

  it("caps IAM role names (region included) at 64", () => {
    withStage("s".repeat(31));
    expect(checkedName(`csv-ingest-${"s".repeat(31)}-sweeper-us-east-1`, 64, "IAM role")).toHaveLength(60);
    expect(() => checkedName(`csv-ingest-${"s".repeat(31)}-sweeper-ap-southeast-4`, 64, "IAM role")).toThrow(
      /IAM role name .* is 65 characters; AWS allows 64\. Use a stage name of at most 30 characters/,
    );
  });
});
