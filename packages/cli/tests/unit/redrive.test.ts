import { GlueClient } from "@aws-sdk/client-glue";
import { S3Client } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { depsFor } from "../../src/redrive.js";
import type { Target } from "../../src/target.js";

describe("redrive's dependencies", () => {
  it("read and write run manifests in the control bucket, as the handlers do", () => {
    // A start the CLI makes — or a dead start it revokes on its way — must find manifests where the handlers wrote
    // them; with the data bucket its undo read no manifest and left the dead start's uploads running.
    const target = {
      bucket: "data-bucket",
      controlBucket: "control-bucket",
      glueJob: "job",
      s3: new S3Client({ region: "us-east-1" }),
      glue: new GlueClient({ region: "us-east-1" }),
      ledger: {},
    } as unknown as Target;
    const deps = depsFor(target);
    expect(deps.controlBucket).toBe("control-bucket");
    expect(deps.bucket).toBe("data-bucket");
  });
});
