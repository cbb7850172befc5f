/** The ledger: uploads, runs and the run slot, keyed as the config module says (the twin creates the same table). */
import { LEDGER_TABLE } from "../packages/core/src/config/pipeline";
import { type PipelineConfig, physicalName } from "./shared";

export function createLedger(config: PipelineConfig) {
  const { hashKey, rangeKey, pendingIndex } = LEDGER_TABLE;
  const table = new aws.dynamodb.Table("Ledger", {
    name: physicalName("ledger", 255),
    billingMode: "PAY_PER_REQUEST",
    hashKey,
    rangeKey,
    attributes: [hashKey, rangeKey, pendingIndex.hashKey, pendingIndex.rangeKey].map((name) => ({ name, type: "S" })),
    globalSecondaryIndexes: [
      {
        name: pendingIndex.name,
        hashKey: pendingIndex.hashKey,
        rangeKey: pendingIndex.rangeKey,
        projectionType: "ALL",
      },
    ],
    pointInTimeRecovery: { enabled: config.isProd },
    // KMS with the AWS managed key (aws/dynamodb): its key policy admits DynamoDB callers, so no kms:* grants.
    serverSideEncryption: { enabled: true },
    deletionProtectionEnabled: config.isProd,
  });
  const pendingIndexArn = $interpolate`${table.arn}/index/${pendingIndex.name}`;
  return { table, pendingIndexArn };
}
