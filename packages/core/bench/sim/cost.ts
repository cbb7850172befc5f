/**
 * What a strategy used (Glue DPU-seconds, Lambda GB-seconds and requests, DynamoDB request units, SQS, S3 and
 * EventBridge requests) and what that costs at src/config/prices.ts. Each contender fills a Usage while it runs; the
 * report prints every line item.
 */
import { billed } from "../../src/runs/glue-cost.js";
import { PRICES } from "./prices.js";

export interface Usage {
  glueRuns: number;
  /** Billed DPU-seconds (each run's workers × DPU per worker × max(duration, the 1-minute minimum)), by class. */
  glueDpuSeconds: number;
  glueFlexDpuSeconds: number;
  lambdaRequests: number;
  /** arm64 (ours) and x86_64 (the seed's console default) GB-seconds. */
  lambdaGbSeconds: number;
  lambdaGbSecondsX86: number;
  dynamodbWriteUnits: number;
  dynamodbReadUnits: number;
  sqsRequests: number;
  s3PutListRequests: number;
  s3GetRequests: number;
  eventbridgeEvents: number;
}

export function newUsage(): Usage {
  return {
    glueRuns: 0,
    glueDpuSeconds: 0,
    glueFlexDpuSeconds: 0,
    lambdaRequests: 0,
    lambdaGbSeconds: 0,
    lambdaGbSecondsX86: 0,
    dynamodbWriteUnits: 0,
    dynamodbReadUnits: 0,
    sqsRequests: 0,
    s3PutListRequests: 0,
    s3GetRequests: 0,
    eventbridgeEvents: 0,
  };
}

/** One Glue run's bill: every worker for the whole run, at least the minimum. */
export function billGlueRun(u: Usage, dpus: number, seconds: number, flex = false): void {
  const dpuSeconds = dpus * billed(seconds, PRICES.glue.minimumBilledSeconds);
  u.glueRuns++;
  if (flex) u.glueFlexDpuSeconds += dpuSeconds;
  else u.glueDpuSeconds += dpuSeconds;
}

export interface CostLine {
  readonly item: string;
  readonly quantity: number;
  readonly unit: string;
  readonly usd: number;
}

export function costLines(u: Usage): CostLine[] {
  const p = PRICES;
  return [
    {
      item: "Glue (standard)",
      quantity: u.glueDpuSeconds / 3600,
      unit: "DPU-h",
      usd: (u.glueDpuSeconds / 3600) * p.glue.dpuHour,
    },
    {
      item: "Glue (Flex)",
      quantity: u.glueFlexDpuSeconds / 3600,
      unit: "DPU-h",
      usd: (u.glueFlexDpuSeconds / 3600) * p.glue.flexDpuHour,
    },
    {
      item: "Lambda compute",
      quantity: u.lambdaGbSeconds + u.lambdaGbSecondsX86,
      unit: "GB-s",
      usd: u.lambdaGbSeconds * p.lambda.gbSecond + u.lambdaGbSecondsX86 * p.lambda.gbSecondX86,
    },
    {
      item: "Lambda requests",
      quantity: u.lambdaRequests,
      unit: "req",
      usd: (u.lambdaRequests / 1e6) * p.lambda.perMillionRequests,
    },
    {
      item: "DynamoDB writes",
      quantity: u.dynamodbWriteUnits,
      unit: "WRU",
      usd: (u.dynamodbWriteUnits / 1e6) * p.dynamodb.perMillionWrites,
    },
    {
      item: "DynamoDB reads",
      quantity: u.dynamodbReadUnits,
      unit: "RRU",
      usd: (u.dynamodbReadUnits / 1e6) * p.dynamodb.perMillionReads,
    },
    { item: "SQS", quantity: u.sqsRequests, unit: "req", usd: (u.sqsRequests / 1e6) * p.sqs.perMillionRequests },
    {
      item: "S3 PUT/COPY/LIST",
      quantity: u.s3PutListRequests,
      unit: "req",
      usd: (u.s3PutListRequests / 1000) * p.s3.perThousandPutListRequests,
    },
    {
      item: "S3 GET/HEAD",
      quantity: u.s3GetRequests,
      unit: "req",
      usd: (u.s3GetRequests / 1000) * p.s3.perThousandGetRequests,
    },
    {
      item: "EventBridge (AWS service events)",
      quantity: u.eventbridgeEvents,
      unit: "events",
      usd: (u.eventbridgeEvents / 1e6) * p.eventbridge.perMillionAwsServiceEvents,
    },
  ];
}

export function totalUsd(u: Usage): number {
  return costLines(u).reduce((s, l) => s + l.usd, 0);
}

export function glueUsd(u: Usage): number {
  return (u.glueDpuSeconds / 3600) * PRICES.glue.dpuHour + (u.glueFlexDpuSeconds / 3600) * PRICES.glue.flexDpuHour;
}

/**
 * The Glue job's own S3 requests per upload (README, bench:glue-s3: a read, two listings, four writes) and per run
 * (manifest read, stats write, the driver's checks), the same for every contender: they run the same job.
 */
export const JOB_S3 = { getPerFile: 1, putListPerFile: 6, getPerRun: 2, putListPerRun: 2 } as const;

export function billJobS3(u: Usage, files: number): void {
  u.s3GetRequests += JOB_S3.getPerRun + files * JOB_S3.getPerFile;
  u.s3PutListRequests += JOB_S3.putListPerRun + files * JOB_S3.putListPerFile;
}
