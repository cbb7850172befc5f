/**
 * The fault layer's proxy: an HTTP server in the twin's process in front of moto and the local Glue service. Every
 * AWS client of the twin (the handlers, the pollers standing in for Lambda's SQS trigger, the local Glue service, the
 * job's boto3 — never the CLI) is pointed at it. For each call it
 *  1. reads who calls (the access key id in the SigV4 header → principal) and what (service, IAM action, resources);
 *  2. draws the call's faults from the dice: `throttle` / `serverError` answer an error without forwarding,
 *     `latency` holds the call, `lostAnswer` forwards (the request IS applied) then resets the connection so the
 *     client's SDK times out and retries (Toxiproxy's "timeout" effect), `gsiLag` answers an index Query as of a
 *     moment ago (see gsi-lag.ts);
 *  3. writes one line per IAM action to the call record.
 * Glue job-run operations go to the local Glue service, everything else to moto. The twin's bulk PutObject (the
 * local Glue service publishing a run's outputs, glue/bulk.ts) is taken as the PutObjects it stands for, its bulk
 * GetObject (staging a run's uploads) as the GetObjects: each object gets its own faults and call-record line.
 */
import { randomBytes } from "node:crypto";
import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from "node:http";
import type { Socket } from "node:net";
import { messageOf } from "../errors.js";
import { BULK_GET_PATH, BULK_PUT_PATH } from "../glue/bulk.js";
import { freePort } from "../moto.js";
import type { FaultDice, FaultKind } from "./config.js";
import { type DescribedCall, describeRequest, errorCodeOf } from "./describe.js";
import type { DynamoKeyLimits } from "./dynamo-limits.js";
import type { GsiLag } from "./gsi-lag.js";
import { cutOffPorts } from "./invocations.js";
import { type Principal, parseCredential, principalOfKey } from "./principals.js";
import type { CallLine, CallRecorder } from "./record.js";

/** The Glue operations the local Glue service implements; other Glue calls (e.g. the Data Catalog) go to moto. */
export const LOCAL_GLUE_OPERATIONS: ReadonlySet<string> = new Set([
  "StartJobRun",
  "GetJobRun",
  "GetJobRuns",
  "BatchStopJobRun",
  "GetJob",
]);

export interface ProxyOptions {
  /** moto's endpoint. */
  readonly aws: string;
  /** The local Glue service's endpoint. */
  readonly glue: string;
  readonly dice: FaultDice;
  readonly record?: CallRecorder | undefined;
  readonly gsiLag?: GsiLag | undefined;
  /** DynamoDB's index key size limits on UpdateItem, which moto does not enforce. */
  readonly keyLimits?: DynamoKeyLimits | undefined;
  readonly log?: { warn(m: string): void } | undefined;
}

interface Upstream {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "host"]);

/** Error answers in each protocol's shape, so the client's SDK parses (and retries) them as it would AWS's. */
export function faultAnswer(call: DescribedCall, kind: "throttle" | "serverError"): Upstream {
  const id = randomBytes(8).toString("hex").toUpperCase();
  if (call.protocol === "rest-xml") {
    const [status, code] = kind === "throttle" ? [503, "SlowDown"] : [500, "InternalError"];
    const message = kind === "throttle" ? "Please reduce your request rate." : "We encountered an internal error.";
    const body = Buffer.from(
      `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>${id}</RequestId></Error>`,
    );
    return { status, headers: { "content-type": "application/xml", "x-amz-request-id": id }, body };
  }
  const code =
    kind === "throttle"
      ? call.service === "sqs"
        ? "RequestThrottled"
        : "ThrottlingException"
      : call.service === "dynamodb"
        ? "InternalServerError"
        : call.service === "glue"
          ? "InternalServiceException"
          : "InternalFailure";
  const status = kind === "throttle" ? 400 : 500;
  const message = kind === "throttle" ? "Rate exceeded" : "injected internal error";
  if (call.protocol === "query") {
    const body = Buffer.from(
      `<ErrorResponse><Error><Type>${kind === "throttle" ? "Sender" : "Receiver"}</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${id}</RequestId></ErrorResponse>`,
    );
    return { status, headers: { "content-type": "text/xml" }, body };
  }
  const body = Buffer.from(JSON.stringify({ __type: code, message }));
  const contentType = call.service === "dynamodb" || call.service === "sqs" ? "1.0" : "1.1";
  return {
    status,
    headers: {
      "content-type": `application/x-amz-json-${contentType}`,
      "x-amzn-errortype": code,
      "x-amzn-requestid": id,
      ...(call.service === "sqs" ? { "x-amzn-query-error": `${code};Sender` } : {}),
    },
    body,
  };
}

export class FaultProxy {
  private server: Server | null = null;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly sockets = new Set<Socket>();
  endpoint = "";
  /** Where Glue job-run calls go (settable: the Glue service may start after the proxy). */
  glueEndpoint: string;
  /** Calls seen, by principal (for reports). */
  readonly calls = new Map<string, number>();

  constructor(private readonly opts: ProxyOptions) {
    this.glueEndpoint = opts.glue;
  }

  async start(port = 0): Promise<string> {
    const p = await freePort(port);
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 60_000;
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.once("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      this.server?.once("error", reject);
      this.server?.listen(p, "127.0.0.1", () => resolve());
    });
    this.endpoint = `http://127.0.0.1:${p}`;
    return this.endpoint;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await closed;
    this.agent.destroy();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      for await (const c of req) chunks.push(c as Buffer);
    } catch {
      return; // the client went away
    }
    // A request the client abandoned (e.g. a crashed invocation's, see invocations.ts) never reaches AWS.
    const port = req.socket.remotePort;
    if (port !== undefined && cutOffPorts.delete(port)) {
      req.socket.destroy();
      return;
    }
    if (!req.complete) {
      req.socket.destroy();
      return;
    }
    const body = Buffer.concat(chunks);
    const auth = req.headers.authorization;
    const url = req.url ?? "/";
    const presigned = /[?&]X-Amz-Credential=([^&]+)/.exec(url)?.[1];
    const cred = parseCredential(auth ?? (presigned ? decodeURIComponent(presigned) : undefined));
    const principal = principalOfKey(cred?.accessKeyId);
    this.calls.set(principal, (this.calls.get(principal) ?? 0) + 1);
    const route = url.split("?")[0] ?? "";
    if (route === BULK_PUT_PATH || route === BULK_GET_PATH) {
      await this.bulk(req, res, body, principal, route);
      return;
    }
    let call: DescribedCall;
    try {
      call = describeRequest({
        method: req.method ?? "GET",
        url,
        headers: req.headers,
        body,
        signingService: cred?.service,
      });
    } catch (e) {
      call = {
        service: "unknown",
        operation: "?",
        calls: [{ action: "unknown", resources: ["*"] }],
        protocol: "rest-xml",
      };
      this.opts.log?.warn(`fault proxy: could not describe ${req.method} ${url}: ${messageOf(e)}`);
    }
    const write = (outcome: CallLine["outcome"]) => {
      const t = new Date().toISOString();
      for (const c of call.calls) {
        this.opts.record?.write({
          t,
          principal,
          service: call.service,
          action: c.action,
          resources: c.resources,
          outcome,
        });
      }
    };
    const { dice } = this.opts;
    // The job's and the Glue service's own S3 traffic gets the same faults as the handlers'.
    const injected: FaultKind | null = dice.roll("throttle")
      ? "throttle"
      : dice.roll("serverError")
        ? "serverError"
        : null;
    if (injected === "throttle" || injected === "serverError") {
      write(`fault:${injected}`);
      this.answer(res, faultAnswer(call, injected));
      return;
    }
    if (dice.roll("latency")) await sleep(dice.uniform("latency", dice.setting("latencyMs")));
    const invalid = await this.opts.keyLimits?.violation(call).catch(() => null);
    if (invalid) {
      write("error:ValidationException");
      const body = Buffer.from(
        JSON.stringify({ __type: "com.amazon.coral.validate#ValidationException", message: invalid }),
      );
      this.answer(res, {
        status: 400,
        headers: { "content-type": "application/x-amz-json-1.0", "x-amzn-errortype": "ValidationException" },
        body,
      });
      return;
    }
    const toGlue = call.service === "glue" && LOCAL_GLUE_OPERATIONS.has(call.operation);
    let upstream: Upstream;
    try {
      const lag = this.opts.gsiLag;
      upstream = lag?.applies(call)
        ? await lag.around(call, () => this.forward(toGlue ? this.glueEndpoint : this.opts.aws, req, body))
        : await this.forward(toGlue ? this.glueEndpoint : this.opts.aws, req, body);
    } catch (e) {
      if (!this.server) return; // stopping: calls still in flight end with the twin
      write("error:ProxyUpstreamError");
      this.opts.log?.warn(`fault proxy: ${call.service}:${call.operation} upstream failed: ${messageOf(e)}`);
      res.destroy();
      return;
    }
    if (dice.roll("lostAnswer")) {
      // Applied, but the answer never arrives: the client sees the connection reset and retries.
      write("fault:lostAnswer");
      req.socket.destroy();
      return;
    }
    write(upstream.status < 300 ? "ok" : `error:${errorCodeOf(upstream.status, upstream.headers, upstream.body)}`);
    this.answer(res, upstream, req.method === "HEAD");
  }

  /**
   * The twin's bulk PutObject / GetObject, object by object as separate requests would go: each object draws
   * throttle / server error (refused, not done), latency (the request waits as long as its slowest object) and lost
   * answer (done, but its outcome says the answer was lost, so the caller asks again), in that order; moto does the
   * objects that were not refused; each object gets one call-record line — `s3:PutObject`, or `s3:GetObject(Version)`
   * — on its ARN with its own outcome. Only the twin's local Glue service sends them.
   */
  private async bulk(
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    principal: Principal,
    route: string,
  ): Promise<void> {
    const json = (status: number, value: unknown) =>
      this.answer(res, {
        status,
        headers: { "content-type": "application/json" },
        body: Buffer.from(JSON.stringify(value)),
      });
    if (principal !== "glue-service" || req.method !== "POST") {
      json(403, { code: "AccessDenied", message: "the twin's bulk requests are the local Glue service's own" });
      return;
    }
    type Item = { readonly key: string; readonly versionId?: string };
    let request: { bucket: string; objects: Item[] };
    try {
      request = JSON.parse(body.toString("utf8")) as { bucket: string; objects: Item[] };
      if (typeof request.bucket !== "string" || !Array.isArray(request.objects)) throw new Error("bucket, objects");
    } catch (e) {
      json(400, { code: "InvalidRequest", message: `bulk request: ${messageOf(e)}` });
      return;
    }
    const actionOf = (o: Item) =>
      route === BULK_PUT_PATH ? "s3:PutObject" : o.versionId ? "s3:GetObjectVersion" : "s3:GetObject";
    const record = (o: Item, outcome: CallLine["outcome"]) =>
      this.opts.record?.write({
        t: new Date().toISOString(),
        principal,
        service: "s3",
        action: actionOf(o),
        resources: [`arn:aws:s3:::${request.bucket}/${o.key}`],
        outcome,
      });
    const { dice } = this.opts;
    const refused: (`fault:${FaultKind}` | null)[] = [];
    const forwarded: Item[] = [];
    let wait = 0;
    for (const o of request.objects) {
      const injected = dice.roll("throttle") ? "throttle" : dice.roll("serverError") ? "serverError" : null;
      refused.push(injected ? `fault:${injected}` : null);
      if (injected) continue;
      if (dice.roll("latency")) wait = Math.max(wait, dice.uniform("latency", dice.setting("latencyMs")));
      forwarded.push(o);
    }
    if (wait > 0) await sleep(wait);
    let done: { key: string; outcome?: string }[] = [];
    if (forwarded.length > 0) {
      let upstream: Upstream;
      try {
        const sent = Buffer.from(JSON.stringify({ ...request, objects: forwarded }));
        upstream = await this.forward(this.opts.aws, req, sent);
      } catch (e) {
        if (!this.server) return;
        for (const o of forwarded) record(o, "error:ProxyUpstreamError");
        this.opts.log?.warn(`fault proxy: bulk request upstream failed: ${messageOf(e)}`);
        res.destroy();
        return;
      }
      if (upstream.status !== 200) {
        let code = String(upstream.status);
        try {
          code = String((JSON.parse(upstream.body.toString("utf8")) as { code?: string }).code ?? code);
        } catch {
          // not JSON: the status
        }
        for (const o of forwarded) record(o, `error:${code}`);
        this.answer(res, upstream);
        return;
      }
      done = (JSON.parse(upstream.body.toString("utf8")) as { objects: { key: string; outcome?: string }[] }).objects;
    }
    let next = 0;
    const results = request.objects.map((o, i) => {
      const fault = refused[i];
      if (fault) {
        record(o, fault);
        return { key: o.key, outcome: fault };
      }
      const d = done[next++] ?? { key: o.key, outcome: "error:NoAnswer" };
      const outcome = d.outcome ?? "ok";
      if (outcome !== "ok") {
        record(o, outcome as CallLine["outcome"]);
        return { ...d, outcome };
      }
      // Done, but the caller is told its answer was lost (as a reset connection tells an SDK): it asks again.
      if (dice.roll("lostAnswer")) {
        record(o, "fault:lostAnswer");
        return { key: o.key, outcome: "fault:lostAnswer" };
      }
      record(o, "ok");
      return { ...d, outcome };
    });
    json(200, { objects: results });
  }

  private answer(res: ServerResponse, up: Upstream, head = false): void {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    if (!head) headers["content-length"] = String(up.body.length);
    res.writeHead(up.status, headers);
    res.end(head ? undefined : up.body);
  }

  private forward(endpoint: string, req: IncomingMessage, body: Buffer): Promise<Upstream> {
    const target = new URL(endpoint);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    headers.host = target.host;
    headers["content-length"] = String(body.length);
    return new Promise((resolve, reject) => {
      const up = request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers,
          agent: this.agent,
        },
        (r) => {
          const chunks: Buffer[] = [];
          r.on("data", (c: Buffer) => chunks.push(c));
          r.on("end", () => resolve({ status: r.statusCode ?? 502, headers: r.headers, body: Buffer.concat(chunks) }));
          r.on("error", reject);
        },
      );
      up.on("error", reject);
      up.end(body);
    });
  }
}
