/**
 * In-memory fakes of exactly the DynamoDB, S3 and Glue APIs the adapters call, answering the SDK's own HTTP requests
 * (a custom `requestHandler`: the real clients serialize, sign, retry with their real retry strategy, deserialize), so
 * DynamoLedger, S3Objects and GlueJobs run unmodified against AWS's documented semantics rather than an emulator's
 * kind ones:
 *
 *  - an answer lost after the request applied (a reset connection or a 500 after the write), which the SDK retries;
 *  - throttling (not applied; the SDK retries);
 *  - a global secondary index that lags the table by 0–2 s (eventually consistent; ConsistentRead refused on it);
 *  - S3: ETags are the MD5 of the bytes (multipart: MD5 of part MD5s + "-N"), version ids random, Last-Modified to
 *    the second, and a multipart upload's Last-Modified is when it was initiated (earlier than a later simple PUT);
 *  - Glue: MaxConcurrentRuns, an outage window (every call 500, nothing applied), no idempotency token on StartJobRun.
 *
 * Time comes from the caller (`now`), randomness from `random`: a simulation stays deterministic. Usage is counted on
 * the wire: DynamoDB request units from item sizes (writes per KB, index writes too; reads per 4 KB, half for
 * eventually consistent), S3 requests by class.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { GlueClient } from "@aws-sdk/client-glue";
import { S3Client } from "@aws-sdk/client-s3";
import { type Ctx, compare, equal, type Item, parseCondition, parseUpdate, type Value } from "./ddb-expressions.js";

export interface FaultRates {
  /** Share of requests that apply and then lose their answer (the SDK sees a reset connection or a 500). */
  lostAnswer: number;
  /** Share of requests throttled (not applied). */
  throttle: number;
  /** Index propagation delay, uniform in [min, max] ms. */
  gsiLagMs: readonly [number, number];
  /** A different lost-answer share for some operations (e.g. StartJobRun, called rarely but decisive). */
  lostAnswerByOperation?: Readonly<Record<string, number>>;
}

export const NO_FAULTS: FaultRates = { lostAnswer: 0, throttle: 0, gsiLagMs: [0, 0] };

export interface TableSchema {
  readonly hashKey: string;
  readonly rangeKey: string;
  readonly indexes: readonly { readonly name: string; readonly hashKey: string; readonly rangeKey: string }[];
}

export interface GlueJobSpec {
  readonly name: string;
  readonly maxConcurrentRuns: number;
  readonly workerType: string;
  readonly numberOfWorkers: number;
  readonly timeoutMinutes: number;
}

export interface FakeGlueRun {
  readonly id: string;
  readonly jobName: string;
  state: "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMEOUT" | "STOPPED" | "ERROR";
  readonly arguments: Record<string, string>;
  readonly startedOnMs: number;
  completedOnMs: number | null;
  errorMessage: string | null;
  readonly workerType: string;
  readonly numberOfWorkers: number;
  readonly timeoutMinutes: number;
  readonly executionClass: string;
}

export interface S3Version {
  readonly versionId: string;
  readonly etag: string;
  /** Last-Modified (ms, whole seconds). */
  readonly lastModifiedMs: number;
  readonly body: Buffer;
  /** S3 event sequencer: grows with each write of the key. */
  readonly sequencer: string;
}

type Service = "dynamodb" | "s3" | "glue";

/** A fault the `onRequest` hook asks for on one request (undefined: none). */
export type RequestFault = "lose-answer" | "refuse" | undefined;

interface WireResponse {
  statusCode: number;
  headers: Record<string, string>;
  body?: unknown;
}

interface WireRequest {
  method: string;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

export class FakeAws {
  /** Wire usage: what AWS would bill. */
  readonly usage = { dynamodbWriteUnits: 0, dynamodbReadUnits: 0, s3Get: 0, s3PutList: 0, glueCalls: 0 };
  /** Faults injected, by service. */
  readonly injected = {
    lostAnswers: { dynamodb: 0, s3: 0, glue: 0 },
    throttles: { dynamodb: 0, s3: 0, glue: 0 },
    outageRefusals: 0,
  };
  faults: Record<Service, FaultRates>;
  /**
   * Glue answers 500 to every call (nothing applied) while now is within [from, to). (The simulation models its
   * outage as runs failing instead, and leaves this null.)
   */
  glueOutage: { fromMs: number; toMs: number } | null = null;
  /**
   * Unit-test hook, called before each request is answered with its operation (e.g. "PutItem", S3's HTTP method)
   * and its JSON input (S3: {}). It may await (another writer racing this request, applied first) and may ask for one
   * fault on this request: "lose-answer" (applied, then a 500 the SDK retries) or "refuse" (an AccessDenied 400, not
   * applied, not retried). Null (the default): no hook, and no draw of `random`, so a simulation is unchanged.
   */
  onRequest:
    | ((service: Service, op: string, input: Record<string, unknown>) => Promise<RequestFault> | RequestFault)
    | null = null;

  private readonly table = new Map<string, Map<string, Item>>();
  private readonly index = new Map<string, Map<string, Item>>();
  private pendingIndex: { due: number; id: string; item: Item | undefined }[] = [];
  private readonly lastDue = new Map<string, number>();
  private readonly buckets = new Map<string, Map<string, S3Version[]>>();
  private sequencer = 0;
  readonly glueRuns = new Map<string, FakeGlueRun>();
  private glueSeq = 0;

  constructor(
    private readonly opts: {
      readonly now: () => number;
      readonly random: () => number;
      readonly tableName: string;
      readonly schema: TableSchema;
      readonly job: GlueJobSpec;
      readonly region?: string;
    },
  ) {
    this.faults = { dynamodb: NO_FAULTS, s3: NO_FAULTS, glue: NO_FAULTS };
  }

  /**
   * SDK clients whose requests this fake answers, with the SDK's default (standard) retry strategy: 3 attempts, its
   * own classification of retryable errors and its retry quota. `instantRetries`: the same strategy with the backoff
   * pause set to 0 real ms (for a simulation whose clock does not follow real time).
   */
  clients(extra: { maxAttempts?: number; instantRetries?: boolean } = {}) {
    const base = {
      region: this.opts.region ?? "us-east-1",
      credentials: { accessKeyId: "fake", secretAccessKey: "fake" },
      ...(extra.maxAttempts ? { maxAttempts: extra.maxAttempts } : {}),
    };
    const clients = {
      dynamodb: new DynamoDBClient({ ...base, requestHandler: this.handler("dynamodb") }),
      s3: new S3Client({
        ...base,
        forcePathStyle: true,
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
        requestHandler: this.handler("s3"),
      }),
      glue: new GlueClient({ ...base, requestHandler: this.handler("glue") }),
    };
    if (extra.instantRetries) for (const c of Object.values(clients)) withoutBackoff(c);
    return clients;
  }

  /** A smithy HttpHandler answering from this fake. */
  handler(service: Service) {
    return {
      metadata: { handlerProtocol: "fake" },
      handle: async (request: WireRequest) => ({ response: await this.answer(service, request) }),
      updateHttpClientConfig: () => {},
      httpHandlerConfigs: () => ({}),
      destroy: () => {},
    };
  }

  private async answer(service: Service, request: WireRequest): Promise<WireResponse> {
    await tick();
    const op = (request.headers["x-amz-target"] ?? request.method).split(".").at(-1) ?? "";
    const body = await bodyText(request.body);
    const forced = this.onRequest
      ? await this.onRequest(service, op, service === "s3" ? {} : JSON.parse(body || "{}"))
      : undefined;
    if (forced === "refuse") {
      return this.errorResponse(service, new ApiError(400, "AccessDeniedException", "fake: request refused"));
    }
    const rates = this.faults[service];
    if (rates.throttle > 0 && this.opts.random() < rates.throttle) {
      this.injected.throttles[service]++;
      return this.errorResponse(
        service,
        service === "dynamodb"
          ? new ApiError(400, "ThrottlingException", "Rate of requests exceeds the allowed throughput.")
          : service === "s3"
            ? new ApiError(503, "SlowDown", "Please reduce your request rate.")
            : new ApiError(400, "ThrottlingException", "Rate exceeded"),
      );
    }
    let response: WireResponse;
    try {
      response =
        service === "dynamodb"
          ? this.dynamodb(request.headers["x-amz-target"] ?? "", JSON.parse(body || "{}"))
          : service === "glue"
            ? this.glue(request.headers["x-amz-target"] ?? "", JSON.parse(body || "{}"))
            : this.s3(request, body);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      response = this.errorResponse(service, e);
    }
    await tick();
    if (forced === "lose-answer") {
      this.injected.lostAnswers[service]++;
      return this.errorResponse(service, new ApiError(500, internalError(service), "fake: answer lost after apply"));
    }
    const lostShare = rates.lostAnswerByOperation?.[op] ?? rates.lostAnswer;
    if (lostShare > 0 && this.opts.random() < lostShare) {
      this.injected.lostAnswers[service]++;
      // The request applied; the caller never hears so. Half as a dropped connection, half as a 500.
      if (this.opts.random() < 0.5) {
        throw Object.assign(new Error("socket hang up (fake: answer lost after the request applied)"), {
          code: "ECONNRESET",
        });
      }
      return this.errorResponse(service, new ApiError(500, internalError(service), "fake: answer lost after apply"));
    }
    return response;
  }

  private errorResponse(service: Service, e: ApiError): WireResponse {
    if (service === "s3") {
      const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${e.type}</Code><Message>${e.message}</Message></Error>`;
      return { statusCode: e.status, headers: { "content-type": "application/xml" }, body: stream(xml) };
    }
    const type = service === "dynamodb" ? `com.amazonaws.dynamodb.v20120810#${e.type}` : e.type;
    return json(e.status, { __type: type, message: e.message, ...e.extra }, service);
  }

  // ── DynamoDB ──────────────────────────────────────────────────────────────────────────────────────────────────

  /** One item of the table, as plain values. */
  item(pk: string, sk: string): Item | undefined {
    return this.table.get(pk)?.get(sk);
  }

  /** Every item of the table, as plain values (the simulation's checker reads the ledger from here). */
  *items(): Generator<Item> {
    for (const part of this.table.values()) yield* part.values();
  }

  private dynamodb(target: string, input: Record<string, unknown>): WireResponse {
    const op = target.split(".")[1] ?? "";
    if (input.TableName !== this.opts.tableName) {
      throw new ApiError(400, "ResourceNotFoundException", `Requested resource not found: ${String(input.TableName)}`);
    }
    const ctx: Ctx = {
      names: (input.ExpressionAttributeNames as Record<string, string>) ?? {},
      values: unmarshallItem((input.ExpressionAttributeValues as Record<string, unknown>) ?? {}),
    };
    switch (op) {
      case "GetItem":
        return json(200, this.getItem(input), "dynamodb");
      case "PutItem":
        return json(200, this.putItem(input, ctx), "dynamodb");
      case "UpdateItem":
        return json(200, this.updateItem(input, ctx), "dynamodb");
      case "DeleteItem":
        return json(200, this.deleteItem(input, ctx), "dynamodb");
      case "Query":
        return json(200, this.query(input, ctx), "dynamodb");
      case "Scan":
        return json(200, this.scan(input, ctx), "dynamodb");
      default:
        throw new ApiError(400, "UnknownOperationException", `the fake DynamoDB does not model ${op}`);
    }
  }

  private keyOf(item: Item): { pk: string; sk: string; id: string } {
    const { hashKey, rangeKey } = this.opts.schema;
    const pk = item[hashKey];
    const sk = item[rangeKey];
    if (typeof pk !== "string" || typeof sk !== "string") {
      throw new ApiError(400, "ValidationException", "One or more parameter values were invalid: missing key");
    }
    if (Buffer.byteLength(pk) > 2048 || Buffer.byteLength(sk) > 1024) {
      throw new ApiError(400, "ValidationException", "One or more parameter values were invalid: key too long");
    }
    return { pk, sk, id: `${pk}\u0000${sk}` };
  }

  private current(key: Item): Item | undefined {
    const { pk, sk } = this.keyOf(key);
    return this.table.get(pk)?.get(sk);
  }

  private write(key: Item, next: Item | undefined, before: Item | undefined): void {
    const { pk, sk, id } = this.keyOf(key);
    for (const ix of this.opts.schema.indexes) {
      const r = next?.[ix.rangeKey];
      if (typeof r === "string" && Buffer.byteLength(r) > 1024) {
        throw new ApiError(
          400,
          "ValidationException",
          `One or more parameter values were invalid: index key ${ix.rangeKey} over 1024 bytes`,
        );
      }
    }
    let part = this.table.get(pk);
    if (!part) {
      part = new Map();
      this.table.set(pk, part);
    }
    if (next) part.set(sk, next);
    else part.delete(sk);
    const units = Math.max(1, Math.ceil(Math.max(size(next), size(before)) / 1024));
    this.usage.dynamodbWriteUnits += units;
    // Every index the item enters, leaves or changes in is written too (a key change: delete + put).
    for (const ix of this.opts.schema.indexes) {
      const was = before?.[ix.hashKey] !== undefined && before?.[ix.rangeKey] !== undefined;
      const is = next?.[ix.hashKey] !== undefined && next?.[ix.rangeKey] !== undefined;
      if (!was && !is) continue;
      const keyChanged =
        was &&
        is &&
        (!equal(before?.[ix.hashKey], next?.[ix.hashKey]) || !equal(before?.[ix.rangeKey], next?.[ix.rangeKey]));
      this.usage.dynamodbWriteUnits += Math.max(1, Math.ceil(size(is ? next : before) / 1024)) * (keyChanged ? 2 : 1);
      if (this.index.get(ix.name) === undefined) this.index.set(ix.name, new Map());
    }
    const [lo, hi] = this.faults.dynamodb.gsiLagMs;
    const due = Math.max(
      this.opts.now() + lo + Math.floor(this.opts.random() * (hi - lo + 1)),
      this.lastDue.get(id) ?? 0,
    );
    this.lastDue.set(id, due);
    this.pendingIndex.push({ due, id, item: next ? structuredClone(next) : undefined });
  }

  /** Index entries whose propagation is due by now. */
  private propagate(): void {
    const now = this.opts.now();
    if (this.pendingIndex.length === 0) return;
    const later: typeof this.pendingIndex = [];
    for (const p of this.pendingIndex) {
      if (p.due > now) {
        later.push(p);
        continue;
      }
      for (const ix of this.opts.schema.indexes) {
        const entries = this.index.get(ix.name) ?? new Map<string, Item>();
        this.index.set(ix.name, entries);
        if (p.item && p.item[ix.hashKey] !== undefined && p.item[ix.rangeKey] !== undefined) entries.set(p.id, p.item);
        else entries.delete(p.id);
      }
    }
    this.pendingIndex = later;
  }

  private getItem(input: Record<string, unknown>) {
    const key = unmarshallItem(input.Key as Record<string, unknown>);
    const item = this.current(key);
    this.usage.dynamodbReadUnits += Math.max(1, Math.ceil(size(item) / 4096)) * (input.ConsistentRead ? 1 : 0.5);
    return item ? { Item: marshallItem(item) } : {};
  }

  private checkCondition(input: Record<string, unknown>, ctx: Ctx, before: Item | undefined): void {
    const src = input.ConditionExpression as string | undefined;
    if (!src) return;
    if (parseCondition(src, ctx)(before)) return;
    this.usage.dynamodbWriteUnits += 1; // a failed condition still consumes a write
    const extra =
      input.ReturnValuesOnConditionCheckFailure === "ALL_OLD" && before ? { Item: marshallItem(before) } : {};
    throw new ApiError(400, "ConditionalCheckFailedException", "The conditional request failed", extra);
  }

  private putItem(input: Record<string, unknown>, ctx: Ctx) {
    const item = unmarshallItem(input.Item as Record<string, unknown>);
    const before = this.current(item);
    this.checkCondition(input, ctx, before);
    this.write(item, item, before);
    return input.ReturnValues === "ALL_OLD" && before ? { Attributes: marshallItem(before) } : {};
  }

  private updateItem(input: Record<string, unknown>, ctx: Ctx) {
    const key = unmarshallItem(input.Key as Record<string, unknown>);
    const before = this.current(key);
    this.checkCondition(input, ctx, before);
    const src = input.UpdateExpression as string | undefined;
    const next = src ? parseUpdate(src, ctx)({ ...(before ?? {}), ...key }) : { ...(before ?? {}), ...key };
    this.write(key, next, before);
    const rv = input.ReturnValues as string | undefined;
    if (rv === "ALL_OLD") return before ? { Attributes: marshallItem(before) } : {};
    if (rv === "ALL_NEW") return { Attributes: marshallItem(next) };
    if (rv && rv !== "NONE")
      throw new ApiError(400, "ValidationException", `the fake does not model ReturnValues ${rv}`);
    return {};
  }

  private deleteItem(input: Record<string, unknown>, ctx: Ctx) {
    const key = unmarshallItem(input.Key as Record<string, unknown>);
    const before = this.current(key);
    this.checkCondition(input, ctx, before);
    if (before) this.write(key, undefined, before);
    return input.ReturnValues === "ALL_OLD" && before ? { Attributes: marshallItem(before) } : {};
  }

  private query(input: Record<string, unknown>, ctx: Ctx) {
    const indexName = input.IndexName as string | undefined;
    const keyCond = input.KeyConditionExpression as string;
    let hashKey = this.opts.schema.hashKey;
    let rangeKey = this.opts.schema.rangeKey;
    let candidates: Item[];
    const match = parseCondition(keyCond, ctx);
    if (indexName) {
      const ix = this.opts.schema.indexes.find((i) => i.name === indexName);
      if (!ix) throw new ApiError(400, "ValidationException", `no index ${indexName}`);
      if (input.ConsistentRead) {
        throw new ApiError(
          400,
          "ValidationException",
          "Consistent reads are not supported on global secondary indexes",
        );
      }
      this.propagate();
      hashKey = ix.hashKey;
      rangeKey = ix.rangeKey;
      const hashValue = hashValueOf(keyCond, ctx, hashKey);
      candidates = [...(this.index.get(ix.name)?.values() ?? [])].filter((it) => equal(it[hashKey], hashValue));
    } else {
      const hashValue = hashValueOf(keyCond, ctx, hashKey);
      candidates = typeof hashValue === "string" ? [...(this.table.get(hashValue)?.values() ?? [])] : [];
    }
    const { hashKey: th, rangeKey: tr } = this.opts.schema;
    const order = (a: Item, b: Item) =>
      compare(a[rangeKey], b[rangeKey]) || compare(a[th], b[th]) || compare(a[tr], b[tr]);
    const items = candidates.filter((it) => match(it)).sort(order);
    if (input.ScanIndexForward === false) items.reverse();
    return this.page(
      items,
      input,
      ctx,
      [th, tr, ...(indexName ? [hashKey, rangeKey] : [])],
      input.ScanIndexForward === false ? -1 : 1,
      order,
    );
  }

  private scan(input: Record<string, unknown>, ctx: Ctx) {
    const { hashKey, rangeKey } = this.opts.schema;
    const order = (a: Item, b: Item) => compare(a[hashKey], b[hashKey]) || compare(a[rangeKey], b[rangeKey]);
    const items = [...this.items()].sort(order);
    return this.page(items, input, ctx, [hashKey, rangeKey], 1, order);
  }

  /** Limit (items evaluated, before the filter), ExclusiveStartKey, FilterExpression, LastEvaluatedKey, read units. */
  private page(
    sorted: Item[],
    input: Record<string, unknown>,
    ctx: Ctx,
    keyAttrs: string[],
    direction: 1 | -1,
    order: (a: Item, b: Item) => number,
  ) {
    let items = sorted;
    if (input.ExclusiveStartKey) {
      const start = unmarshallItem(input.ExclusiveStartKey as Record<string, unknown>);
      items = items.filter((it) => direction * order(it, start) > 0);
    }
    const limit = typeof input.Limit === "number" ? input.Limit : Number.POSITIVE_INFINITY;
    const evaluated = items.slice(0, limit);
    const more = items.length > evaluated.length;
    const filter = input.FilterExpression ? parseCondition(input.FilterExpression as string, ctx) : () => true;
    const bytes = evaluated.reduce((n, it) => n + size(it), 0);
    this.usage.dynamodbReadUnits += Math.max(1, Math.ceil(bytes / 4096)) * (input.ConsistentRead ? 1 : 0.5);
    const out = evaluated.filter((it) => filter(it));
    const last = evaluated.at(-1);
    return {
      Items: out.map(marshallItem),
      Count: out.length,
      ScannedCount: evaluated.length,
      ...(more && last
        ? { LastEvaluatedKey: marshallItem(Object.fromEntries(keyAttrs.map((k) => [k, last[k] as Value]))) }
        : {}),
    };
  }

  // ── S3 ────────────────────────────────────────────────────────────────────────────────────────────────────────

  /** A user's upload (not billed to the pipeline): a new current version of `key`. */
  putUpload(
    bucket: string,
    key: string,
    body: string,
    opts: { multipartPartCount?: number; initiatedMs?: number } = {},
  ) {
    return this.putObject(bucket, key, Buffer.from(body), opts);
  }

  currentVersion(bucket: string, key: string): S3Version | undefined {
    return this.buckets.get(bucket)?.get(key)?.at(-1);
  }

  deleteObject(bucket: string, key: string): void {
    this.buckets.get(bucket)?.delete(key);
  }

  private putObject(
    bucket: string,
    key: string,
    body: Buffer,
    opts: { multipartPartCount?: number; initiatedMs?: number } = {},
  ): S3Version {
    let objects = this.buckets.get(bucket);
    if (!objects) {
      objects = new Map();
      this.buckets.set(bucket, objects);
    }
    const md5 = createHash("md5").update(body).digest("hex");
    const parts = opts.multipartPartCount ?? 0;
    const etag = parts > 0 ? `"${createHash("md5").update(md5, "hex").digest("hex")}-${parts}"` : `"${md5}"`;
    // A multipart upload's Last-Modified is when it was initiated, not when it completed.
    const at = parts > 0 && opts.initiatedMs !== undefined ? opts.initiatedMs : this.opts.now();
    const version: S3Version = {
      versionId: randomId(this.opts.random, 32),
      etag,
      lastModifiedMs: Math.floor(at / 1000) * 1000,
      body,
      sequencer: (++this.sequencer).toString(16).toUpperCase().padStart(18, "0"),
    };
    const versions = objects.get(key) ?? [];
    versions.push(version);
    // Only the current version matters to the pipeline; older bytes are dropped to bound memory.
    objects.set(key, versions.slice(-1));
    return version;
  }

  private s3(request: WireRequest, body: string): WireResponse {
    const parts = request.path.replace(/^\//, "").split("/");
    const bucket = decodeURIComponent(parts[0] ?? "");
    const key = parts.slice(1).map(decodeURIComponent).join("/");
    const method = request.method.toUpperCase();
    if (method === "PUT") {
      this.usage.s3PutList++;
      const v = this.putObject(bucket, key, Buffer.from(body));
      return { statusCode: 200, headers: { etag: v.etag, "x-amz-version-id": v.versionId }, body: stream("") };
    }
    if (method === "GET" && key === "" && request.query?.["list-type"] === "2") {
      this.usage.s3PutList++;
      return this.listObjects(bucket, request.query);
    }
    this.usage.s3Get++;
    const v = this.currentVersion(bucket, key);
    if (!v) {
      if (method === "HEAD") return { statusCode: 404, headers: {}, body: stream("") };
      throw new ApiError(404, "NoSuchKey", "The specified key does not exist.");
    }
    const headers = {
      etag: v.etag,
      "last-modified": new Date(v.lastModifiedMs).toUTCString(),
      "content-length": String(v.body.length),
      "x-amz-version-id": v.versionId,
      "content-type": "application/octet-stream",
    };
    if (method === "HEAD") return { statusCode: 200, headers, body: stream("") };
    if (method === "GET") return { statusCode: 200, headers, body: Readable.from([v.body]) };
    throw new ApiError(405, "MethodNotAllowed", `the fake S3 does not model ${method}`);
  }

  /** ListObjectsV2: keys in UTF-8 byte order after StartAfter, under Prefix, at most MaxKeys (1,000). */
  private listObjects(bucket: string, query: Record<string, string | string[] | null>): WireResponse {
    const one = (k: string) => {
      const v = query[k];
      return Array.isArray(v) ? v[0] : (v ?? undefined);
    };
    const prefix = one("prefix") ?? "";
    const after = one("start-after");
    const max = Math.min(1000, Number(one("max-keys") ?? 1000));
    const keys = [...(this.buckets.get(bucket)?.keys() ?? [])]
      .filter(
        (k) => k.startsWith(prefix) && (after === undefined || Buffer.compare(Buffer.from(k), Buffer.from(after)) > 0),
      )
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const page = keys.slice(0, max);
    const contents = page
      .map((k) => {
        const v = this.currentVersion(bucket, k) as S3Version;
        return (
          `<Contents><Key>${xml(k)}</Key><LastModified>${new Date(v.lastModifiedMs).toISOString()}</LastModified>` +
          `<ETag>${xml(v.etag)}</ETag><Size>${v.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`
        );
      })
      .join("");
    const body =
      `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
      `<Name>${xml(bucket)}</Name><Prefix>${xml(prefix)}</Prefix><KeyCount>${page.length}</KeyCount>` +
      `<MaxKeys>${max}</MaxKeys><IsTruncated>${keys.length > page.length}</IsTruncated>${contents}</ListBucketResult>`;
    return { statusCode: 200, headers: { "content-type": "application/xml" }, body: stream(body) };
  }

  // ── Glue ──────────────────────────────────────────────────────────────────────────────────────────────────────

  /** Ends a run as Glue would (the caller publishes, or loses, its state-change event). */
  finishRun(id: string, state: FakeGlueRun["state"], errorMessage: string | null = null): void {
    const run = this.glueRuns.get(id);
    if (!run) throw new Error(`fake Glue: no run ${id}`);
    run.state = state;
    run.errorMessage = errorMessage;
    run.completedOnMs = this.opts.now();
  }

  glueDown(): boolean {
    const now = this.opts.now();
    return this.glueOutage !== null && now >= this.glueOutage.fromMs && now < this.glueOutage.toMs;
  }

  private glue(target: string, input: Record<string, unknown>): WireResponse {
    this.usage.glueCalls++;
    const op = target.split(".")[1] ?? "";
    if (this.glueDown()) {
      this.injected.outageRefusals++;
      throw new ApiError(500, "InternalServiceException", "fake: Glue is having an outage");
    }
    const job = this.opts.job;
    if (input.JobName !== job.name)
      throw new ApiError(400, "EntityNotFoundException", `Job ${String(input.JobName)} not found`);
    switch (op) {
      case "StartJobRun": {
        const active = [...this.glueRuns.values()].filter((r) => r.state === "RUNNING").length;
        if (active >= job.maxConcurrentRuns) {
          throw new ApiError(400, "ConcurrentRunsExceededException", `Concurrent runs exceeded for ${job.name}`);
        }
        const id = `jr_${(++this.glueSeq).toString().padStart(6, "0")}_${randomId(this.opts.random, 16)}`;
        this.glueRuns.set(id, {
          id,
          jobName: job.name,
          state: "RUNNING",
          arguments: { ...((input.Arguments as Record<string, string>) ?? {}) },
          startedOnMs: this.opts.now(),
          completedOnMs: null,
          errorMessage: null,
          workerType: (input.WorkerType as string) ?? job.workerType,
          numberOfWorkers: (input.NumberOfWorkers as number) ?? job.numberOfWorkers,
          timeoutMinutes: (input.Timeout as number) ?? job.timeoutMinutes,
          executionClass: (input.ExecutionClass as string) ?? "STANDARD",
        });
        return json(200, { JobRunId: id }, "glue");
      }
      case "GetJobRun": {
        const run = this.glueRuns.get(input.RunId as string);
        if (!run) throw new ApiError(400, "EntityNotFoundException", `Job run ${String(input.RunId)} not found`);
        return json(200, { JobRun: view(run) }, "glue");
      }
      case "GetJobRuns": {
        const all = [...this.glueRuns.values()].sort((a, b) => b.startedOnMs - a.startedOnMs || (a.id < b.id ? 1 : -1));
        const start = typeof input.NextToken === "string" ? Number(input.NextToken) : 0;
        const max = typeof input.MaxResults === "number" ? input.MaxResults : 100;
        const page = all.slice(start, start + max);
        return json(
          200,
          { JobRuns: page.map(view), ...(start + max < all.length ? { NextToken: String(start + max) } : {}) },
          "glue",
        );
      }
      default:
        throw new ApiError(400, "UnknownOperationException", `the fake Glue does not model ${op}`);
    }
  }
}

function view(r: FakeGlueRun) {
  return {
    Id: r.id,
    JobName: r.jobName,
    JobRunState: r.state,
    Arguments: r.arguments,
    StartedOn: r.startedOnMs / 1000,
    ...(r.completedOnMs !== null ? { CompletedOn: r.completedOnMs / 1000 } : {}),
    ...(r.errorMessage ? { ErrorMessage: r.errorMessage } : {}),
    WorkerType: r.workerType,
    NumberOfWorkers: r.numberOfWorkers,
    Timeout: r.timeoutMinutes,
    ExecutionClass: r.executionClass,
  };
}

function internalError(service: Service): string {
  return service === "dynamodb"
    ? "InternalServerError"
    : service === "s3"
      ? "InternalError"
      : "InternalServiceException";
}

function json(status: number, doc: unknown, service: Service): WireResponse {
  const contentType = service === "dynamodb" ? "application/x-amz-json-1.0" : "application/x-amz-json-1.1";
  return { statusCode: status, headers: { "content-type": contentType }, body: stream(JSON.stringify(doc)) };
}

function xml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

function stream(text: string): Readable {
  return Readable.from([Buffer.from(text)]);
}

async function bodyText(body: unknown): Promise<string> {
  if (body === undefined || body === null) return "";
  if (typeof body === "string") return body;
  if (body instanceof Uint8Array) return Buffer.from(body).toString("utf8");
  if (body instanceof Readable || (typeof body === "object" && Symbol.asyncIterator in (body as object))) {
    const chunks: Buffer[] = [];
    for await (const c of body as AsyncIterable<Buffer | string>) chunks.push(Buffer.from(c));
    return Buffer.concat(chunks).toString("utf8");
  }
  throw new Error(`fake AWS: cannot read a request body of type ${typeof body}`);
}

function randomId(random: () => number, length: number): string {
  const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._";
  let s = "";
  for (let i = 0; i < length; i++) s += alphabet[Math.floor(random() * alphabet.length)];
  return s;
}

/** The hash key's value in a key condition (`<hash> = :v` where <hash> is a name or #alias). */
function hashValueOf(src: string, ctx: Ctx, hashKey: string): Value | undefined {
  for (const m of src.matchAll(/([#A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)/g)) {
    const name = m[1]?.startsWith("#") ? ctx.names[m[1]] : m[1];
    if (name === hashKey) return ctx.values[m[2] as string];
  }
  throw new Error(`fake DynamoDB: key condition "${src}" has no equality on ${hashKey}`);
}

function size(item: Item | undefined): number {
  return item ? Buffer.byteLength(JSON.stringify(item)) : 0;
}

// ── AttributeValue JSON ───────────────────────────────────────────────────────────────────────────────────────────

export function unmarshall(av: unknown): Value {
  const a = av as Record<string, unknown>;
  if ("S" in a) return a.S as string;
  if ("N" in a) return Number(a.N);
  if ("BOOL" in a) return a.BOOL as boolean;
  if ("NULL" in a) return null;
  if ("M" in a) return unmarshallItem(a.M as Record<string, unknown>);
  if ("L" in a) return (a.L as unknown[]).map(unmarshall);
  if ("SS" in a) return [...(a.SS as string[])];
  if ("NS" in a) return (a.NS as string[]).map(Number);
  throw new Error(`fake DynamoDB: attribute value ${JSON.stringify(av)} is not modelled`);
}

export function unmarshallItem(m: Record<string, unknown>): Item {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, unmarshall(v)]));
}

export function marshall(v: Value): unknown {
  if (v === null) return { NULL: true };
  if (typeof v === "string") return { S: v };
  if (typeof v === "number") return { N: String(v) };
  if (typeof v === "boolean") return { BOOL: v };
  if (Array.isArray(v)) return { L: v.map(marshall) };
  if (v instanceof Uint8Array) return { B: Buffer.from(v).toString("base64") };
  return { M: marshallItem(v) };
}

export function marshallItem(item: Item): Record<string, unknown> {
  return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, marshall(v)]));
}

interface RetryToken {
  getRetryDelay(): number;
}
interface RetryStrategyLike {
  acquireInitialRetryToken(scope: string): Promise<RetryToken>;
  refreshRetryTokenForRetry(token: RetryToken, error: unknown): Promise<RetryToken>;
  recordSuccess(token: RetryToken): void;
}

/** The client's own retry strategy, each retry token saying "retry after 0 ms" (decisions and quota unchanged). */
function withoutBackoff(client: { config: unknown }): void {
  const config = client.config as { retryStrategy: () => Promise<RetryStrategyLike> };
  const original = config.retryStrategy;
  let inner: Promise<RetryStrategyLike> | null = null;
  const strategy = () => {
    inner ??= original();
    return inner;
  };
  const wrapped: RetryStrategyLike & { mode: string } = {
    mode: "standard",
    acquireInitialRetryToken: async (scope) => (await strategy()).acquireInitialRetryToken(scope),
    refreshRetryTokenForRetry: async (token, error) => {
      const next = await (await strategy()).refreshRetryTokenForRetry(token, error);
      // An own property shadows the token's method; the token itself (count, cost, quota) stays the SDK's.
      next.getRetryDelay = () => 0;
      return next;
    },
    recordSuccess: (token) => {
      void strategy().then((s) => s.recordSuccess(token));
    },
  };
  config.retryStrategy = async () => wrapped;
}
