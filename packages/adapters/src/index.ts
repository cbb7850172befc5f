export * from "./dynamo-ledger.js";
export * from "./glue-jobs.js";
export * from "./s3-objects.js";
export * from "./sqs-visibility.js";
