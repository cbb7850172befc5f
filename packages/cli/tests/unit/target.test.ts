import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stageNames } from "../../src/target.js";

const outputs = {
  stage: "prod",
  bucketName: "csv-ingest-prod-databucket-abc",
  controlBucketName: "csv-ingest-prod-controlbucket-def",
  ingestQueueUrl: "https://sqs.eu-west-1.amazonaws.com/1/ingest",
  ingestDlqUrl: "https://sqs.eu-west-1.amazonaws.com/1/ingest-dlq",
  recorderQueueUrl: "https://sqs.eu-west-1.amazonaws.com/1/recorder",
  recorderDlqUrl: "https://sqs.eu-west-1.amazonaws.com/1/recorder-dlq",
  glueJobName: "csv-ingest-prod-ingest",
  ledgerTableName: "csv-ingest-prod-ledger",
};

function file(doc: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "outputs-"));
  const f = join(dir, "outputs.json");
  writeFileSync(f, typeof doc === "string" ? doc : JSON.stringify(doc));
  return f;
}

describe("stageNames (deployed stage from SST's outputs)", () => {
  it("maps sst.config.ts's outputs to the CLI's names", () => {
    expect(stageNames("prod", file(outputs))).toEqual({
      stage: "prod",
      bucket: outputs.bucketName,
      controlBucket: outputs.controlBucketName,
      ledgerTable: outputs.ledgerTableName,
      glueJob: outputs.glueJobName,
      ingestQueueUrl: outputs.ingestQueueUrl,
      ingestDlqUrl: outputs.ingestDlqUrl,
      recorderQueueUrl: outputs.recorderQueueUrl,
      recorderDlqUrl: outputs.recorderDlqUrl,
      catalogDatabase: "csv_ingest_prod",
    });
    expect(stageNames("prod", file({ ...outputs, catalogDatabaseName: "csv_ingest_prod_2" })).catalogDatabase).toBe(
      "csv_ingest_prod_2",
    );
  });

  it("refuses outputs of another stage, missing outputs, a missing file, with one clear line", () => {
    expect(() => stageNames("dev", file(outputs))).toThrow(/is for stage prod, not dev/);
    expect(() => stageNames("prod", file({ ...outputs, ledgerTableName: undefined }))).toThrow(
      /no output ledgerTableName/,
    );
    // the control bucket names where a start the CLI makes or repairs finds its manifests: required, never guessed
    expect(() => stageNames("prod", file({ ...outputs, controlBucketName: "" }))).toThrow(
      /no output controlBucketName/,
    );
    expect(() => stageNames("prod", "/nonexistent/outputs.json")).toThrow(/no SST outputs .* deploy first/);
    expect(() => stageNames("prod", file("{not json"))).toThrow(/is not JSON/);
  });
});
