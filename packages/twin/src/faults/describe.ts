/**
 * What one HTTP request to AWS is, in IAM's words: the service prefix, the operation, and the IAM actions with their
 * resource ARNs that the call needs (one call may need several, e.g. CopyObject: s3:GetObject on the source and
 * s3:PutObject on the target). Covers the protocols the twin's clients speak: S3's REST, the AWS JSON protocols
 * (DynamoDB, SQS, EventBridge, Glue, CloudWatch) and the query protocol (boto3's SQS / CloudWatch, form-encoded).
 */
import { TWIN_ACCOUNT, TWIN_REGION } from "../constants.js";

export interface IamCall {
  readonly action: string;
  readonly resources: readonly string[];
}

export interface DescribedCall {
  /** IAM service prefix. */
  readonly service: string;
  /** The API operation (e.g. `PutObject`, `UploadPart`, `Query`). */
  readonly operation: string;
  readonly calls: readonly IamCall[];
  /** AWS JSON / query protocols: the parsed input (for the GSI-lag logic and error answers). */
  readonly input?: Record<string, unknown>;
  readonly protocol: "rest-xml" | "json" | "query" | "rpcv2";
}

export interface RawRequest {
  readonly method: string;
  /** Path and query as received, e.g. `/bucket/a%20b.csv?versionId=3`. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
  /** The signing service from the SigV4 credential scope, when signed. */
  readonly signingService?: string | undefined;
}

const arn = (service: string, resource: string, region = TWIN_REGION, account = TWIN_ACCOUNT) =>
  `arn:aws:${service}:${region}:${account}:${resource}`;

/** `X-Amz-Target` prefixes of the JSON protocols → IAM service prefix. */
const TARGETS: Record<string, string> = {
  DynamoDB_20120810: "dynamodb",
  AmazonSQS: "sqs",
  AWSEvents: "events",
  AWSGlue: "glue",
  GraniteServiceVersion20100801: "cloudwatch",
  Logs_20140328: "logs",
};
/** SigV4 signing names that differ from the IAM prefix. */
const SIGNING_TO_IAM: Record<string, string> = { monitoring: "cloudwatch" };

const header = (h: RawRequest["headers"], name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

export function describeRequest(req: RawRequest): DescribedCall {
  const target = header(req.headers, "x-amz-target");
  if (target) {
    const [prefix, op = ""] = target.split(".");
    const service =
      TARGETS[prefix ?? ""] ?? SIGNING_TO_IAM[req.signingService ?? ""] ?? req.signingService ?? "unknown";
    const input = parseJson(req.body);
    return { service, operation: op, calls: jsonCalls(service, op, input), input, protocol: "json" };
  }
  const path = req.url.split("?")[0] ?? "/";
  const rpc = /^\/service\/([^/]+)\/operation\/([^/?]+)/.exec(path);
  if (rpc?.[1] && rpc[2]) {
    const service = TARGETS[rpc[1]] ?? "unknown";
    return { service, operation: rpc[2], calls: jsonCalls(service, rpc[2], {}), protocol: "rpcv2" };
  }
  const contentType = header(req.headers, "content-type") ?? "";
  const signing = req.signingService ? (SIGNING_TO_IAM[req.signingService] ?? req.signingService) : undefined;
  if (req.method === "POST" && contentType.startsWith("application/x-www-form-urlencoded") && signing !== "s3") {
    const form = Object.fromEntries(new URLSearchParams(req.body.toString("utf8")));
    const op = form.Action ?? "";
    const service = signing ?? (form.QueueUrl || path.split("/").length === 3 ? "sqs" : "unknown");
    const input: Record<string, unknown> = { ...form };
    if (service === "sqs" && !input.QueueUrl && path !== "/") input.QueueUrl = path;
    return { service, operation: op, calls: jsonCalls(service, op, input), input, protocol: "query" };
  }
  return describeS3(req);
}

function parseJson(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  try {
    const v = JSON.parse(body.toString("utf8")) as unknown;
    return v && typeof v === "object" ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const uniq = (xs: readonly string[]) => [...new Set(xs)];

const tableArn = (t: string) => arn("dynamodb", `table/${t}`);
const queueArn = (url: string) => arn("sqs", url.replace(/\/+$/, "").split("/").at(-1) ?? url);

/** SQS batch operations are authorised as their single forms. */
const SQS_ACTION: Record<string, string> = {
  SendMessageBatch: "SendMessage",
  DeleteMessageBatch: "DeleteMessage",
  ChangeMessageVisibilityBatch: "ChangeMessageVisibility",
};

function jsonCalls(service: string, op: string, input: Record<string, unknown>): IamCall[] {
  switch (service) {
    case "dynamodb":
      return dynamoCalls(op, input);
    case "sqs": {
      const url = str(input.QueueUrl);
      if (op === "GetQueueUrl" || op === "CreateQueue") {
        const name = str(input.QueueName);
        return [{ action: `sqs:${op}`, resources: name ? [arn("sqs", name)] : ["*"] }];
      }
      if (op === "ListQueues") return [{ action: "sqs:ListQueues", resources: ["*"] }];
      return [{ action: `sqs:${SQS_ACTION[op] ?? op}`, resources: url ? [queueArn(url)] : ["*"] }];
    }
    case "events": {
      if (op === "PutEvents") {
        const entries = Array.isArray(input.Entries) ? (input.Entries as Record<string, unknown>[]) : [];
        const buses = uniq(entries.map((e) => busArn(str(e.EventBusName))));
        return [{ action: "events:PutEvents", resources: buses.length ? buses : [busArn(undefined)] }];
      }
      const rule = str(input.Rule) ?? str(input.Name);
      return [{ action: `events:${op}`, resources: rule ? [arn("events", `rule/${rule}`)] : ["*"] }];
    }
    case "glue":
      return [{ action: `glue:${op}`, resources: glueResources(input) }];
    case "cloudwatch":
      // PutMetricData and the alarm reads have no resource-level permissions: IAM wants "*".
      return [{ action: `cloudwatch:${op}`, resources: ["*"] }];
    default:
      return [{ action: `${service}:${op}`, resources: ["*"] }];
  }
}

function busArn(name: string | undefined): string {
  if (name?.startsWith("arn:")) return name;
  return arn("events", `event-bus/${name ?? "default"}`);
}

function glueResources(input: Record<string, unknown>): string[] {
  const job = str(input.JobName);
  if (job) return [arn("glue", `job/${job}`)];
  const db = str(input.DatabaseName);
  if (db) {
    const table = str(input.TableName) ?? (input.TableInput as { Name?: string } | undefined)?.Name;
    return [
      arn("glue", "catalog"),
      arn("glue", `database/${db}`),
      ...(table ? [arn("glue", `table/${db}/${table}`)] : []),
    ];
  }
  const name = str(input.Name);
  if (name && input.DatabaseInput === undefined) return [arn("glue", `job/${name}`)];
  return [arn("glue", "catalog")];
}

const DYNAMO_TXN: Record<string, string> = {
  Put: "PutItem",
  Update: "UpdateItem",
  Delete: "DeleteItem",
  ConditionCheck: "ConditionCheckItem",
  Get: "GetItem",
};

function dynamoCalls(op: string, input: Record<string, unknown>): IamCall[] {
  if (op === "TransactWriteItems" || op === "TransactGetItems") {
    const items = Array.isArray(input.TransactItems) ? (input.TransactItems as Record<string, unknown>[]) : [];
    const byAction = new Map<string, Set<string>>();
    for (const item of items) {
      for (const [kind, body] of Object.entries(item)) {
        const action = DYNAMO_TXN[kind];
        const t = str((body as { TableName?: unknown } | undefined)?.TableName);
        if (!action || !t) continue;
        const set = byAction.get(action) ?? new Set<string>();
        set.add(tableArn(t));
        byAction.set(action, set);
      }
    }
    return [...byAction].map(([a, set]) => ({ action: `dynamodb:${a}`, resources: [...set] }));
  }
  if (op === "BatchWriteItem" || op === "BatchGetItem") {
    const tables = Object.keys((input.RequestItems as Record<string, unknown> | undefined) ?? {});
    return [{ action: `dynamodb:${op}`, resources: tables.map(tableArn) }];
  }
  const t = str(input.TableName);
  if (!t) return [{ action: `dynamodb:${op}`, resources: ["*"] }];
  const index = str(input.IndexName);
  return [{ action: `dynamodb:${op}`, resources: [index ? `${tableArn(t)}/index/${index}` : tableArn(t)] }];
}

// ---------------------------------------------------------------------------------------------------------------
// S3 (REST, path-style as the twin's clients use it)

const s3Object = (bucket: string, key: string) => `arn:aws:s3:::${bucket}/${key}`;
const s3Bucket = (bucket: string) => `arn:aws:s3:::${bucket}`;

function decodePath(path: string): { bucket: string; key: string } {
  const trimmed = path.startsWith("/") ? path.slice(1) : path;
  const slash = trimmed.indexOf("/");
  const raw =
    slash < 0 ? { bucket: trimmed, key: "" } : { bucket: trimmed.slice(0, slash), key: trimmed.slice(slash + 1) };
  const dec = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  return { bucket: dec(raw.bucket), key: dec(raw.key) };
}

function s3(operation: string, calls: IamCall[]): DescribedCall {
  return { service: "s3", operation, calls, protocol: "rest-xml" };
}

function describeS3(req: RawRequest): DescribedCall {
  const [path = "/", query = ""] = req.url.split("?", 2) as [string, string?];
  const q = new URLSearchParams(query);
  const { bucket, key } = decodePath(path);
  const m = req.method.toUpperCase();
  if (!bucket) return s3("ListBuckets", [{ action: "s3:ListAllMyBuckets", resources: ["*"] }]);
  const B = [s3Bucket(bucket)];
  if (!key) {
    // bucket-level
    const sub = (name: string) => q.has(name);
    if (m === "GET" || m === "HEAD") {
      if (m === "HEAD") return s3("HeadBucket", [{ action: "s3:ListBucket", resources: B }]);
      if (sub("versions")) return s3("ListObjectVersions", [{ action: "s3:ListBucketVersions", resources: B }]);
      if (sub("uploads")) {
        return s3("ListMultipartUploads", [{ action: "s3:ListBucketMultipartUploads", resources: B }]);
      }
      if (sub("location")) return s3("GetBucketLocation", [{ action: "s3:GetBucketLocation", resources: B }]);
      if (sub("versioning")) return s3("GetBucketVersioning", [{ action: "s3:GetBucketVersioning", resources: B }]);
      if (sub("notification")) {
        return s3("GetBucketNotificationConfiguration", [{ action: "s3:GetBucketNotification", resources: B }]);
      }
      if (sub("policy")) return s3("GetBucketPolicy", [{ action: "s3:GetBucketPolicy", resources: B }]);
      return s3(q.get("list-type") === "2" ? "ListObjectsV2" : "ListObjects", [
        { action: "s3:ListBucket", resources: B },
      ]);
    }
    if (m === "PUT") {
      if (sub("versioning")) return s3("PutBucketVersioning", [{ action: "s3:PutBucketVersioning", resources: B }]);
      if (sub("notification")) {
        return s3("PutBucketNotificationConfiguration", [{ action: "s3:PutBucketNotification", resources: B }]);
      }
      if (sub("policy")) return s3("PutBucketPolicy", [{ action: "s3:PutBucketPolicy", resources: B }]);
      return s3("CreateBucket", [{ action: "s3:CreateBucket", resources: B }]);
    }
    if (m === "POST" && sub("delete")) return describeDeleteObjects(bucket, req.body);
    if (m === "DELETE") return s3("DeleteBucket", [{ action: "s3:DeleteBucket", resources: B }]);
    return s3(`${m} bucket`, [{ action: "s3:Unknown", resources: B }]);
  }
  const O = [s3Object(bucket, key)];
  const versioned = q.has("versionId");
  switch (m) {
    case "GET":
    case "HEAD": {
      const op = m === "HEAD" ? "HeadObject" : "GetObject";
      if (q.has("uploadId")) return s3("ListParts", [{ action: "s3:ListMultipartUploadParts", resources: O }]);
      if (q.has("tagging")) {
        return s3("GetObjectTagging", [
          { action: versioned ? "s3:GetObjectVersionTagging" : "s3:GetObjectTagging", resources: O },
        ]);
      }
      if (q.has("attributes")) {
        return s3("GetObjectAttributes", [
          { action: versioned ? "s3:GetObjectVersionAttributes" : "s3:GetObjectAttributes", resources: O },
        ]);
      }
      return s3(op, [{ action: versioned ? "s3:GetObjectVersion" : "s3:GetObject", resources: O }]);
    }
    case "PUT": {
      if (q.has("tagging")) {
        return s3("PutObjectTagging", [
          { action: versioned ? "s3:PutObjectVersionTagging" : "s3:PutObjectTagging", resources: O },
        ]);
      }
      const copy = header(req.headers, "x-amz-copy-source");
      const op = q.has("uploadId") ? (copy ? "UploadPartCopy" : "UploadPart") : copy ? "CopyObject" : "PutObject";
      const calls: IamCall[] = [{ action: "s3:PutObject", resources: O }];
      if (copy) {
        const [src = "", srcQuery = ""] = decodeURIComponent(copy).split("?", 2) as [string, string?];
        const source = decodePath(src.startsWith("/") ? src : `/${src}`);
        const srcVersioned = new URLSearchParams(srcQuery).has("versionId");
        calls.unshift({
          action: srcVersioned ? "s3:GetObjectVersion" : "s3:GetObject",
          resources: [s3Object(source.bucket, source.key)],
        });
      }
      if (header(req.headers, "x-amz-tagging")) calls.push({ action: "s3:PutObjectTagging", resources: O });
      return s3(op, calls);
    }
    case "POST":
      if (q.has("uploads")) return s3("CreateMultipartUpload", [{ action: "s3:PutObject", resources: O }]);
      if (q.has("uploadId")) return s3("CompleteMultipartUpload", [{ action: "s3:PutObject", resources: O }]);
      if (q.has("restore")) return s3("RestoreObject", [{ action: "s3:RestoreObject", resources: O }]);
      return s3("PostObject", [{ action: "s3:PutObject", resources: O }]);
    case "DELETE":
      if (q.has("uploadId")) return s3("AbortMultipartUpload", [{ action: "s3:AbortMultipartUpload", resources: O }]);
      if (q.has("tagging")) return s3("DeleteObjectTagging", [{ action: "s3:DeleteObjectTagging", resources: O }]);
      return s3("DeleteObject", [{ action: versioned ? "s3:DeleteObjectVersion" : "s3:DeleteObject", resources: O }]);
    default:
      return s3(`${m} object`, [{ action: "s3:Unknown", resources: O }]);
  }
}

const xmlUnescape = (s: string) =>
  s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(Number.parseInt(h, 16)))
    .replace(/&amp;/g, "&");

/** DeleteObjects (POST ?delete): s3:DeleteObject per key, s3:DeleteObjectVersion per key given with a version. */
function describeDeleteObjects(bucket: string, body: Buffer): DescribedCall {
  const plain: string[] = [];
  const versions: string[] = [];
  for (const m of body.toString("utf8").matchAll(/<Object>([\s\S]*?)<\/Object>/g)) {
    const inner = m[1] ?? "";
    const key = /<Key>([\s\S]*?)<\/Key>/.exec(inner)?.[1];
    if (key === undefined) continue;
    (/<VersionId>/.test(inner) ? versions : plain).push(s3Object(bucket, xmlUnescape(key)));
  }
  const calls: IamCall[] = [];
  if (plain.length || !versions.length) calls.push({ action: "s3:DeleteObject", resources: uniq(plain) });
  if (versions.length) calls.push({ action: "s3:DeleteObjectVersion", resources: uniq(versions) });
  return s3("DeleteObjects", calls);
}

/** The AWS error code in an error answer: JSON `__type`, `x-amzn-errortype`, XML `<Code>`, else from the status. */
export function errorCodeOf(status: number, headers: Record<string, unknown>, body: Buffer): string {
  const h = headers["x-amzn-errortype"];
  const text = body.toString("utf8", 0, Math.min(body.length, 4096));
  const json = /"__type"\s*:\s*"([^"]+)"/.exec(text)?.[1];
  const xml = /<Code>([^<]+)<\/Code>/.exec(text)?.[1];
  const query = typeof headers["x-amzn-query-error"] === "string" ? String(headers["x-amzn-query-error"]) : undefined;
  const raw = query?.split(";")[0] ?? json ?? (typeof h === "string" ? h : undefined) ?? xml;
  if (raw) return (raw.split("#").at(-1) ?? raw).split(":")[0] ?? raw;
  return status === 404
    ? "NotFound"
    : status === 403
      ? "Forbidden"
      : status === 412
        ? "PreconditionFailed"
        : `HTTP${status}`;
}
