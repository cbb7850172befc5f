/** The fault layer's pure parts: configs and profiles, seeded dice, request → IAM action/resources, key conditions. */
import { Buffer } from "node:buffer";
import { describe, expect, it } from "vitest";
import { FAULT_KINDS, FAULT_PROFILES, FaultDice, faultConfig } from "../../src/faults/config.js";
import { describeRequest, errorCodeOf } from "../../src/faults/describe.js";
import { setAssignments } from "../../src/faults/dynamo-limits.js";
import { matches, parseKeyCondition } from "../../src/faults/gsi-lag.js";
import { accessKeyOf, parseCredential, principalOfKey } from "../../src/faults/principals.js";

const auth = (akid: string, service: string) =>
  `AWS4-HMAC-SHA256 Credential=${akid}/20261130/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=abc`;

describe("fault config", () => {
  it("profiles name only known kinds with rates in [0, 1]; none is off", () => {
    for (const name of Object.keys(FAULT_PROFILES)) expect(() => faultConfig(name, 3)).not.toThrow();
    expect(faultConfig("none").rates).toEqual({});
    expect(Object.keys(faultConfig("chaos").rates).sort()).toEqual([...FAULT_KINDS].sort());
  });

  it("refuses unknown profiles, kinds and rates with a message naming them", () => {
    expect(() => faultConfig("nope")).toThrow(/unknown fault profile "nope" \(known: none, aws, chaos\)/);
    expect(() => faultConfig({ rates: { lostAnswers: 0.1 } as never })).toThrow(/unknown fault kind "lostAnswers"/);
    expect(() => faultConfig({ rates: { throttle: 2 } })).toThrow(
      /rate of throttle must be a number in \[0, 1\], got 2/,
    );
    expect(() => faultConfig({ rates: {}, gsiLagMs: -1 })).toThrow(/gsiLagMs must be a non-negative/);
    expect(() => faultConfig("aws", 1.5)).toThrow(/seed must be an integer/);
  });

  it("dice: same seed, same draws per kind, whatever other kinds drew in between; rate 0 never strikes", () => {
    const cfg = faultConfig({ rates: { throttle: 0.3, lostAnswer: 0.5 } }, 42);
    const a = new FaultDice(cfg);
    const b = new FaultDice(cfg);
    const drawsA = Array.from({ length: 200 }, () => a.roll("throttle"));
    const drawsB = Array.from({ length: 200 }, () => {
      b.roll("lostAnswer");
      return b.roll("throttle");
    });
    expect(drawsA).toEqual(drawsB);
    const hits = drawsA.filter(Boolean).length;
    expect(hits).toBeGreaterThan(30);
    expect(hits).toBeLessThan(90);
    expect(a.counts.throttle).toBe(hits);
    expect(Array.from({ length: 100 }, () => a.roll("serverError")).some(Boolean)).toBe(false);
    const other = new FaultDice(faultConfig({ rates: { throttle: 0.3 } }, 43));
    expect(Array.from({ length: 200 }, () => other.roll("throttle"))).not.toEqual(drawsA);
  });
});

describe("principals", () => {
  it("one access key per principal, read back from a SigV4 header or a presigned credential", () => {
    expect(accessKeyOf("glue-job")).toBe("AKIDGLUEJOB");
    expect(principalOfKey(parseCredential(auth("AKIDBATCHER", "s3"))?.accessKeyId)).toBe("batcher");
    expect(parseCredential("AKIDSWEEPER/20261130/us-east-1/sqs/aws4_request")).toEqual({
      accessKeyId: "AKIDSWEEPER",
      service: "sqs",
    });
    expect(principalOfKey("twin")).toBe("unknown");
  });
});

describe("describeRequest", () => {
  const req = (method: string, url: string, headers: Record<string, string> = {}, body = "") => ({
    method,
    url,
    headers,
    body: Buffer.from(body),
    signingService: parseCredential(headers.authorization)?.service,
  });

  it("S3 REST: object, version, multipart, bucket listing and tagging calls map to IAM's names", () => {
    const s3 = (m: string, url: string, h: Record<string, string> = {}, body = "") =>
      describeRequest(req(m, url, { authorization: auth("AKIDBATCHER", "s3"), ...h }, body)).calls.map(
        (c) => `${c.action} ${c.resources.join(",")}`,
      );
    expect(s3("HEAD", "/b/input/a%20b.csv")).toEqual(["s3:GetObject arn:aws:s3:::b/input/a b.csv"]);
    expect(s3("GET", "/b/k.csv?versionId=v1")).toEqual(["s3:GetObjectVersion arn:aws:s3:::b/k.csv"]);
    expect(s3("GET", "/b?list-type=2&prefix=input%2F")).toEqual(["s3:ListBucket arn:aws:s3:::b"]);
    expect(s3("GET", "/b?versions&prefix=input")).toEqual(["s3:ListBucketVersions arn:aws:s3:::b"]);
    expect(s3("POST", "/b/k.csv?uploads")).toEqual(["s3:PutObject arn:aws:s3:::b/k.csv"]);
    expect(s3("PUT", "/b/k.csv?partNumber=1&uploadId=u")).toEqual(["s3:PutObject arn:aws:s3:::b/k.csv"]);
    expect(s3("DELETE", "/b/k.csv?uploadId=u")).toEqual(["s3:AbortMultipartUpload arn:aws:s3:::b/k.csv"]);
    expect(s3("DELETE", "/b/k.csv?versionId=v")).toEqual(["s3:DeleteObjectVersion arn:aws:s3:::b/k.csv"]);
    expect(s3("PUT", "/b/k.csv", { "x-amz-tagging": "a=b" })).toEqual([
      "s3:PutObject arn:aws:s3:::b/k.csv",
      "s3:PutObjectTagging arn:aws:s3:::b/k.csv",
    ]);
    expect(s3("PUT", "/b/out.csv", { "x-amz-copy-source": "/b/in%20x.csv?versionId=3" })).toEqual([
      "s3:GetObjectVersion arn:aws:s3:::b/in x.csv",
      "s3:PutObject arn:aws:s3:::b/out.csv",
    ]);
    const del =
      "<Delete><Object><Key>a&amp;b.csv</Key></Object><Object><Key>c.csv</Key><VersionId>9</VersionId></Object></Delete>";
    expect(s3("POST", "/b?delete", {}, del)).toEqual([
      "s3:DeleteObject arn:aws:s3:::b/a&b.csv",
      "s3:DeleteObjectVersion arn:aws:s3:::b/c.csv",
    ]);
  });

  it("query protocol (boto3's SQS and CloudWatch) and JSON protocols", () => {
    const sqsQuery = describeRequest(
      req(
        "POST",
        "/123456789012/q1",
        { authorization: auth("AKIDGLUEJOB", "sqs"), "content-type": "application/x-www-form-urlencoded" },
        "Action=SendMessageBatch&Version=2012-11-05",
      ),
    );
    expect(sqsQuery.calls).toEqual([
      { action: "sqs:SendMessage", resources: ["arn:aws:sqs:us-east-1:123456789012:q1"] },
    ]);
    const metrics = describeRequest(
      req(
        "POST",
        "/",
        { authorization: auth("AKIDBATCHER", "monitoring"), "content-type": "application/x-www-form-urlencoded" },
        "Action=PutMetricData&Namespace=CsvIngest",
      ),
    );
    expect(metrics).toMatchObject({
      service: "cloudwatch",
      calls: [{ action: "cloudwatch:PutMetricData", resources: ["*"] }],
    });
    const batchWrite = describeRequest(
      req(
        "POST",
        "/",
        { "x-amz-target": "DynamoDB_20120810.BatchWriteItem" },
        JSON.stringify({ RequestItems: { T1: [], T2: [] } }),
      ),
    );
    expect(batchWrite.calls).toEqual([
      {
        action: "dynamodb:BatchWriteItem",
        resources: [
          "arn:aws:dynamodb:us-east-1:123456789012:table/T1",
          "arn:aws:dynamodb:us-east-1:123456789012:table/T2",
        ],
      },
    ]);
    const catalog = describeRequest(
      req("POST", "/", { "x-amz-target": "AWSGlue.GetTable" }, JSON.stringify({ DatabaseName: "d", Name: "t" })),
    );
    expect(catalog.calls[0]?.resources).toEqual([
      "arn:aws:glue:us-east-1:123456789012:catalog",
      "arn:aws:glue:us-east-1:123456789012:database/d",
    ]);
  });

  it("error codes from JSON, headers, XML and bare statuses", () => {
    expect(
      errorCodeOf(
        400,
        {},
        Buffer.from('{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}'),
      ),
    ).toBe("ConditionalCheckFailedException");
    expect(
      errorCodeOf(400, { "x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender" }, Buffer.from("{}")),
    ).toBe("AWS.SimpleQueueService.NonExistentQueue");
    expect(errorCodeOf(404, {}, Buffer.from("<Error><Code>NoSuchKey</Code></Error>"))).toBe("NoSuchKey");
    expect(errorCodeOf(404, {}, Buffer.alloc(0))).toBe("NotFound");
  });
});

describe("GSI key conditions", () => {
  const S = (s: string) => ({ S: s });
  it("parses equality, comparisons, BETWEEN and begins_with with #names", () => {
    const c = parseKeyCondition(
      "#p = :p AND gsi1sk BETWEEN :a AND :b",
      { "#p": "gsi1pk" },
      { ":p": S("RUNNING"), ":a": S("r1#"), ":b": S("r1$") },
    );
    expect(c).not.toBeNull();
    if (!c) return;
    expect(matches({ gsi1pk: S("RUNNING"), gsi1sk: S("r1#x") }, c)).toBe(true);
    expect(matches({ gsi1pk: S("RUNNING"), gsi1sk: S("r2#x") }, c)).toBe(false);
    expect(matches({ gsi1pk: S("PENDING"), gsi1sk: S("r1#x") }, c)).toBe(false);
    const lt = parseKeyCondition("gsi1pk = :r AND gsi1sk < :lo", {}, { ":r": S("R"), ":lo": S("m") });
    expect(lt && matches({ gsi1pk: S("R"), gsi1sk: S("a") }, lt)).toBe(true);
    expect(parseKeyCondition("size(x) > :n", {}, { ":n": { N: "1" } })).toBeNull();
  });
});

describe("setAssignments", () => {
  it("reads plain SET assignments of one placeholder, not function calls or other clauses", () => {
    expect(setAssignments("SET a = :a, #b = :b, c = if_not_exists(c, :z), d = list_append(d, :l) REMOVE e, f")).toEqual(
      {
        a: ":a",
        "#b": ":b",
      },
    );
    expect(setAssignments("REMOVE gsi1pk, gsi1sk")).toEqual({});
  });
});
