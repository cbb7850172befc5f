/**
 * The prices the simulation's cost figures and `ingest status`'s per-run Glue cost use: in one place, with their date
 * and region. AWS list prices, us-east-1, USD, on-demand, no free tier, no Savings Plans; as recorded on PRICES.asOf
 * from the services' public pricing pages (not fetched at run time). Change them here and every table follows.
 */
export const PRICES = {
  asOf: "2026-11-30",
  region: "us-east-1",
  glue: {
    /** Spark job, standard execution class, per DPU-hour; billed per second with a 1-minute minimum per run. */
    dpuHour: 0.44,
    /** The Flex execution class (spare capacity, start may be delayed). */
    flexDpuHour: 0.29,
    minimumBilledSeconds: 60,
  },
  lambda: {
    /** arm64 (infra/functions.ts), per GB-second. */
    gbSecond: 0.000_013_333_4,
    /** x86_64 (the seed's function: the console's default), per GB-second. */
    gbSecondX86: 0.000_016_666_7,
    perMillionRequests: 0.2,
  },
  dynamodb: {
    /** On-demand, per million write request units (1 KB) and read request units (4 KB strongly consistent, 2 × 4 KB eventually). */
    perMillionWrites: 0.625,
    perMillionReads: 0.125,
  },
  sqs: {
    /** Standard queue, per million requests (each 64 KB chunk of a payload is one request). */
    perMillionRequests: 0.4,
  },
  s3: {
    /** PUT, COPY, POST, LIST per 1,000 requests (S3 Standard). */
    perThousandPutListRequests: 0.005,
    /** GET, HEAD and all other requests per 1,000 (DELETE is free). */
    perThousandGetRequests: 0.000_4,
  },
  eventbridge: {
    /** Events from AWS services (S3 "Object Created", Glue "Job State Change") on the default bus: no charge. */
    perMillionAwsServiceEvents: 0,
    /** Custom events (PutEvents), per million; listed for completeness, no contender publishes any. */
    perMillionCustomEvents: 1,
  },
} as const;
